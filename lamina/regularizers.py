"""Weight regularizers (``lm.regularizers``): penalties added to the loss, as in Keras 3.

A regularizer is called on a weight (array or ``lm.Variable``) and returns a scalar in the
weight's dtype. ``"l1"`` and ``"l2"`` give ``L1()`` and ``L2()`` (factor 0.01); ``"l1_l2"``
gives ``L1L2(l1=0.01, l2=0.01)`` as Keras documents it, while ``L1L2()`` itself defaults to no
penalty at all, as in Keras.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import Configurable, object_family

_EPSILON = 1e-7  # Keras's backend.epsilon(): caps 1 / norm for all-zero rows.


def _factor(value, name):
    valid = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not valid or not math.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative finite float; got {name}={value!r}.")
    return float(value)


class Regularizer(Configurable):
    """Base class: ``__call__(x)`` returns a scalar penalty; ``get_config`` lists the arguments.

    Example:
        >>> import jax.numpy as jnp
        >>> class Sum(Regularizer):
        ...     def __call__(self, x):
        ...         return jnp.sum(x)
        >>> float(Sum()(jnp.ones((2, 2))))
        4.0
    """

    def __call__(self, x):
        return 0.0

    def get_config(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_config().")


class L1L2(Regularizer):
    """``l1 * sum(abs(x)) + l2 * sum(square(x))``.

    Example:
        >>> import jax.numpy as jnp
        >>> float(L1L2(l1=0.5, l2=0.25)(jnp.full((2,), 2.0)))
        4.0
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(0.0 if l1 is None else l1, "l1")
        self.l2 = _factor(0.0 if l2 is None else l2, "l2")

    def __call__(self, x):
        x = jnp.asarray(x)
        penalty = jnp.zeros((), x.dtype)
        if self.l1:
            penalty += jnp.asarray(self.l1, x.dtype) * jnp.sum(jnp.abs(x))
        if self.l2:
            penalty += jnp.asarray(self.l2, x.dtype) * jnp.sum(jnp.square(x))
        return penalty

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """``l1 * sum(abs(x))``.

    Example:
        >>> import jax.numpy as jnp
        >>> float(L1(0.5)(jnp.array([-2.0, 2.0])))
        2.0
    """

    def __init__(self, l1=0.01):
        self.l1 = _factor(0.01 if l1 is None else l1, "l1")

    def __call__(self, x):
        x = jnp.asarray(x)
        return jnp.asarray(self.l1, x.dtype) * jnp.sum(jnp.abs(x))

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(square(x))`` (no factor 1/2, as in Keras).

    Example:
        >>> import jax.numpy as jnp
        >>> float(L2(2.0)(jnp.ones((5, 5))))
        50.0
    """

    def __init__(self, l2=0.01):
        self.l2 = _factor(0.01 if l2 is None else l2, "l2")

    def __call__(self, x):
        x = jnp.asarray(x)
        return jnp.asarray(self.l2, x.dtype) * jnp.sum(jnp.square(x))

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (``mode="rows"``) or columns of a 2-D weight towards orthogonality.

    The penalty is ``factor`` times the mean absolute cosine similarity over distinct pairs
    of rows (or columns).

    Example:
        >>> import jax.numpy as jnp
        >>> float(OrthogonalRegularizer(factor=1.0)(jnp.eye(3)))
        0.0
    """

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = _factor(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ValueError(f"`mode` must be 'rows' or 'columns'; got mode={mode!r}.")
        self.mode = mode

    def __call__(self, x):
        x = jnp.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"OrthogonalRegularizer needs a rank-2 input; got shape={x.shape}.")
        vectors = x if self.mode == "rows" else x.T
        # Keras normalizes with x * min(rsqrt(sum x^2), 1/eps), which keeps zero rows at zero.
        inv_norm = jnp.minimum(jax.lax.rsqrt(jnp.sum(jnp.square(vectors), axis=1, keepdims=True)),
                               1.0 / _EPSILON)
        unit = vectors * inv_norm
        size = unit.shape[0]
        off_diagonal = (unit @ unit.T) * (1.0 - jnp.eye(size, dtype=unit.dtype))
        num_pairs = size * (size - 1.0) / 2.0
        return self.factor * 0.5 * jnp.sum(jnp.abs(off_diagonal)) / num_pairs

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


_CLASSES = (Regularizer, L1, L2, L1L2, OrthogonalRegularizer)
_ALIASES = {
    **{cls.__name__: cls for cls in _CLASSES},
    "l1": L1, "l2": L2, "l1_l2": L1L2, "orthogonal_regularizer": OrthogonalRegularizer,
    "regularizer": Regularizer, "l1l2": L1L2,  # Keras's snake case of the class names
}
for _cls in _CLASSES:
    register_builtin(_cls)


serialize, _deserialize, _get = object_family("regularizer", _ALIASES, base=Regularizer,
                                            module="lamina.regularizers")


def deserialize(config, custom_objects=None):
    """A regularizer from a config dict or a name."""
    if config == "l1_l2":
        # Keras documents "l1_l2" as L1L2(l1=0.01, l2=0.01); L1L2() itself defaults to zeros.
        return L1L2(l1=0.01, l2=0.01)
    return _deserialize(config, custom_objects)


def get(identifier):
    """Resolve a regularizer from None, an object, a name (``"l2"``) or a config dict."""
    return deserialize(identifier) if identifier == "l1_l2" else _get(identifier)


# Keras's lower-case aliases of the classes (``keras.regularizers.l2(1e-4)``): as in Keras, the
# alias is the class itself, so ``l1_l2()`` keeps the class's zero defaults (only the string
# "l1_l2" means 0.01 each).
l1, l2, l1_l2, orthogonal_regularizer = L1, L2, L1L2, OrthogonalRegularizer

__all__ = ["L1", "L1L2", "L2", "OrthogonalRegularizer", "Regularizer", "deserialize", "get", "l1",
           "l1_l2", "l2", "orthogonal_regularizer", "serialize"]
