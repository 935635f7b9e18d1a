"""``timeseries_dataset_from_array``: Keras's sliding windows over a time series, as an
``lm.data.PyDataset`` of NumPy batches (``lamina/utils/sample_dataset.py``)."""

from __future__ import annotations

import numpy as np

from lamina.utils.sample_dataset import SampleDataset

__all__ = ["timeseries_dataset_from_array"]


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1, sampling_rate=1,
                                  batch_size=128, shuffle=False, seed=None, start_index=None,
                                  end_index=None):
    """Batches of windows over ``data`` (time on axis 0), with Keras 3's arguments and windows.

    Window ``k`` starts at ``start_index + k * sequence_stride`` and takes ``sequence_length``
    steps ``sampling_rate`` apart; its target is ``targets[start_index + k * sequence_stride]``
    (``targets=None``: the batches are the windows alone). Windows never reach
    ``end_index`` (exclusive). With ``shuffle=True`` the windows are put in the order Keras
    draws first (``np.random.RandomState(seed)``); later passes reshuffle from ``seed``.
    Keras also shuffles within a buffer of ``8 * batch_size`` windows, so the batches of a
    shuffled dataset hold the same windows as Keras's but not in the same order.

    Returns:
        an ``lm.data.PyDataset`` (a ``SampleDataset``) yielding ``(windows, targets)`` NumPy
        batches (or ``windows``), of the data's dtype.

    Example:
        >>> import numpy as np, lamina as lm
        >>> ds = lm.utils.timeseries_dataset_from_array(np.arange(10), np.arange(10) * 10,
        ...                                             sequence_length=3, batch_size=4)
        >>> x, y = ds[0]
        >>> len(ds), x[1].tolist(), y[1].tolist()
        (2, [1, 2, 3], 10)
    """
    data = np.asarray(data)
    if data.ndim == 0:
        raise ValueError(f"timeseries_dataset_from_array: `data` must have a time axis; received a scalar {data!r}.")
    length = len(data)
    if start_index:
        if start_index < 0:
            raise ValueError(f"`start_index` must be 0 or greater. Received: start_index={start_index}")
        if start_index >= length:
            raise ValueError("`start_index` must be lower than the length of the data. Received: "
                             f"start_index={start_index}, for data of length {length}")
    if end_index:
        if start_index and end_index <= start_index:
            raise ValueError("`end_index` must be higher than `start_index`. Received: "
                             f"start_index={start_index}, and end_index={end_index}")
        if end_index >= length:
            raise ValueError("`end_index` must be lower than the length of the data. Received: "
                             f"end_index={end_index}, for data of length {length}")
        if end_index <= 0:
            raise ValueError(f"`end_index` must be higher than 0. Received: end_index={end_index}")
    for name, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
        if value <= 0:
            raise ValueError(f"`{name}` must be higher than 0. Received: {name}={value}")
        if value >= length:
            raise ValueError(f"`{name}` must be lower than the length of the data. Received: "
                             f"{name}={value}, for data of length {length}")
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, (int, np.integer)) or sequence_length < 1:
        raise ValueError(f"`sequence_length` must be a positive int. Received: sequence_length={sequence_length!r}")
    start = 0 if start_index is None else int(start_index)
    end = length if end_index is None else int(end_index)
    num_windows = end - start - (sequence_length - 1) * sampling_rate
    if targets is not None:
        targets = np.asarray(targets)
        # Keras caps by len(targets); its gather would fail past the targets' end, so cap there.
        num_windows = min(num_windows, len(targets), len(targets) - start)
    starts = np.arange(0, max(num_windows, 0), sequence_stride)
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(starts)
    fetch = _Windows(data, targets, start + starts, np.arange(sequence_length) * sampling_rate)
    return SampleDataset(fetch, len(starts), batch_size=batch_size, shuffle=shuffle, seed=seed)


class _Windows:
    """Windows (and targets) by window number; a class, not a closure, so that a dataset with
    ``use_multiprocessing=True`` pickles."""

    def __init__(self, data, targets, starts, offsets):
        self.data, self.targets, self.starts, self.offsets = data, targets, starts, offsets

    def __call__(self, indices):
        first = self.starts[indices]
        windows = self.data[first[:, None] + self.offsets]
        return windows if self.targets is None else (windows, self.targets[first])
