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
    axis = 1 if indices.ndim > 1 else 0
    if output_mode == "multi_hot":
        return xp.max(_one_hot(indices, depth, dtype, xp), axis=axis)
    if count_weights is not None:
        hot = _one_hot(indices, depth, count_weights.dtype, xp) * count_weights[..., None]
        return xp.sum(hot, axis=axis)
    return xp.sum(_one_hot(indices, depth, dtype, xp), axis=axis)


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
