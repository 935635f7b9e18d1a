"""Where masks live between layers.

JAX arrays cannot carry attributes, so a layer's output mask (``compute_mask``) is kept in a
small registry keyed by the output array's identity, and the next layer that accepts ``mask``
looks its input up there. Entries keep their array alive (so an identity is never reused
while registered) and only the most recent ones are kept, so memory stays bounded.
"""

from __future__ import annotations

from collections import OrderedDict

_LIMIT = 256
_masks: OrderedDict[int, tuple] = OrderedDict()


def set_mask(array, mask) -> None:
    """Record ``mask`` as the mask of ``array`` (``None`` forgets it)."""
    key = id(array)
    if mask is None:
        _masks.pop(key, None)
        return
    _masks[key] = (array, mask)
    _masks.move_to_end(key)
    while len(_masks) > _LIMIT:
        _masks.popitem(last=False)


def get_mask(array):
    """The mask recorded for ``array``, or ``None``."""
    if not _masks:
        return None
    entry = _masks.get(id(array))
    return entry[1] if entry is not None and entry[0] is array else None
