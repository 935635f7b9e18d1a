"""``Identity``: returns its input unchanged (a placeholder in a model)."""

from __future__ import annotations

from lamina.layers.layer import Layer
from lamina.layers.output_specs import OutputSpec, input_dtype_in_call
from lamina.saving.object_registry import register_builtin


@register_builtin
class Identity(Layer):
    """Returns its input (any structure) unchanged, mask included, as ``keras.layers.Identity``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Identity()(jnp.array([1.0, 2.0])).tolist()
        [1.0, 2.0]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def _lm_output_spec(self, shape, dtype):
        dtype = input_dtype_in_call(self, dtype)  # lamina/layers/output_specs.py
        return None if dtype is None else OutputSpec(tuple(shape), dtype, returns_input=True)


__all__ = ["Identity"]
