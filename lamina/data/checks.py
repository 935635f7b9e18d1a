"""Checks of loop arguments and labels made once per ``fit`` / ``evaluate``, on the host.

They catch what would otherwise pass silently: a ``batch_size`` of 0 read as "unset", or
sparse labels outside ``[0, num_classes)``, for which cross-entropy is a quiet 0.0 (the
one-hot of an out-of-range label is all zeros) and accuracy a quiet miss.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def batch_size_or_default(batch_size, *, label="batch_size", default=32, method="fit") -> int:
    """``batch_size`` if it is a positive integer, ``default`` if it is None; else an error.

    Example:
        >>> batch_size_or_default(None), batch_size_or_default(8)
        (32, 8)
        >>> batch_size_or_default(0)
        Traceback (most recent call last):
        ...
        ValueError: fit(batch_size=0): `batch_size` must be a positive integer (or None for 32); got 0.
    """
    if batch_size is None:
        return default
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(
            f"{method}({label}={batch_size!r}): `{label}` must be a positive integer (or None "
            f"for {default}); got {batch_size!r}."
        )
    return int(batch_size)


def check_class_labels(labels, num_classes: int, *, user: str, where: str = "y", ignore_class=None) -> None:
    """Raise if an entry of ``labels`` (an array of sparse class ids) is outside ``[0, num_classes)``.

    ``user`` says who reads the labels (``"loss SparseCategoricalCrossentropy"``) and ``where``
    how the message calls the array; entries equal to ``ignore_class`` are allowed. A NumPy
    array is read where it is; a JAX array is reduced on its device (two scalars come back).

    Example:
        >>> import numpy as np
        >>> check_class_labels(np.array([0, 2, 1]), 3, user="loss sparse_categorical_crossentropy")
        >>> check_class_labels(np.array([0, 7, 1]), 3, user="loss sparse_categorical_crossentropy")
        Traceback (most recent call last):
        ...
        ValueError: Label 7 at y[1] is out of range for the loss sparse_categorical_crossentropy: ...
    """
    xp = jnp if isinstance(labels, jax.Array) else np
    if labels.size == 0 or labels.dtype.kind not in "biuf":
        return
    values = labels if ignore_class is None else xp.where(labels == ignore_class, 0, labels)
    low, high = float(xp.min(values)), float(xp.max(values))
    if low >= 0 and high < num_classes:  # NaN compares False: left to the loss, not a range error
        return
    host = np.asarray(values)
    bad = np.flatnonzero((host < 0) | (host >= num_classes))[0]
    position = np.unravel_index(bad, host.shape)
    value = host.flat[bad]
    shown = int(value) if float(value).is_integer() else float(value)
    index = ", ".join(str(int(i)) for i in position)
    allowed = "" if ignore_class is None else f" (or ignore_class={ignore_class})"
    raise ValueError(
        f"Label {shown} at {where}[{index}] is out of range for the {user}: the model's output "
        f"has {num_classes} classes, so sparse labels must be integers in [0, {num_classes}){allowed}. "
        "Renumber the classes from 0, or give the output layer as many units as there are classes."
    )
