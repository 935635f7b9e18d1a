"""Weight constraints (``lm.constraints``): projections applied to a weight after each update.

A constraint is called on a weight (array or ``lm.Variable``) and returns the projected
array; the caller assigns it back. ``axis`` selects the axes a norm is taken over: for a
``Dense`` kernel ``(in, out)`` the default ``axis=0`` constrains each unit's incoming weights;
for a ``Conv2D`` kernel use ``axis=[0, 1, 2]``.
"""

from __future__ import annotations

import jax.numpy as jnp

from lamina.core import settings
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import Configurable, object_family


def _axis(axis):
    # A list in a JSON config must still work as a NumPy axis argument.
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _norms(w, axis):
    return jnp.sqrt(jnp.sum(jnp.square(w), axis=_axis(axis), keepdims=True))


class Constraint(Configurable):
    """Base class: ``__call__(w)`` returns the projected weight (here, ``w`` unchanged).

    Example:
        >>> import jax.numpy as jnp
        >>> class Clip(Constraint):
        ...     def __call__(self, w):
        ...         return jnp.clip(w, -1.0, 1.0)
        >>> Clip()(jnp.array([-3.0, 0.5])).tolist()
        [-1.0, 0.5]
    """

    def __call__(self, w):
        return w


class MaxNorm(Constraint):
    """Rescales vectors whose norm along ``axis`` exceeds ``max_value`` down to it.

    Example:
        >>> import jax.numpy as jnp
        >>> w = MaxNorm(max_value=1.0)(jnp.array([[3.0], [4.0]]))
        >>> round(float(jnp.linalg.norm(w)), 4)
        1.0
    """

    def __init__(self, max_value=2, axis=0):
        self.max_value = max_value
        self.axis = axis

    def __call__(self, w):
        w = jnp.asarray(w)
        norms = _norms(w, self.axis)
        desired = jnp.clip(norms, 0, self.max_value)
        return w * (desired / (settings.epsilon() + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """Moves norms along ``axis`` into ``[min_value, max_value]``, a fraction ``rate`` per call.

    Example:
        >>> import jax.numpy as jnp
        >>> w = MinMaxNorm(min_value=1.0, max_value=2.0)(jnp.array([[0.3], [0.4]]))
        >>> round(float(jnp.linalg.norm(w)), 4)
        1.0
    """

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = axis

    def __call__(self, w):
        w = jnp.asarray(w)
        norms = _norms(w, self.axis)
        desired = (self.rate * jnp.clip(norms, self.min_value, self.max_value)
                   + (1 - self.rate) * norms)
        return w * (desired / (settings.epsilon() + norms))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


class NonNeg(Constraint):
    """Sets negative weights to zero.

    Example:
        >>> import jax.numpy as jnp
        >>> NonNeg()(jnp.array([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """

    def __call__(self, w):
        return jnp.maximum(jnp.asarray(w), 0)


class UnitNorm(Constraint):
    """Scales vectors along ``axis`` to unit norm.

    Example:
        >>> import jax.numpy as jnp
        >>> w = UnitNorm()(jnp.array([[3.0], [4.0]]))
        >>> round(float(jnp.linalg.norm(w)), 4)
        1.0
    """

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        w = jnp.asarray(w)
        return w / (settings.epsilon() + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


_CLASSES = (Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm)
_ALIASES = {
    **{cls.__name__: cls for cls in _CLASSES},
    "constraint": Constraint, "max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "non_neg": NonNeg,
    "unit_norm": UnitNorm,
}
for _cls in _CLASSES:
    register_builtin(_cls)


serialize, deserialize, get = object_family("constraint", _ALIASES, base=Constraint,
                                          module="lamina.constraints")

# Keras's snake-case aliases (``lm.constraints.max_norm(2.0)``): as in Keras, each alias is the
# class itself, so its instances save under the class's name.
max_norm, min_max_norm, non_neg, unit_norm = MaxNorm, MinMaxNorm, NonNeg, UnitNorm

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "deserialize", "get",
           "max_norm", "min_max_norm", "non_neg", "serialize", "unit_norm"]
