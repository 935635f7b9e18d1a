"""Merging layers: combine a list of inputs (``Add``, ``Concatenate``, ``Dot``, ...), and their
functional forms (``add``, ``concatenate``, ``dot``, ...)."""

from lamina.layers.merging.base_merge import Merge
from lamina.layers.merging.concatenate import Concatenate
from lamina.layers.merging.dot import Dot
from lamina.layers.merging.elementwise import Add, Average, Maximum, Minimum, Multiply, Subtract
from lamina.layers.merging.functions import (
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)

__all__ = ["Add", "Average", "Concatenate", "Dot", "Maximum", "Merge", "Minimum", "Multiply", "Subtract", "add",
           "average", "concatenate", "dot", "maximum", "minimum", "multiply", "subtract"]
