"""``ArrayDataAdapter``: in-memory arrays cut into batches, shuffled, and gathered on the device
from a reused device copy, or on the host and streamed when the data exceed the device budget
(``lamina/data/device_copy.py``)."""

from __future__ import annotations

import math
import warnings

import jax
import numpy as np

from lamina.data import device_copy
from lamina.data.base import _RAN_OUT, DataAdapter, _block_now
from lamina.data.staging import ChunkStager, stageable
from lamina.data.standardize import _arg_labels, _prepare_arrays
from lamina.distribution import current as current_distribution
from lamina.distribution import data as distribution_data


class ArrayDataAdapter(DataAdapter):
    """NumPy / JAX arrays (or dicts, lists, tuples of them), batched in memory.

    Where the batches are gathered is decided when the first one is drawn
    (``lamina/data/device_copy.py``): from a device copy of the data, made once and reused by
    later calls on the same unchanged arrays, when it fits in ``lm.data.device_budget()``;
    otherwise on the host, each item sent to the device one item ahead of use. Both give the
    same batches in the same order.

    ``pad_partial_batch = True`` (set by ``predict``) makes the last, partial batch a full one
    whose extra rows repeat the last sample, so that every batch has one shape and the step
    compiles once; the caller drops the extra rows. ``pad_partial_to`` (rows, at least the
    partial batch's) pads it to that many rows instead of a whole batch.

    ``from_host = True`` (set by ``evaluate`` and ``predict`` before the first epoch) makes no
    new device copy: a single unshuffled pass gains nothing from copying the whole data first,
    and each step's transfer then overlaps the previous step's compute. A copy an earlier call
    made (``fit`` on the same arrays) is still used.

    ``stage_batches = True`` (set by ``predict`` on the CPU backend) gives a single in-order
    pass over NumPy data a short per-batch path: batches of 1 to 16 MiB come as
    ``StagedBatch`` items (``lamina/data/staging.py``), rows of a reused host buffer the device
    reads in place that the compiled step slices its batch out of (the consumer passes each
    step's outputs to ``item.used_by`` before drawing the next item); smaller batches come as
    plain NumPy slices. A partial batch padded to fewer rows than a whole one
    (``pad_partial_to``) comes as an ordinary batch.

    Example:
        >>> import numpy as np
        >>> from lamina.data import ArrayDataAdapter
        >>> adapter = ArrayDataAdapter(np.arange(10.0), batch_size=4, shuffle=False)
        >>> [data[0].tolist() for _, data in adapter.epoch(0)]
        [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0]]
    """

    pad_partial_batch = False
    pad_partial_to: int | None = None
    from_host = False
    stage_batches = False

    def __init__(
        self,
        x,
        y=None,
        sample_weight=None,
        *,
        batch_size=32,
        steps_per_epoch=None,
        shuffle=True,
        class_weight=None,
        require_y=False,
        name="x",
    ):
        labels = _arg_labels(name)
        origins = {}  # id(converted leaf) -> the user's array it was made from
        data, n = _prepare_arrays(
            x,
            y,
            sample_weight,
            class_weight=class_weight,
            require_y=require_y,
            labels=labels,
            what=f"The data passed as `{name}`",
            origins=origins,
        )
        if n == 0:
            raise ValueError(f"The data passed as `{name}` is empty (0 samples); expected at least one.")
        if batch_size is None:  # Keras: derived from steps_per_epoch, else 32
            batch_size = math.ceil(n / steps_per_epoch) if steps_per_epoch else 32
        # With several processes batch_size is global: this process reads its share of it.
        batch_size = distribution_data.local_batch_size(batch_size)
        leaves, self._treedef = jax.tree_util.tree_flatten(data)
        self._host_leaves = leaves
        self._sources = [origins.get(id(leaf), leaf) for leaf in leaves]
        self._placed = None  # per leaf: a device array or a NumPy array to stream; on first use
        self._num_samples = n
        self._batch_size = batch_size
        self._shuffle = shuffle
        self._num_full = n // batch_size
        self._partial = n % batch_size
        self._num_batches = self._num_full + (1 if self._partial else 0)
        self._requested_steps = steps_per_epoch
        self._steps_per_epoch = steps_per_epoch or self._num_batches
        self._pos = 0  # batches of the current pass already yielded
        self._order = None  # NumPy permutation of the current pass; None: no pass running
        self._device_order = None  # the same on the device, sent when a device gather needs it
        distribution_data.check_same_in_every_process(
            f"The number of batches of `{name}` (samples, batch size, steps)",
            (n, batch_size, self._steps_per_epoch))

    @property
    def has_partial_batch(self) -> bool:
        return self._partial > 0

    @property
    def partial_batch_rows(self) -> int:
        """Samples in the last, partial batch (0 when every batch is whole)."""
        return self._partial

    @property
    def streaming(self) -> bool:
        """True when some leaves are gathered on the host and sent item by item."""
        self._placement()
        return bool(self._on_host)

    def _placement(self) -> list:
        if self._placed is None:
            # Under a distribution NumPy data are streamed, each batch sent split over the
            # devices (a device copy would be whole on one device and gathered there).
            copy = not self.from_host and current_distribution.distribution() is None
            placed = device_copy.place(self._sources, self._host_leaves, copy_missing=copy)
            # Which leaves are gathered where, decided once (the per-batch path reads it).
            self._on_device = [i for i, leaf in enumerate(placed) if isinstance(leaf, jax.Array)]
            self._on_host = [i for i, leaf in enumerate(placed) if not isinstance(leaf, jax.Array)]
            self._placed = placed
            if not self._on_host:
                # The device copy replaces the host data (no second copy of converted arrays).
                self._host_leaves = self._sources = None
        return self._placed

    @property
    def _leaves(self) -> list:
        """The data on the device (copied there, or found in the cache, when first needed)."""
        if self._placed is None:
            saved, self.from_host = self.from_host, False
            try:
                self._placement()
            finally:
                self.from_host = saved
        return self._placed

    def _new_order(self) -> np.ndarray:
        n, bs = self._num_samples, self._batch_size
        if not self._shuffle:
            return np.arange(n, dtype=np.int32)
        if self._shuffle == "batch":
            full = self._num_full * bs
            blocks = np.random.permutation(self._num_full)
            order = (blocks[:, None] * bs + np.arange(bs)).reshape(-1)
            order = np.concatenate([order, np.arange(full, n)])
        else:
            order = np.random.permutation(n)
        return order.astype(np.int32)

    def _in_order_pass(self, block, start_step: int) -> bool:
        """Whether this pass is ``predict``'s plain case (``stage_batches`` set, see the class):
        one whole unshuffled pass, one batch per step, every leaf NumPy on the host."""
        if (not self.stage_batches or self._shuffle or start_step or self._requested_steps is not None
                or callable(block) or block != 1 or current_distribution.distribution() is not None):
            return False
        self._placement()
        return not self._on_device

    def _new_stager(self):
        """A ``ChunkStager`` for this in-order pass, or None: batches too small (or too large)
        to gain, or a device that would copy the buffers."""
        placed = self._placement()
        if not stageable(placed, self._batch_size):
            return None
        stager = ChunkStager(placed, self._batch_size, self._treedef)
        if not stager.in_place:
            stager.close()
            return None
        return stager

    def _item(self, steps, start_batch):
        bs = self._batch_size
        if start_batch >= self._num_full:  # the partial batch
            shape = (self.pad_partial_to or bs,) if self.pad_partial_batch else (self._partial,)
        elif steps == 1:
            shape = (bs,)
        else:
            shape = (steps, bs)
        placed = self._placement()
        start = start_batch * bs
        out = [None] * len(placed)
        on_device, on_host = self._on_device, self._on_host
        if on_device:
            if self._device_order is None:
                self._device_order = device_copy.put([self._order])[0]
            gathered = device_copy._gather([placed[i] for i in on_device], self._device_order, start, shape)
            if current_distribution.distribution() is not None:  # gathered on one device: split it
                gathered = distribution_data.distribute(gathered, stacked=len(shape) > 1)
            for i, leaf in zip(on_device, gathered):
                out[i] = leaf
        if on_host:
            order = self._order if self._shuffle else None  # unshuffled: slices, no copies
            rows = device_copy.put([device_copy.host_rows(placed[i], order, start, shape) for i in on_host],
                                   stacked=len(shape) > 1)
            for i, leaf in zip(on_host, rows):
                out[i] = leaf
        return jax.tree_util.tree_unflatten(self._treedef, out)

    def _in_order_epoch(self, stager):
        """``_epoch`` for an in-order pass: whole batches staged by ``stager``, or without one
        NumPy slices handed to the step as they are (the CPU backend's ``jax.jit`` transfers
        them, as ``device_copy.put`` would leave them), none made ahead. The last, partial
        batch is staged too when it is padded to a whole one, else made by ``_item``. The
        per-batch path of ``predict``, so it does only that."""
        self._set_order(self._new_order())
        leaves, batch, whole, treedef = self._placement(), self._batch_size, self._num_full, self._treedef
        # Batches before `direct` come straight from the stager or as slices; the rest by _item.
        direct = whole + (1 if stager is not None and self.pad_partial_batch and not self.pad_partial_to else 0)
        for pos in range(self._num_batches):
            self._pos = pos + 1
            if pos >= direct:
                yield 1, self._item(1, pos)
            elif stager is not None:
                yield 1, stager.batch(pos)
            else:
                start = pos * batch
                yield 1, treedef.unflatten([leaf[start : start + batch] for leaf in leaves])
        self._set_order(None)

    def get_state(self) -> dict:
        return {"pos": int(self._pos), "order": None if self._order is None else np.array(self._order)}

    def set_state(self, state: dict) -> None:
        order = state.get("order")
        if order is not None:
            order = np.asarray(jax.device_get(order), dtype=np.int32)
            if order.shape != (self._num_samples,):
                raise ValueError(
                    f"The saved data order has {order.shape[0]} entries but the data has "
                    f"{self._num_samples} samples: resume with the data of the saved run."
                )
        self._set_order(order)
        self._pos = int(state.get("pos", 0))

    def _set_order(self, order) -> None:
        self._order, self._device_order = order, None

    @staticmethod
    def _steps_at(room: int, block) -> int:
        size = _block_now(block)
        return size if size > 1 and room >= size else 1

    def _epoch(self, block: int, start_step: int = 0):
        if self._requested_steps is None and not start_step:  # every epoch is one whole pass
            self._pos = 0
            self._set_order(None)
        budget = self._steps_per_epoch - start_step
        drawn = 0
        ahead = None  # (pos, steps, item): the next item, made while the last one is used
        if self._in_order_pass(block, start_step):
            stager = self._new_stager()
            yield from self._in_order_epoch(stager)
            if stager is not None:
                stager.close()  # not reached when the consumer stops early: the buffers are dropped
            return
        while drawn < budget:
            if self._order is None:
                self._set_order(self._new_order())
                self._pos = 0
            pos = self._pos
            steps = self._steps_at(min(budget - drawn, self._num_full - pos), block)
            # Book-keeping before the yield: a consumer may stop at any item.
            self._pos += steps
            drawn += steps
            pass_done = self._pos >= self._num_batches
            # The item made ahead is used only if the block size asked now still gives it.
            item = ahead[2] if ahead is not None and ahead[:2] == (pos, steps) else self._item(steps, pos)
            ahead = None
            if not pass_done and drawn < budget and self.streaming:
                # Streamed data: send the next item now, so that its transfer overlaps this
                # step. Never past the pass, whose next permutation is not drawn yet.
                nxt = self._steps_at(min(budget - drawn, self._num_full - self._pos), block)
                ahead = (self._pos, nxt, self._item(nxt, self._pos))
            if pass_done:
                self._set_order(None)
            yield steps, item
            if pass_done:
                break
        if drawn < budget and self._requested_steps is not None:
            warnings.warn(_RAN_OUT, stacklevel=2)
