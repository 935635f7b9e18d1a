"""Adapters for data that arrive as ready-made batches: generators, iterables, ``Dataset``s.

Each batch is checked and standardized as it is drawn (``_prepare_batch``), then sent to the
device: ``block`` full batches of one shape are stacked into one ``(block, batch, ...)`` item,
otherwise they go one by one.
"""

from __future__ import annotations

import itertools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from lamina.data.base import _RAN_OUT, DataAdapter, _block_now
from lamina.data.dataset import PyDataset
from lamina.data.loading import load_batches
from lamina.data.standardize import _prepare_batch
from lamina.distribution.data import distribute


def _to_device(leaves, treedef, stacked=False):
    # Under a distribution each batch is split over the devices (lamina/distribution/data.py);
    # with several processes, each process's generator yields that process's rows.
    return jax.tree_util.tree_unflatten(treedef, distribute(leaves, stacked))


def _emit(batches, block):
    """Yield prepared host batches: stacked into one block when possible, else one by one."""
    if len(batches) == block > 1:
        treedef = batches[0][1]
        sig = [(np.shape(a), np.dtype(a.dtype)) for a in batches[0][0]]
        if all(
            d == treedef and [(np.shape(a), np.dtype(a.dtype)) for a in ls] == sig
            for ls, d in batches[1:]
        ):
            columns = list(zip(*(ls for ls, _ in batches)))
            stacked = [
                jnp.stack(col) if any(isinstance(a, jax.Array) for a in col) else np.stack(col)
                for col in columns
            ]
            yield block, _to_device(stacked, treedef, stacked=True)
            return
    for leaves, treedef in batches:
        yield 1, _to_device(leaves, treedef)


class _BatchwiseAdapter(DataAdapter):
    """Adapters whose data arrive as ready-made batches, each checked as it is drawn."""

    def _check(self, batch, index):
        return _prepare_batch(
            batch,
            index=index,
            class_weight=self._class_weight,
            require_y=self._require_y,
            name=self._name,
            kind=self._kind,
        )


class IterableDataAdapter(_BatchwiseAdapter):
    """Generators, iterators and other iterables yielding ``(x, y, sample_weight)`` batches."""

    def __init__(
        self, source, *, steps_per_epoch=None, class_weight=None, require_y=False, name="x", kind=None
    ):
        self._source = source
        self._name = name
        self._class_weight = class_weight
        self._require_y = require_y
        iterator = iter(source)
        self._reiterable = iterator is not source
        # What error messages call the source ("a tf.data.Dataset" from a subclass).
        self._kind = kind or ("an iterable" if self._reiterable else "a generator")
        try:
            first = next(iterator)
        except StopIteration:
            raise ValueError(
                f"`{name}` yielded no batch at all; a generator or iterable must yield at "
                "least one batch `(x, y)`."
            ) from None
        self._check(first, 0)  # fail before training, not in the middle of it
        self._iterator = itertools.chain([first], iterator)
        self._fresh = True  # the iterator has not been drawn from yet
        self._steps_per_epoch = steps_per_epoch
        self._count = 0

    def _epoch(self, block: int, start_step: int = 0):
        budget = self._steps_per_epoch
        if budget is not None:
            budget = max(budget - start_step, 0)
        if self._reiterable and (
            self._iterator is None or (budget is None and not self._fresh)
        ):
            self._iterator, self._count = iter(self._source), 0
        if self._iterator is None:
            self._exhausted = True
            warnings.warn(
                f"The generator passed as `{self._name}` is exhausted: this epoch has no data. "
                "Pass `steps_per_epoch` (with a generator that yields "
                "`steps_per_epoch * epochs` batches), an endless generator, or a re-iterable "
                "object (e.g. an lm.data.Dataset) to train for several epochs.",
                stacklevel=2,
            )
            return
        self._fresh = False
        iterator = self._iterator
        drawn = 0
        while budget is None or drawn < budget:
            size = _block_now(block)
            want = size if size > 1 and (budget is None or budget - drawn >= size) else 1
            batches, ran_out = [], False
            for _ in range(want):
                try:
                    raw = next(iterator)
                except StopIteration:
                    ran_out = True
                    break
                batches.append(self._check(raw, self._count))
                self._count += 1
            drawn += len(batches)
            if ran_out:
                self._iterator = None
            yield from _emit(batches, size)
            if ran_out:
                if budget is not None:
                    warnings.warn(_RAN_OUT, stacklevel=2)
                return


