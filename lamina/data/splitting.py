"""``train_validation_split``: hold out the last fraction of in-memory data for validation."""

from __future__ import annotations

import math

import jax

from lamina.data.dataset import Dataset
from lamina.data.standardize import (
    _arg_labels,
    _check_num_samples,
    _is_array,
    _is_structure,
    _labeled_leaves,
    _standardize,
)


def train_validation_split(x, y=None, sample_weight=None, validation_split=0.0):
    """Split arrays into ``((x, y, sw), (x_val, y_val, sw_val))``; validation is the tail.

    As in Keras, the validation set is the LAST ``validation_split`` fraction of the samples,
    taken before any shuffling: the first ``floor(n * (1 - validation_split))`` samples train.
    Only in-memory arrays (NumPy/JAX, or dicts/lists/tuples of them) can be split; pass
    ``validation_data`` for datasets and generators. The arrays come back standardized (64-bit
    types narrowed to 32 bits), as NumPy or JAX arrays like the input; None stays None.

    Example:
        >>> import numpy as np
        >>> from lamina.data import train_validation_split
        >>> (x, y, sw), (xv, yv, swv) = train_validation_split(
        ...     np.arange(10), np.arange(10) * 2, None, validation_split=0.2)
        >>> x.tolist(), yv.tolist(), swv
        ([0, 1, 2, 3, 4, 5, 6, 7], [16, 18], None)
    """
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) or not (
        0.0 < float(validation_split) < 1.0
    ):
        raise ValueError(
            "`validation_split` must be a float strictly between 0 and 1 (the fraction of the "
            f"samples held out); got {validation_split!r}."
        )
    for value, label in zip((x, y, sample_weight), _arg_labels("x")):
        if value is None:
            continue
        if isinstance(value, Dataset) or not (_is_array(value) or _is_structure(value)):
            raise ValueError(
                f"`validation_split` only works with in-memory arrays (NumPy/JAX, or dicts/"
                f"lists/tuples of them), but `{label}` is a {type(value).__name__}. Pass "
                "`validation_data` instead."
            )
    if x is None:
        raise ValueError("`x` is None; pass the input data.")
    x = _standardize(x, "x")
    y = _standardize(y, "y")
    sample_weight = _standardize(sample_weight, "sample_weight", weight=True)
    named = (
        _labeled_leaves(x, "x") + _labeled_leaves(y, "y") + _labeled_leaves(sample_weight,
                                                                              "sample_weight")
    )
    n = _check_num_samples(named, "The data passed as `x`")
    split_at = int(math.floor(n * (1.0 - float(validation_split))))
    if split_at == 0 or split_at == n:
        raise ValueError(
            f"The training data holds {n} samples, too few to split with "
            f"`validation_split={validation_split}` (that leaves {split_at} for training and "
            f"{n - split_at} for validation). Provide more data or another fraction."
        )

    def part(tree, start, stop):
        if tree is None:
            return None
        if not _is_structure(tree):
            return tree[start:stop]
        return jax.tree_util.tree_map(lambda a: a[start:stop], tree)

    train = tuple(part(t, 0, split_at) for t in (x, y, sample_weight))
    val = tuple(part(t, split_at, n) for t in (x, y, sample_weight))
    return train, val
