"""``split_dataset``: Keras 3's split of a dataset into a left and a right part."""

from __future__ import annotations

import random

import jax
import numpy as np

from lamina.data.dataset import Dataset
from lamina.utils.sample_dataset import SampleDataset

__all__ = ["split_dataset"]


def split_dataset(dataset, left_size=None, right_size=None, shuffle=False, seed=None):
    """Split ``dataset`` into two datasets of samples, as Keras 3 does.

    Args:
        dataset: a NumPy array, a list / tuple (or dict) of arrays with the same length,
            or an ``lm.data.Dataset`` (its batches are read and joined into samples, like
            Keras reads a ``tf.data.Dataset``).
        left_size, right_size: a float in (0, 1) (a fraction of the samples, rounded) or an
            int (a number of samples); ``None`` is the complement of the other. The left part
            is the first ``left_size`` samples, the right part the last ``right_size``.
        shuffle: shuffle the samples first, with Python's ``random.Random(seed)`` (the same
            permutation as Keras's ``random.seed(seed); random.shuffle(...)``, without
            touching the global generator).

    Returns:
        ``(left, right)``: ``lm.data.PyDataset``s (``SampleDataset``) yielding single samples,
        like Keras's unbatched ``tf.data`` results: call ``.batch(n)`` before ``fit``. A
        batched ``lm.data.Dataset`` gives datasets batched with its first batch's size.

    Example:
        >>> import numpy as np, lamina as lm
        >>> left, right = lm.utils.split_dataset(np.arange(10), left_size=0.8)
        >>> len(left), len(right), int(right[0])
        (8, 2, 8)
        >>> [b.tolist() for b in left.batch(5)]
        [[0, 1, 2, 3, 4], [5, 6, 7]]
    """
    arrays, batch_size = _as_arrays(dataset)
    leaves = jax.tree_util.tree_leaves(arrays)
    lengths = {len(leaf) for leaf in leaves}
    if len(lengths) != 1:
        raise ValueError(f"split_dataset: the arrays of `dataset` must have the same length; received lengths "
                         f"{sorted(len(leaf) for leaf in leaves)}.")
    total = lengths.pop()
    if left_size is None and right_size is None:
        raise ValueError("At least one of the `left_size` or `right_size` must be specified. Received: "
                         "left_size=None and right_size=None")
    left_size, right_size = _split_sizes(left_size, right_size, total)
    order = list(range(total))
    if shuffle:
        if seed is None:
            seed = random.randint(0, int(1e6))
        random.Random(seed).shuffle(order)
    order = np.asarray(order, dtype=np.int64)

    def part(rows):
        taken = jax.tree_util.tree_map(lambda a: np.asarray(a)[rows], arrays)
        return SampleDataset(_Rows(taken), len(rows), batch_size=batch_size)

    return part(order[:left_size]), part(order[total - right_size:])


class _Rows:
    """Rows of a structure of arrays; a class, not a closure, so that a dataset with
    ``use_multiprocessing=True`` pickles."""

    def __init__(self, arrays):
        self.arrays = arrays

    def __call__(self, indices):
        return jax.tree_util.tree_map(lambda a: a[indices], self.arrays)


def _as_arrays(dataset):
    """``(structure of arrays, batch size or None)``."""
    if isinstance(dataset, SampleDataset) and dataset.batch_size is not None:
        return _as_arrays(dataset.unbatch())[0], dataset.batch_size
    if isinstance(dataset, SampleDataset):
        elements = list(dataset)
        return jax.tree_util.tree_map(lambda *leaves: np.stack([np.asarray(a) for a in leaves]), *elements), None
    if isinstance(dataset, Dataset):
        batches = list(dataset)
        if not batches:
            raise ValueError("split_dataset: the Dataset passed has no batches.")
        joined = jax.tree_util.tree_map(lambda *leaves: np.concatenate([np.asarray(a) for a in leaves]), *batches)
        return joined, len(jax.tree_util.tree_leaves(batches[0])[0])
    if isinstance(dataset, (np.ndarray, jax.Array)):
        return np.asarray(dataset), None
    if isinstance(dataset, (list, tuple)) and dataset:
        return tuple(np.asarray(a) for a in dataset), None
    if isinstance(dataset, dict) and dataset:
        return {k: np.asarray(v) for k, v in dataset.items()}, None
    raise TypeError("The `dataset` argument must be a NumPy array, a list/tuple (or dict) of arrays with the "
                    f"same length, or an lm.data.Dataset. Received: dataset of type {type(dataset).__name__}")


def _split_sizes(left_size, right_size, total):
    """Keras's ``_rescale_dataset_split_sizes``: the sizes as sample counts, checked."""
    for name, size in (("left_size", left_size), ("right_size", right_size)):
        if size is not None and type(size) not in (int, float):
            raise TypeError(f"Invalid `{name}` Type. Expected: int or float or None, Received: "
                            f"type({name})={type(size)}.")
    if left_size == 0 and right_size == 0:
        raise ValueError("Both `left_size` and `right_size` are zero. At least one of the split sizes "
                         "must be non-zero.")
    for name, size in (("left_size", left_size), ("right_size", right_size)):
        if (type(size) is int and (size <= 0 or size >= total)) or (type(size) is float and (size <= 0 or size >= 1)):
            raise ValueError(f"`{name}` should be either a positive integer smaller than {total}, or a float "
                             f"within the range `[0, 1]`. Received: {name}={size}")
    if type(left_size) is float and type(right_size) is float and left_size + right_size > 1:
        raise ValueError("The sum of `left_size` and `right_size` is greater than 1. It must be less than "
                         "or equal to 1.")
    left = round(left_size * total) if type(left_size) is float else left_size
    right = round(right_size * total) if type(right_size) is float else right_size
    if left is None:
        left = total - right
    elif right is None:
        right = total - left
    if left + right > total:
        raise ValueError(f"The sum of `left_size` and `right_size` should be smaller than the {total}. "
                         f"Received: left_size + right_size = {left + right} and total_length = {total}")
    for size, side in ((left, "left"), (right, "right")):
        if size == 0:
            raise ValueError(f"With `dataset` of length={total}, `left_size`={left} and `right_size`={right}. "
                             f"Resulting {side} side dataset split will be empty. Adjust any of the "
                             "aforementioned parameters")
    return int(left), int(right)
