"""How the categorical layers turn bucket indices into their outputs (``output_mode``).

``"int"`` keeps the indices; ``"one_hot"`` gives each index a row of ``depth`` (a trailing
axis of size 1 is replaced, any other kept); ``"multi_hot"`` and ``"count"`` reduce over the
sample axis (axis 1 of a batch, axis 0 of one sample) to a presence or count per index, as
Keras's ``encode_categorical_inputs`` does. An index outside ``[0, depth)`` (a mask, an
unknown value) contributes nothing. One code path serves NumPy (host-side string layers) and
``jax.numpy`` (layers that run inside compiled code).

Example:
    >>> import numpy as np
    >>> from lamina.layers.preprocessing.categorical_output import encode
    >>> encode(np.array([[0, 2, 2], [1, -1, 1]]), "count", 3, "float32", xp=np).tolist()
    [[1.0, 0.0, 2.0], [0.0, 2.0, 0.0]]
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

MODES = ("int", "one_hot", "multi_hot", "count")


def check_mode(owner: str, output_mode, allowed=MODES) -> str:
    """``output_mode`` checked (Keras's ``"binary"`` read as ``"multi_hot"``)."""
    if output_mode == "binary":
        output_mode = "multi_hot"
    if output_mode == "tf-idf":
        output_mode = "tf_idf"
    if output_mode not in allowed:
        raise ValueError(f"{owner}: `output_mode` must be one of {allowed}, got {output_mode!r}.")
    return output_mode


def _one_hot(indices, depth, dtype, xp):
    return (indices[..., None] == xp.arange(depth)).astype(dtype)


def encode(indices, output_mode, depth, dtype, count_weights=None, xp=jnp):
    """``indices`` (integers) encoded as ``output_mode`` says, with ``depth`` categories."""
    if output_mode == "int":
        return indices
    if indices.ndim == 0:
        indices = indices[None]
    if output_mode == "one_hot":
        if indices.ndim > 1 and indices.shape[-1] == 1:
            indices = indices[..., 0]
        return _one_hot(indices, depth, dtype, xp)
    if indices.ndim <= 2:
        counts = _counts(indices, depth, dtype if count_weights is None else count_weights.dtype, count_weights, xp)
        return (counts > 0).astype(dtype) if output_mode == "multi_hot" else counts
    # Higher ranks reduce axis 1, as Keras does (the one-hot array is then unavoidable).
    if output_mode == "multi_hot":
        return xp.max(_one_hot(indices, depth, dtype, xp), axis=1)
    if count_weights is not None:
        return xp.sum(_one_hot(indices, depth, count_weights.dtype, xp) * count_weights[..., None], axis=1)
    return xp.sum(_one_hot(indices, depth, dtype, xp), axis=1)


def _counts(indices, depth, dtype, weights, xp):
    """Per-row counts (or weight sums) of ``indices`` of rank 1 or 2 by a scatter-add into
    ``(rows, depth)``: a one-hot array first would hold rows x length x depth numbers (a
    20,000-token vocabulary over long texts does not fit in memory)."""
    single = indices.ndim == 1
    indices = indices[None] if single else indices
    if weights is not None:
        weights = xp.broadcast_to(weights[None] if single else weights, indices.shape)
    rows = xp.broadcast_to(xp.arange(indices.shape[0])[:, None], indices.shape)
    valid = (indices >= 0) & (indices < depth)
    if xp is np:  # straight into the output array: a bincount would allocate it twice more (int64, then cast)
        flat = (rows * depth + indices)[valid]
        counts = np.zeros((indices.shape[0], depth), dtype)
        if weights is None:
            present, times = np.unique(flat, return_counts=True)
            counts.reshape(-1)[present] = times
        else:
            np.add.at(counts.reshape(-1), flat, weights[valid])
    else:
        values = xp.ones(indices.shape, dtype) if weights is None else weights.astype(dtype)
        # Out-of-range indices (masks, unknown values) are sent past the end and dropped.
        counts = xp.zeros((indices.shape[0], depth), dtype).at[rows, xp.where(valid, indices, depth)].add(
            values, mode="drop")
    return counts[0] if single else counts


def encoded_shape(input_shape, output_mode, depth) -> tuple:
    """The shape ``encode`` gives for indices of ``input_shape`` (``None`` axes allowed)."""
    input_shape = tuple(input_shape)
    if output_mode == "int":
        return input_shape
    if not input_shape:
        return (depth,)
    if output_mode == "one_hot":
        if len(input_shape) > 1 and input_shape[-1] == 1:
            return input_shape[:-1] + (depth,)
        return input_shape + (depth,)
    if len(input_shape) > 1:
        return (input_shape[0], *input_shape[2:], depth)
    return (depth,)


__all__ = ["MODES", "check_mode", "encode", "encoded_shape"]
