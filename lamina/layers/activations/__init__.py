"""Activation layers: ``ReLU``, ``LeakyReLU``, ``PReLU``, ``ELU`` and ``Softmax`` (``Activation``
itself, which takes any activation by name, is a core layer)."""

from lamina.layers.activations.elu import ELU
from lamina.layers.activations.leaky_relu import LeakyReLU
from lamina.layers.activations.prelu import PReLU
from lamina.layers.activations.relu import ReLU
from lamina.layers.activations.softmax import Softmax

__all__ = ["ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax"]
