"""Losses (``lm.losses``): Keras 3 names, arguments, defaults and numbers, computed by JAX.

A loss object is called as ``loss(y_true, y_pred, sample_weight=None)``: ``call`` gives one
loss per sample, then the sample weights are applied and the ``reduction`` reduces them,
exactly as in Keras 3 (``"sum_over_batch_size"`` by default; ``"sum"``, ``"mean"``,
``"mean_with_sample_weight"``, ``"none"`` / ``None``). Every loss also exists as a function
(``mean_squared_error``, alias ``mse``) that returns the per-sample values unreduced.

Inputs may be NumPy arrays, lists, JAX arrays or ``lm.Variable``s, eagerly or under
``jax.jit``. Probabilities (``from_logits=False``) are clipped to ``[1e-7, 1 - 1e-7]`` as
Keras does; logits go through ``log_softmax`` / ``log_sigmoid``.

Where lamina differs from Keras 3 (every difference only where Keras raises, drops a setting
or loses precision; the numbers are Keras's otherwise):

- ``SparseCategoricalCrossentropy`` keeps integer labels integer (Keras casts them to the
  loss dtype first, which corrupts large class ids in ``bfloat16``/``float16``), and
  ``sparse_categorical_crossentropy`` supports any class ``axis`` (Keras's shape check only
  accepts the last one).
- ``binary_crossentropy`` (the function) aligns ``(batch,)`` labels with ``(batch, 1)``
  predictions like the other functions do; Keras's function raises there (its class aligns).
- ``get_config`` of ``Huber``, ``CosineSimilarity`` and ``SparseCategoricalCrossentropy``
  also lists ``delta`` / ``axis``, which Keras leaves out (so a round trip would lose them);
  every loss lists ``dtype`` when one was given.

Example:
    >>> import jax.numpy as jnp
    >>> loss = SparseCategoricalCrossentropy(from_logits=True)
    >>> round(float(loss(jnp.array([0, 1]), jnp.array([[2.0, 0.0], [0.0, 2.0]]))), 4)
    0.1269
    >>> get("mse") is mean_squared_error
    True
    >>> to_loss_object("mse")
    MeanSquaredError(name='mean_squared_error', reduction='sum_over_batch_size')
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import optax

from lamina.core import settings
from lamina.core.arrays import as_jax_array
from lamina.core.naming import to_snake_case, unique_name
from lamina.core.variable import Variable
from lamina.losses_ctc_circle import circle, ctc
from lamina.saving.object_registry import register_builtin, register_family
from lamina.saving.serialization import Configurable, deserialize_object, serialize_object

_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


# -- array helpers ----------------------------------------------------------------------------

def _tensor(x, dtype=None):
    """``x`` as a ``jax.Array`` (a Variable gives its current value), cast to ``dtype``."""
    if isinstance(x, Variable):
        x = x.value
    x = as_jax_array(x)
    if dtype is not None and x.dtype != jnp.dtype(dtype):
        x = x.astype(dtype)
    return x


def _prediction(y_pred):
    """Predictions as a float array; integer predictions become float32 (Keras's floatx)."""
    y_pred = _tensor(y_pred)
    if not jnp.issubdtype(y_pred.dtype, jnp.inexact):
        y_pred = y_pred.astype("float32")
    return y_pred


def _pair(y_true, y_pred, align=True):
    """Keras's preamble: ``y_pred`` to a float array, ``y_true`` cast to its dtype, then the
    ranks aligned by ``squeeze_or_expand_to_same_rank`` (where Keras's function does it)."""
    y_pred = _prediction(y_pred)
    y_true = _tensor(y_true, y_pred.dtype)
    if align:
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return y_true, y_pred


def _clip_probabilities(p):
    return jnp.clip(p, settings.epsilon(), 1.0 - settings.epsilon())


def _divide_no_nan(x, y):
    zero = y == 0
    return jnp.where(zero, jnp.zeros_like(x), x / jnp.where(zero, jnp.ones_like(y), y))


def _canonical_axis(axis, ndim):
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ValueError(f"`axis` must be an int; got axis={axis!r} of type {type(axis).__name__}.")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis={axis} is out of range for an input of rank {ndim}.")
    return axis % ndim


def _l2_normalize(x, axis):
    # Keras's ops.normalize(order=2): x * min(rsqrt(sum(x^2)), 1/eps), so zero vectors stay 0.
    inv_norm = jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
    return x * jnp.minimum(inv_norm, jnp.asarray(1.0 / settings.epsilon(), x.dtype))


# -- reduction (keras/src/losses/loss.py) --------------------------------------------------

def standardize_reduction(reduction):
    """Return ``reduction`` if Keras accepts it, else raise a ``ValueError``."""
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"Invalid value for argument `reduction`. Expected one of {list(_REDUCTIONS)}. "
            f"Received: reduction={reduction!r}"
        )
    return reduction


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Align ranks that differ by exactly one, when the longer one ends in a size-1 axis.

    ``(batch,)`` against ``(batch, 1)`` expands the rank-1 array to ``(batch, 1)`` (with
    ``expand_rank_1``); otherwise the trailing 1 is squeezed. Any other pair is returned as is.

    Example:
        >>> import jax.numpy as jnp
        >>> [a.shape for a in squeeze_or_expand_to_same_rank(jnp.ones(3), jnp.ones((3, 1)))]
        [(3, 1), (3, 1)]
    """
    x1_rank, x2_rank = x1.ndim, x2.ndim
    if x1_rank == x2_rank:
        return x1, x2
    if x1_rank == x2_rank + 1 and x1.shape[-1] == 1:
        if x2_rank == 1 and expand_rank_1:
            x2 = jnp.expand_dims(x2, -1)
        else:
            x1 = jnp.squeeze(x1, -1)
    if x2_rank == x1_rank + 1 and x2.shape[-1] == 1:
        if x1_rank == 1 and expand_rank_1:
            x1 = jnp.expand_dims(x1, -1)
        else:
            x2 = jnp.squeeze(x2, -1)
    return x1, x2


def reduce_values(values, sample_weight=None, reduction="sum_over_batch_size"):
    """Reduce already-weighted per-sample losses (scalars and empty vectors pass through)."""
    if reduction in (None, "none") or values.shape in ((), (0,)):
        return values
    loss = jnp.sum(values)
    if reduction in ("sum_over_batch_size", "mean", "mean_with_sample_weight"):
        if reduction == "mean_with_sample_weight" and sample_weight is not None:
            divisor = jnp.sum(sample_weight).astype(loss.dtype)
        else:
            divisor = jnp.asarray(values.size, loss.dtype)
        loss = _divide_no_nan(loss, divisor)
    return loss


def apply_mask(sample_weight, mask, dtype, reduction):
    """Merge a boolean mask of the per-sample losses into the sample weights, as Keras does:
    for ``"sum_over_batch_size"``/``"mean"`` the kept entries weigh ``total / valid``."""
    if mask is None:
        return sample_weight
    if reduction in ("mean", "sum_over_batch_size"):
        total = jnp.asarray(mask.size, dtype)
        valid = jnp.sum(mask.astype(dtype))
        float_mask = jnp.where(mask.astype(bool), _divide_no_nan(total, valid), jnp.zeros((), dtype))
    else:
        float_mask = mask.astype(dtype)
    if sample_weight is None:
        return float_mask
    float_mask, sample_weight = squeeze_or_expand_to_same_rank(float_mask, sample_weight.astype(dtype))
    return _broadcast_multiply(sample_weight, float_mask, "sample_weight", "mask")


def _broadcast_multiply(values, weights, values_name, weights_name):
    try:
        jnp.broadcast_shapes(values.shape, weights.shape)
    except ValueError:
        raise ValueError(
            f"Cannot apply {weights_name} of shape {tuple(weights.shape)} to {values_name} of "
            f"shape {tuple(values.shape)}: after aligning a trailing size-1 axis the shapes must "
            "broadcast. Give one weight per sample, shape (batch,) or (batch, 1), or one per "
            "loss entry."
        ) from None
    return values * weights


def reduce_weighted_values(values, sample_weight=None, mask=None,
                           reduction="sum_over_batch_size", dtype=None):
    """Keras's ``reduce_weighted_values``: weight the per-sample ``values`` (aligning ranks with
    ``squeeze_or_expand_to_same_rank``), merge ``mask`` (boolean, for masked entries) into
    the weights, then apply ``reduction``.

    Example:
        >>> import jax.numpy as jnp
        >>> float(reduce_weighted_values(jnp.array([1.0, 3.0]), jnp.array([1.0, 0.0]), reduction="sum"))
        1.0
    """
    reduction = standardize_reduction(reduction)
    values = _tensor(values, dtype)
    if sample_weight is not None:
        sample_weight = _tensor(sample_weight, dtype)
    if mask is not None:
        mask = _tensor(mask)
    sample_weight = apply_mask(sample_weight, mask, values.dtype, reduction)
    if sample_weight is not None:
        sample_weight = sample_weight.astype(values.dtype)
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        values = _broadcast_multiply(values, sample_weight, "per-sample losses", "sample_weight")
    return reduce_values(values, sample_weight, reduction)


def _compute_dtype(dtype):
    if dtype is None:
        return "float32"
    if hasattr(dtype, "compute_dtype"):  # a dtype policy object
        return jnp.dtype(dtype.compute_dtype).name
    if isinstance(dtype, str) and dtype.startswith("mixed_"):  # "mixed_bfloat16" -> bfloat16
        return jnp.dtype(dtype[len("mixed_"):]).name
    return jnp.dtype(dtype).name


# -- base classes --------------------------------------------------------------------------

class Loss(Configurable):
    """Base class: implement ``call(y_true, y_pred)`` returning per-sample losses.

    ``__call__(y_true, y_pred, sample_weight=None)`` converts both inputs to ``dtype``
    (dicts of arrays are converted entry by entry), calls ``call``, weights the result and
    reduces it with ``reduction``: ``"sum_over_batch_size"`` (default) and ``"mean"`` divide
    the weighted sum by the number of loss entries, ``"mean_with_sample_weight"`` by the sum
    of the weights, ``"sum"`` sums, and ``"none"`` / ``None`` returns the weighted losses.

    Example:
        >>> import jax.numpy as jnp
        >>> class MeanError(Loss):
        ...     def call(self, y_true, y_pred):
        ...         return jnp.mean(y_pred - y_true, axis=-1)
        >>> loss = MeanError(reduction="sum")
        >>> float(loss(jnp.zeros((2, 3)), jnp.ones((2, 3)), sample_weight=jnp.array([1.0, 2.0])))
        3.0
    """

    _keep_integer_labels = False

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or unique_name(to_snake_case(type(self).__name__))
        self.reduction = standardize_reduction(reduction)
        self._dtype_argument = dtype
        self._dtype = _compute_dtype(dtype)

    @property
    def dtype(self):
        """The dtype the inputs are converted to and the loss is computed in."""
        return self._dtype

    def _convert(self, x, labels=False):
        if isinstance(x, dict):
            return {key: self._convert(value, labels) for key, value in x.items()}
        x = _tensor(x)
        if labels and self._keep_integer_labels and not jnp.issubdtype(x.dtype, jnp.inexact):
            return x
        return x.astype(self._dtype) if x.dtype != jnp.dtype(self._dtype) else x

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_true = self._convert(y_true, labels=True)
        y_pred = self._convert(y_pred)
        losses, mask = self._call_with_mask(y_true, y_pred)
        return reduce_weighted_values(losses, sample_weight=sample_weight, mask=mask,
                                      reduction=self.reduction, dtype=self._dtype)

    def _call_with_mask(self, y_true, y_pred):
        """Per-sample losses and a boolean mask of the valid ones (``None``: all valid)."""
        return self.call(y_true, y_pred), None

    def call(self, y_true, y_pred):
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred).")

    def get_config(self):
        config = {"name": self.name, "reduction": self.reduction}
        if self._dtype_argument is not None:
            config["dtype"] = _dtype_config(self._dtype_argument)
        return config


def _dtype_config(dtype):
    if isinstance(dtype, str):
        return dtype
    if hasattr(dtype, "name") and isinstance(dtype.name, str):  # a policy or a NumPy dtype
        return dtype.name
    return jnp.dtype(dtype).name


class LossFunctionWrapper(Loss):
    """A ``Loss`` around a function ``fn(y_true, y_pred, **kwargs)`` of per-sample losses.

    The ranks of ``y_true`` and ``y_pred`` are aligned first (``(batch,)`` labels against
    ``(batch, 1)`` predictions), as in Keras.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = LossFunctionWrapper(huber, delta=0.5, reduction="none")
        >>> loss(jnp.zeros((2, 1)), jnp.array([[0.5], [2.0]])).tolist()
        [0.125, 0.875]
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def _align(self, y_true, y_pred):
        if isinstance(y_true, dict) and isinstance(y_pred, dict):
            pairs = {key: squeeze_or_expand_to_same_rank(y_true[key], y_pred[key]) for key in y_true}
            return {k: p[0] for k, p in pairs.items()}, {k: p[1] for k, p in pairs.items()}
        if isinstance(y_true, jax.Array) and isinstance(y_pred, jax.Array):
            return squeeze_or_expand_to_same_rank(y_true, y_pred)
        return y_true, y_pred

    def call(self, y_true, y_pred):
        y_true, y_pred = self._align(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def _call_with_mask(self, y_true, y_pred):
        if (self.fn is sparse_categorical_crossentropy and type(self).call is LossFunctionWrapper.call
                and self._fn_kwargs.get("ignore_class") is not None):
            # Keras attaches the "not ignore_class" mask to the losses; the reduction then
            # averages over the valid entries only.
            return _sparse_categorical_crossentropy(*self._align(y_true, y_pred), **self._fn_kwargs)
        return self.call(y_true, y_pred), None

    def get_config(self):
        return {**Loss.get_config(self), "fn": serialize(self.fn), **self._fn_kwargs}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "fn" in config:
            config["fn"] = deserialize(config["fn"])
        return cls(**config)


class _BuiltinLoss(LossFunctionWrapper):
    """The built-in wrappers: their config is ``Loss``'s plus the arguments in ``_config_keys``."""

    _config_keys: tuple = ()

    def get_config(self):
        return {**Loss.get_config(self), **{key: getattr(self, key) for key in self._config_keys}}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# -- functions -----------------------------------------------------------------------------

def mean_squared_error(y_true, y_pred):
    """``mean(square(y_true - y_pred), axis=-1)``.

    Example:
        >>> round(float(mean_squared_error([0.0, 1.0], [1.0, 1.0])), 4)
        0.5
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return jnp.mean(jnp.square(y_true - y_pred), axis=-1)


def mean_absolute_error(y_true, y_pred):
    """``mean(abs(y_true - y_pred), axis=-1)``.

    Example:
        >>> round(float(mean_absolute_error([0.0, 1.0], [1.0, 1.0])), 4)
        0.5
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return jnp.mean(jnp.abs(y_true - y_pred), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    """``100 * mean(abs((y_true - y_pred) / max(abs(y_true), 1e-7)), axis=-1)``.

    Example:
        >>> round(float(mean_absolute_percentage_error([2.0, 4.0], [1.0, 4.0])), 4)
        25.0
    """
    y_true, y_pred = _pair(y_true, y_pred)
    epsilon = jnp.asarray(settings.epsilon(), y_pred.dtype)
    diff = jnp.abs((y_true - y_pred) / jnp.maximum(jnp.abs(y_true), epsilon))
    return 100.0 * jnp.mean(diff, axis=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    """``mean(square(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)), axis=-1)``.

    Example:
        >>> round(float(mean_squared_logarithmic_error([0.0], [1.718281828])), 4)
        1.0
    """
    y_true, y_pred = _pair(y_true, y_pred)
    epsilon = jnp.asarray(settings.epsilon(), y_pred.dtype)
    first_log = jnp.log(jnp.maximum(y_pred, epsilon) + 1.0)
    second_log = jnp.log(jnp.maximum(y_true, epsilon) + 1.0)
    return jnp.mean(jnp.square(first_log - second_log), axis=-1)


def cosine_similarity(y_true, y_pred, axis=-1):
    """``-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis=axis)``: -1 is best.

    Example:
        >>> round(float(cosine_similarity([1.0, 1.0], [2.0, 2.0])), 4)
        -1.0
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return -jnp.sum(_l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis), axis=axis)


def huber(y_true, y_pred, delta=1.0):
    """``0.5 * e^2`` where ``|e| <= delta``, else ``delta * |e| - 0.5 * delta^2``; mean over the
    last axis, with ``e = y_pred - y_true``.

    Example:
        >>> round(float(huber([0.0, 0.0], [0.5, 3.0])), 4)
        1.3125
    """
    y_true, y_pred = _pair(y_true, y_pred)
    delta = jnp.asarray(delta, y_pred.dtype)
    # optax's form 0.5*min(|e|, d)^2 + d*(|e| - min(|e|, d)) is Keras's where() form rearranged.
    return jnp.mean(optax.huber_loss(y_pred, y_true, delta=delta), axis=-1)


def log_cosh(y_true, y_pred):
    """``mean(log(cosh(y_pred - y_true)), axis=-1)``, computed without overflow.

    Example:
        >>> round(float(log_cosh([0.0], [1.0])), 4)
        0.4338
    """
    y_true, y_pred = _pair(y_true, y_pred)
    # optax: logaddexp(e, -e) - log 2; Keras: e + softplus(-2e) - log 2 (the same function).
    return jnp.mean(optax.log_cosh(y_pred, y_true), axis=-1)


def kl_divergence(y_true, y_pred):
    """``sum(y_true * log(y_true / y_pred), axis=-1)``, both clipped to ``[1e-7, 1]``.

    Example:
        >>> round(float(kl_divergence([0.5, 0.5], [0.25, 0.75])), 4)
        0.1438
    """
    y_true, y_pred = _pair(y_true, y_pred, align=False)
    y_true = jnp.clip(y_true, settings.epsilon(), 1.0)
    y_pred = jnp.clip(y_pred, settings.epsilon(), 1.0)
    return jnp.sum(y_true * jnp.log(y_true / y_pred), axis=-1)


def poisson(y_true, y_pred):
    """``mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)``.

    Example:
        >>> round(float(poisson([1.0], [1.0])), 4)
        1.0
    """
    y_true, y_pred = _pair(y_true, y_pred, align=False)
    epsilon = jnp.asarray(settings.epsilon(), y_pred.dtype)
    return jnp.mean(y_pred - y_true * jnp.log(y_pred + epsilon), axis=-1)


def _hinge_labels(y_true):
    # Keras: labels that are all 0 or 1 become -1 / 1; any other labels are kept as given.
    is_binary = jnp.all((y_true == 0) | (y_true == 1))
    return jnp.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true, y_pred):
    """``mean(maximum(1 - y_true * y_pred, 0), axis=-1)``; 0/1 labels become -1/1.

    Example:
        >>> round(float(hinge([0.0, 1.0], [-0.5, 0.5])), 4)
        0.5
    """
    y_true, y_pred = _pair(y_true, y_pred, align=False)
    return jnp.mean(optax.hinge_loss(y_pred, _hinge_labels(y_true)), axis=-1)


def squared_hinge(y_true, y_pred):
    """``mean(square(maximum(1 - y_true * y_pred, 0)), axis=-1)``; 0/1 labels become -1/1.

    Example:
        >>> round(float(squared_hinge([0.0, 1.0], [-0.5, 0.5])), 4)
        0.25
    """
    y_true, y_pred = _pair(y_true, y_pred, align=False)
    return jnp.mean(jnp.square(jnp.maximum(1.0 - _hinge_labels(y_true) * y_pred, 0.0)), axis=-1)


def categorical_hinge(y_true, y_pred):
    """``maximum(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` over the last axis.

    Example:
        >>> round(float(categorical_hinge([0.0, 1.0], [0.3, 0.6])), 4)
        0.7
    """
    y_true, y_pred = _pair(y_true, y_pred, align=False)
    pos = jnp.sum(y_true * y_pred, axis=-1)
    neg = jnp.max((1.0 - y_true) * y_pred, axis=-1)
    return jnp.maximum(neg - pos + 1.0, jnp.zeros((), y_pred.dtype))


def _same_shape(y_true, y_pred, fn_name, hint=""):
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{fn_name}: `y_true` and `y_pred` must have the same shape; got "
            f"y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}.{hint}"
        )


def _elementwise_binary_crossentropy(y_true, y_pred, from_logits):
    if from_logits:
        # optax: -t * log_sigmoid(x) - (1 - t) * log_sigmoid(-x), Keras's logits formula.
        return optax.sigmoid_binary_cross_entropy(y_pred, y_true)
    # Keras clips probabilities to [eps, 1 - eps] (optax has no probability form).
    y_pred = _clip_probabilities(y_pred)
    return -(y_true * jnp.log(y_pred) + (1.0 - y_true) * jnp.log(1.0 - y_pred))


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary cross-entropy, mean over ``axis``; labels smoothed towards 0.5.

    Example:
        >>> round(float(binary_crossentropy([0.0, 1.0], [0.4, 0.6])), 4)
        0.5108
    """
    y_true, y_pred = _pair(y_true, y_pred)
    _same_shape(y_true, y_pred, "binary_crossentropy")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return jnp.mean(_elementwise_binary_crossentropy(y_true, y_pred, from_logits), axis=axis)


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                              from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary cross-entropy scaled by the focal factor ``(1 - p_t) ** gamma``; mean over ``axis``.

    Example:
        >>> round(float(binary_focal_crossentropy([0.0, 1.0], [0.4, 0.6])), 4)
        0.0817
    """
    y_true, y_pred = _pair(y_true, y_pred)
    _same_shape(y_true, y_pred, "binary_focal_crossentropy")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        # As Keras: the sigmoid first, then the clipped-probability cross-entropy.
        y_pred = jax.nn.sigmoid(y_pred)
    bce = _elementwise_binary_crossentropy(y_true, y_pred, from_logits=False)
    p_t = y_true * y_pred + (1 - y_true) * (1 - y_pred)
    focal_bce = jnp.power(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        focal_bce = (y_true * alpha + (1 - y_true) * (1 - alpha)) * focal_bce
    return jnp.mean(focal_bce, axis=axis)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Cross-entropy between one-hot (or soft) labels and class scores along ``axis``.

    Probabilities are renormalized to sum to 1, then clipped to ``[1e-7, 1 - 1e-7]``.

    Example:
        >>> round(float(categorical_crossentropy([0.0, 1.0], [0.5, 0.5])), 4)
        0.6931
    """
    if isinstance(axis, bool):
        raise ValueError(f"`axis` must be of type `int`. Received: axis={axis} of type {type(axis)}")
    y_true, y_pred = _pair(y_true, y_pred, align=False)
    if y_pred.ndim and y_pred.shape[-1] == 1:
        warnings.warn(
            "In loss categorical_crossentropy, expected y_pred.shape to be (batch_size, "
            f"num_classes) with num_classes > 1. Received: y_pred.shape={y_pred.shape}. "
            "Consider using 'binary_crossentropy' if you only have 2 classes.",
            SyntaxWarning, stacklevel=2,
        )
    _same_shape(y_true, y_pred, "categorical_crossentropy",
                " Integer class labels need sparse_categorical_crossentropy.")
    if y_pred.ndim < 1:
        raise ValueError("categorical_crossentropy: `y_true` and `y_pred` must be at least rank 1.")
    axis = _canonical_axis(axis, y_pred.ndim)
    if label_smoothing:
        # Keras counts the classes along the last axis whatever `axis` is.
        num_classes = jnp.asarray(y_true.shape[-1], y_pred.dtype)
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / num_classes
    if from_logits:
        return optax.softmax_cross_entropy(y_pred, y_true, axis=axis)  # -sum(t * log_softmax(x))
    y_pred = _clip_probabilities(y_pred / jnp.sum(y_pred, axis=axis, keepdims=True))
    return -jnp.sum(y_true * jnp.log(y_pred), axis=axis)


def categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0,
                                   axis=-1):
    """Categorical cross-entropy of each class scaled by ``alpha * (1 - p) ** gamma``, summed
    over ``axis`` (Lin et al., 2018), as Keras computes it.

    Example:
        >>> round(float(categorical_focal_crossentropy([0.0, 1.0], [0.5, 0.5])), 4)
        0.0433
    """
    if isinstance(axis, bool):
        raise ValueError(f"`axis` must be of type `int`. Received: axis={axis} of type {type(axis)}")
    y_true, y_pred = _pair(y_true, y_pred, align=False)
    if y_pred.ndim and y_pred.shape[-1] == 1:
        warnings.warn(
            "In loss categorical_focal_crossentropy, expected y_pred.shape to be (batch_size, "
            f"num_classes) with num_classes > 1. Received: y_pred.shape={y_pred.shape}. "
            "Consider using 'binary_crossentropy' if you only have 2 classes.",
            SyntaxWarning, stacklevel=2,
        )
    _same_shape(y_true, y_pred, "categorical_focal_crossentropy",
                " Integer class labels need one-hot encoding (lm.utils.to_categorical).")
    if label_smoothing:
        num_classes = jnp.asarray(y_true.shape[-1], y_pred.dtype)
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / num_classes
    if from_logits:
        y_pred = jax.nn.softmax(y_pred, axis=axis)
    output = _clip_probabilities(y_pred / jnp.sum(y_pred, axis=axis, keepdims=True))
    cce = -y_true * jnp.log(output)
    return jnp.sum(alpha * jnp.power(1.0 - output, gamma) * cce, axis=axis)


def categorical_generalized_cross_entropy(y_true, y_pred, q):
    """The generalized cross-entropy ``(1 - p ** q) / q`` of the probability ``p`` given to the
    true class (Zhang & Sabuncu, 2018; robust to noisy labels). ``y_true`` holds integer class
    ids (despite the name, as in Keras); ``q`` in ``(0, 1)``: towards 0 it approaches the
    cross-entropy, at 1 the mean absolute error.

    Example:
        >>> round(float(categorical_generalized_cross_entropy([1], [[0.75, 0.25]], q=0.5)[0]), 4)
        1.0
    """
    y_pred = _prediction(y_pred)
    labels = _tensor(y_true).astype(jnp.int32)
    one_hot = jax.nn.one_hot(labels, y_pred.shape[-1], dtype=y_pred.dtype)
    p = jnp.sum(y_pred * one_hot, axis=-1)
    return (1 - jnp.power(p, q)) / q


def dice(y_true, y_pred, axis=None):
    """``1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + 1e-7)`` over ``axis``
    (``None``: every axis, one value for the batch), as Keras computes it.

    Example:
        >>> round(float(dice([[1.0, 0.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]])), 4)
        0.2
    """
    y_pred = _prediction(y_pred)
    y_true = _tensor(y_true, y_pred.dtype)
    intersection = jnp.sum(y_true * y_pred, axis=axis)
    total = jnp.sum(y_true, axis=axis) + jnp.sum(y_pred, axis=axis) + settings.epsilon()
    return 1 - 2.0 * intersection / total


def tversky(y_true, y_pred, alpha=0.5, beta=0.5, axis=None):
    """``1 - TP / (TP + alpha * A + beta * B + 1e-7)`` over ``axis``, with Keras's terms:
    ``A = sum(y_true * (1 - y_pred))`` and ``B = sum(y_pred * (1 - y_true))`` (Keras's
    documentation calls ``alpha`` the weight of false positives; its code, kept here so that
    numbers match, gives ``alpha`` to the missed positives ``A``).

    Example:
        >>> round(float(tversky([[1.0, 0.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]])), 4)
        0.2
    """
    y_pred = _prediction(y_pred)
    y_true = _tensor(y_true, y_pred.dtype)
    intersection = jnp.sum(y_true * y_pred, axis=axis)
    missed = jnp.sum((1 - y_pred) * y_true, axis=axis)
    extra = jnp.sum(y_pred * (1 - y_true), axis=axis)
    return 1 - intersection / (intersection + missed * alpha + extra * beta + settings.epsilon())


def _sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """``(losses, valid)``: the per-entry losses and, with ``ignore_class``, the boolean mask
    of the entries whose label is not ``ignore_class`` (else ``None``)."""
    y_pred = _prediction(y_pred)
    y_true = _tensor(y_true)
    if y_pred.ndim < 1:
        raise ValueError("sparse_categorical_crossentropy: `y_pred` must be at least rank 1; "
                         f"got shape {y_pred.shape}.")
    class_axis = _canonical_axis(axis, y_pred.ndim)
    if y_true.ndim == y_pred.ndim and y_true.shape[class_axis] == 1:
        y_true = jnp.squeeze(y_true, class_axis)
    res_shape = tuple(d for i, d in enumerate(y_pred.shape) if i != class_axis)
    if tuple(y_true.shape) != res_shape:
        raise ValueError(
            "sparse_categorical_crossentropy: `y_true` must hold one integer class id per "
            f"prediction, shape {res_shape} (or with a trailing 1) for y_pred.shape="
            f"{tuple(y_pred.shape)}; got y_true.shape={tuple(y_true.shape)}. One-hot labels "
            "need categorical_crossentropy."
        )
    valid = None
    if ignore_class is not None:
        valid = y_true != ignore_class
        y_true = jnp.where(valid, y_true, jnp.zeros((), y_true.dtype))
        # Keras fills the ignored rows of y_pred with 0; 1 gives the same (discarded) losses
        # without a 0/0 in the probability normalization.
        y_pred = jnp.where(jnp.expand_dims(valid, class_axis), y_pred, jnp.ones((), y_pred.dtype))
    labels = y_true.astype(jnp.int32)  # float labels truncate, as Keras's cast to int32 does
    num_classes = y_pred.shape[class_axis]
    in_range = (labels >= 0) & (labels < num_classes)
    if from_logits:
        # Not optax.softmax_cross_entropy_with_integer_labels: its logsumexp(x) - x[label]
        # loses the digits of small losses (confident, correct predictions); Keras (and this)
        # picks the label's entry of log_softmax(x).
        log_prob = jax.nn.log_softmax(y_pred, axis=class_axis)
    else:
        probs = y_pred / jnp.sum(y_pred, axis=class_axis, keepdims=True)
        log_prob = jnp.log(_clip_probabilities(probs))
    index = jnp.expand_dims(jnp.where(in_range, labels, 0), class_axis)
    res = -jnp.squeeze(jnp.take_along_axis(log_prob, index, axis=class_axis), class_axis)
    # Keras multiplies by one_hot(label), which is all zeros for a label outside [0, classes).
    res = jnp.where(in_range, res, jnp.zeros((), res.dtype))
    if valid is not None:
        res = jnp.where(valid, res, jnp.zeros((), res.dtype))
    return res, valid


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """Cross-entropy between integer class ids ``y_true`` and class scores ``y_pred``.

    Entries labelled ``ignore_class`` get loss 0 (the ``SparseCategoricalCrossentropy`` class
    also leaves them out of the average). A label outside ``[0, num_classes)`` gives 0, as in
    Keras.

    Example:
        >>> probs = [[0.5, 0.5], [0.5, 0.5]]
        >>> [round(float(v), 4) for v in sparse_categorical_crossentropy([1, 0], probs, ignore_class=0)]
        [0.6931, 0.0]
    """
    return _sparse_categorical_crossentropy(y_true, y_pred, from_logits, ignore_class, axis)[0]


# Short names, as Keras's losses.get understands them.
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence
bce = BCE = binary_crossentropy


# -- classes -------------------------------------------------------------------------------

class MeanSquaredError(_BuiltinLoss):
    """Mean of squares of errors: ``mean(square(y_true - y_pred))``.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = MeanSquaredError()
        >>> round(float(loss(jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[1.0, 1.0], [1.0, 0.0]]))), 4)
        0.5
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name=name, reduction=reduction, dtype=dtype)


class MeanAbsoluteError(_BuiltinLoss):
    """Mean of absolute errors: ``mean(abs(y_true - y_pred))``.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = MeanAbsoluteError()
        >>> round(float(loss(jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[1.0, 1.0], [1.0, 0.0]]))), 4)
        0.5
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name=name, reduction=reduction, dtype=dtype)


class MeanAbsolutePercentageError(_BuiltinLoss):
    """``100 * mean(abs((y_true - y_pred) / y_true))`` (``|y_true|`` floored at 1e-7).

    Example:
        >>> import jax.numpy as jnp
        >>> loss = MeanAbsolutePercentageError()
        >>> round(float(loss(jnp.array([[2.0, 4.0]]), jnp.array([[1.0, 4.0]]))), 4)
        25.0
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_percentage_error",
                 dtype=None):
        super().__init__(mean_absolute_percentage_error, name=name, reduction=reduction, dtype=dtype)


class MeanSquaredLogarithmicError(_BuiltinLoss):
    """``mean(square(log(y_true + 1) - log(y_pred + 1)))`` (inputs floored at 1e-7).

    Example:
        >>> import jax.numpy as jnp
        >>> loss = MeanSquaredLogarithmicError()
        >>> round(float(loss(jnp.array([[0.0, 1.0]]), jnp.array([[1.0, 1.0]]))), 4)
        0.2402
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_logarithmic_error",
                 dtype=None):
        super().__init__(mean_squared_logarithmic_error, name=name, reduction=reduction, dtype=dtype)


class CosineSimilarity(_BuiltinLoss):
    """Negative cosine similarity along ``axis``: -1 for parallel vectors, 0 for orthogonal
    ones (or when either is all zeros).

    Example:
        >>> import jax.numpy as jnp
        >>> loss = CosineSimilarity(axis=1)
        >>> round(float(loss(jnp.array([[0.0, 1.0], [1.0, 1.0]]), jnp.array([[1.0, 0.0], [1.0, 1.0]]))), 4)
        -0.5
    """

    _config_keys = ("axis",)

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity", dtype=None):
        super().__init__(cosine_similarity, name=name, reduction=reduction, dtype=dtype, axis=axis)
        self.axis = axis


class Huber(_BuiltinLoss):
    """Huber loss: quadratic for errors up to ``delta``, linear beyond.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = Huber()
        >>> round(float(loss(jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[0.6, 0.4], [0.4, 0.6]]))), 4)
        0.155
    """

    _config_keys = ("delta",)

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None):
        super().__init__(huber, name=name, reduction=reduction, dtype=dtype, delta=delta)
        self.delta = delta


class LogCosh(_BuiltinLoss):
    """``mean(log(cosh(y_pred - y_true)))``: like MSE / 2 for small errors, MAE for large ones.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = LogCosh()
        >>> round(float(loss(jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[1.0, 1.0], [0.0, 0.0]]))), 4)
        0.1084
    """

    def __init__(self, reduction="sum_over_batch_size", name="log_cosh", dtype=None):
        super().__init__(log_cosh, name=name, reduction=reduction, dtype=dtype)


class Hinge(_BuiltinLoss):
    """``maximum(1 - y_true * y_pred, 0)`` for labels -1/1 (0/1 labels are converted).

    Example:
        >>> import jax.numpy as jnp
        >>> loss = Hinge()
        >>> round(float(loss(jnp.array([[0.0, 1.0]]), jnp.array([[-0.5, 0.5]]))), 4)
        0.5
    """

    def __init__(self, reduction="sum_over_batch_size", name="hinge", dtype=None):
        super().__init__(hinge, name=name, reduction=reduction, dtype=dtype)


class SquaredHinge(_BuiltinLoss):
    """``square(maximum(1 - y_true * y_pred, 0))`` for labels -1/1 (0/1 labels are converted).

    Example:
        >>> import jax.numpy as jnp
        >>> loss = SquaredHinge()
        >>> round(float(loss(jnp.array([[0.0, 1.0]]), jnp.array([[-0.5, 0.5]]))), 4)
        0.25
    """

    def __init__(self, reduction="sum_over_batch_size", name="squared_hinge", dtype=None):
        super().__init__(squared_hinge, name=name, reduction=reduction, dtype=dtype)


class CategoricalHinge(_BuiltinLoss):
    """``maximum(neg - pos + 1, 0)`` with ``pos = sum(y_true * y_pred)`` and
    ``neg = max((1 - y_true) * y_pred)``.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = CategoricalHinge()
        >>> round(float(loss(jnp.array([[0.0, 1.0]]), jnp.array([[0.3, 0.6]]))), 4)
        0.7
    """

    def __init__(self, reduction="sum_over_batch_size", name="categorical_hinge", dtype=None):
        super().__init__(categorical_hinge, name=name, reduction=reduction, dtype=dtype)


class KLDivergence(_BuiltinLoss):
    """Kullback-Leibler divergence ``sum(y_true * log(y_true / y_pred))``, inputs clipped to
    ``[1e-7, 1]``.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = KLDivergence()
        >>> round(float(loss(jnp.array([[0.5, 0.5]]), jnp.array([[0.25, 0.75]]))), 4)
        0.1438
    """

    def __init__(self, reduction="sum_over_batch_size", name="kl_divergence", dtype=None):
        super().__init__(kl_divergence, name=name, reduction=reduction, dtype=dtype)


class Poisson(_BuiltinLoss):
    """Poisson loss ``mean(y_pred - y_true * log(y_pred + 1e-7))``.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = Poisson()
        >>> round(float(loss(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 1.0]]))), 4)
        1.0
    """

    def __init__(self, reduction="sum_over_batch_size", name="poisson", dtype=None):
        super().__init__(poisson, name=name, reduction=reduction, dtype=dtype)


class BinaryCrossentropy(_BuiltinLoss):
    """Cross-entropy for 0/1 labels against probabilities (or logits, ``from_logits=True``).

    ``label_smoothing`` moves the labels towards 0.5; the loss is averaged over ``axis``.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = BinaryCrossentropy(from_logits=True)
        >>> round(float(loss(jnp.array([0.0, 1.0, 0.0, 0.0]), jnp.array([-18.6, 0.51, 2.94, -12.8]))), 3)
        0.865
    """

    _config_keys = ("from_logits", "label_smoothing", "axis")

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="binary_crossentropy", dtype=None):
        super().__init__(binary_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


class BinaryFocalCrossentropy(_BuiltinLoss):
    """Binary cross-entropy times the focal factor ``(1 - p_t) ** gamma`` (Lin et al., 2018);
    ``apply_class_balancing`` also weighs class 1 by ``alpha`` and class 0 by ``1 - alpha``.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = BinaryFocalCrossentropy(gamma=2.0, from_logits=True)
        >>> round(float(loss(jnp.array([0.0, 1.0, 0.0, 0.0]), jnp.array([-18.6, 0.51, 2.94, -12.8]))), 3)
        0.691
    """

    _config_keys = ("from_logits", "label_smoothing", "axis", "apply_class_balancing", "alpha", "gamma")

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                 label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_focal_crossentropy", dtype=None):
        super().__init__(binary_focal_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         apply_class_balancing=apply_class_balancing, alpha=alpha, gamma=gamma,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis
        self.apply_class_balancing = apply_class_balancing
        self.alpha = alpha
        self.gamma = gamma


class CategoricalCrossentropy(_BuiltinLoss):
    """Cross-entropy for one-hot labels against class probabilities (or logits).

    ``label_smoothing`` mixes the labels with the uniform distribution over the classes.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = CategoricalCrossentropy()
        >>> y_true = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        >>> round(float(loss(y_true, jnp.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]))), 4)
        1.1769
    """

    _config_keys = ("from_logits", "label_smoothing", "axis")

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy", dtype=None):
        super().__init__(categorical_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


class CategoricalFocalCrossentropy(_BuiltinLoss):
    """Categorical cross-entropy times the focal factor ``alpha * (1 - p) ** gamma`` of each
    class (Lin et al., 2018): confident, correct predictions weigh less. One-hot labels.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = CategoricalFocalCrossentropy()
        >>> y_true = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        >>> round(float(loss(y_true, jnp.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]))), 4)
        0.2332
    """

    _config_keys = ("from_logits", "label_smoothing", "axis", "alpha", "gamma")

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_focal_crossentropy", dtype=None):
        super().__init__(categorical_focal_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         alpha=alpha, gamma=gamma, from_logits=from_logits, label_smoothing=label_smoothing,
                         axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis
        self.alpha = alpha
        self.gamma = gamma


class CategoricalGeneralizedCrossEntropy(_BuiltinLoss):
    """The generalized cross-entropy ``(1 - p ** q) / q`` of the true class's probability, for
    integer labels (see ``categorical_generalized_cross_entropy``); ``q`` in ``(0, 1)``.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = CategoricalGeneralizedCrossEntropy(q=0.5)
        >>> round(float(loss(jnp.array([0, 1]), jnp.array([[0.25, 0.75], [0.25, 0.75]]))), 4)
        0.634
    """

    _config_keys = ("q",)
    _keep_integer_labels = True

    def __init__(self, q=0.5, reduction="sum_over_batch_size", name="categorical_generalized_cross_entropy",
                 dtype=None):
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q < 1:
            raise ValueError(f"CategoricalGeneralizedCrossEntropy: `q` must be in the interval (0, 1); got q={q!r}.")
        super().__init__(categorical_generalized_cross_entropy, name=name, reduction=reduction, dtype=dtype, q=q)
        self.q = q


class Dice(_BuiltinLoss):
    """The Dice loss ``1 - 2 |y_true * y_pred| / (|y_true| + |y_pred|)`` (segmentation); with
    ``axis=None`` one value for the whole batch, as in Keras.

    Example:
        >>> import jax.numpy as jnp
        >>> round(float(Dice()(jnp.array([[1.0, 0.0], [1.0, 1.0]]), jnp.array([[1.0, 0.0], [0.0, 1.0]]))), 4)
        0.2
    """

    _config_keys = ("axis",)

    def __init__(self, reduction="sum_over_batch_size", name="dice", axis=None, dtype=None):
        super().__init__(dice, name=name, reduction=reduction, dtype=dtype, axis=axis)
        self.axis = axis


class Tversky(_BuiltinLoss):
    """The Tversky loss (a Dice loss with separate weights ``alpha`` / ``beta`` for the two
    kinds of error; see ``tversky`` for which is which); ``alpha = beta = 0.5`` is ``Dice``.

    Example:
        >>> import jax.numpy as jnp
        >>> round(float(Tversky()(jnp.array([[1.0, 0.0], [1.0, 1.0]]), jnp.array([[1.0, 0.0], [0.0, 1.0]]))), 4)
        0.2
    """

    _config_keys = ("alpha", "beta", "axis")

    def __init__(self, alpha=0.5, beta=0.5, reduction="sum_over_batch_size", name="tversky", axis=None, dtype=None):
        super().__init__(tversky, name=name, reduction=reduction, dtype=dtype, alpha=alpha, beta=beta, axis=axis)
        self.alpha = alpha
        self.beta = beta
        self.axis = axis


class SparseCategoricalCrossentropy(_BuiltinLoss):
    """Cross-entropy for integer class ids against class probabilities (or logits).

    Entries labelled ``ignore_class`` contribute nothing and, as in Keras, are left out of
    the ``"sum_over_batch_size"`` average.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = SparseCategoricalCrossentropy()
        >>> round(float(loss(jnp.array([1, 2]), jnp.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]))), 4)
        1.1769
        >>> loss = SparseCategoricalCrossentropy(ignore_class=2)
        >>> round(float(loss(jnp.array([1, 2]), jnp.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]))), 4)
        0.0513
    """

    _config_keys = ("from_logits", "ignore_class", "axis")
    _keep_integer_labels = True

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 axis=-1, name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(sparse_categorical_crossentropy, name=name, reduction=reduction,
                         dtype=dtype, from_logits=from_logits, ignore_class=ignore_class, axis=axis)
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.axis = axis


class CTC(_BuiltinLoss):
    """Connectionist Temporal Classification loss (``ctc``): integer label rows padded with
    ``0`` (the blank) against logits ``(batch, time, classes)``.

    Example:
        >>> import jax.numpy as jnp
        >>> round(float(CTC()(jnp.array([[1, 0]]), jnp.zeros((1, 2, 2)))), 4)
        0.2877
    """

    _keep_integer_labels = True

    def __init__(self, reduction="sum_over_batch_size", name="ctc", dtype=None):
        super().__init__(ctc, name=name, reduction=reduction, dtype=dtype)


class Circle(_BuiltinLoss):
    """Circle loss (``circle``) of integer labels and L2-normalised embeddings (e.g. a
    ``Dense`` without activation followed by ``UnitNormalization``). Samples whose loss is 0
    (no positive or no negative pair in the batch) are left out of the average, as in Keras.

    Example:
        >>> import jax.numpy as jnp
        >>> e = jnp.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
        >>> round(float(Circle(gamma=2.0)(jnp.array([0, 0, 1]), e)), 4)
        0.915
    """

    _config_keys = ("gamma", "margin", "remove_diagonal")
    _keep_integer_labels = True

    def __init__(self, gamma=80.0, margin=0.4, remove_diagonal=True, reduction="sum_over_batch_size",
                 name="circle", dtype=None):
        super().__init__(circle, name=name, reduction=reduction, dtype=dtype, gamma=gamma, margin=margin,
                         remove_diagonal=remove_diagonal)
        self.gamma = gamma
        self.margin = margin
        self.remove_diagonal = remove_diagonal

    def _call_with_mask(self, y_true, y_pred):
        losses = self.call(y_true, y_pred)
        return losses, losses > 0


# -- lookup and serialization --------------------------------------------------------------

_CLASSES = (
    Loss, LossFunctionWrapper, MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, CosineSimilarity, Huber, LogCosh, Hinge, SquaredHinge,
    CategoricalHinge, KLDivergence, Poisson, BinaryCrossentropy, BinaryFocalCrossentropy,
    CategoricalCrossentropy, CategoricalFocalCrossentropy, SparseCategoricalCrossentropy, Dice, Tversky,
    CategoricalGeneralizedCrossEntropy, CTC, Circle,
)
_FUNCTIONS = (
    mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
    mean_squared_logarithmic_error, cosine_similarity, huber, log_cosh, kl_divergence, poisson,
    hinge, squared_hinge, categorical_hinge, binary_crossentropy, binary_focal_crossentropy,
    categorical_crossentropy, categorical_focal_crossentropy, sparse_categorical_crossentropy, dice, tversky,
    categorical_generalized_cross_entropy, ctc, circle,
)
# The class each built-in function is the per-sample form of (for to_loss_object).
_CLASS_OF = {
    mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
    mean_absolute_percentage_error: MeanAbsolutePercentageError,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError,
    cosine_similarity: CosineSimilarity, huber: Huber, log_cosh: LogCosh,
    kl_divergence: KLDivergence, poisson: Poisson, hinge: Hinge, squared_hinge: SquaredHinge,
    categorical_hinge: CategoricalHinge, binary_crossentropy: BinaryCrossentropy,
    binary_focal_crossentropy: BinaryFocalCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy,
    categorical_focal_crossentropy: CategoricalFocalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    dice: Dice, tversky: Tversky, categorical_generalized_cross_entropy: CategoricalGeneralizedCrossEntropy,
    ctc: CTC, circle: Circle,
}
_ALIASES = {
    **{cls.__name__: cls for cls in _CLASSES},
    **{fn.__name__: fn for fn in _FUNCTIONS},
    "mse": mse, "MSE": mse, "mae": mae, "MAE": mae, "mape": mape, "MAPE": mape,
    "msle": msle, "MSLE": msle, "kld": kld, "KLD": kld, "bce": bce, "BCE": bce,
}
for _cls in _CLASSES:
    register_builtin(_cls)
for _fn in _FUNCTIONS:
    register_builtin(_fn)
register_family("lamina.losses", "loss", _ALIASES, Loss)


def serialize(loss):
    """A config dict for a ``Loss`` object, the name of a function (``"mean_squared_error"``).

    Example:
        >>> serialize(Huber(delta=2.0))["config"]["delta"]
        2.0
        >>> serialize(mse)
        'mean_squared_error'
    """
    return serialize_object(loss)


def deserialize(config, custom_objects=None):
    """A loss object or function from a config dict or a name (see ``get``)."""
    if (isinstance(config, dict) and config.get("class_name") == "function"
            and isinstance(config.get("config"), str)):
        config = config["config"]  # Keras's form for a function: {"class_name": "function", ...}
    return deserialize_object(config, kind="loss", aliases=_ALIASES, custom_objects=custom_objects)


def get(identifier):
    """Resolve a loss as Keras's ``losses.get`` does.

    ``None`` gives ``None``; a function name or alias gives the function (``"mse"`` ->
    ``mean_squared_error``); a class name gives an instance with default arguments; a config
    dict gives the configured object; a class is instantiated; a loss object or function is
    returned as is. Anything else raises a ``ValueError``.

    Example:
        >>> get("sparse_categorical_crossentropy") is sparse_categorical_crossentropy
        True
        >>> get({"class_name": "Huber", "config": {"delta": 2.0}}).delta
        2.0
    """
    if identifier is None:
        return None
    if isinstance(identifier, type):
        return identifier()
    if isinstance(identifier, (str, dict)):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}")


def to_loss_object(identifier):
    """A ``Loss`` instance for any loss identifier (what ``compile(loss=...)`` uses).

    A name or config naming a built-in function gives the matching class with default
    arguments (``"mse"`` -> ``MeanSquaredError()``); any other function is wrapped in a
    ``LossFunctionWrapper``; a ``Loss`` is returned as is; ``None`` stays ``None``.

    Example:
        >>> type(to_loss_object("sparse_categorical_crossentropy")).__name__
        'SparseCategoricalCrossentropy'
        >>> to_loss_object(lambda y_true, y_pred: abs(y_true - y_pred)).name
        'loss_function_wrapper...'
    """
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    obj = get(identifier)
    if isinstance(obj, Loss):
        return obj
    builtin_class = next((cls for fn, cls in _CLASS_OF.items() if fn is obj), None)
    if isinstance(identifier, (str, dict)) and builtin_class is not None:
        return builtin_class()
    if callable(obj):
        name = getattr(obj, "__name__", None)
        return LossFunctionWrapper(obj, name=name if name and name.isidentifier() else None)
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}")


__all__ = [
    "BinaryCrossentropy", "BinaryFocalCrossentropy", "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy", "CategoricalGeneralizedCrossEntropy", "CategoricalHinge", "CTC", "Circle",
    "CosineSimilarity", "Dice", "Hinge", "Huber", "KLDivergence", "LogCosh", "Loss",
    "LossFunctionWrapper", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredError", "MeanSquaredLogarithmicError", "Poisson",
    "SparseCategoricalCrossentropy", "SquaredHinge", "Tversky", "binary_crossentropy",
    "binary_focal_crossentropy", "categorical_crossentropy", "categorical_focal_crossentropy",
    "categorical_generalized_cross_entropy", "categorical_hinge", "circle",
    "cosine_similarity", "ctc", "deserialize", "dice", "get", "hinge", "huber", "kl_divergence", "kld",
    "log_cosh", "mae", "mape", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_error", "mean_squared_logarithmic_error", "mse", "msle", "poisson",
    "serialize", "sparse_categorical_crossentropy", "squared_hinge", "to_loss_object", "tversky",
]
