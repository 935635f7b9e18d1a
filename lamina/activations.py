"""Activation functions (``lm.activations``): Keras 3 names and defaults, computed by ``jax.nn``.

Each function takes an array-like (NumPy array, list, ``lm.Variable``, ...), converts it with
``jnp.asarray`` as Keras converts its inputs, and returns a ``jax.Array``; ``linear`` returns
its input unchanged, as in Keras.

Example:
    >>> import jax.numpy as jnp
    >>> relu(jnp.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    >>> get("swish") is silu
    True
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import object_family, serialize_object


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """``max(x, 0)``; ``negative_slope`` below ``threshold``, values capped at ``max_value``.

    Example:
        >>> relu([-10.0, -5.0, 0.0, 5.0, 10.0], max_value=5.0).tolist()
        [0.0, 0.0, 0.0, 5.0, 5.0]
    """
    x = jnp.asarray(x)
    if negative_slope != 0.0 and max_value is None and threshold == 0.0:
        return jax.nn.leaky_relu(jnp.asarray(x), negative_slope)
    # Same order of operations as Keras's ReLU, so results match it bit for bit.
    y = jnp.where(x > threshold, x, jnp.zeros((), x.dtype)) if threshold != 0.0 else jax.nn.relu(x)
    if max_value is not None:
        y = jnp.clip(y, 0, max_value).astype(y.dtype)
    if negative_slope != 0.0:
        y = y - negative_slope * jax.nn.relu(threshold - x)
    return y


def relu6(x):
    """``min(max(x, 0), 6)``.

    Example:
        >>> relu6([-1.0, 7.0]).tolist()
        [0.0, 6.0]
    """
    return jax.nn.relu6(jnp.asarray(x))


def leaky_relu(x, negative_slope=0.2):
    """``x`` for ``x >= 0``, ``negative_slope * x`` otherwise.

    Example:
        >>> leaky_relu([-1.0, 2.0], negative_slope=0.5).tolist()
        [-0.5, 2.0]
    """
    return jax.nn.leaky_relu(jnp.asarray(x), negative_slope)


def elu(x, alpha=1.0):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    Example:
        >>> elu([0.0, 1.0]).tolist()
        [0.0, 1.0]
    """
    return jax.nn.elu(jnp.asarray(x), alpha)


def selu(x):
    """Scaled ELU with the self-normalizing constants (pair it with ``lecun_normal``).

    Example:
        >>> selu([0.0]).tolist()
        [0.0]
    """
    return jax.nn.selu(jnp.asarray(x))


def gelu(x, approximate=False):
    """Gaussian error linear unit; exact (erf) by default, as in Keras (``jax.nn.gelu`` is not).

    Example:
        >>> gelu([0.0]).tolist()
        [0.0]
    """
    return jax.nn.gelu(jnp.asarray(x), approximate=approximate)


def sigmoid(x):
    """``1 / (1 + exp(-x))``.

    Example:
        >>> sigmoid([0.0]).tolist()
        [0.5]
    """
    return jax.nn.sigmoid(jnp.asarray(x))


def hard_sigmoid(x):
    """Piecewise-linear sigmoid: ``relu6(x + 3) / 6``.

    Example:
        >>> hard_sigmoid([-4.0, 0.0, 4.0]).tolist()
        [0.0, 0.5, 1.0]
    """
    return jax.nn.hard_sigmoid(jnp.asarray(x))


def hard_silu(x):
    """``x * hard_sigmoid(x)`` (also ``hard_swish``).

    Example:
        >>> hard_silu([-4.0, 4.0]).tolist()
        [-0.0, 4.0]
    """
    return jax.nn.hard_silu(jnp.asarray(x))


hard_swish = hard_silu


def silu(x):
    """``x * sigmoid(x)`` (also ``swish``).

    Example:
        >>> silu([0.0]).tolist()
        [0.0]
    """
    return jax.nn.silu(jnp.asarray(x))


