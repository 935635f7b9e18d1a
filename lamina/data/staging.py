"""Large NumPy batches staged in reused host buffers that the device reads in place, the batch
sliced inside the compiled step (``predict`` on the CPU backend).

Streaming a NumPy batch to a compiled step makes JAX copy it into a newly allocated buffer at
every call, in the calling thread. For batches of a megabyte or more that costs a
measurable share of the step (the figures below). Here each batch is instead copied into one
of two reused, 64-byte-aligned host buffers (*slots*) of a few batches each. On the CPU
backend ``jax.device_put`` of an aligned buffer uses it in place, so each slot gets one device
view, made once; the step slices its batch out of the view (``lax.dynamic_slice`` inside the
program).

The rule that keeps this safe: a slot's rows are written only while no dispatched step can
read them. Batch ``i``'s rows are written before batch ``i``'s step is dispatched, and a slot
is refilled (its next chunk of batches) only after every step that read its previous chunk
has finished: the consumer hands each step's outputs back with ``StagedBatch.used_by`` and the
refill waits for them. Where the device would copy the buffer instead of using it in place
(another backend), nothing is staged.

A slot holds a number of batches fixed by the batch's size in bytes, never by the number of
samples, so the step compiles once per batch size whatever the data's length. Batches below
``MIN_BATCH_BYTES`` are not staged: JAX's own transfer is as fast there, and the slice inside
the step costs more than it saves. Measured on this project's 2-core machine with the MLP
784-512-512-10 on 60,000 rows, this scheme against a hand-written loop streaming NumPy slices
(the same programs otherwise; benchmarks/RESULTS.md): batch 128 (401 KB) 0.96x, 256 1.00x,
512 1.04x, 1024 1.09x, 2048 1.04x; in ``predict``, staged against streamed at 256 rows (802
KB) 0.96x against 0.99x, at 512 rows 1.06x against 1.00x.
"""

from __future__ import annotations

import math
import threading

import jax
import numpy as np

MIN_BATCH_BYTES = 1 << 20  # stage batches of at least this many bytes (all leaves together)
CHUNK_BYTES = 16 << 20  # bytes of one slot (all leaves); also the largest batch staged, so
# that the two slots kept between calls hold at most 32 MiB (a batch of 1,024 RGB images of
# 224x224 in float32, 616 MB, streams as before instead of pinning 1.2 GB of buffers)
MAX_BATCHES_PER_CHUNK = 256
_ALIGN = 64  # the CPU backend uses a host buffer in place only when it is 64-byte aligned


def batch_bytes(leaves: list, batch_size: int) -> int:
    return batch_size * sum(leaf.dtype.itemsize * math.prod(leaf.shape[1:]) for leaf in leaves)


def stageable(leaves: list, batch_size: int) -> bool:
    """Whether batches of ``leaves`` (the data's host arrays) are worth staging: numeric NumPy
    arrays whose batch takes from ``MIN_BATCH_BYTES`` (1 MiB) to ``CHUNK_BYTES`` (16 MiB)."""
    return (all(isinstance(leaf, np.ndarray) and leaf.dtype.kind in "biuf" for leaf in leaves)
            and MIN_BATCH_BYTES <= batch_bytes(leaves, batch_size) <= CHUNK_BYTES)


