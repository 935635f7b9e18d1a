"""``Activation``: apply an activation function by name or as a callable."""

from __future__ import annotations

from lamina import activations
from lamina.layers.layer import Layer
from lamina.layers.output_specs import OutputSpec, input_dtype_in_call, keeps_shape_and_dtype
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object


@register_builtin
class Activation(Layer):
    """Applies ``activation`` elementwise, as ``keras.layers.Activation``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Activation("relu")(jnp.array([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _lm_output_spec(self, shape, dtype):
        # lamina/layers/output_specs.py; "linear" returns its input itself.
        dtype = input_dtype_in_call(self, dtype)
        if dtype is None or not keeps_shape_and_dtype(self.activation):
            return None
        return OutputSpec(tuple(shape), dtype, returns_input=self.activation is activations.linear)

    def get_config(self):
        return {**super().get_config(), "activation": serialize_object(self.activation)}
