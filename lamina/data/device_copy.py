"""Where in-memory data live while ``fit`` / ``evaluate`` / ``predict`` run: a device copy
reused across calls, or batches streamed from the host.

The rules (also in docs/guide.md, "Data on the device"):

- **JAX arrays** are already on the device: they are used as they are, never copied.
- **NumPy arrays** (and objects NumPy converts, after the 64-bit narrowing) are copied to the
  default device only when their bytes fit in the *device budget*: a fraction (default 0.5) of
  the device's free memory, ``bytes_limit - bytes_in_use`` from ``memory_stats()``, or, where
  the device reports none (the CPU backend), the host's available memory (``MemAvailable``),
  since on CPU the copy is a second copy in RAM. ``lm.data.set_device_budget(fraction)`` or the
  environment variable ``LAMINA_DATA_DEVICE_BUDGET`` sets the fraction; 0 never copies.
- **The copy is reused** by later calls given the same arrays (``fit`` called again, its
  validation data, ``evaluate`` / ``predict`` after ``fit``). A copy is found by the identity
  of the user's array (for a NumPy view: its base array, offset, shape and strides, so that
  ``x[:n]`` and ``validation_split`` slices are found too) and checked against an XXH3-64 hash
  of the whole content, recomputed at every call, plus shape and dtype: an array changed in
  place since the copy was made is copied again, never served stale. Hashing costs about 1/15
  of a copy on CPU (3 ms against 47 ms for 51 MB). A call reads the data once, when its first
  batch is drawn: changes made during a call are seen from the next call.
- **The cache never keeps user data alive**: entries hold weak references to the user's arrays
  and die with them (with their device copies); a "copy" that is the user's own buffer (the CPU
  backend's ``device_put`` does not copy 64-byte-aligned arrays) is not cached, since it costs
  nothing to make again and would keep the array alive; at most ``MAX_ENTRIES`` arrays are kept, least
  recently used first out, and when new data do not fit in the budget the copies of other data
  are dropped before the data are streamed. ``lm.data.clear_device_cache()`` drops them all.
- **Above the budget** the data stay on the host: each item is gathered there with NumPy (a
  slice for unshuffled data, a ``take`` of the permutation's rows otherwise) and sent with
  ``jax.device_put`` one item ahead of use, so the transfer overlaps the previous step. The
  batches, their order and the shuffling are exactly those of the on-device path.
"""

from __future__ import annotations

import collections
import functools
import math
import os
import threading
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import xxhash

from lamina.distribution.data import distribute

__all__ = ["clear_device_cache", "device_budget", "set_device_budget"]

BUDGET_ENV = "LAMINA_DATA_DEVICE_BUDGET"
DEFAULT_BUDGET = 0.5
MAX_ENTRIES = 64

_budget: float | None = None  # set_device_budget's value; None: the environment or the default


def _check_fraction(value, where: str) -> float:
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        fraction = float("nan")
    if isinstance(value, bool) or not 0.0 <= fraction <= 1.0:
        raise ValueError(f"{where} must be a fraction of the free device memory between 0 and 1; got {value!r}.")
    return fraction


def set_device_budget(fraction: float | None) -> None:
    """Keep in-memory data on the device only when they fit in ``fraction`` of its free memory.

    Data above the budget are streamed from the host batch by batch (same batches, same
    order). ``0`` always streams; ``None`` goes back to ``LAMINA_DATA_DEVICE_BUDGET`` or the
    default, 0.5. Copies kept from earlier calls stay until their arrays die or
    ``clear_device_cache()`` drops them. See ``lamina/data/device_copy.py`` for what is copied and when.

    Example:
        >>> import lamina as lm
        >>> lm.data.set_device_budget(0.25)
        >>> lm.data.device_budget()
        0.25
        >>> lm.data.set_device_budget(None)
    """
    global _budget
    _budget = None if fraction is None else _check_fraction(fraction, "set_device_budget(fraction)")