swish = silu


def tanh(x):
    """Hyperbolic tangent.

    Example:
        >>> tanh([0.0]).tolist()
        [0.0]
    """
    return jnp.tanh(jnp.asarray(x))


def softplus(x):
    """``log(exp(x) + 1)``, computed stably.

    Example:
        >>> round(float(softplus([0.0])[0]), 4)
        0.6931
    """
    return jax.nn.softplus(jnp.asarray(x))


def softsign(x):
    """``x / (abs(x) + 1)``.

    Example:
        >>> softsign([1.0]).tolist()
        [0.5]
    """
    return jax.nn.soft_sign(jnp.asarray(x))


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis``.

    Example:
        >>> softmax([0.0, 0.0]).tolist()
        [0.5, 0.5]
    """
    return _in_float32(jax.nn.softmax, x, axis)


def log_softmax(x, axis=-1):
    """``log(softmax(x))`` along ``axis``, computed stably.

    Example:
        >>> round(float(log_softmax([0.0, 0.0])[0]), 4)
        -0.6931
    """
    return _in_float32(jax.nn.log_softmax, x, axis)


def _in_float32(fn, x, axis):
    """``fn(x, axis)`` computed in float32 for half-precision ``x`` (a bfloat16 sum of
    exponentials is off by up to 1%), answered in ``x``'s dtype, as mixed precision wants."""
    x = jnp.asarray(x)
    if x.dtype in (jnp.bfloat16, jnp.float16):
        return fn(x.astype(jnp.float32), axis=axis).astype(x.dtype)
    return fn(x, axis=axis)


def exponential(x):
    """``exp(x)``.

    Example:
        >>> exponential([0.0]).tolist()
        [1.0]
    """
    return jnp.exp(jnp.asarray(x))


def linear(x):
    """The identity: returns ``x`` itself, unconverted (the default "no activation").

    Example:
        >>> linear(3.0)
        3.0
    """
    return x


def mish(x):
    """``x * tanh(softplus(x))``.

    Example:
        >>> mish([0.0]).tolist()
        [0.0]
    """
    return jax.nn.mish(jnp.asarray(x))


def log_sigmoid(x):
    """``log(sigmoid(x))``, computed stably.

    Example:
        >>> round(float(log_sigmoid([0.0])[0]), 4)
        -0.6931
    """
    return jax.nn.log_sigmoid(jnp.asarray(x))


def celu(x, alpha=1.0):
    """``max(x, 0) + min(alpha * (exp(x / alpha) - 1), 0)``.

    Example:
        >>> celu([1.0, 0.0]).tolist()
        [1.0, 0.0]
    """
    return jax.nn.celu(jnp.asarray(x), alpha=alpha)


def glu(x, axis=-1):
    """Gated linear unit: ``a * sigmoid(b)`` for the two halves ``a, b`` of ``x`` along ``axis``.

    Example:
        >>> glu([2.0, 0.0]).tolist()
        [1.0]
    """
    return jax.nn.glu(jnp.asarray(x), axis=axis)


def hard_tanh(x):
    """``clip(x, -1, 1)``.

    Example:
        >>> hard_tanh([-2.0, 0.5, 3.0]).tolist()
        [-1.0, 0.5, 1.0]
    """
    return jax.nn.hard_tanh(jnp.asarray(x))


def hard_shrink(x, threshold=0.5):
    """``x`` where ``abs(x) > threshold``, else 0.

    Example:
        >>> hard_shrink([-1.0, 0.25, 0.75]).tolist()
        [-1.0, 0.0, 0.75]
    """
    x = jnp.asarray(x)
    return jnp.where(jnp.abs(x) > threshold, x, 0.0)


