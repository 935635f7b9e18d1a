"""``SampleDataset``: what lamina's dataset utilities return where Keras returns a ``tf.data``
pipeline (``timeseries_dataset_from_array``, ``image_dataset_from_directory``,
``text_dataset_from_directory``, ``split_dataset``).

It is an ``lm.data.PyDataset`` over numbered samples: ``fit`` / ``evaluate`` / ``predict`` take
it, ``len()`` is the number of batches, ``ds[i]`` is batch ``i`` as NumPy arrays and
``for x, y in ds`` iterates them. Samples are read when a batch is asked for (files are
decoded per batch, never all at once). The tf.data methods keras.io examples call on such
results work where their meaning is exact: ``map``, ``take``, ``skip``, ``batch``,
``unbatch``, ``prefetch`` / ``cache`` (no-ops: values unchanged) and ``as_numpy_iterator``;
every other tf.data method raises an ``AttributeError`` saying so, rather than doing
something else.

Shuffling: the first pass over the samples is in the order the utility made (Keras's seeded
order, e.g. ``file_paths``); once every batch of a pass has been read, the next pass takes a
new permutation drawn from ``seed`` and the pass number, so two datasets made with the same
seed give the same batches epoch after epoch (Keras reshuffles each epoch too, within a
buffer).
"""

from __future__ import annotations

import copy
import math

import jax
import numpy as np

from lamina.data.dataset import PyDataset

__all__ = ["SampleDataset"]

# tf.data.Dataset methods a keras.io example may call, with what to do instead.
_TF_DATA_METHODS = ("shuffle", "repeat", "filter", "flat_map", "interleave", "padded_batch",
                    "rebatch", "zip", "concatenate", "window", "enumerate", "apply", "with_options",
                    "cardinality", "element_spec", "reduce", "scan", "shard", "ragged_batch",
                    "bucket_by_sequence_length", "group_by_window", "snapshot", "save", "load")


