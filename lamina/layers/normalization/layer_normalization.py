"""``LayerNormalization``: normalize each sample over the given axes."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina import constraints, initializers, regularizers
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object


def _check_axes(layer, axes, input_shape):
    for axis in axes:
        if not -len(input_shape) <= axis < len(input_shape):
            raise ValueError(
                f"{type(layer).__name__} '{layer.name}': axis {axis} is out of bounds for input "
                f"shape {tuple(input_shape)} (axis={layer.axis})."
            )


def _axis_arg(layer, axis):
    if isinstance(axis, (list, tuple)):
        return [int(a) for a in axis]
    if isinstance(axis, int) and not isinstance(axis, bool):
        return axis
    raise TypeError(
        f"{type(layer).__name__} '{layer.name}': axis must be an int or a list/tuple of ints, got {axis!r}."
    )


@register_builtin
class LayerNormalization(Layer):
    """Per-sample normalization over ``axis``, as ``keras.layers.LayerNormalization``.

    ``outputs = gamma * (x - mean) / sqrt(variance + epsilon) + beta`` with ``mean`` and
    ``variance`` taken over ``axis`` (an int or a list of ints); ``gamma`` and ``beta`` have
    the shape of those axes. ``rms_scaling=True`` is Keras's deprecated variant: it divides
    by ``sqrt(variance + epsilon)`` without centring and has no ``beta`` (for true RMS
    normalization Keras now has ``RMSNormalization``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> ln = lm.layers.LayerNormalization(epsilon=0.0)
        >>> ln(jnp.array([[1.0, 3.0], [2.0, 10.0]])).tolist()
        [[-1.0, 1.0], [-1.0, 1.0]]
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axis_arg(self, axis)
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.rms_scaling = rms_scaling
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True
        self.gamma = self.beta = None

    @property
    def _axes(self):
        # Sorted as given (negative axes first), as Keras does: gamma/beta follow this order.
        return sorted(self.axis) if isinstance(self.axis, list) else [self.axis]

    def build(self, input_shape):
        _check_axes(self, self._axes, input_shape)
        shape = tuple(input_shape[a] for a in self._axes)
        if self.scale or self.rms_scaling:
            self.gamma = self.add_weight(shape=shape, initializer=self.gamma_initializer, name="gamma",
                                         regularizer=self.gamma_regularizer, constraint=self.gamma_constraint,
                                         autocast=False)
        if self.center and not self.rms_scaling:
            self.beta = self.add_weight(shape=shape, initializer=self.beta_initializer, name="beta",
                                        regularizer=self.beta_regularizer, constraint=self.beta_constraint,
                                        autocast=False)

    def call(self, inputs):
        original_dtype = inputs.dtype
        x = inputs.astype(jnp.result_type(inputs.dtype, jnp.float32))
        axes = self._axes
        broadcast_shape = [1] * x.ndim
        for a in axes:
            broadcast_shape[a] = x.shape[a]

        def broadcast(v):
            if v is None:
                return None
            v = v.value.astype(x.dtype)
            return jnp.reshape(v, broadcast_shape) if v.ndim != x.ndim and axes != [x.ndim - 1] else v

        if self.rms_scaling:
            outputs = x * jax.lax.rsqrt(jnp.var(x, axis=tuple(axes), keepdims=True) + self.epsilon)
            if self.gamma is not None:
                outputs = outputs * broadcast(self.gamma)
        else:
            mean = jnp.mean(x, axis=tuple(axes), keepdims=True)
            variance = jnp.var(x, axis=tuple(axes), keepdims=True)
            gamma, beta = broadcast(self.gamma), broadcast(self.beta)
            inv = jax.lax.rsqrt(variance + self.epsilon)
            if gamma is not None:
                inv = inv * gamma
            res = -mean * inv
            if beta is not None:
                res = res + beta
            outputs = x * inv + res
        return outputs.astype(original_dtype).astype(self.compute_dtype)

    def compute_output_shape(self, input_shape):
        _check_axes(self, self._axes, input_shape)
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "rms_scaling": self.rms_scaling,
            "beta_initializer": serialize_object(self.beta_initializer),
            "gamma_initializer": serialize_object(self.gamma_initializer),
            "beta_regularizer": serialize_object(self.beta_regularizer),
            "gamma_regularizer": serialize_object(self.gamma_regularizer),
            "beta_constraint": serialize_object(self.beta_constraint),
            "gamma_constraint": serialize_object(self.gamma_constraint),
        }


__all__ = ["LayerNormalization"]
