"""``to_categorical`` (class indices to one-hot rows) and ``normalize`` (rows to unit norm), as
``keras.utils`` has them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_EPSILON = 1e-7  # Keras's backend.epsilon(): the smallest norm a JAX array is divided by.


def to_categorical(x, num_classes=None):
    """One-hot encode integer class indices: shape ``(..., num_classes)``.

    ``x`` holds class indices (a list, NumPy or JAX array). A trailing axis of size 1 is
    dropped first (labels shaped ``(n, 1)`` give ``(n, num_classes)``), as Keras does.
    ``num_classes`` defaults to ``max(x) + 1``. NumPy input (and lists) give a float64 NumPy
    array, as in Keras; a JAX array gives a float32 JAX array (``jax.nn.one_hot``).

    An index outside ``[0, num_classes)`` raises a ``ValueError`` (Keras raises NumPy's
    ``IndexError`` for NumPy input and silently gives a zero row for a tensor).

    Example:
        >>> from lamina.utils import to_categorical
        >>> to_categorical([0, 2, 1]).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
        >>> to_categorical([[1], [0]], num_classes=3).shape
        (2, 3)
    """
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))
                                    or num_classes < 1):
        raise ValueError(f"to_categorical: `num_classes` must be a positive integer or None; "
                         f"got num_classes={num_classes!r}.")
    if isinstance(x, jax.Array):
        if x.ndim > 1 and x.shape[-1] == 1:
            x = x.reshape(x.shape[:-1])
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"to_categorical: expected integer class indices; got dtype {x.dtype}.")
        if num_classes is None:
            num_classes = int(x.max()) + 1 if x.size else 0
        else:
            _check_range(np.asarray(x), num_classes)
        return jax.nn.one_hot(x, int(num_classes))
    values = np.asarray(x)
    if values.size and not np.issubdtype(values.dtype, np.integer):
        if not np.all(np.mod(values, 1) == 0):
            raise ValueError(f"to_categorical: expected integer class indices; got {values.dtype} values "
                             "with a fractional part.")
    values = values.astype("int64")
    shape = values.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = values.reshape(-1)
    if num_classes is None:
        num_classes = int(flat.max()) + 1 if flat.size else 0
    _check_range(flat, num_classes)
    categorical = np.zeros((flat.shape[0], int(num_classes)))
    categorical[np.arange(flat.shape[0]), flat] = 1
    return categorical.reshape(shape + (int(num_classes),))


def _check_range(indices, num_classes):
    if indices.size and (indices.min() < 0 or indices.max() >= num_classes):
        raise ValueError(
            f"to_categorical: class indices must lie in [0, {num_classes}) for num_classes={num_classes}; "
            f"got values from {int(indices.min())} to {int(indices.max())}."
        )


def normalize(x, axis=-1, order=2):
    """``x`` divided by its ``order``-norm along ``axis``, as ``keras.utils.normalize``.

    A NumPy array (or list) gives a NumPy array, and an all-zero slice stays zero; a JAX array
    gives a JAX array, its norm floored at 1e-7 (Keras's two paths, kept).

    Example:
        >>> import numpy as np
        >>> from lamina.utils import normalize
        >>> normalize(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
        [[0.6, 0.8], [0.0, 0.0]]
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"normalize: `order` must be an integer >= 1; got order={order!r}.")
    if not isinstance(x, jax.Array):
        x = np.asarray(x)
        norm = np.atleast_1d(np.linalg.norm(x, order, axis))
        norm[norm == 0] = 1
        # Keras writes ``axis or -1`` here, which turns axis=0 into -1 and fails to broadcast.
        return x / np.expand_dims(norm, axis)
    if x.ndim == 0:
        x = x[None]
    if order == 2:
        inverse = jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
        return x * jnp.minimum(inverse, 1.0 / _EPSILON)
    norm = jnp.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / jnp.maximum(norm, _EPSILON)
