"""Layers (``lm.layers``): the ``Layer`` base class and the built-in layers."""

from lamina.layers.core import Activation, Dense, Dropout, Input, InputLayer
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer

__all__ = ["Activation", "Dense", "Dropout", "Input", "InputLayer", "InputSpec", "Layer"]
