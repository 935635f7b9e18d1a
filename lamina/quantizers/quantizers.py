"""Quantizers and the quantization arithmetic Keras 3 exports in ``keras.quantizers``.

Weights are quantized once, on the host, with NumPy (``to_numpy=True``: a large kernel never
needs a second device copy); activations are quantized at call time with ``jax.numpy``. The
formulas are Keras's, so a lamina layer quantized from the same float weights holds the same
integers and scales as a Keras one, and the two interchange ``.keras`` files.
"""

from __future__ import annotations

import jax.numpy as jnp
import ml_dtypes
import numpy as np

from lamina.saving.serialization import Configurable

EPSILON = 1e-7  # Keras's backend.epsilon()


class Quantizer(Configurable):
    """Base class: ``__call__(x)`` returns the quantized ``x`` (here, ``x`` unchanged);
    ``output_dtype`` is the dtype of what it returns.

    Example:
        >>> import lamina as lm
        >>> lm.quantizers.Quantizer()(3.0), lm.quantizers.Quantizer().output_dtype
        (3.0, 'int8')
    """

    def __init__(self, output_dtype="int8"):
        self.output_dtype = output_dtype

    def __call__(self, x):
        return x

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement get_config().")


def _axes(axis):
    # A JSON config holds a list; NumPy and jax.numpy want an int or a tuple.
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def abs_max_quantize(inputs, axis, value_range=(-127, 127), dtype="int8", epsilon=EPSILON, to_numpy=False):
    """``(quantized, scale)``: ``scale = value_range[1] / (max|inputs| over axis + epsilon)``
    (kept dims), ``quantized = clip(round(inputs * scale), *value_range)`` cast to ``dtype``.
    Dequantize with ``quantized / scale``. ``to_numpy=True`` computes on the host.

    Example:
        >>> import numpy as np, lamina as lm
        >>> q, scale = lm.quantizers.abs_max_quantize(np.array([[1.0, -2.0], [0.5, 4.0]], "float32"), axis=0)
        >>> np.asarray(q).tolist(), np.asarray(scale).round(2).tolist()
        ([[127, -64], [63, 127]], [[127.0, 31.75]])
    """
    axis = _axes(axis)
    if to_numpy:
        x = np.asarray(inputs)
        scale = np.divide(value_range[1], np.add(np.max(np.abs(x), axis=axis, keepdims=True), epsilon))
        scale = scale.astype(x.dtype)
        quantized = np.clip(np.round(np.multiply(x, scale)), value_range[0], value_range[1]).astype(dtype)
        return jnp.asarray(quantized), jnp.asarray(scale)
    x = jnp.asarray(inputs)
    scale = jnp.divide(value_range[1], jnp.max(jnp.abs(x), axis=axis, keepdims=True) + epsilon).astype(x.dtype)
    quantized = jnp.clip(jnp.round(x * scale), value_range[0], value_range[1]).astype(dtype)
    return quantized, scale


