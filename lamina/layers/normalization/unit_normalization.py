"""``UnitNormalization``: scale each sample to unit L2 norm over the given axes."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina.layers.layer import Layer
from lamina.layers.normalization.layer_normalization import _axis_arg, _check_axes
from lamina.saving.object_registry import register_builtin

_EPSILON = 1e-12


@register_builtin
class UnitNormalization(Layer):
    """``x / ||x||_2`` over ``axis`` (an int or a list of ints), as
    ``keras.layers.UnitNormalization``; a zero vector stays zero.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.UnitNormalization()(jnp.array([[3.0, 4.0]])).tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axis_arg(self, axis)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        x = inputs if inputs.ndim else jnp.expand_dims(inputs, 0)
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        # The norm in float32 at least: a bfloat16 sum of squares loses the small entries.
        wide = x.astype(jnp.result_type(x.dtype, jnp.float32))
        square_sum = jnp.sum(jnp.square(wide), axis=axis, keepdims=True)
        # Keras's form: x * rsqrt(sum(x^2)), the inverse norm capped at 1 / epsilon.
        return (wide * jnp.minimum(jax.lax.rsqrt(square_sum), 1.0 / _EPSILON)).astype(x.dtype)

    def compute_output_shape(self, input_shape):
        _check_axes(self, self.axis if isinstance(self.axis, list) else [self.axis], input_shape)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


__all__ = ["UnitNormalization"]
