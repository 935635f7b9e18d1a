"""Keras's other names for built-in layers (``MaxPool2D`` for ``MaxPooling2D``, ...).

Each alias is the very class it names, so ``isinstance`` checks, the class registry and saved
configs see only the canonical class: a layer built as ``MaxPool2D`` saves as
``"MaxPooling2D"``, as in Keras. ``lm.layers`` exposes the aliases as attributes but leaves
them out of its ``__all__``, which lists each layer class once.

Example:
    >>> import lamina as lm
    >>> lm.layers.MaxPool2D is lm.layers.MaxPooling2D
    True
    >>> lm.layers.serialize(lm.layers.Convolution1D(4, 3))["class_name"]
    'Conv1D'
"""

from lamina.layers.attention import GroupedQueryAttention
from lamina.layers.convolutional import (
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Conv3DTranspose,
    SeparableConv1D,
    SeparableConv2D,
)
from lamina.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)

MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (
    GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D)
Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
Convolution1DTranspose, Convolution2DTranspose, Convolution3DTranspose = (
    Conv1DTranspose, Conv2DTranspose, Conv3DTranspose)
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D
GroupQueryAttention = GroupedQueryAttention  # the only name Keras 3.15 exports it under

# The alias names only: lm.layers imports exactly these and keeps them out of its __all__.
__all__ = [
    "AvgPool1D", "AvgPool2D", "AvgPool3D",
    "Convolution1D", "Convolution1DTranspose", "Convolution2D", "Convolution2DTranspose",
    "Convolution3D", "Convolution3DTranspose",
    "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D",
    "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D", "GroupQueryAttention",
    "MaxPool1D", "MaxPool2D", "MaxPool3D",
    "SeparableConvolution1D", "SeparableConvolution2D",
]
