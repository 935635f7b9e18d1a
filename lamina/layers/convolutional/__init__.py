"""Convolution layers: ``Conv1D/2D/3D``, ``Conv1D/2D/3DTranspose``, ``DepthwiseConv1D/2D``,
``SeparableConv1D/2D``.

They call ``jax.lax.conv_general_dilated`` / ``jax.lax.conv_transpose`` with the kernel's
``.value`` (raw ``lax`` primitives take arrays, not variables), with Keras's layouts, padding
rules and weight order, so ``set_weights(keras_layer.get_weights())`` reproduces a Keras layer.
"""

from lamina.layers.convolutional.base_conv import BaseConv
from lamina.layers.convolutional.conv import Conv1D, Conv2D, Conv3D
from lamina.layers.convolutional.conv_transpose import (
    BaseConvTranspose,
    Conv1DTranspose,
    Conv2DTranspose,
    Conv3DTranspose,
)
from lamina.layers.convolutional.depthwise_conv import (
    BaseDepthwiseConv,
    BaseSeparableConv,
    DepthwiseConv1D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
)

__all__ = [
    "BaseConv", "BaseConvTranspose", "BaseDepthwiseConv", "BaseSeparableConv",
    "Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose",
    "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
]