class SampleDataset(PyDataset):
    """A sequence of batches drawn from ``num_samples`` numbered samples.

    Args:
        fetch: ``fetch(indices)`` returns the samples at ``indices`` (a NumPy int array),
            stacked on a leading axis: an array, or a tuple / dict of arrays.
        num_samples: how many samples there are.
        batch_size: samples per batch; ``None`` yields single samples (``.batch(n)`` then
            makes batches).
        shuffle: reshuffle the samples at each new pass (see the module docstring).
        seed: the seed of those permutations.

    Example:
        >>> import numpy as np
        >>> x, y = np.arange(10.0), np.arange(10) % 2
        >>> ds = SampleDataset(lambda i: (x[i], y[i]), 10, batch_size=4)
        >>> len(ds), ds[2][0].tolist()
        (3, [8.0, 9.0])
        >>> doubled = ds.map(lambda a, b: (2 * a, b)).take(1)
        >>> [a.tolist() for a, _ in doubled]
        [[0.0, 2.0, 4.0, 6.0]]
        >>> len(ds.unbatch().skip(8)), ds.unbatch().batch(5)[1][1].tolist()
        (2, [1, 0, 1, 0, 1])
    """

    def __init__(self, fetch, num_samples, *, batch_size=None, shuffle=False, seed=None,
                 drop_remainder=False, workers=1, use_multiprocessing=False, max_queue_size=10):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        self._fetch = fetch
        self._num_samples = int(num_samples)
        self._batch_size = _check_batch_size(batch_size)
        self._drop_remainder = bool(drop_remainder)
        self._shuffle = bool(shuffle)
        if shuffle and seed is None:
            seed = np.random.randint(1e6)
        self._seed = None if seed is None else int(seed)
        self._sample_window = (0, self._num_samples)  # take/skip before batching
        self._batch_window = (0, None)                # take/skip after batching
        self._element_maps = ()                       # map() on single samples
        self._batch_maps = ()                         # map() on batches
        self._pass = 0
        self._read = set()

    # -- the sequence ----------------------------------------------------------------------

    @property
    def batch_size(self):
        """Samples per batch (``None``: the dataset yields single samples)."""
        return self._batch_size

    def _samples(self) -> int:
        start, stop = self._sample_window
        return max(min(stop, self._num_samples) - start, 0)

    def _batches_before_window(self) -> int:
        n = self._samples()
        if self._batch_size is None:
            return n
        return n // self._batch_size if self._drop_remainder else math.ceil(n / self._batch_size)

    def __len__(self) -> int:
        start, stop = self._batch_window
        total = self._batches_before_window()
        stop = total if stop is None else min(stop, total)
        return max(stop - start, 0)

    def __getitem__(self, index):
        length = len(self)
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"SampleDataset indices are batch numbers (int); received {index!r}.")
        if index < 0:
            index += length
        if not 0 <= index < length:
            raise IndexError(f"batch index {index} is out of range for a dataset of {length} batches")
        self._read.add(int(index))
        position = int(index) + self._batch_window[0]
        order = self._order()[self._sample_window[0]:self._sample_window[0] + self._samples()]
        if self._batch_size is None:
            return self._element(order[position])
        rows = order[position * self._batch_size:(position + 1) * self._batch_size]
        if self._element_maps:
            batch = _stack([self._element(i) for i in rows])
        else:
            batch = self._fetch(rows)
        for fn in self._batch_maps:
            batch = _apply(fn, batch)
        return batch

    @property
    def num_batches(self) -> int:
        """The number of batches ``fit`` / ``evaluate`` / ``predict`` read; refused for a
        dataset of single samples, whose elements would be taken for batches."""
        if self._batch_size is None:
            raise ValueError(
                "this dataset yields single samples (batch_size=None); a model would take each "
                "sample for a batch. Call `.batch(batch_size)` on it first.")
        return len(self)

    def _element(self, sample):
        element = jax.tree_util.tree_map(lambda a: a[0], self._fetch(np.asarray([sample])))
        for fn in self._element_maps:
            element = _apply(fn, element)
        return element

    def _order(self) -> np.ndarray:
        if not self._shuffle or self._pass == 0:
            return np.arange(self._num_samples)
        return np.random.default_rng([self._seed, self._pass]).permutation(self._num_samples)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
        self.on_epoch_end()

    def on_epoch_end(self) -> None:
        # A new pass (and, when shuffling, a new order) once every batch of this one was read;
        # an epoch cut short by steps_per_epoch goes on with the same order. Batches read in
        # worker processes are not seen here: with those, each epoch is a new pass.
        if len(self._read) >= len(self) or (self.use_multiprocessing and self.workers > 0):
            self._pass += 1
            self._read = set()

    def as_numpy_iterator(self):
        """Iterate the batches (they are NumPy already), as ``tf.data``'s method does."""
        return iter(self)

    # -- tf.data-style transformations (each returns a new dataset) ---------------------------

    def _derived(self, **changes):
        new = copy.copy(self)
        new.__dict__.update(changes)
        new._pass, new._read = 0, set()
        return new

    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None):
        """Apply ``map_func`` to each element (a batch, or a sample before ``batch``); a tuple
        element is passed as positional arguments, as ``tf.data`` does. Runs eagerly on the
        NumPy values when the element is read (``num_parallel_calls`` is accepted and unused;
        set ``workers`` to load batches in parallel)."""
        del num_parallel_calls, deterministic, name
        if not callable(map_func):
            raise TypeError(f"SampleDataset.map expects a callable; received {map_func!r}.")
        if self._batch_size is None:
            return self._derived(_element_maps=self._element_maps + (map_func,))
        return self._derived(_batch_maps=self._batch_maps + (map_func,))

    def take(self, count, name=None):
        """The first ``count`` elements (all of them for ``count=-1``)."""
        return self._window(count, take=True)

    def skip(self, count, name=None):
        """All elements but the first ``count``."""
        return self._window(count, take=False)

    def _window(self, count, *, take):
        what = "take" if take else "skip"
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < -1:
            raise ValueError(f"SampleDataset.{what}: `count` must be an int >= -1; received {count!r}.")
        if self._batch_size is None:
            start, stop = self._sample_window
            stop = min(stop, self._num_samples)
        else:
            start, stop = self._batch_window
            stop = self._batches_before_window() if stop is None else stop
        if count == -1:  # tf.data: take(-1) keeps everything, skip(-1) drops everything
            count = stop - start
        if take:
            window = (start, min(stop, start + int(count)))
        else:
            window = (min(start + int(count), stop), stop)
        if self._batch_size is None:
            return self._derived(_sample_window=window)
        return self._derived(_batch_window=window)

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None, deterministic=None,
              name=None):
        """Group single samples into batches of ``batch_size``."""
        if self._batch_size is not None:
            raise ValueError(
                f"This dataset is already batched (batch_size={self._batch_size}); batching it "
                "again would make batches of batches, which lamina does not do. Call "
                "`.unbatch()` first, or pass `batch_size=None` to the utility.")
        return self._derived(_batch_size=_check_batch_size(batch_size, allow_none=False),
                             _drop_remainder=bool(drop_remainder))

    def unbatch(self, name=None):
        """Split the batches back into single samples."""
        if self._batch_size is None:
            raise ValueError("This dataset yields single samples already (batch_size=None); "
                             "there is nothing to unbatch.")
        if self._batch_maps:
            raise ValueError("`unbatch()` after `map()` on batches is not supported: call "
                             "`unbatch()` first and `map()` on the samples.")
        start, _ = self._sample_window
        first = self._batch_window[0] * self._batch_size
        stop = min(len(self) * self._batch_size + first, self._samples())
        return self._derived(_batch_size=None, _drop_remainder=False,
                             _sample_window=(start + first, start + stop), _batch_window=(0, None))

    def prefetch(self, buffer_size=None, name=None):
        """Returns the dataset itself: the values are the same. (``fit`` loads batches ahead
        in threads when ``workers > 1``.)"""
        return self

    def cache(self, filename="", name=None):
        """Returns the dataset itself: the values are the same (batches are read again each
        epoch; nothing is cached)."""
        return self

    def __getattr__(self, name):
        if name in _TF_DATA_METHODS:
            raise AttributeError(
                f"SampleDataset has no tf.data method `{name}`: lamina's dataset utilities "
                "return an lm.data.PyDataset, with only map, take, skip, batch, unbatch, "
                "prefetch, cache and as_numpy_iterator. Shuffling is the utility's `shuffle` "
                "argument (and fit's); for a full tf.data pipeline build one with TensorFlow.")
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __repr__(self):
        size = "unbatched" if self._batch_size is None else f"batch_size={self._batch_size}"
        return f"<SampleDataset: {len(self)} elements, {size}>"


def _apply(fn, element):
    return fn(*element) if isinstance(element, tuple) else fn(element)


def _stack(elements):
    return jax.tree_util.tree_map(lambda *leaves: np.stack([np.asarray(a) for a in leaves]), *elements)


def _check_batch_size(batch_size, allow_none=True):
    if batch_size is None and allow_none:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int{' or None' if allow_none else ''}; "
                         f"received {batch_size!r}.")
    return int(batch_size)