def device_budget() -> float:
    """The fraction of free device memory that in-memory data may take (see ``set_device_budget``).

    Example:
        >>> import lamina as lm
        >>> 0.0 <= lm.data.device_budget() <= 1.0
        True
    """
    if _budget is not None:
        return _budget
    env = os.environ.get(BUDGET_ENV)
    if env is None or not env.strip():
        return DEFAULT_BUDGET
    return _check_fraction(env.strip(), f"The environment variable {BUDGET_ENV}")


def free_device_bytes(device=None) -> int:
    """Free memory of ``device`` (default: the default device); the host's available memory
    where the device reports no statistics (the CPU backend)."""
    device = device or jax.devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - backends without statistics raise or return None
        stats = None
    if stats and "bytes_limit" in stats:
        return max(0, int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)))
    return _host_available_bytes()


def _host_available_bytes() -> int:
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return 0


def _fits(nbytes: int) -> bool:
    fraction = device_budget()
    return fraction > 0 and nbytes <= fraction * free_device_bytes()


def fingerprint(host: np.ndarray) -> tuple:
    """Shape, dtype and an XXH3-64 hash of the whole content of a NumPy array."""
    data = host if host.flags.c_contiguous else np.ascontiguousarray(host)
    digest = xxhash.xxh3_64(memoryview(data).cast("B")).intdigest() if data.size else 0
    return host.shape, host.dtype.str, digest


def _identity(arr):
    """``(owner, key)``: the object whose life the cache entry follows, and what names the
    array's memory in it. A NumPy view is named by its base array plus offset, shape and
    strides, so slicing the same array again (``x[:n]``, ``validation_split``) finds the copy."""
    owner = arr
    while isinstance(owner, np.ndarray) and isinstance(owner.base, np.ndarray):
        owner = owner.base
    if owner is arr or not isinstance(arr, np.ndarray):
        return arr, (id(arr),)
    offset = arr.__array_interface__["data"][0] - owner.__array_interface__["data"][0]
    return owner, (id(owner), offset, arr.shape, arr.strides, arr.dtype.str)


class _Entry:
    __slots__ = ("ref", "fingerprint", "value")

    def __init__(self, ref, fingerprint, value):
        self.ref, self.fingerprint, self.value = ref, fingerprint, value


class DeviceCopyCache:
    """Device copies of host arrays, found by the identity of the user's array and checked by
    a hash of its content; weakly keyed and bounded (see the module docstring).

    Example:
        >>> import jax, numpy as np
        >>> cache = DeviceCopyCache()
        >>> x = np.arange(6.0, dtype=np.float32)
        >>> first = cache.lookup(x, x)
        >>> first is None
        True
        >>> copy = cache.store(x, x, jax.device_put(x, may_alias=False))
        >>> cache.lookup(x, x) is copy
        True
        >>> x[0] = 7.0                        # changed in place: the copy is stale
        >>> cache.lookup(x, x) is None
        True
        >>> del x; len(cache)                 # dies with the user's array
        0
    """

    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self._entries: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _drop_dead(self, key):
        def drop(ref):
            # A weakref callback may run in any thread, in the middle of anything: no lock,
            # and only the entry this reference belongs to is removed.
            entry = self._entries.get(key)
            if entry is not None and entry.ref is ref:
                self._entries.pop(key, None)

        return drop

    def lookup(self, source, host: np.ndarray):
        """The device copy of ``host`` (the standardized form of the user's ``source``) made
        earlier, if ``source`` is the same array with the same content; else None."""
        owner, key = _identity(source)
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry.ref() is not owner:
            return None
        if fingerprint(host) != entry.fingerprint:
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]  # stale: its device memory goes now
            return None
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
        return entry.value

    def store(self, source, host: np.ndarray, value):
        """Remember ``value`` as the device copy of ``host`` made from ``source``; returns it."""
        owner, key = _identity(source)
        try:
            ref = weakref.ref(owner, self._drop_dead(key))
        except TypeError:  # an object without weak references: not cached
            return value
        entry = _Entry(ref, fingerprint(host), value)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def drop_except(self, keep: list) -> None:
        """Drop every copy except the arrays in ``keep`` (to make room for new data)."""
        kept = {id(value) for value in keep}
        with self._lock:
            for key in [k for k, e in self._entries.items() if id(e.value) not in kept]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_CACHE = DeviceCopyCache()


