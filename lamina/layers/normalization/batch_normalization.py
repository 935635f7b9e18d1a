"""``BatchNormalization``: normalize with batch statistics in training, moving ones otherwise.

The moving statistics are non-trainable variables updated with ``assign`` during training
calls, so they change eagerly, inside ``lm.jit`` and inside ``fit`` alike (the state mechanism
threads them through compiled code and writes them back after the step).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina import constraints, initializers, regularizers
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object

_MASK_EPSILON = 1e-7  # Keras's backend.epsilon(), used by its masked moments


@register_builtin
class BatchNormalization(Layer):
    """Normalizes ``inputs`` over every axis but ``axis``, as ``keras.layers.BatchNormalization``.

    - ``training=True`` (and the layer trainable): uses the batch's mean and variance, and
      moves ``moving_mean = moving_mean * momentum + mean * (1 - momentum)`` (same for the
      variance). A ``mask`` (one rank lower than ``inputs``) leaves masked positions out of
      the batch statistics.
    - Otherwise (inference, or ``trainable = False``): uses the moving statistics.

    The output is ``gamma * (inputs - mean) / sqrt(variance + epsilon) + beta``. Weights, in
    Keras's order: ``gamma``, ``beta``, ``moving_mean``, ``moving_variance`` (then, with
    ``renorm=True``, ``moving_stddev``, ``renorm_mean``, ``renorm_stddev``).
    ``synchronized`` is accepted and ignored: under ``lm.distribution`` the batch statistics
    of a compiled step are computed over the whole (sharded) batch already.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> bn = lm.layers.BatchNormalization(momentum=0.5)
        >>> x = jnp.array([[0.0, 2.0], [2.0, 6.0]])
        >>> bn(x, training=True).round(2).tolist()
        [[-1.0, -1.0], [1.0, 1.0]]
        >>> bn.moving_mean.numpy().tolist()
        [0.5, 2.0]
        >>> [v.name for v in bn.non_trainable_weights]
        ['moving_mean', 'moving_variance']
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, renorm=False, renorm_clipping=None,
                 renorm_momentum=0.99, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.synchronized = synchronized
        self.renorm = renorm
        if renorm:
            renorm_clipping = dict(renorm_clipping or {})
            unknown = set(renorm_clipping) - {"rmax", "rmin", "dmax"}
            if unknown:
                raise ValueError(
                    f"BatchNormalization '{self.name}': invalid keys {sorted(unknown)} in "
                    "renorm_clipping; supported keys: 'rmax', 'rmin', 'dmax'."
                )
            rmax, rmin, dmax = (renorm_clipping.get(k) for k in ("rmax", "rmin", "dmax"))
            if rmax is not None and rmin is not None and rmax < rmin:
                raise ValueError(f"BatchNormalization '{self.name}': rmax ({rmax}) < rmin ({rmin}).")
            if dmax is not None and dmax < 0:
                raise ValueError(f"BatchNormalization '{self.name}': dmax must be >= 0, got {dmax}.")
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = renorm_momentum
        self.supports_masking = True
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None
        self._reduction_axes = None

    def build(self, input_shape):
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim:
            raise ValueError(
                f"BatchNormalization '{self.name}': axis {self.axis} is out of bounds for input "
                f"shape {tuple(input_shape)}."
            )
        shape = (input_shape[self.axis],)
        if self.scale:
            self.gamma = self.add_weight(shape=shape, initializer=self.gamma_initializer, name="gamma",
                                         regularizer=self.gamma_regularizer, constraint=self.gamma_constraint,
                                         autocast=False)
        if self.center:
            self.beta = self.add_weight(shape=shape, initializer=self.beta_initializer, name="beta",
                                        regularizer=self.beta_regularizer, constraint=self.beta_constraint,
                                        autocast=False)
        self.moving_mean = self.add_weight(shape=shape, initializer=self.moving_mean_initializer,
                                           name="moving_mean", trainable=False, autocast=False)
        self.moving_variance = self.add_weight(shape=shape, initializer=self.moving_variance_initializer,
                                               name="moving_variance", trainable=False,
                                               autocast=False)
        if self.renorm:
            variance_init = self.moving_variance_initializer

            def moving_stddev_initializer(shape, dtype="float32"):
                return jnp.sqrt(variance_init(shape, dtype=dtype))

            self.moving_stddev = self.add_weight(shape=shape, initializer=moving_stddev_initializer,
                                                 name="moving_stddev", trainable=False, autocast=False)
            self.renorm_mean = self.add_weight(shape=shape, initializer=self.moving_mean_initializer,
                                               name="renorm_mean", trainable=False, autocast=False)
            self.renorm_stddev = self.add_weight(shape=shape, initializer=moving_stddev_initializer,
                                                 name="renorm_stddev", trainable=False, autocast=False)
        self.input_spec = InputSpec(ndim=ndim, axes={self.axis: input_shape[self.axis]})
        self._reduction_axes = [a for a in range(ndim) if a != self.axis % ndim]

    def call(self, inputs, training=None, mask=None):
        if mask is not None and mask.ndim != inputs.ndim - 1:
            raise ValueError(
                f"BatchNormalization '{self.path}': the mask must have one dimension less than the "
                f"inputs; got mask.shape={tuple(mask.shape)}, inputs.shape={tuple(inputs.shape)}."
            )
        compute_dtype = jnp.result_type(inputs.dtype, jnp.float32)
        inputs = inputs.astype(compute_dtype)
        moving_mean = self.moving_mean.value.astype(compute_dtype)
        moving_variance = self.moving_variance.value.astype(compute_dtype)
        gamma = self.gamma.value.astype(compute_dtype) if self.scale else None
        beta = self.beta.value.astype(compute_dtype) if self.center else None

        if training and self.trainable:
            mean, variance = self._moments(inputs, mask)
            if self.renorm:
                r, d = self._renorm_correction(mean, variance)
                gamma, beta = _compose_transforms(r, d, gamma, beta, compute_dtype)
                self._update_renorm_statistics(mean, variance)
            else:
                self.moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
                self.moving_variance.assign(moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            mean, variance = moving_mean, moving_variance

        outputs = _batch_normalization(inputs, mean, variance, self.axis, beta, gamma, self.epsilon)
        return outputs.astype(self.compute_dtype)

    def _moments(self, inputs, mask):
        axes = self._reduction_axes
        if mask is None:
            x = inputs.astype(jnp.float32) if inputs.dtype in (jnp.float16, jnp.bfloat16) else inputs
            mean, variance = jnp.mean(x, axis=tuple(axes)), jnp.var(x, axis=tuple(axes))
            return mean.astype(inputs.dtype), variance.astype(inputs.dtype)
        weights = jnp.broadcast_to(jnp.expand_dims(mask, -1), inputs.shape).astype(bool)
        axes = tuple(axes)
        total = jnp.sum(jnp.where(weights, inputs, 0), axes, keepdims=True)
        count = jnp.sum(weights.astype(inputs.dtype), axes, keepdims=True)
        mean = total / (count + _MASK_EPSILON)
        deviation = jnp.where(weights, inputs - mean, 0)
        variance = jnp.sum(jnp.square(deviation), axes, keepdims=True) / (count + _MASK_EPSILON)
        return jnp.squeeze(mean, tuple(axes)), jnp.squeeze(variance, tuple(axes))

    def _renorm_correction(self, mean, variance):
        stddev = jnp.sqrt(variance + self.epsilon)
        renorm_mean = self.renorm_mean.value.astype(mean.dtype)
        renorm_stddev = jnp.maximum(self.renorm_stddev.value.astype(mean.dtype),
                                    jnp.sqrt(jnp.asarray(self.epsilon, mean.dtype)))
        r = stddev / renorm_stddev
        d = (mean - renorm_mean) / renorm_stddev
        clipping = self.renorm_clipping
        if clipping.get("rmin") is not None:
            r = jnp.maximum(r, clipping["rmin"])
        if clipping.get("rmax") is not None:
            r = jnp.minimum(r, clipping["rmax"])
        if clipping.get("dmax") is not None:
            d = jnp.clip(d, -clipping["dmax"], clipping["dmax"])
        return r, d

    def _update_renorm_statistics(self, mean, variance):
        stddev = jnp.sqrt(variance + self.epsilon)
        renorm_mean = self.renorm_mean.value.astype(mean.dtype)
        renorm_stddev = self.renorm_stddev.value.astype(mean.dtype)
        self.renorm_mean.assign(renorm_mean * self.renorm_momentum + mean * (1.0 - self.renorm_momentum))
        self.renorm_stddev.assign(renorm_stddev * self.renorm_momentum + stddev * (1.0 - self.renorm_momentum))
        moving_mean = self.moving_mean.value.astype(mean.dtype)
        moving_stddev = self.moving_stddev.value.astype(mean.dtype)
        self.moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
        new_moving_stddev = moving_stddev * self.momentum + stddev * (1.0 - self.momentum)
        self.moving_stddev.assign(new_moving_stddev)
        self.moving_variance.assign(jax.nn.relu(new_moving_stddev * new_moving_stddev - self.epsilon))

    def compute_output_shape(self, input_shape):
        if not -len(input_shape) <= self.axis < len(input_shape):
            raise ValueError(
                f"BatchNormalization '{self.name}': axis {self.axis} is out of bounds for input "
                f"shape {tuple(input_shape)}."
            )
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": serialize_object(self.beta_initializer),
            "gamma_initializer": serialize_object(self.gamma_initializer),
            "moving_mean_initializer": serialize_object(self.moving_mean_initializer),
            "moving_variance_initializer": serialize_object(self.moving_variance_initializer),
            "beta_regularizer": serialize_object(self.beta_regularizer),
            "gamma_regularizer": serialize_object(self.gamma_regularizer),
            "beta_constraint": serialize_object(self.beta_constraint),
            "gamma_constraint": serialize_object(self.gamma_constraint),
            "synchronized": self.synchronized,
            "renorm": self.renorm,
            "renorm_clipping": self.renorm_clipping,
            "renorm_momentum": self.renorm_momentum,
        }


def _batch_normalization(x, mean, variance, axis, offset, scale, epsilon):
    """Keras's JAX ``batch_normalization``, in its order of operations."""
    shape = [1] * x.ndim
    shape[axis] = mean.shape[0]
    mean = jnp.reshape(mean, shape)
    inv = jax.lax.rsqrt(jnp.reshape(variance, shape) + epsilon)
    if scale is not None:
        inv = inv * jnp.reshape(scale, shape)
    res = -mean * inv
    if offset is not None:
        res = res + jnp.reshape(offset, shape)
    return x * inv + res


def _compose_transforms(r, d, gamma, beta, dtype):
    """Fold the renorm correction ``(x * r + d)`` into the scale and offset."""
    r, d = jax.lax.stop_gradient(r), jax.lax.stop_gradient(d)
    if gamma is not None:
        new_gamma, new_beta = r * gamma, d * gamma
    else:
        new_gamma, new_beta = r.astype(dtype), d.astype(dtype)
    if beta is not None:
        new_beta = new_beta + beta
    return new_gamma, new_beta


__all__ = ["BatchNormalization"]
