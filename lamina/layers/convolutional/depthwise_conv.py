"""Depthwise and depthwise-separable convolutions (``DepthwiseConv1D/2D``,
``SeparableConv1D/2D``), as Keras computes them: a grouped convolution with one group per
input channel, then (separable) a 1x1 convolution."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from lamina import activations, constraints, initializers, regularizers
from lamina.layers.convolutional import _arguments as args
from lamina.layers.convolutional.base_conv import add_bias, as_kernel_dtype, conv_output_shape, dimension_numbers, input_channels
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object


def depthwise_conv(layer, inputs, kernel):
    """``kernel`` of shape ``kernel_size + (in_channels, depth_multiplier)``."""
    channels = kernel.shape[-2]
    kernel = jnp.reshape(kernel, kernel.shape[:-2] + (1, channels * kernel.shape[-1]))
    return lax.conv_general_dilated(
        as_kernel_dtype(inputs, kernel), kernel, layer.strides, layer.padding.upper(), rhs_dilation=layer.dilation_rate,
        dimension_numbers=dimension_numbers(layer.rank, layer.data_format), feature_group_count=channels,
    )


class _DepthwiseArguments(Layer):
    """The argument handling shared by the depthwise and separable layers."""

    rank: int = None

    def _init_common(self, kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier,
                     activation, use_bias, depthwise_initializer, bias_initializer,
                     depthwise_regularizer, bias_regularizer, depthwise_constraint, bias_constraint):
        owner = f"{type(self).__name__} '{self.name}'"
        rank = self.rank
        if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, int) or depth_multiplier <= 0:
            raise ValueError(f"{owner}: `depth_multiplier` must be a positive integer, got {depth_multiplier!r}.")
        self.depth_multiplier = depth_multiplier
        self.kernel_size = args.normalize_tuple(kernel_size, rank, "kernel_size", owner)
        self.strides = args.normalize_tuple(strides, rank, "strides", owner)
        self.dilation_rate = args.normalize_tuple(dilation_rate, rank, "dilation_rate", owner)
        self.padding = args.normalize_padding(padding, owner)
        self.data_format = args.normalize_data_format(data_format, owner)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = InputSpec(ndim=rank + 2)
        return owner

    def _common_config(self):
        return {
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "depth_multiplier": self.depth_multiplier,
            "activation": serialize_object(self.activation),
            "use_bias": self.use_bias,
            "depthwise_initializer": serialize_object(self.depthwise_initializer),
            "bias_initializer": serialize_object(self.bias_initializer),
            "depthwise_regularizer": serialize_object(self.depthwise_regularizer),
            "bias_regularizer": serialize_object(self.bias_regularizer),
            "activity_regularizer": serialize_object(self.activity_regularizer),
            "depthwise_constraint": serialize_object(self.depthwise_constraint),
            "bias_constraint": serialize_object(self.bias_constraint),
        }


class BaseDepthwiseConv(_DepthwiseArguments):
    """Each input channel convolved with its own ``depth_multiplier`` filters.

    The kernel has shape ``kernel_size + (in_channels, depth_multiplier)``; the output has
    ``in_channels * depth_multiplier`` channels; weights are ``[kernel, bias]``.
    """

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self._init_common(kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier,
                          activation, use_bias, depthwise_initializer, bias_initializer,
                          depthwise_regularizer, bias_regularizer, depthwise_constraint, bias_constraint)

    def build(self, input_shape):
        channels = input_channels(self, input_shape)
        self.compute_output_shape(input_shape)  # refuses inputs too small for the kernel
        self.kernel = self.add_weight(
            shape=self.kernel_size + (channels, self.depth_multiplier), initializer=self.depthwise_initializer,
            name="kernel", regularizer=self.depthwise_regularizer, constraint=self.depthwise_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(channels * self.depth_multiplier,), initializer=self.bias_initializer, name="bias",
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={args.channel_axis(self.data_format): channels})

    def call(self, inputs):
        return add_bias(self, depthwise_conv(self, inputs, self.kernel.value))

    def compute_output_shape(self, input_shape):
        args.check_rank(self, tuple(input_shape), self.rank + 2)
        channels = input_shape[args.channel_axis(self.data_format)]
        return conv_output_shape(self, input_shape, None if channels is None else channels * self.depth_multiplier)

    def get_config(self):
        return {**super().get_config(), **self._common_config()}


class BaseSeparableConv(_DepthwiseArguments):
    """A depthwise convolution followed by a pointwise (1x1) convolution to ``filters``.

    Weights are ``[depthwise_kernel (kernel_size + (in_channels, depth_multiplier)),
    pointwise_kernel ((1,) * rank + (in_channels * depth_multiplier, filters)), bias]``.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        owner = self._init_common(kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier,
                                  activation, use_bias, depthwise_initializer, bias_initializer,
                                  depthwise_regularizer, bias_regularizer, depthwise_constraint, bias_constraint)
        if isinstance(filters, bool) or not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"{owner}: `filters` must be a positive integer, got {filters!r}.")
        self.filters = filters
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.pointwise_constraint = constraints.get(pointwise_constraint)

    def build(self, input_shape):
        channels = input_channels(self, input_shape)
        self.compute_output_shape(input_shape)
        self.depthwise_kernel = self.add_weight(
            shape=self.kernel_size + (channels, self.depth_multiplier), initializer=self.depthwise_initializer,
            name="depthwise_kernel", regularizer=self.depthwise_regularizer, constraint=self.depthwise_constraint,
        )
        self.pointwise_kernel = self.add_weight(
            shape=(1,) * self.rank + (channels * self.depth_multiplier, self.filters),
            initializer=self.pointwise_initializer, name="pointwise_kernel",
            regularizer=self.pointwise_regularizer, constraint=self.pointwise_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.filters,), initializer=self.bias_initializer, name="bias",
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={args.channel_axis(self.data_format): channels})

    def call(self, inputs):
        outputs = depthwise_conv(self, inputs, self.depthwise_kernel.value)
        outputs = lax.conv_general_dilated(
            outputs, self.pointwise_kernel.value, (1,) * self.rank, "VALID",
            dimension_numbers=dimension_numbers(self.rank, self.data_format),
        )
        return add_bias(self, outputs)

    def compute_output_shape(self, input_shape):
        return conv_output_shape(self, input_shape, self.filters)

    def get_config(self):
        config = {**super().get_config(), "filters": self.filters, **self._common_config()}
        config.update(
            pointwise_initializer=serialize_object(self.pointwise_initializer),
            pointwise_regularizer=serialize_object(self.pointwise_regularizer),
            pointwise_constraint=serialize_object(self.pointwise_constraint),
        )
        return config