class DatasetAdapter(_BatchwiseAdapter):
    """An ``lm.data.Dataset``: batches by index, shuffled by index order."""

    def __init__(
        self,
        dataset,
        *,
        steps_per_epoch=None,
        shuffle=True,
        class_weight=None,
        require_y=False,
        name="x",
    ):
        self._dataset = dataset
        self._name = name
        self._kind = "a Dataset"
        self._class_weight = class_weight
        self._require_y = require_y
        self._shuffle = bool(shuffle)
        try:
            n = dataset.num_batches if isinstance(dataset, PyDataset) else len(dataset)
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"len() of the Dataset passed as `{name}` failed: {err}") from err
        if n is None and steps_per_epoch is None:
            raise ValueError(
                f"The PyDataset passed as `{name}` is endless (num_batches is None): pass "
                "`steps_per_epoch` (and `validation_steps` / `steps` for evaluation) to say how "
                "many batches an epoch takes."
            )
        if n is None:  # endless (Keras): batch indices 0, 1, 2, ... carry on across epochs
            self._num_batches = None
            self._check(dataset[0], 0)
            self._requested_steps = self._steps_per_epoch = steps_per_epoch
            self._order, self._pos = None, 0
            return
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(
                f"The Dataset passed as `{name}` must have a length (number of batches) that "
                f"is a non-negative int; __len__ returned {n!r}."
            )
        if n == 0:
            raise ValueError(
                f"The Dataset passed as `{name}` is empty (__len__ returned 0); expected at "
                "least one batch."
            )
        self._num_batches = int(n)
        self._check(dataset[0], 0)  # fail before training, not in the middle of it
        self._requested_steps = steps_per_epoch
        self._steps_per_epoch = steps_per_epoch or self._num_batches
        self._order = None
        self._pos = 0

    def get_state(self) -> dict:
        return {"pos": int(self._pos), "order": None if self._order is None else np.asarray(self._order)}

    def set_state(self, state: dict) -> None:
        order = state.get("order")
        if order is not None and self._num_batches is not None:
            order = np.asarray(order)
            if order.shape != (self._num_batches,):
                raise ValueError(
                    f"The saved batch order has {order.shape[0]} entries but the Dataset has "
                    f"{self._num_batches} batches: resume with the data of the saved run."
                )
        self._order, self._pos = order, int(state.get("pos", 0))

    def _epoch(self, block: int, start_step: int = 0):
        if self._requested_steps is None and not start_step:
            self._order, self._pos = None, 0
        budget = self._steps_per_epoch - start_step
        drawn = 0
        self._dataset.on_epoch_begin()
        try:
            if self._num_batches is None:  # endless: no passes, no shuffling
                indices = np.arange(self._pos, self._pos + budget)
            else:
                if self._order is None:
                    n = self._num_batches
                    self._order = np.random.permutation(n) if self._shuffle else np.arange(n)
                    self._pos = 0
                # An epoch never spans two passes: it ends with the pass at the latest.
                indices = self._order[self._pos : self._pos + min(budget, self._num_batches - self._pos)]
            # A PyDataset with workers loads these ahead, in this order (lamina/data/loading.py);
            # closing the loader stops its pool before on_epoch_end runs.
            loader = load_batches(self._dataset, indices)
            try:
                while drawn < len(indices):
                    size = _block_now(block)
                    want = size if size > 1 and len(indices) - drawn >= size else 1
                    batches = [self._check(next(loader), int(i)) for i in indices[drawn : drawn + want]]
                    self._pos += want
                    drawn += want
                    if self._num_batches is not None and self._pos >= self._num_batches:
                        self._order = None
                    yield from _emit(batches, size)
            finally:
                loader.close()
            if drawn < budget and self._requested_steps is not None:
                warnings.warn(_RAN_OUT, stacklevel=2)
        finally:
            self._dataset.on_epoch_end()


class _IterNext:
    """An object with ``__next__`` but no ``__iter__`` behaves as the iterator it is."""

    def __init__(self, obj):
        self._obj = obj

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._obj)
