"""Layers (``lm.layers``): the ``Layer`` base class and the built-in layers, by family."""

from lamina.layers.core import (
    Activation,
    Dense,
    Dropout,
    EinsumDense,
    Embedding,
    Identity,
    Input,
    InputLayer,
    Lambda,
)
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.merging import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from lamina.layers.normalization import (
    BatchNormalization,
    GroupNormalization,
    LayerNormalization,
    UnitNormalization,
)
from lamina.layers.preprocessing import Normalization, Rescaling

__all__ = [
    "Activation", "Add", "Average", "BatchNormalization", "Concatenate", "Dense", "Dot", "Dropout",
    "EinsumDense", "Embedding", "GroupNormalization", "Identity", "Input", "InputLayer", "InputSpec",
    "Lambda", "Layer", "LayerNormalization", "Maximum", "Minimum", "Multiply", "Normalization",
    "Rescaling", "Subtract", "UnitNormalization",
]
