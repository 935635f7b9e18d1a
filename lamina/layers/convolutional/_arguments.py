"""Argument checks and shape arithmetic shared by the convolution, pooling and reshaping layers.

The rules are Keras 3's (``keras.src.utils.argument_validation`` and
``keras.src.ops.operation_utils``), so that shapes, defaults and configs agree with Keras.
"""

from __future__ import annotations

import operator

from lamina import constraints, initializers, regularizers
from lamina.core import settings

DATA_FORMATS = ("channels_last", "channels_first")


def normalize_tuple(value, n, name, owner, allow_zero=False) -> tuple:
    """``value`` (an int or ``n`` ints) as a tuple of ``n`` ints, checked."""
    message = f"{owner}: `{name}` must be an int or a tuple of {n} ints, got {value!r}."
    try:
        values = (_as_int(value),) * n if not hasattr(value, "__len__") else tuple(map(_as_int, value))
    except TypeError:
        raise ValueError(message) from None
    if len(values) != n:
        raise ValueError(message)
    low = 0 if allow_zero else 1
    if any(v < low for v in values):
        raise ValueError(f"{owner}: every value of `{name}` must be >= {low}, got {value!r}.")
    return values


def _as_int(value) -> int:
    if isinstance(value, bool):
        raise TypeError(value)
    return operator.index(value)


def normalize_data_format(value, owner) -> str:
    """``None`` means ``lm.config.image_data_format()`` (``"channels_last"`` unless set)."""
    if value is None:
        return settings.image_data_format()
    data_format = str(value).lower()
    if data_format not in DATA_FORMATS:
        raise ValueError(f"{owner}: `data_format` must be one of {DATA_FORMATS}, got {value!r}.")
    return data_format


def normalize_padding(value, owner, allow_causal=False) -> str:
    allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    padding = value.lower() if isinstance(value, str) else value
    if padding not in allowed:
        raise ValueError(f"{owner}: `padding` must be one of {allowed}, got {value!r}.")
    return padding


def normalize_pairs(value, n, name, owner) -> tuple:
    """Padding/cropping amounts: an int, ``n`` ints (symmetric) or ``n`` pairs -> ``n`` pairs."""
    if not hasattr(value, "__len__"):
        value = _as_int_or_fail(value, name, owner)
        if value < 0:
            raise ValueError(f"{owner}: `{name}` cannot be negative, got {value!r}.")
        return ((value, value),) * n
    if len(value) != n:
        raise ValueError(
            f"{owner}: `{name}` must be an int, a tuple of {n} ints or a tuple of {n} pairs of "
            f"ints, got {value!r}."
        )
    return tuple(normalize_tuple(v, 2, f"{name}[{i}]", owner, allow_zero=True) for i, v in enumerate(value))


def _as_int_or_fail(value, name, owner) -> int:
    try:
        return _as_int(value)
    except TypeError:
        raise ValueError(f"{owner}: `{name}` must be an int or a tuple of ints, got {value!r}.") from None


def spatial_axes(rank, data_format) -> tuple:
    """The axes of the ``rank`` spatial dimensions of a ``(batch, ..., channels)`` input."""
    return tuple(range(1, rank + 1)) if data_format == "channels_last" else tuple(range(2, rank + 2))


def channel_axis(data_format) -> int:
    return -1 if data_format == "channels_last" else 1


def check_rank(layer, input_shape, ndim, expected="") -> None:
    """The input-spec message, raised from ``build`` (which runs before the spec is checked)."""
    if len(input_shape) != ndim:
        raise ValueError(
            f"Input to layer '{layer.path}' ({type(layer).__name__}) is incompatible: expected "
            f"rank {ndim}{f' {expected}' if expected else ''}, got input of shape {tuple(input_shape)}."
        )


def conv_output_length(length, kernel_size, stride, padding, dilation=1):
    """Output length of a convolution or pooling window along one axis (``None`` stays)."""
    if length is None:
        return None
    if padding == "valid":
        return (length - dilation * (kernel_size - 1) - 1) // stride + 1
    return (length - 1) // stride + 1  # "same" and "causal"