def soft_shrink(x, threshold=0.5):
    """``x - threshold`` above ``threshold``, ``x + threshold`` below ``-threshold``, else 0.

    Example:
        >>> soft_shrink([-1.0, 0.2, 1.5]).tolist()
        [-0.5, 0.0, 1.0]
    """
    x = jnp.asarray(x)
    return jnp.where(x > threshold, x - threshold, jnp.where(x < -threshold, x + threshold, 0.0))


def tanh_shrink(x):
    """``x - tanh(x)``.

    Example:
        >>> tanh_shrink([0.0]).tolist()
        [0.0]
    """
    x = jnp.asarray(x)
    return x - jnp.tanh(x)


def threshold(x, threshold, default_value):
    """``x`` where ``x > threshold``, else ``default_value`` (no defaults, as in Keras).

    Example:
        >>> threshold([0.5, 2.0], 1.0, -1.0).tolist()
        [-1.0, 2.0]
    """
    x = jnp.asarray(x)
    return jnp.where(x > threshold, x, default_value)


def sparse_plus(x):
    """0 below -1, ``(x + 1)**2 / 4`` on ``[-1, 1]``, ``x`` above 1 (a smooth ReLU).

    Example:
        >>> sparse_plus([-2.0, 0.0, 2.0]).tolist()
        [0.0, 0.25, 2.0]
    """
    return jax.nn.sparse_plus(jnp.asarray(x))


def sparse_sigmoid(x):
    """0 below -1, ``(x + 1) / 2`` on ``[-1, 1]``, 1 above 1.

    Example:
        >>> sparse_sigmoid([-2.0, 0.0, 2.0]).tolist()
        [0.0, 0.5, 1.0]
    """
    return jax.nn.sparse_sigmoid(jnp.asarray(x))


def squareplus(x, b=4):
    """``(x + sqrt(x**2 + b)) / 2``.

    Example:
        >>> squareplus([0.0]).tolist()
        [1.0]
    """
    return jax.nn.squareplus(jnp.asarray(x), b=b)


def sparsemax(x, axis=-1):
    """The Euclidean projection of ``x`` onto the probability simplex along ``axis``: like
    softmax, but exact zeros for low scores.

    Example:
        >>> sparsemax([2.0, 0.0, -1.0]).tolist()
        [1.0, 0.0, 0.0]
    """
    logits = jnp.asarray(x)
    ordered = -jnp.sort(-logits, axis=axis)
    cumulative = jnp.cumsum(ordered, axis=axis)
    rank_shape = [1] * logits.ndim
    rank_shape[axis] = -1
    rank = jnp.arange(1, logits.shape[axis] + 1).reshape(rank_shape)
    support = ordered - (cumulative - 1) / rank > 0
    size = jnp.sum(support, axis=axis, keepdims=True)
    tau = (jnp.sum(jnp.where(support, cumulative, 0.0), axis=axis, keepdims=True) - 1) / size
    return jnp.maximum(logits - tau, 0.0)


_FUNCTIONS = (relu, relu6, leaky_relu, elu, selu, gelu, sigmoid, hard_sigmoid, hard_silu, silu,
              tanh, softplus, softsign, softmax, log_softmax, exponential, linear, mish,
              log_sigmoid, celu, glu, hard_tanh, hard_shrink, soft_shrink, tanh_shrink, threshold,
              sparse_plus, sparse_sigmoid, squareplus, sparsemax)
_ALIASES = {fn.__name__: fn for fn in _FUNCTIONS}
_ALIASES.update(swish=silu, hard_swish=hard_silu)
for _fn in _FUNCTIONS:
    register_builtin(_fn)


def serialize(activation):
    """The name of a built-in activation (``"relu"``); a config dict for an object."""
    if any(activation is fn for fn in _FUNCTIONS):
        return activation.__name__
    return serialize_object(activation)


_, deserialize, get = object_family("activation", _ALIASES, default=linear, module="lamina.activations")


__all__ = [fn.__name__ for fn in _FUNCTIONS] + [
    "deserialize", "get", "hard_swish", "serialize", "swish",
]
