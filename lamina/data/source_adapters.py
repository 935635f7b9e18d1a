"""Adapters for data sources of other libraries (``tf.data``, PyTorch, Grain), two shapes:

- ``BatchSourceAdapter``: a re-iterable object that yields ready-made batches (a
  ``tf.data.Dataset``, a ``torch.utils.data.DataLoader``, a batched Grain dataset). Iterated
  afresh each epoch like any re-iterable (``IterableDataAdapter``'s rules), with a known number
  of batches, when the source has one, for the progress bar.
- ``SampleSourceAdapter``: a random-access source of single samples (``len`` and
  ``source[i]``: a PyTorch map-style ``Dataset``, an unbatched ``grain.MapDataset``), cut into
  batches of ``batch_size`` exactly as ``ArrayDataAdapter`` cuts arrays: the same
  permutation per pass drawn from NumPy's global generator, the same ``shuffle="batch"`` and
  ``steps_per_epoch`` rules, the partial batch last. The same samples as arrays thus give the
  same batches in the same order.

``collate`` stacks samples into a batch (leaf by leaf); ``BatchedIterable`` groups the samples
of an unbatched iterable into batches of ``batch_size``.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from lamina.data.base import _RAN_OUT, DataAdapter, _block_now
from lamina.data.batchwise_adapters import IterableDataAdapter, _emit
from lamina.data.standardize import _prepare_batch


def collate(samples: list, *, where: str, convert=None):
    """Stack samples (each an array, or a tuple/list/dict of them) into one batch, leaf by leaf.

    ``convert`` turns a framework's tensor into NumPy first; a sample whose structure differs
    from the first one's is a ValueError naming ``where``.

    Example:
        >>> import numpy as np
        >>> from lamina.data.source_adapters import collate
        >>> x, y = collate([(np.zeros(3), 1), (np.ones(3), 0)], where="sample")
        >>> x.shape, y.tolist()
        ((2, 3), [1, 0])
    """
    flat = []
    treedef = None
    for i, sample in enumerate(samples):
        if convert is not None:
            sample = jax.tree_util.tree_map(convert, sample)
        leaves, definition = jax.tree_util.tree_flatten(sample)
        if treedef is None:
            treedef = definition
        elif definition != treedef:
            raise ValueError(
                f"{where}: every sample must have the structure of the first one; sample {i} "
                f"of the batch is {definition}, the first was {treedef}."
            )
        flat.append(leaves)
    try:
        columns = [np.stack([np.asarray(leaf) for leaf in column]) for column in zip(*flat)]
    except ValueError as err:  # samples of different shapes
        raise ValueError(
            f"{where}: the samples of a batch must have equal shapes to be stacked ({err})."
        ) from None
    return jax.tree_util.tree_unflatten(treedef, columns)


class BatchedIterable:
    """The samples of a re-iterable ``source`` grouped into batches of ``batch_size`` (the
    last one partial), each stacked with ``collate``."""

    def __init__(self, source, batch_size: int, *, where: str, convert=None):
        self._source = source
        self._batch_size = batch_size
        self._where = where
        self._convert = convert

    def __iter__(self):
        samples = []
        for sample in self._source:
            samples.append(sample)
            if len(samples) == self._batch_size:
                yield collate(samples, where=self._where, convert=self._convert)
                samples = []
        if samples:
            yield collate(samples, where=self._where, convert=self._convert)


class ConvertedIterable:
    """``source`` iterated afresh each time, each item passed through ``convert``."""

    def __init__(self, source, convert=None, *, iterate=iter):
        self._source = source
        self._convert = convert
        self._iterate = iterate

    def __iter__(self):
        convert = self._convert
        for item in self._iterate(self._source):
            yield item if convert is None else convert(item)


class BatchSourceAdapter(IterableDataAdapter):
    """Ready-made batches from a re-iterable source of another library.

    ``kind`` names the source in error messages (``"a tf.data.Dataset"``); ``num_batches``
    (None when unknown) is what ``steps_per_epoch`` reports without a ``steps_per_epoch``.
    Every batch is checked as it is drawn (``(x,)``, ``(x, y)``, ``(x, y, sample_weight)``).

    Example:
        >>> import numpy as np
        >>> from lamina.data.source_adapters import BatchSourceAdapter
        >>> batches = [(np.zeros((4, 2)), np.ones(4)), (np.zeros((1, 2)), np.ones(1))]
        >>> adapter = BatchSourceAdapter(batches, kind="a list", num_batches=2)
        >>> adapter.steps_per_epoch, [data[0].shape for _, data in adapter.epoch(0)]
        (2, [(4, 2), (1, 2)])
    """

    def __init__(
        self,
        source,
        *,
        kind: str,
        num_batches=None,
        steps_per_epoch=None,
        class_weight=None,
        require_y=False,
        name="x",
    ):
        self._num_batches = num_batches
        super().__init__(
            source,
            steps_per_epoch=steps_per_epoch,
            class_weight=class_weight,
            require_y=require_y,
            name=name,
            kind=kind,
        )

    @property
    def steps_per_epoch(self) -> int | None:
        if self._steps_per_epoch is not None:
            return self._steps_per_epoch
        return self._num_batches

class SampleSourceAdapter(DataAdapter):
    """Single samples by index (``len(source)``, ``source[i]``), batched as arrays are.

    Each batch is ``collate([source[i] for i in indices])``, checked like a generator's batch;
    ``convert`` turns the source's tensors into NumPy. ``block`` full batches are stacked into
    one item as for arrays.

    Example:
        >>> import numpy as np
        >>> from lamina.data.source_adapters import SampleSourceAdapter
        >>> samples = [(np.full(2, i, "float32"), i) for i in range(5)]
        >>> adapter = SampleSourceAdapter(samples, kind="a list", batch_size=2, shuffle=False)
        >>> [data[1].tolist() for _, data in adapter.epoch(0)]
        [[0, 1], [2, 3], [4]]
    """

    def __init__(
        self,
        source,
        *,
        kind: str,
        batch_size=32,
        steps_per_epoch=None,
        shuffle=True,
        class_weight=None,
        require_y=False,
        convert=None,
        name="x",
    ):
        self._source = source
        self._kind = kind
        self._name = name
        self._convert = convert
        self._class_weight = class_weight
        self._require_y = require_y
        try:
            n = len(source)
        except Exception as err:  # noqa: BLE001 - reported with the source's name
            raise ValueError(f"len() of {kind} passed as `{name}` failed: {err}") from err
        if n == 0:
            raise ValueError(f"{kind[0].upper() + kind[1:]} passed as `{name}` is empty (0 samples).")
        if batch_size is None:  # Keras's rule for arrays
            batch_size = -(-n // steps_per_epoch) if steps_per_epoch else 32
        self._num_samples = int(n)
        self._batch_size = int(batch_size)
        self._shuffle = shuffle
        self._num_full = n // batch_size
        self._partial = n % batch_size
        self._num_batches = self._num_full + (1 if self._partial else 0)
        self._requested_steps = steps_per_epoch
        self._steps_per_epoch = steps_per_epoch or self._num_batches
        self._pos = 0
        self._order = None
        self._batch(np.arange(min(n, self._batch_size)), 0)  # fail before training starts

    @property
    def has_partial_batch(self) -> bool:
        return self._partial > 0

    def _batch(self, indices, index):
        where = f"Batch {index} from `{self._name}` ({self._kind})"
        try:
            samples = [self._source[int(i)] for i in indices]
        except Exception as err:  # noqa: BLE001 - reported with the batch and the source
            raise ValueError(f"{where}: reading a sample failed: {err!r}") from err
        batch = collate(samples, where=where, convert=self._convert)
        return _prepare_batch(
            batch,
            index=index,
            class_weight=self._class_weight,
            require_y=self._require_y,
            name=self._name,
            kind=self._kind,
        )

    def _new_order(self) -> np.ndarray:
        # The draws of ArrayDataAdapter._new_order, so that a seed gives the same order.
        n, bs = self._num_samples, self._batch_size
        if not self._shuffle:
            return np.arange(n)
        if self._shuffle == "batch":
            blocks = np.random.permutation(self._num_full)
            order = (blocks[:, None] * bs + np.arange(bs)).reshape(-1)
            return np.concatenate([order, np.arange(self._num_full * bs, n)])
        return np.random.permutation(n)

    def get_state(self) -> dict:
        return {"pos": int(self._pos), "order": None if self._order is None else np.array(self._order)}

    def set_state(self, state: dict) -> None:
        order = state.get("order")
        if order is not None:
            order = np.asarray(order)
            if order.shape != (self._num_samples,):
                raise ValueError(
                    f"The saved data order has {order.shape[0]} entries but {self._kind} has "
                    f"{self._num_samples} samples: resume with the data of the saved run."
                )
        self._order, self._pos = order, int(state.get("pos", 0))

    def _epoch(self, block, start_step: int = 0):
        if self._requested_steps is None and not start_step:  # every epoch is one whole pass
            self._order, self._pos = None, 0
        budget = self._steps_per_epoch - start_step
        drawn = 0
        bs = self._batch_size
        while drawn < budget:
            if self._order is None:
                self._order, self._pos = self._new_order(), 0
            pos = self._pos
            size = _block_now(block)
            room = min(budget - drawn, self._num_full - pos)
            steps = size if size > 1 and room >= size else 1
            batches = [
                self._batch(self._order[b * bs : (b + 1) * bs], b) for b in range(pos, pos + steps)
            ]
            self._pos += steps
            drawn += steps
            pass_done = self._pos >= self._num_batches
            if pass_done:
                self._order = None
            yield from _emit(batches, steps)
            if pass_done:
                break
        if drawn < budget and self._requested_steps is not None:
            warnings.warn(_RAN_OUT, stacklevel=2)
