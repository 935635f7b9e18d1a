"""``BaseConv``: the N-D convolution behind ``Conv1D``, ``Conv2D`` and ``Conv3D``."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from lamina import activations
from lamina.layers.convolutional import _arguments as args
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.saving.serialization import serialize_object


def dimension_numbers(rank, data_format) -> lax.ConvDimensionNumbers:
    """Keras's layout: inputs ``N...C`` (or ``NC...``), kernels ``...IO``."""
    ndim = rank + 2
    spatial = tuple(args.spatial_axes(rank, data_format))
    lhs = (0, ndim - 1) + spatial if data_format == "channels_last" else (0, 1) + spatial
    rhs = (ndim - 1, ndim - 2) + tuple(range(rank))
    return lax.ConvDimensionNumbers(lhs_spec=lhs, rhs_spec=rhs, out_spec=lhs)


def as_kernel_dtype(inputs, kernel):
    """Integer or bool input (raw ``uint8`` images) in the kernel's dtype: XLA's convolutions
    take one dtype for both operands, where Keras's ``ops.conv`` promotes (uint8 -> float32)."""
    if inputs.dtype.kind in "biu":
        return inputs.astype(kernel.dtype)
    return inputs


def add_bias(layer, outputs):
    """``outputs + bias`` on the channel axis, then the activation."""
    if layer.bias is not None:
        shape = [1] * outputs.ndim
        shape[args.channel_axis(layer.data_format)] = layer.bias.shape[0]
        outputs = outputs + jnp.reshape(layer.bias.value, shape)
    return layer.activation(outputs)


def input_channels(layer, input_shape) -> int:
    """The channel count of ``input_shape`` (checked: known, and the rank is right)."""
    expected = "(batch, *spatial, channels)" if layer.data_format == "channels_last" else "(batch, channels, *spatial)"
    args.check_rank(layer, input_shape, layer.rank + 2, expected)
    channels = input_shape[args.channel_axis(layer.data_format)]
    if channels is None:
        raise ValueError(f"{type(layer).__name__} '{layer.path}': the channel axis of the input must be "
                         f"known, got input shape {tuple(input_shape)}.")
    return channels


def conv_output_shape(layer, input_shape, filters, padding=None) -> tuple:
    """Keras's ``compute_conv_output_shape``: raises when a spatial size would be <= 0."""
    input_shape = tuple(input_shape)
    args.check_rank(layer, input_shape, layer.rank + 2)
    axes = args.spatial_axes(layer.rank, layer.data_format)
    padding = padding or layer.padding
    lengths = tuple(
        args.conv_output_length(input_shape[axis], k, s, padding, d)
        for axis, k, s, d in zip(axes, layer.kernel_size, layer.strides, layer.dilation_rate)
    )
    if any(n is not None and n <= 0 for n in lengths):
        raise ValueError(
            f"{type(layer).__name__} '{layer.path}': the output would have a spatial size <= 0 "
            f"(input shape {input_shape}, kernel_size={layer.kernel_size}, strides={layer.strides}, "
            f"dilation_rate={layer.dilation_rate}, padding={padding!r})."
        )
    if layer.data_format == "channels_last":
        return (input_shape[0], *lengths, filters)
    return (input_shape[0], filters, *lengths)


class BaseConv(Layer):
    """N-D convolution (cross-correlation) plus bias and activation, as Keras's ``BaseConv``.

    Subclasses set ``rank``. The kernel has shape ``kernel_size + (in_channels // groups,
    filters)``; weights are ``[kernel, bias]`` in Keras's order.
    """

    rank: int = None

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        owner = f"{type(self).__name__} '{self.name}'"
        rank = self.rank
        args.set_geometry(self, owner, rank, filters, kernel_size, strides, padding, data_format, dilation_rate,
                          allow_causal=rank == 1)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0:
            raise ValueError(f"{owner}: `groups` must be a positive integer, got {groups!r}.")
        if filters % groups:
            raise ValueError(f"{owner}: `filters` ({filters}) must be divisible by `groups` ({groups}).")
        self.groups = groups
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        args.resolve_kernel_and_bias(self, kernel_initializer, bias_initializer, kernel_regularizer,
                                     bias_regularizer, kernel_constraint, bias_constraint)
        self.input_spec = InputSpec(ndim=rank + 2)

    def build(self, input_shape):
        channels = input_channels(self, input_shape)
        if channels % self.groups:
            raise ValueError(
                f"{type(self).__name__} '{self.path}': the input's {channels} channels must be divisible "
                f"by `groups` ({self.groups}); input shape {tuple(input_shape)}."
            )
        self.compute_output_shape(input_shape)  # refuses inputs too small for the kernel
        self.kernel = self.add_weight(
            shape=self.kernel_size + (channels // self.groups, self.filters),
            initializer=self.kernel_initializer, name="kernel",
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.filters,), initializer=self.bias_initializer, name="bias",
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={args.channel_axis(self.data_format): channels})

    def call(self, inputs):
        padding = self.padding
        if padding == "causal":  # left-pad so that output t only sees inputs <= t
            pads = [(0, 0)] * inputs.ndim
            pads[args.spatial_axes(1, self.data_format)[0]] = (self.dilation_rate[0] * (self.kernel_size[0] - 1), 0)
            inputs = jnp.pad(inputs, pads)
            padding = "valid"
        kernel = self.kernel.value  # in the compute dtype under a mixed policy
        outputs = lax.conv_general_dilated(
            as_kernel_dtype(inputs, kernel), kernel, self.strides, padding.upper(),
            rhs_dilation=self.dilation_rate,
            dimension_numbers=dimension_numbers(self.rank, self.data_format),
            feature_group_count=self.groups,
        )
        return add_bias(self, outputs)

    def compute_output_shape(self, input_shape):
        return conv_output_shape(self, input_shape, self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            **args.geometry_config(self),
            "groups": self.groups,
            "activation": serialize_object(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": serialize_object(self.kernel_initializer),
            "bias_initializer": serialize_object(self.bias_initializer),
            "kernel_regularizer": serialize_object(self.kernel_regularizer),
            "bias_regularizer": serialize_object(self.bias_regularizer),
            "activity_regularizer": serialize_object(self.activity_regularizer),
            "kernel_constraint": serialize_object(self.kernel_constraint),
            "bias_constraint": serialize_object(self.bias_constraint),
        }