def conv_transpose_padding(kernel_size, stride, dilation, padding, output_padding) -> tuple:
    """``(left, right)`` padding for ``lax.conv_transpose``, as Keras's JAX backend computes it."""
    kernel_size = (kernel_size - 1) * dilation + 1
    if padding == "valid":
        if output_padding is None:
            output_padding = max(kernel_size, stride) - kernel_size
        return kernel_size - 1, kernel_size - 1 + output_padding
    if output_padding is None:
        pad_len = stride + kernel_size - 2
    else:
        pad_len = kernel_size + kernel_size % 2 - 2 + output_padding
    left = min(pad_len // 2 + pad_len % 2, kernel_size - 1)
    return left, pad_len - left


def conv_transpose_output_length(length, kernel_size, stride, padding, output_padding, dilation=1):
    """Output length of a transposed convolution along one axis (TensorFlow's rule, as Keras)."""
    if length is None:
        return None
    kernel_size = (kernel_size - 1) * dilation + 1
    if padding == "valid":
        if output_padding is None:
            output_padding = max(kernel_size, stride) - kernel_size
        return (length - 1) * stride + kernel_size + output_padding
    if output_padding is None:
        return length * stride
    return (length - 1) * stride + kernel_size % 2 + output_padding


def check_strides_and_dilation(owner, strides, dilation_rate) -> None:
    """Keras refuses strides > 1 together with dilation > 1; so do we, with the values."""
    if max(strides) > 1 and max(dilation_rate) > 1:
        raise ValueError(f"{owner}: `strides` > 1 is not supported together with `dilation_rate` > 1 "
                         f"(got strides={strides}, dilation_rate={dilation_rate}).")


def set_geometry(layer, owner, rank, filters, kernel_size, strides, padding, data_format, dilation_rate,
                 allow_causal=False) -> None:
    """Check and set ``layer``'s ``filters``, ``kernel_size``, ``strides``, ``padding``,
    ``data_format`` and ``dilation_rate`` as Keras normalizes them (the convolutions' and
    ConvLSTM cells'); errors name ``owner``."""
    if isinstance(filters, bool) or not isinstance(filters, int) or filters <= 0:
        raise ValueError(f"{owner}: `filters` must be a positive integer, got {filters!r}.")
    layer.filters = filters
    layer.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size", owner)
    layer.strides = normalize_tuple(strides, rank, "strides", owner)
    layer.padding = normalize_padding(padding, owner, allow_causal=allow_causal)
    layer.data_format = normalize_data_format(data_format, owner)
    layer.dilation_rate = normalize_tuple(dilation_rate, rank, "dilation_rate", owner)
    check_strides_and_dilation(owner, layer.strides, layer.dilation_rate)


def geometry_config(layer) -> dict:
    """The arguments ``set_geometry`` set, in Keras's config order."""
    return {
        "filters": layer.filters,
        "kernel_size": layer.kernel_size,
        "strides": layer.strides,
        "padding": layer.padding,
        "data_format": layer.data_format,
        "dilation_rate": layer.dilation_rate,
    }


def resolve_kernel_and_bias(layer, kernel_initializer, bias_initializer, kernel_regularizer,
                            bias_regularizer, kernel_constraint, bias_constraint) -> None:
    """Set ``layer``'s kernel/bias initializer, regularizer and constraint from Keras-style
    identifiers (names, objects or configs)."""
    layer.kernel_initializer = initializers.get(kernel_initializer)
    layer.bias_initializer = initializers.get(bias_initializer)
    layer.kernel_regularizer = regularizers.get(kernel_regularizer)
    layer.bias_regularizer = regularizers.get(bias_regularizer)
    layer.kernel_constraint = constraints.get(kernel_constraint)
    layer.bias_constraint = constraints.get(bias_constraint)
