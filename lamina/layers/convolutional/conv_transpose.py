"""Transposed convolutions (``Conv1DTranspose``, ``Conv2DTranspose``, ``Conv3DTranspose``).

The padding given to ``lax.conv_transpose`` and the output sizes follow Keras's JAX backend
(TensorFlow's rule): with ``padding="same"`` and no ``output_padding`` the output is
``input * strides``; with ``"valid"`` it is ``(input - 1) * strides + max(kernel, strides)``;
an ``output_padding`` (each value < its stride) fixes the size exactly.
"""

from __future__ import annotations

from jax import lax

from lamina import activations
from lamina.layers.convolutional import _arguments as args
from lamina.layers.convolutional.base_conv import add_bias, as_kernel_dtype, dimension_numbers, input_channels
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object


class BaseConvTranspose(Layer):
    """N-D transposed convolution; subclasses set ``rank``.

    The kernel has shape ``kernel_size + (filters, in_channels)`` (Keras's layout, so Keras
    weights load as they are); weights are ``[kernel, bias]``.
    """

    rank: int = None

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        owner = f"{type(self).__name__} '{self.name}'"
        rank = self.rank
        if isinstance(filters, bool) or not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"{owner}: `filters` must be a positive integer, got {filters!r}.")
        self.filters = filters
        self.kernel_size = args.normalize_tuple(kernel_size, rank, "kernel_size", owner)
        self.strides = args.normalize_tuple(strides, rank, "strides", owner)
        self.dilation_rate = args.normalize_tuple(dilation_rate, rank, "dilation_rate", owner)
        self.padding = args.normalize_padding(padding, owner)
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = args.normalize_tuple(output_padding, rank, "output_padding", owner,
                                                       allow_zero=True)
            if any(p >= s for p, s in zip(self.output_padding, self.strides)):
                raise ValueError(f"{owner}: each value of `output_padding` must be smaller than the "
                                 f"stride, got output_padding={self.output_padding}, strides={self.strides}.")
        self.data_format = args.normalize_data_format(data_format, owner)
        args.check_strides_and_dilation(owner, self.strides, self.dilation_rate)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        args.resolve_kernel_and_bias(self, kernel_initializer, bias_initializer, kernel_regularizer,
                                     bias_regularizer, kernel_constraint, bias_constraint)
        self.input_spec = InputSpec(ndim=rank + 2)

    def build(self, input_shape):
        channels = input_channels(self, input_shape)
        self.kernel = self.add_weight(
            shape=self.kernel_size + (self.filters, channels), initializer=self.kernel_initializer,
            name="kernel", regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.filters,), initializer=self.bias_initializer, name="bias",
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={args.channel_axis(self.data_format): channels})

    def _output_padding(self):
        return self.output_padding or (None,) * self.rank

    def call(self, inputs):
        padding = [
            args.conv_transpose_padding(k, s, d, self.padding, p)
            for k, s, d, p in zip(self.kernel_size, self.strides, self.dilation_rate, self._output_padding())
        ]
        kernel = self.kernel.value  # in the compute dtype under a mixed policy
        outputs = lax.conv_transpose(
            as_kernel_dtype(inputs, kernel), kernel, self.strides, padding, rhs_dilation=self.dilation_rate,
            dimension_numbers=dimension_numbers(self.rank, self.data_format), transpose_kernel=True,
        )
        return add_bias(self, outputs)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        args.check_rank(self, input_shape, self.rank + 2)
        axes = args.spatial_axes(self.rank, self.data_format)
        lengths = tuple(
            args.conv_transpose_output_length(input_shape[axis], k, s, self.padding, p, d)
            for axis, k, s, d, p in zip(axes, self.kernel_size, self.strides, self.dilation_rate,
                                        self._output_padding())
        )
        if self.data_format == "channels_last":
            return (input_shape[0], *lengths, self.filters)
        return (input_shape[0], self.filters, *lengths)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "output_padding": self.output_padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
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


@register_builtin
class Conv1DTranspose(BaseConvTranspose):
    """1-D transposed convolution, as ``keras.layers.Conv1DTranspose`` (arguments as
    ``Conv2DTranspose``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Conv1DTranspose(4, 3, strides=2, padding="same")(jnp.ones((2, 5, 3))).shape
        (2, 10, 4)
    """

    rank = 1


@register_builtin
class Conv2DTranspose(BaseConvTranspose):
    """2-D transposed convolution ("deconvolution"), as ``keras.layers.Conv2DTranspose``.

    Arguments (Keras's names and defaults): ``filters``, ``kernel_size``, ``strides=1``,
    ``padding="valid"`` (or ``"same"``), ``output_padding=None``, ``data_format=None``
    (``"channels_last"``), ``dilation_rate=1``, ``activation=None``, ``use_bias=True``,
    ``kernel_initializer="glorot_uniform"``, ``bias_initializer="zeros"``, the regularizers
    and constraints. Output size per spatial axis: ``input * strides`` for ``"same"``;
    ``(input - 1) * strides + max(kernel, strides)`` for ``"valid"``; with ``output_padding``
    ``(input - 1) * strides + kernel + output_padding`` (``"valid"``) or
    ``(input - 1) * strides + kernel % 2 + output_padding`` (``"same"``), where ``kernel`` is
    the dilated kernel size.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> up = lm.layers.Conv2DTranspose(8, 3, strides=2, padding="same")
        >>> up(jnp.ones((1, 7, 7, 16))).shape
        (1, 14, 14, 8)
        >>> up.kernel.shape
        (3, 3, 8, 16)
    """

    rank = 2


@register_builtin
class Conv3DTranspose(BaseConvTranspose):
    """3-D transposed convolution, as ``keras.layers.Conv3DTranspose`` (arguments as
    ``Conv2DTranspose``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Conv3DTranspose(2, 2, strides=2)(jnp.ones((1, 2, 3, 4, 1))).shape
        (1, 4, 6, 8, 2)
    """

    rank = 3

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, output_padding=None,
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        # Keras's Conv3DTranspose puts data_format before output_padding (unlike 1-D and 2-D).
        super().__init__(
            filters, kernel_size, strides=strides, padding=padding, output_padding=output_padding,
            data_format=data_format, dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint, **kwargs,
        )
