"""``RMSNormalization``: scale each sample by the inverse root mean square over the given axes."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina.layers.layer import Layer
from lamina.layers.normalization.layer_normalization import _axis_arg, _check_axes
from lamina.saving.object_registry import register_builtin


@register_builtin
class RMSNormalization(Layer):
    """Root-mean-square normalization (Zhang & Sennrich, 2019), as ``keras.layers.RMSNormalization``.

    ``outputs = x * rsqrt(mean(x**2, axis) + epsilon) * scale``, with a trainable ``scale``
    (initialized to ones) of the shape of the ``axis`` dimensions (an int or a list of ints).
    Unlike ``LayerNormalization(rms_scaling=True)`` it neither centres nor uses the variance.
    The statistics are computed in float32 at least, so a bfloat16 input keeps its precision.
    As in Keras, an input's mask is not passed on.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> norm = lm.layers.RMSNormalization(epsilon=0.0)
        >>> norm(jnp.array([[4.0, 0.0, 0.0, 0.0], [1.0, -1.0, 1.0, -1.0]])).tolist()  # rms 2, then 1
        [[2.0, 0.0, 0.0, 0.0], [1.0, -1.0, 1.0, -1.0]]
        >>> norm.scale.shape
        (4,)
    """

    def __init__(self, axis=-1, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axis_arg(self, axis)
        self.epsilon = epsilon
        self.scale = None

    @property
    def _axes(self):
        # Sorted as given (negative axes first), as Keras sorts them: ``scale`` follows this order.
        return sorted(self.axis) if isinstance(self.axis, list) else [self.axis]

    def build(self, input_shape):
        _check_axes(self, self._axes, input_shape)
        shape = tuple(input_shape[a] for a in self._axes)
        if any(d is None for d in shape):
            raise ValueError(
                f"RMSNormalization '{self.name}': the normalized axes {self._axes} must have a known size; "
                f"got input shape {tuple(input_shape)}."
            )
        self.scale = self.add_weight(shape=shape, initializer="ones", name="scale")

    def call(self, inputs):
        original_dtype = inputs.dtype
        x = inputs if inputs.ndim else jnp.expand_dims(inputs, 0)
        x = x.astype(jnp.result_type(x.dtype, jnp.float32))
        axes = [a % x.ndim for a in self._axes]
        inverse_rms = jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=tuple(axes), keepdims=True) + self.epsilon)
        # The scale has the normalized axes' shape; put them back in place among the others.
        scale_shape = [x.shape[a] if a in axes else 1 for a in range(x.ndim)]
        scale = jnp.reshape(self.scale.value.astype(x.dtype), scale_shape)
        return (x * inverse_rms * scale).astype(original_dtype)

    def compute_output_shape(self, input_shape):
        _check_axes(self, self._axes, input_shape)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


__all__ = ["RMSNormalization"]