@register_builtin
class DepthwiseConv1D(BaseDepthwiseConv):
    """1-D depthwise convolution, as ``keras.layers.DepthwiseConv1D`` (arguments as
    ``DepthwiseConv2D``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.DepthwiseConv1D(3, depth_multiplier=2)(jnp.ones((2, 8, 4))).shape
        (2, 6, 8)
    """

    rank = 1


@register_builtin
class DepthwiseConv2D(BaseDepthwiseConv):
    """2-D depthwise convolution, as ``keras.layers.DepthwiseConv2D``.

    Arguments (Keras's names and defaults): ``kernel_size``, ``strides=1``, ``padding="valid"``,
    ``depth_multiplier=1``, ``data_format=None`` (``"channels_last"``), ``dilation_rate=1``,
    ``activation=None``, ``use_bias=True``, ``depthwise_initializer="glorot_uniform"``,
    ``bias_initializer="zeros"``, ``depthwise_regularizer``, ``bias_regularizer``,
    ``activity_regularizer``, ``depthwise_constraint``, ``bias_constraint``. The kernel (named
    ``kernel``, as in Keras) has shape ``kernel_size + (in_channels, depth_multiplier)``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> dw = lm.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")
        >>> dw(jnp.ones((1, 8, 8, 4))).shape
        (1, 8, 8, 8)
        >>> dw.kernel.shape
        (3, 3, 4, 2)
    """

    rank = 2


@register_builtin
class SeparableConv1D(BaseSeparableConv):
    """1-D depthwise-separable convolution, as ``keras.layers.SeparableConv1D`` (arguments as
    ``SeparableConv2D``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.SeparableConv1D(5, 3, padding="same")(jnp.ones((2, 8, 4))).shape
        (2, 8, 5)
    """

    rank = 1


@register_builtin
class SeparableConv2D(BaseSeparableConv):
    """2-D depthwise-separable convolution, as ``keras.layers.SeparableConv2D``.

    Arguments (Keras's names and defaults): ``filters``, ``kernel_size``, ``strides=1``,
    ``padding="valid"``, ``data_format=None`` (``"channels_last"``), ``dilation_rate=1``,
    ``depth_multiplier=1``, ``activation=None``, ``use_bias=True``,
    ``depthwise_initializer``/``pointwise_initializer="glorot_uniform"``,
    ``bias_initializer="zeros"``, and the depthwise/pointwise/bias regularizers and constraints.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> sep = lm.layers.SeparableConv2D(16, 3, padding="same")
        >>> sep(jnp.ones((1, 8, 8, 4))).shape
        (1, 8, 8, 16)
        >>> [w.name for w in sep.weights]
        ['depthwise_kernel', 'pointwise_kernel', 'bias']
    """

    rank = 2