def clear_device_cache() -> None:
    """Drop every device copy of in-memory data kept for later ``fit`` / ``evaluate`` calls.

    Copies also go by themselves when the user's arrays are garbage-collected.

    Example:
        >>> import lamina as lm
        >>> lm.data.clear_device_cache()
    """
    _CACHE.clear()


def put(leaves: list, stacked: bool | None = None) -> list:
    """The one place in-memory data go to the device (whole arrays or streamed items).

    A batch (``stacked`` given: whether it is a ``(steps, batch, ...)`` block) is split over
    the devices under a distribution (``lamina/distribution/data.py``)."""
    if stacked is None:
        return jax.device_put(leaves)
    return distribute(leaves, stacked)


def place(sources: list, leaves: list, *, copy_missing: bool = True) -> list:
    """Each leaf where it will be gathered from: a device array (JAX input, a cached copy, or a
    new copy when ``copy_missing`` and the new copies fit in the budget together) or the NumPy
    array itself (streamed). ``sources[i]`` is the user's object ``leaves[i]`` came from."""
    placed = list(leaves)
    missing: dict[int, list[int]] = {}  # id(host leaf) -> positions; a shared leaf counts once
    for i, (source, leaf) in enumerate(zip(sources, leaves)):
        if isinstance(leaf, jax.Array):
            continue
        if id(leaf) in missing:
            missing[id(leaf)].append(i)
            continue
        hit = _CACHE.lookup(source, leaf)
        if hit is None:
            missing[id(leaf)] = [i]
        else:
            placed[i] = hit
    if not missing or not copy_missing:
        return placed
    need = sum(leaves[positions[0]].nbytes for positions in missing.values())
    if not _fits(need):
        _CACHE.drop_except([p for p in placed if isinstance(p, jax.Array)])
        if not _fits(need):
            return placed
    firsts = [positions[0] for positions in missing.values()]
    copies = put([leaves[i] for i in firsts])
    for first, copy in zip(firsts, copies):
        if not _aliases(copy, leaves[first]):
            _CACHE.store(sources[first], leaves[first], copy)
        for i in missing[id(leaves[first])]:
            placed[i] = copy
    return placed


def _aliases(device_array, host: np.ndarray) -> bool:
    """True when ``device_put`` used the NumPy buffer itself instead of copying it (the CPU
    backend does so for 64-byte-aligned arrays). Such a "copy" costs nothing to make again and
    holds the user's array alive, so it is never cached."""
    try:
        return device_array.unsafe_buffer_pointer() == host.__array_interface__["data"][0]
    except Exception:  # noqa: BLE001 - backends without raw pointers never alias host memory
        return False


@functools.partial(jax.jit, static_argnames=("shape",))
def _gather(leaves, order, start, shape):
    """Rows ``order[start : start + prod(shape)]`` of every leaf, the index shaped ``shape``;
    positions past the end of ``order`` repeat its last row (a padded last batch)."""
    positions = start + jnp.arange(math.prod(shape), dtype=order.dtype)
    idx = jnp.take(order, positions, mode="clip").reshape(shape)
    return [jnp.take(leaf, idx, axis=0, mode="clip", unique_indices=True) for leaf in leaves]


def host_rows(leaf: np.ndarray, order: np.ndarray | None, start: int, shape: tuple) -> np.ndarray:
    """Rows ``order[start : start + prod(shape)]`` of a NumPy leaf (``order`` None: the rows in
    their own order, a view when no padding is needed), the last row repeated past the end,
    shaped ``shape + leaf.shape[1:]``: what ``_gather`` gives, gathered on the host."""
    count = math.prod(shape)
    if order is None:
        rows = leaf[start : start + count]
    else:
        rows = np.take(leaf, order[start : start + count], axis=0)
    missing = count - rows.shape[0]
    if missing:
        last = leaf[-1:] if order is None else leaf[order[-1:]]
        rows = np.concatenate([rows, np.repeat(last, missing, axis=0)])
    return rows if len(shape) == 1 else rows.reshape(shape + leaf.shape[1:])