def abs_max_quantize_grouped_with_zero_point(inputs, block_size, value_range=(-8, 7), dtype="int8",
                                             epsilon=EPSILON, to_numpy=True):
    """Asymmetric quantization of a 2-D ``(input_dim, output_dim)`` tensor in groups of
    ``block_size`` rows: ``(quantized, scale, zero_point)`` with ``scale`` and ``zero_point``
    of shape ``(ceil(input_dim / block_size), output_dim)``; dequantize with
    ``(quantized - zero_point) * scale`` (group by group). Computed on the host.

    Example:
        >>> import numpy as np, lamina as lm
        >>> q, scale, zero = lm.quantizers.abs_max_quantize_grouped_with_zero_point(
        ...     np.arange(8, dtype="float32").reshape(4, 2), block_size=2)
        >>> q.shape, scale.shape, zero.shape
        ((4, 2), (2, 2), (2, 2))
    """
    del to_numpy  # always on the host: quantizing weights happens once
    x = np.asarray(inputs)
    source_dtype = x.dtype
    rows, columns = x.shape
    groups = -(-rows // block_size)
    padded = np.concatenate([x, np.zeros((groups * block_size - rows, columns), x.dtype)], axis=0)
    blocks = padded.reshape(groups, block_size, columns)
    low, high = value_range
    minimum = blocks.min(axis=1, keepdims=True)
    maximum = blocks.max(axis=1, keepdims=True)
    scale = np.divide(np.subtract(maximum, minimum) + epsilon, high - low)
    zero_point = np.clip(np.round(np.divide(-minimum, scale)) + low, low, high)
    quantized = np.clip(np.round(np.divide(blocks, scale)) + zero_point, low, high).astype(dtype)
    quantized = quantized.reshape(groups * block_size, columns)[:rows]
    return (jnp.asarray(quantized), jnp.asarray(np.squeeze(scale, axis=1).astype(source_dtype)),
            jnp.asarray(np.squeeze(zero_point, axis=1).astype("int8")))


def dequantize_with_sz_map(weights_matrix, scale, zero, g_idx, group_axis=-1):
    """``(weights_matrix - zero[g]) * scale[g]``, with each position's group ``g`` read from
    ``g_idx`` and the group parameters taken along ``group_axis`` of ``scale`` and ``zero``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.quantizers.dequantize_with_sz_map(jnp.array([[1, 3]], "int8"), jnp.array([[0.5], [2.0]]),
        ...     jnp.array([[1], [0]], "int8"), jnp.array([0.0]), group_axis=0).tolist()
        [[0.0, 1.0]]
    """
    groups = jnp.asarray(g_idx).astype("int32")
    scales = jnp.take(scale, groups, axis=group_axis)
    zeros = jnp.take(zero, groups, axis=group_axis).astype(scales.dtype)
    return (weights_matrix - zeros) * scales


class AbsMaxQuantizer(Quantizer):
    """Abs-max quantizer (``abs_max_quantize``) over ``axis`` (given here, or at call time;
    ``-1`` when neither gives it): ``quantizer(x) -> (quantized, scale)``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> q, scale = lm.quantizers.AbsMaxQuantizer()(jnp.array([[0.5, -1.0]]))
        >>> q.tolist(), round(float(scale[0, 0]), 3)  # epsilon keeps 0.5 just under 63.5
        ([[63, -127]], 127.0)
    """

    def __init__(self, axis=None, value_range=(-127, 127), epsilon=EPSILON, output_dtype="int8"):
        super().__init__(output_dtype=output_dtype)
        self.axis = None if axis is None else ((axis,) if isinstance(axis, int) else tuple(axis))
        self.value_range = tuple(value_range)
        self.epsilon = epsilon
        if output_dtype == "int8" and (self.value_range[0] < -128 or self.value_range[1] > 127):
            raise ValueError(
                "AbsMaxQuantizer: output_dtype='int8' needs value_range within [-128, 127]; received "
                f"value_range={value_range}."
            )

    def __call__(self, x, axis=None, to_numpy=False):
        axis = self.axis if axis is None else axis
        return abs_max_quantize(x, -1 if axis is None else axis, self.value_range, self.output_dtype,
                                self.epsilon, to_numpy)

    def get_config(self):
        config = {"value_range": self.value_range, "epsilon": self.epsilon, "output_dtype": self.output_dtype}
        if self.axis is not None:
            config["axis"] = self.axis
        return config


def compute_float8_scale(amax, scale, dtype_max, margin=0):
    """The next float8 scale from the running ``amax``: ``amax / dtype_max * 2**margin``,
    keeping ``scale`` where ``amax`` is zero or not finite (Transformer Engine's rule).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> float(lm.quantizers.compute_float8_scale(jnp.float32(448.0), jnp.float32(1.0), 448.0))
        1.0
    """
    inverse = jnp.reciprocal(scale)
    factor = jnp.divide(jnp.divide(dtype_max, amax), 2**margin)
    factor = jnp.where(amax > 0.0, factor, inverse)
    factor = jnp.where(jnp.isfinite(amax), factor, inverse)
    return jnp.reciprocal(factor)


def compute_float8_amax_history(x, amax_history):
    """``amax_history`` rolled by one with ``max|x|`` written first.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.quantizers.compute_float8_amax_history(jnp.array([-3.0, 2.0]), jnp.array([1.0, 2.0, 0.0])).tolist()
        [3.0, 0.0, 1.0]
    """
    amax = jnp.max(jnp.abs(x)).astype(amax_history.dtype)
    return jnp.roll(amax_history, -1).at[0].set(amax)


def quantize_and_dequantize(inputs, scale, quantized_dtype, compute_dtype):
    """``inputs / scale`` clipped to ``quantized_dtype``'s range, cast to it (float8 rounding)
    and back to ``compute_dtype``, times ``scale``: the values a float8 computation sees.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.quantizers.quantize_and_dequantize(jnp.array([1.0, 500.0]), jnp.float32(1.0),
        ...                                       "float8_e4m3fn", "float32").tolist()
        [1.0, 448.0]
    """
    limit = jnp.asarray(float(ml_dtypes.finfo(quantized_dtype).max), compute_dtype)
    x = jnp.clip(jnp.divide(inputs, jnp.asarray(scale).astype(compute_dtype)), -limit, limit)
    x = x.astype(quantized_dtype)
    return x.astype(compute_dtype) * jnp.asarray(scale).astype(compute_dtype)


def pack_int4(arr, axis=0, dtype="int8"):
    """``(packed, packed_shape, orig_len)``: int4 values (``[-8, 7]``, held as int8) packed two
    per byte along ``axis``, the first of each pair in the low nibble (an odd length is padded
    with a zero). Computed on the host.

    Example:
        >>> import numpy as np, lamina as lm
        >>> packed, shape, length = lm.quantizers.pack_int4(np.array([[-3, 7], [2, -8], [1, 0]], "int8"))
        >>> np.asarray(packed).tolist(), shape, length
        ([[45, -121], [1, 0]], (2, 2), 3)
    """
    if dtype not in ("int8", "uint8"):
        raise ValueError(f"pack_int4: dtype must be 'int8' or 'uint8', got {dtype!r}.")
    values = np.asarray(arr)
    if values.dtype != np.dtype(dtype):
        raise TypeError(f"pack_int4: expected a {dtype} tensor, got {values.dtype}.")
    axis = axis % values.ndim
    values = np.moveaxis(values, axis, 0)
    length = values.shape[0]
    if length % 2:
        values = np.concatenate([values, np.zeros((1, *values.shape[1:]), values.dtype)], axis=0)
    low = np.bitwise_and(values[::2], np.array(0x0F, values.dtype))
    high = np.bitwise_and(values[1::2], np.array(0x0F, values.dtype))
    packed = np.bitwise_or(low, np.left_shift(high, np.array(4, values.dtype))).astype(dtype)
    packed = np.moveaxis(packed, 0, axis)
    return jnp.asarray(packed), tuple(packed.shape), length


def unpack_int4(packed, orig_len, axis=0, dtype="int8"):
    """The int4 values ``pack_int4`` packed along ``axis``, as ``dtype``, the padding cut to
    ``orig_len``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.quantizers.unpack_int4(jnp.array([[45, -121], [1, 0]], "int8"), 3).tolist()
        [[-3, 7], [2, -8], [1, 0]]
    """
    if dtype not in ("int8", "uint8"):
        raise ValueError(f"unpack_int4: dtype must be 'int8' or 'uint8', got {dtype!r}.")
    packed = jnp.asarray(packed)
    if packed.dtype not in (jnp.int8, jnp.uint8):
        raise TypeError(f"unpack_int4: expected an int8 or uint8 tensor, got {packed.dtype}.")
    axis = axis % packed.ndim
    moved = jnp.moveaxis(packed, axis, 0)
    mask = jnp.asarray(0x0F, packed.dtype)
    low = jnp.bitwise_and(moved, mask)
    high = jnp.bitwise_and(jnp.right_shift(moved, 4), mask)
    if dtype == "int8":  # nibbles 8..15 are -8..-1
        eight = jnp.asarray(8, packed.dtype)
        low, high = jnp.bitwise_xor(low, eight) - eight, jnp.bitwise_xor(high, eight) - eight
    pairs = jnp.stack([low.astype(dtype), high.astype(dtype)], axis=1)
    unpacked = pairs.reshape((-1, *moved.shape[1:]))[:orig_len]
    return jnp.moveaxis(unpacked, 0, axis)


__all__ = ["AbsMaxQuantizer", "Quantizer", "abs_max_quantize", "abs_max_quantize_grouped_with_zero_point",
           "compute_float8_amax_history", "compute_float8_scale", "dequantize_with_sz_map", "pack_int4",
           "quantize_and_dequantize", "unpack_int4"]
