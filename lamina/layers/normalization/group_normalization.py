"""``GroupNormalization``: normalize each sample over groups of channels."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina import constraints, initializers, regularizers
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.normalization.layer_normalization import _check_axes
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object


@register_builtin
class GroupNormalization(Layer):
    """Splits the channels (``axis``) into ``groups`` and normalizes each group of each
    sample over its channels and all other non-batch axes, as ``keras.layers.GroupNormalization``.

    ``groups=-1`` gives one group per channel (instance normalization); ``groups=1`` is layer
    normalization over all non-batch axes. ``gamma`` and ``beta`` are per channel.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> gn = lm.layers.GroupNormalization(groups=2, epsilon=0.0)
        >>> gn(jnp.array([[1.0, 3.0, 10.0, 20.0]])).tolist()
        [[-1.0, 1.0, -1.0, 1.0]]
    """

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kwargs):
        if not isinstance(groups, int) or isinstance(groups, bool) or (groups <= 0 and groups != -1):
            raise ValueError(
                "GroupNormalization: groups must be a positive integer (or -1 for instance "
                f"normalization), got groups={groups!r}."
            )
        super().__init__(**kwargs)
        self.groups = groups
        self.axis = axis
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True
        self.gamma = self.beta = None
        self._groups = None  # the number of groups for the built input (-1 resolved)

    def build(self, input_shape):
        _check_axes(self, [self.axis], input_shape)
        dim = input_shape[self.axis]
        if dim is None:
            raise ValueError(
                f"GroupNormalization '{self.name}': axis {self.axis} of the input must have a known "
                f"size, got input shape {tuple(input_shape)}."
            )
        groups = dim if self.groups == -1 else self.groups
        if dim < groups:
            raise ValueError(
                f"GroupNormalization '{self.name}': number of groups ({groups}) cannot be more than "
                f"the number of channels ({dim})."
            )
        if dim % groups != 0:
            raise ValueError(
                f"GroupNormalization '{self.name}': number of groups ({groups}) must divide the "
                f"number of channels ({dim})."
            )
        self._groups = groups
        self.input_spec = InputSpec(ndim=len(input_shape), axes={self.axis: dim})
        if self.scale:
            self.gamma = self.add_weight(shape=(dim,), initializer=self.gamma_initializer, name="gamma",
                                         regularizer=self.gamma_regularizer, constraint=self.gamma_constraint,
                                         autocast=False)
        if self.center:
            self.beta = self.add_weight(shape=(dim,), initializer=self.beta_initializer, name="beta",
                                        regularizer=self.beta_regularizer, constraint=self.beta_constraint,
                                        autocast=False)

    def _grouped(self, shape):
        """``shape`` with the channel axis split into ``(groups, channels // groups)``."""
        grouped = list(shape)
        grouped[self.axis] = shape[self.axis] // self._groups
        grouped.insert(self.axis, self._groups)
        return grouped

    def call(self, inputs):
        groups_shape = self._grouped(inputs.shape)
        groups_shape[0] = -1
        x = jnp.reshape(inputs, groups_shape)
        inputs_dtype = x.dtype
        x = x.astype(jnp.result_type(inputs_dtype, jnp.float32))
        reduction_axes = list(range(1, x.ndim))
        reduction_axes.pop(-2 if self.axis == -1 else self.axis - 1)  # keep batch and groups

        broadcast_shape = self._broadcast_shape(inputs.shape)
        axes = tuple(reduction_axes)
        mean, variance = jnp.mean(x, axis=axes, keepdims=True), jnp.var(x, axis=axes, keepdims=True)
        inv = jax.lax.rsqrt(variance + self.epsilon)
        if self.scale:
            inv = inv * jnp.reshape(self.gamma.value, broadcast_shape).astype(x.dtype)
        res = -mean * inv
        if self.center:
            res = res + jnp.reshape(self.beta.value, broadcast_shape).astype(x.dtype)
        outputs = (x * inv + res).astype(inputs_dtype)
        return jnp.reshape(outputs, inputs.shape).astype(self.compute_dtype)

    def _broadcast_shape(self, input_shape):
        shape = [1] * len(input_shape)
        shape[self.axis] = input_shape[self.axis] // self._groups
        shape.insert(self.axis, self._groups)
        return shape

    def compute_output_shape(self, input_shape):
        _check_axes(self, [self.axis], input_shape)
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "groups": self.groups,
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": serialize_object(self.beta_initializer),
            "gamma_initializer": serialize_object(self.gamma_initializer),
            "beta_regularizer": serialize_object(self.beta_regularizer),
            "gamma_regularizer": serialize_object(self.gamma_regularizer),
            "beta_constraint": serialize_object(self.beta_constraint),
            "gamma_constraint": serialize_object(self.gamma_constraint),
        }


__all__ = ["GroupNormalization"]
