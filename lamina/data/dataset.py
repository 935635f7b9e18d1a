"""``lm.data.Dataset``: a sequence of ready-made batches; ``lm.data.PyDataset``: Keras's
``PyDataset`` (a ``Dataset`` whose batches ``fit`` may load with a thread or process pool)."""

from __future__ import annotations

import warnings

import numpy as np


class Dataset:
    """A sequence of batches: subclass it, define ``__len__`` and ``__getitem__``.

    ``__len__`` returns the number of batches in one epoch and ``__getitem__(i)`` the ``i``-th
    batch as ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` (NumPy or JAX arrays, or dicts /
    lists of them). Use it when the data does not fit in memory or is produced per batch (file
    reading, augmentation). ``fit(shuffle=True)`` visits the batch indices in a new order each
    epoch (the samples inside a batch are the batch's business); ``on_epoch_begin()`` and
    ``on_epoch_end()`` run around each epoch, e.g. to reshuffle the samples behind the batches.
    No ``super().__init__()`` call is needed; ``PyDataset`` (a subclass) adds Keras's
    ``workers`` / ``use_multiprocessing`` / ``max_queue_size`` for loading batches ahead.

    Example:
        >>> import numpy as np
        >>> import lamina as lm
        >>> import lamina.data
        >>> class Squares(lm.data.Dataset):
        ...     def __init__(self, n, batch_size):
        ...         self.x = np.arange(n, dtype="float32")[:, None]
        ...         self.batch_size = batch_size
        ...     def __len__(self):
        ...         return -(-len(self.x) // self.batch_size)  # ceil
        ...     def __getitem__(self, i):
        ...         x = self.x[i * self.batch_size:(i + 1) * self.batch_size]
        ...         return x, x ** 2
        >>> ds = Squares(10, batch_size=4)
        >>> len(ds), ds[2][1].ravel().tolist()
        (3, [64.0, 81.0])
        >>> adapter = lm.data.get_data_adapter(ds, shuffle=False)
        >>> [data[0].shape for _, data in adapter.epoch(0)]
        [(4, 1), (4, 1), (2, 1)]
    """

    def __len__(self) -> int:
        raise NotImplementedError(
            f"{type(self).__name__} must define __len__ (the number of batches per epoch)."
        )

    def __getitem__(self, index: int):
        raise NotImplementedError(
            f"{type(self).__name__} must define __getitem__(index) returning a batch "
            "(x,), (x, y) or (x, y, sample_weight)."
        )

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def on_epoch_begin(self) -> None:
        """Called before the first batch of each epoch."""

    def on_epoch_end(self) -> None:
        """Called after the last batch of each epoch."""


class PyDataset(Dataset):
    """Keras's ``PyDataset``: a ``Dataset`` whose batches ``fit`` can load in parallel.

    Subclass it as in Keras: call ``super().__init__(**kwargs)`` and define ``__len__`` (or
    the ``num_batches`` property) and ``__getitem__``; ``on_epoch_begin`` / ``on_epoch_end``
    run around each epoch. The keyword arguments say how ``fit`` / ``evaluate`` /
    ``predict`` read the batches (they are not used when you index the dataset yourself):

    Args:
        workers: with ``workers > 1``, a pool of that many threads loads batches ahead of
            the training step, in parallel; ``1`` (the default) loads each batch in the
            main thread when it is needed. Threads overlap I/O and NumPy work that releases
            the GIL.
        use_multiprocessing: load the batches in ``workers`` processes instead (for Python
            code that holds the GIL). Each epoch starts fresh "spawn" processes that receive
            a pickled copy of the dataset (so changes made in ``on_epoch_end`` reach them):
            the dataset must pickle, its class must be importable (defined in a module or a
            script, not interactively), and a script must guard its entry point with
            ``if __name__ == "__main__":``. A dataset that cannot work this way is refused
            with a clear error before the epoch starts.
        max_queue_size: how many batches may be loaded ahead (default 10).

    Batches always come in index order (or the epoch's shuffled order), whatever the
    number of workers.

    Example:
        >>> import numpy as np, lamina as lm
        >>> class Squares(lm.data.PyDataset):
        ...     def __init__(self, n, batch_size, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.x = np.arange(n, dtype="float32")[:, None]
        ...         self.batch_size = batch_size
        ...     def __len__(self):
        ...         return -(-len(self.x) // self.batch_size)
        ...     def __getitem__(self, i):
        ...         x = self.x[i * self.batch_size:(i + 1) * self.batch_size]
        ...         return x, x ** 2
        >>> ds = Squares(10, batch_size=4, workers=2)
        >>> ds.num_batches, ds.workers, ds.max_queue_size
        (3, 2, 10)
        >>> adapter = lm.data.get_data_adapter(ds, shuffle=False)
        >>> [data[0].shape for _, data in adapter.epoch(0)]
        [(4, 1), (4, 1), (2, 1)]
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers = _check_count(workers, "workers", minimum=0)
        if not isinstance(use_multiprocessing, bool):
            raise ValueError(f"PyDataset: `use_multiprocessing` must be True or False; received "
                             f"{use_multiprocessing!r}.")
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = _check_count(max_queue_size, "max_queue_size", minimum=1)

    def _setting(self, name, default):
        value = self.__dict__.get(f"_{name}")
        if value is None:
            warnings.warn(
                f"{type(self).__name__} should call `super().__init__(**kwargs)` in its "
                "constructor; `**kwargs` may include `workers`, `use_multiprocessing` and "
                "`max_queue_size`. Using the defaults.",
                stacklevel=3,
            )
            self.__dict__.update(_workers=1, _use_multiprocessing=False, _max_queue_size=10)
            value = self.__dict__[f"_{name}"]
        return value

    @property
    def workers(self) -> int:
        return self._setting("workers", 1)

    @workers.setter
    def workers(self, value) -> None:
        self._workers = _check_count(value, "workers", minimum=0)

    @property
    def use_multiprocessing(self) -> bool:
        return self._setting("use_multiprocessing", False)

    @use_multiprocessing.setter
    def use_multiprocessing(self, value) -> None:
        self._use_multiprocessing = bool(value)

    @property
    def max_queue_size(self) -> int:
        return self._setting("max_queue_size", 10)

    @max_queue_size.setter
    def max_queue_size(self, value) -> None:
        self._max_queue_size = _check_count(value, "max_queue_size", minimum=1)

    @property
    def num_batches(self) -> int:
        """The number of batches: ``len(self)`` unless a subclass overrides it. ``None``
        means endless (as in Keras): ``fit`` then needs ``steps_per_epoch`` and reads batches
        0, 1, 2, ... on across epochs, without shuffling."""
        return len(self)

    @property
    def parallel(self) -> bool:
        """Whether ``fit`` loads the batches in a pool (Keras's rule)."""
        return self.workers > 1 or (self.workers > 0 and self.use_multiprocessing)


def _check_count(value, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"PyDataset: `{name}` must be an integer >= {minimum}; received {value!r}.")
    return int(value)
