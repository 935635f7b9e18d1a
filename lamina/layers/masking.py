"""Where masks live between layers.

JAX arrays cannot carry attributes and are not hashable, so a layer's output mask
(``compute_mask``) is kept in a registry keyed by the output array's identity, and the next
layer that accepts ``mask`` looks its input up there. The registry holds only a weak reference
to each array: an entry lives exactly as long as its array (no cap, so an early output keeps
its mask however many calls follow), and it never keeps an array or a tracer alive. The mask
itself is held strongly, since usually nothing else holds it.
"""

from __future__ import annotations

import weakref

# id(array) -> (weak reference to the array, mask). The weak reference's callback removes the
# entry when the array dies, before its id can be reused by another object.
_masks: dict[int, tuple[weakref.ref, object]] = {}
# Stored instead of a mask that is its array itself: holding it would keep the array alive.
_ITSELF = object()


def _forget(ref: weakref.ref, key: int) -> None:
    entry = _masks.get(key)
    if entry is not None and entry[0] is ref:
        del _masks[key]


def set_mask(array, mask) -> None:
    """Record ``mask`` as the mask of ``array`` (``None`` forgets it).

    Example:
        >>> import jax.numpy as jnp
        >>> x = jnp.array([[1, 0]])
        >>> set_mask(x, x != 0)
        >>> get_mask(x).tolist()
        [[True, False]]
        >>> set_mask(x, None); get_mask(x) is None
        True
    """
    key = id(array)
    if mask is None:
        _masks.pop(key, None)
        return
    if mask is array:
        mask = _ITSELF
    entry = _masks.get(key)
    if entry is not None and entry[0]() is array:
        _masks[key] = (entry[0], mask)
        return
    ref = weakref.ref(array, lambda r, key=key: _forget(r, key))
    _masks[key] = (ref, mask)


def get_mask(array):
    """The mask recorded for ``array``, or ``None``."""
    if not _masks:
        return None
    entry = _masks.get(id(array))
    if entry is None or entry[0]() is not array:
        return None
    return array if entry[1] is _ITSELF else entry[1]

