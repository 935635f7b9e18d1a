"""Max and average pooling, with a fast path for max pooling over non-overlapping windows.

XLA:CPU differentiates ``lax.reduce_window`` max with ``select_and_scatter``, which is very
slow (6-8x the formulation below for ``MaxPooling2D(2)`` on a 64x28x28x32 batch). When every
stride equals its window (the usual ``MaxPooling2D(2)``) the windows tile the input, so max
pooling is a crop (``"valid"``) or a ``-inf`` pad (``"same"``), a reshape that splits each
spatial axis into ``(windows, window)``, and a max over the window positions, taken as
strided slices of the reshaped input (one per position in the window).

Its gradient is written by hand (``_max_over_windows``): the forward pass keeps only which
position of each window won (``int8``), not the input, and the backward pass routes the
gradient there with element-wise selects. Keeping a byte per output instead of the float
input makes the MNIST convnet's step need 27 instead of 44 MiB of XLA temporaries, under the
32 MiB above which glibc hands out fresh, page-faulting memory on every call: 24 instead of
42 ms per step on 2 cores (JAX's own gradient of the reshape-and-max needs the input). The
first maximum in the window (row-major order) wins, as in ``select_and_scatter`` (XLA picks
with ``>=``), so gradients equal Keras's even where a window holds equal values. The rule is
a ``jax.custom_vjp``: reverse mode (``grad``, ``vjp``) works, forward mode (``jvp``,
``jacfwd``) through this pooling does not; a ``custom_jvp`` formulation, which allows both,
measured 32 instead of 22 ms per convnet step, so it was not chosen.

Everything else uses ``lax.reduce_window`` exactly as Keras's JAX backend does; for average
pooling that is as fast as a reshape formulation, gradient included, so it is kept.

ONNX export (``lamina.export``) runs the model inside ``portable_pooling()``, where windowed
pooling is a max (or sum) of strided slices of the padded input instead: jax2onnx lowers
``reduce_window`` over an NHWC tensor to an ONNX ``MaxPool`` with a 4-D kernel, which
onnxruntime refuses ("Unsupported pooling size"), while slices export to any runtime. The
values are the same (a max is exact; sums differ by rounding only); training never uses it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from lamina.layers.convolutional import _arguments as args

_PORTABLE = contextvars.ContextVar("lamina_portable_pooling", default=False)


@contextlib.contextmanager
def portable_pooling():
    """Within this context, windowed pooling is traced as strided slices (for exporters
    whose target runtimes lack N-D pooling); outside it, as ``lax.reduce_window``."""
    token = _PORTABLE.set(True)
    try:
        yield
    finally:
        _PORTABLE.reset(token)


def pool(inputs, mode, pool_size, strides, padding, data_format):
    """``mode`` ``"max"`` or ``"average"`` pooling over the spatial axes of ``inputs``."""
    if mode == "max" and tuple(strides) == tuple(pool_size):
        return max_pool_by_reshape(inputs, pool_size, padding, data_format)
    if _PORTABLE.get():
        return pool_by_slices(inputs, mode, pool_size, strides, padding, data_format)
    return pool_by_window(inputs, mode, pool_size, strides, padding, data_format)


def pool_by_slices(inputs, mode, pool_size, strides, padding, data_format):
    """``pool_by_window``'s values from one strided slice of the padded input per window
    position (no ``reduce_window``); forward use only (export), its gradient is not tuned."""
    axes = args.spatial_axes(len(pool_size), data_format)
    pads, counts_shape = [(0, 0)] * inputs.ndim, [1] * inputs.ndim
    for axis, p, s in zip(axes, pool_size, strides):
        size = inputs.shape[axis]
        if padding == "same":
            total = max((-(-size // s) - 1) * s + p - size, 0)
            pads[axis] = (total // 2, total - total // 2)  # XLA's "same": the odd element after
        counts_shape[axis] = size
    fill = _lowest(inputs.dtype) if mode == "max" else 0
    x = jnp.pad(inputs, pads, constant_values=fill) if any(p != (0, 0) for p in pads) else inputs
    windows = _strided_windows(x, axes, pool_size, strides)
    if mode == "max":
        return functools.reduce(jnp.maximum, windows)
    summed = functools.reduce(jnp.add, windows)
    if padding == "valid":
        return summed / math.prod(pool_size)
    # The in-bounds count of each window, computed here (a constant, not part of the graph).
    ones = np.pad(np.ones(counts_shape, np.float32), pads)
    counts = functools.reduce(np.add, _strided_windows(ones, axes, pool_size, strides))
    return summed / jnp.asarray(counts, inputs.dtype)


def _strided_windows(x, axes, pool_size, strides):
    """One strided slice of ``x`` per position in the window, each shaped like the output."""
    outputs = {axis: (x.shape[axis] - p) // s + 1 for axis, p, s in zip(axes, pool_size, strides)}
    slices = []
    for position in itertools.product(*(range(p) for p in pool_size)):
        index = [slice(None)] * x.ndim
        for axis, offset, s in zip(axes, position, strides):
            index[axis] = slice(offset, offset + (outputs[axis] - 1) * s + 1, s)
        slices.append(x[tuple(index)])
    return slices


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
    x = jnp.reshape(x, shape)
    if math.prod(pool_size) > _MAX_WINDOW_POSITIONS:
        return jnp.max(x, axis=tuple(window_axes))
    return _max_over_windows(x, tuple(window_axes))


_MAX_WINDOW_POSITIONS = 64  # one slice per position: beyond this, a plain max


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _max_over_windows(x, window_axes):
    """``jnp.max(x, window_axes)``, differentiated as ``select_and_scatter`` does (the first
    maximum of each window takes the gradient) and remembering only the winners."""
    # Without differentiation no winners are needed (and exporters trace only this).
    return functools.reduce(jnp.maximum, _window_positions(x, window_axes))


def _window_positions(x, window_axes):
    """One array per position in the window, each shaped like the output (strided slices)."""
    positions = itertools.product(*(range(x.shape[axis]) for axis in window_axes))
    slices = []
    for position in positions:
        index = [slice(None)] * x.ndim
        for axis, offset in zip(window_axes, position):
            index[axis] = offset
        slices.append(x[tuple(index)])
    return slices


def _max_and_winner(x, window_axes):
    candidates = _window_positions(x, window_axes)
    best = functools.reduce(jnp.maximum, candidates)
    winner = jnp.full(best.shape, len(candidates) - 1, jnp.int8)
    for k in reversed(range(len(candidates) - 1)):  # the earliest equal position wins
        winner = jnp.where(candidates[k] == best, jnp.int8(k), winner)
    return best, winner


def _max_over_windows_forward(x, window_axes):
    best, winner = _max_and_winner(x, window_axes)
    return best, (winner, tuple(x.shape[axis] for axis in window_axes))


def _max_over_windows_backward(window_axes, residuals, g):
    winner, window = residuals
    zero = jnp.zeros((), g.dtype)
    routed = jnp.stack([jnp.where(winner == k, g, zero) for k in range(math.prod(window))], axis=-1)
    routed = routed.reshape(g.shape + window)  # output axes, then the window axes
    # Put each window axis back at its place in x.
    kept = [axis for axis in range(routed.ndim) if axis not in window_axes]
    order = {axis: i for i, axis in enumerate(kept)}
    order.update({axis: g.ndim + j for j, axis in enumerate(window_axes)})
    return (jnp.transpose(routed, [order[axis] for axis in range(routed.ndim)]),)


_max_over_windows.defvjp(_max_over_windows_forward, _max_over_windows_backward)


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
