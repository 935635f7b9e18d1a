"""``lm.data.Dataset``: a sequence of ready-made batches (Keras's ``PyDataset``, simplified)."""

from __future__ import annotations


class Dataset:
    """A sequence of batches: subclass it, define ``__len__`` and ``__getitem__``.

    ``__len__`` returns the number of batches in one epoch and ``__getitem__(i)`` the ``i``-th
    batch as ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` (NumPy or JAX arrays, or dicts /
    lists of them). Use it when the data does not fit in memory or is produced per batch (file
    reading, augmentation). ``fit(shuffle=True)`` visits the batch indices in a new order each
    epoch (the samples inside a batch are the batch's business); ``on_epoch_begin()`` and
    ``on_epoch_end()`` run around each epoch, e.g. to reshuffle the samples behind the batches.
    Unlike Keras's ``PyDataset`` there are no worker threads or processes, and no
    ``super().__init__()`` call is needed.

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
