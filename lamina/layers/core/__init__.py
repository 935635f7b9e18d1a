"""Core layers."""

from lamina.layers.core.activation import Activation
from lamina.layers.core.dense import Dense
from lamina.layers.core.dropout import Dropout
from lamina.layers.core.input_layer import Input, InputLayer

__all__ = ["Activation", "Dense", "Dropout", "Input", "InputLayer"]
