"""Preprocessing layers: ``Rescaling`` and ``Normalization`` (with ``adapt``)."""

from lamina.layers.preprocessing.normalization import Normalization
from lamina.layers.preprocessing.rescaling import Rescaling

__all__ = ["Normalization", "Rescaling"]
