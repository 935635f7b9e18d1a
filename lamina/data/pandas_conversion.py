"""pandas ``DataFrame`` / ``Series`` as ``x``, ``y`` or ``sample_weight``: to NumPy, by position.

As in Keras, rows are taken in their order (the index is ignored) and a ``DataFrame`` becomes
one ``(rows, columns)`` matrix: numeric and boolean columns of mixed types are promoted to a
common type (ints with floats give floats; 64-bit types then narrow to 32 bits like any array).
A column of another type (strings, objects, categories, dates) or with missing values in a
nullable type is refused with its name. pandas is never imported here: an object is pandas'
only if its class comes from an already imported ``pandas`` module.
"""

from __future__ import annotations

import sys

import numpy as np


def is_pandas(obj) -> bool:
    """True for a pandas ``DataFrame`` or ``Series`` (without importing pandas).

    Example:
        >>> import numpy as np
        >>> is_pandas(np.zeros(3))
        False
    """
    if "pandas" not in sys.modules:
        return False
    pd = sys.modules["pandas"]
    kinds = tuple(getattr(pd, name, None) for name in ("DataFrame", "Series"))
    return None not in kinds and isinstance(obj, kinds)


def _column_array(series, where: str) -> np.ndarray:
    import pandas as pd  # already imported: the object came from it

    dtype = series.dtype
    if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)) or (
        isinstance(dtype, pd.CategoricalDtype)
    ):
        raise ValueError(
            f"{where} has dtype {dtype}; expected numbers or booleans. Encode it as numbers "
            "(e.g. integer class ids, or one-hot columns with pandas.get_dummies) or drop it."
        )
    if isinstance(dtype, np.dtype):
        return series.to_numpy()
    # A nullable extension type (Int64, Float32, boolean): missing values have no number.
    if series.isna().any():
        raise ValueError(
            f"{where} ({dtype}) has missing values; fill them (fillna) or drop those rows."
        )
    return series.to_numpy(dtype=dtype.numpy_dtype)


def pandas_to_numpy(obj, label: str) -> np.ndarray:
    """A ``DataFrame`` as a ``(rows, columns)`` array, a ``Series`` as a ``(rows,)`` array.

    ``label`` names the argument in errors (``x``, ``y['price']``).

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
        >>> pandas_to_numpy(frame, "x")
        array([[1. , 0.5],
               [2. , 1.5]])
        >>> pandas_to_numpy(pd.DataFrame({"city": ["Oslo", "Rome"]}), "x")
        Traceback (most recent call last):
        ...
        ValueError: `x` (a pandas DataFrame): column 'city' has dtype ...
    """
    import pandas as pd  # already imported: the object came from it

    if isinstance(obj, pd.Series):
        return _column_array(obj, f"`{label}` (a pandas Series {obj.name!r})")
    columns = [
        _column_array(obj.iloc[:, i], f"`{label}` (a pandas DataFrame): column {name!r}")
        for i, name in enumerate(obj.columns)
    ]
    if not columns:
        raise ValueError(f"`{label}` is a pandas DataFrame without columns.")
    dtype = np.result_type(*(column.dtype for column in columns))
    out = np.empty((len(obj), len(columns)), dtype=dtype)
    for i, column in enumerate(columns):
        out[:, i] = column
    return out
