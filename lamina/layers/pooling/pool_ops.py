"""Max and average pooling, with a fast path for max pooling over non-overlapping windows.

XLA:CPU differentiates ``lax.reduce_window`` max with ``select_and_scatter``, which is very
slow (6-8x the reshape formulation below for ``MaxPooling2D(2)`` on a 64x28x28x32 batch).
When every stride equals its window (the usual ``MaxPooling2D(2)``) the windows tile the
input, so max pooling is a crop (``"valid"``) or a ``-inf`` pad (``"same"``), a reshape that
splits each spatial axis into ``(windows, window)``, and a ``max`` over the window axes: the
same values, and a gradient made of cheap element-wise operations. Everything else uses
``lax.reduce_window`` exactly as Keras's JAX backend does; for average pooling that is as fast
as the reshape formulation, gradient included, so it is kept.

The two max formulations agree in value. Their gradients differ only where a window holds
several equal maxima: ``reduce_window`` gives the whole gradient to one of them, the reshape
path splits it evenly among them.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from lamina.layers.convolutional import _arguments as args


def pool(inputs, mode, pool_size, strides, padding, data_format):
    """``mode`` ``"max"`` or ``"average"`` pooling over the spatial axes of ``inputs``."""
    if mode == "max" and tuple(strides) == tuple(pool_size):
        return max_pool_by_reshape(inputs, pool_size, padding, data_format)
    return pool_by_window(inputs, mode, pool_size, strides, padding, data_format)


def _lowest(dtype):
    # A Python scalar: reduce_window only differentiates with a literal initial value.
    return -np.inf if jnp.issubdtype(dtype, jnp.floating) else int(jnp.iinfo(dtype).min)


def pool_by_window(inputs, mode, pool_size, strides, padding, data_format):
    """Keras's formulation: ``lax.reduce_window`` (average divides by the in-bounds count)."""
    rank = len(pool_size)
    window, step = [1] * inputs.ndim, [1] * inputs.ndim
    for axis, p, s in zip(args.spatial_axes(rank, data_format), pool_size, strides):
        window[axis], step[axis] = p, s
    if mode == "max":
        return lax.reduce_window(inputs, _lowest(inputs.dtype), lax.max, window, step, padding.upper())
    summed = lax.reduce_window(inputs, 0.0, lax.add, window, step, padding.upper())
    if padding == "valid":
        return summed / math.prod(pool_size)
    ones = jnp.ones([n if w != 1 else 1 for n, w in zip(inputs.shape, window)], inputs.dtype)
    return summed / lax.reduce_window(ones, 0.0, lax.add, window, step, "SAME")


def max_pool_by_reshape(inputs, pool_size, padding, data_format):
    """Max over non-overlapping windows (strides == pool_size): crop or pad, split, reduce."""
    axes = args.spatial_axes(len(pool_size), data_format)
    index, pads, shape, window_axes = [slice(None)] * inputs.ndim, [(0, 0)] * inputs.ndim, [], []
    for axis, size in enumerate(inputs.shape):
        if axis not in axes:
            shape.append(size)
            continue
        p = pool_size[axes.index(axis)]
        if padding == "valid":  # the last, partial window is dropped
            windows = max(size // p, 0)
            index[axis] = slice(0, windows * p)
        else:  # XLA's "same": the odd padding element goes after
            windows = -(-size // p)
            total = windows * p - size
            pads[axis] = (total // 2, total - total // 2)
        window_axes.append(len(shape) + 1)
        shape += [windows, p]
    x = inputs[tuple(index)]
    if any(pad != (0, 0) for pad in pads):
        x = jnp.pad(x, pads, constant_values=_lowest(x.dtype))
    return jnp.max(jnp.reshape(x, shape), axis=tuple(window_axes))


def pooling_output_shape(layer, input_shape) -> tuple:
    """Keras's ``compute_pooling_output_shape`` (``None`` sizes stay ``None``); like Keras, a
    ``"valid"`` window larger than the input is an error rather than an empty output."""
    pool_size, strides = layer.pool_size, layer.strides
    output = list(input_shape)
    for axis, p, s in zip(args.spatial_axes(len(pool_size), layer.data_format), pool_size, strides):
        n = input_shape[axis]
        if n is None:
            continue
        output[axis] = args.conv_output_length(n, p, s, layer.padding)
        if output[axis] <= 0:
            raise ValueError(
                f"{type(layer).__name__} '{layer.path}': pool_size={pool_size} does not fit the input "
                f"of shape {tuple(input_shape)} with padding='valid' (the output would be empty)."
            )
    return tuple(output)