def batches_per_chunk(leaves: list, batch_size: int) -> int:
    """Batches one slot holds: as many as fit in ``CHUNK_BYTES`` (at least one). It depends
    on the rows' shapes and the batch size only, so every data length runs one program."""
    return int(min(MAX_BATCHES_PER_CHUNK, max(1, CHUNK_BYTES // max(1, batch_bytes(leaves, batch_size)))))


class StagedBatch:
    """A batch as ``rows`` rows of ``chunk`` (the data's structure, device arrays) from
    ``start``; the compiled step slices it out. Pass the step's outputs to ``used_by``."""

    __slots__ = ("chunk", "start", "rows", "_slot")

    def __init__(self, chunk, start: int, rows: int, slot):
        self.chunk, self.start, self.rows, self._slot = chunk, start, rows, slot

    def used_by(self, outputs) -> None:
        """Record the step that read this batch: its slot is not refilled before it ends."""
        self._slot.pending.append(outputs)


class _Slot:
    """Host buffers (one per leaf), their device views, and the outputs of the steps that
    read the current chunk."""

    __slots__ = ("buffers", "views", "pending")

    def __init__(self, buffers: list):
        self.buffers = buffers
        self.views = jax.device_put(buffers)
        self.pending = []

    @property
    def in_place(self) -> bool:
        """Whether the device reads the host buffers themselves (the CPU backend)."""
        try:
            return all(view.unsafe_buffer_pointer() == buffer.ctypes.data
                       for view, buffer in zip(self.views, self.buffers))
        except Exception:  # noqa: BLE001 - a backend without raw pointers never shares host memory
            return False

    def wait(self) -> None:
        if self.pending:
            jax.block_until_ready(self.pending)
            self.pending = []


def _aligned_empty(shape: tuple, dtype: np.dtype) -> np.ndarray:
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + _ALIGN, np.uint8)
    offset = -raw.ctypes.data % _ALIGN
    return raw[offset : offset + nbytes].view(dtype).reshape(shape)


class _Pool:
    """The last pass's two slots, kept for the next pass of the same shapes (one entry:
    ``predict`` called again on data of one kind is the case that repeats)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._spare = None  # (signature, [slot, slot])

    def take(self, signature: tuple) -> list[_Slot]:
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is not None and spare[0] == signature:
            return spare[1]
        return [_Slot([_aligned_empty(shape, np.dtype(dtype)) for shape, dtype in signature]) for _ in range(2)]

    def give(self, signature: tuple, slots: list[_Slot]) -> None:
        with self._lock:
            self._spare = (signature, slots)


_POOL = _Pool()


class ChunkStager:
    """Stages the batches of ``leaves`` (NumPy, unshuffled), slot by slot; see the module.

    ``batch(i)`` is batch ``i`` as a ``StagedBatch`` (the last, partial one padded to a whole
    batch with copies of the last sample); batches must be asked for in order, and each
    step's outputs handed to ``used_by`` before the next batch is asked for. ``treedef``
    (optional) gives the chunk the data's structure. ``in_place`` is False where the device
    would not read the buffers in place: do not stage then. ``close()`` at the end of a pass
    waits for the last steps and returns the buffers to the pool; a pass abandoned without it
    drops them (the device views keep them alive while steps still read them).

    Example:
        >>> import numpy as np
        >>> x = np.arange(12.0, dtype=np.float32).reshape(6, 2)
        >>> stager = ChunkStager([x], batch_size=2)
        >>> item = stager.batch(0)
        >>> np.asarray(item.chunk[0][item.start : item.start + item.rows]).tolist()
        [[0.0, 1.0], [2.0, 3.0]]
        >>> stager.close()
    """

    def __init__(self, leaves: list, batch_size: int, treedef=None):
        self._leaves, self._batch = leaves, batch_size
        self.per_chunk = batches_per_chunk(leaves, batch_size)
        rows = self.per_chunk * batch_size
        self._signature = tuple(((rows, *leaf.shape[1:]), leaf.dtype.str) for leaf in leaves)
        self._slots = _POOL.take(self._signature)
        self.in_place = all(slot.in_place for slot in self._slots)
        self._chunks = [slot.views if treedef is None else jax.tree_util.tree_unflatten(treedef, slot.views)
                        for slot in self._slots]

    def batch(self, index: int) -> StagedBatch:
        chunk_index, within = divmod(index, self.per_chunk)
        slot = self._slots[chunk_index % 2]
        if within == 0:
            slot.wait()  # the steps that read this slot's previous chunk have finished
        start, first = within * self._batch, index * self._batch
        for buffer, leaf in zip(slot.buffers, self._leaves):
            rows = leaf[first : first + self._batch]
            filled = rows.shape[0]
            np.copyto(buffer[start : start + filled], rows)
            if filled < self._batch:  # the last, partial batch: padded with the last sample,
                buffer[start + filled : start + self._batch] = leaf[-1]  # rows the caller drops
        return StagedBatch(self._chunks[chunk_index % 2], start, self._batch, slot)

    def close(self) -> None:
        for slot in self._slots:
            slot.wait()
        _POOL.give(self._signature, self._slots)
        self._slots = self._chunks = None
