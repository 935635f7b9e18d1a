"""What the parameter-free activation layers share: masks pass through, the output has the
input's shape, and a functional graph is built without tracing them."""

from __future__ import annotations

from lamina.layers.layer import Layer
from lamina.layers.output_specs import OutputSpec, input_dtype_in_call


class ElementwiseActivation(Layer):
    """Base of ``ReLU``, ``LeakyReLU`` and ``ELU``: an elementwise function of a float input,
    built at construction (no weights), passing the input's mask on as Keras does."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _lm_output_spec(self, shape, dtype):
        # lamina/layers/output_specs.py: a float input keeps its shape and (cast) dtype;
        # integer input is traced (JAX's promotion rules decide its output dtype).
        dtype = input_dtype_in_call(self, dtype)
        return None if dtype is None else OutputSpec(tuple(shape), dtype)
