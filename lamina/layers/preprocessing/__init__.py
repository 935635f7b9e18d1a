"""Preprocessing layers: ``Rescaling``, ``Normalization`` (with ``adapt``), ``Resizing``,
``CenterCrop`` and the random image augmentation layers (``RandomFlip``, ``RandomRotation``,
``RandomZoom``, ``RandomTranslation``, ``RandomContrast``, ``RandomCrop``)."""

from lamina.layers.preprocessing.center_crop import CenterCrop
from lamina.layers.preprocessing.normalization import Normalization
from lamina.layers.preprocessing.random_contrast import RandomContrast
from lamina.layers.preprocessing.random_crop import RandomCrop
from lamina.layers.preprocessing.random_flip import RandomFlip
from lamina.layers.preprocessing.random_rotation import RandomRotation
from lamina.layers.preprocessing.random_translation import RandomTranslation
from lamina.layers.preprocessing.random_zoom import RandomZoom
from lamina.layers.preprocessing.rescaling import Rescaling
from lamina.layers.preprocessing.resizing import Resizing

__all__ = ["CenterCrop", "Normalization", "RandomContrast", "RandomCrop", "RandomFlip", "RandomRotation",
           "RandomTranslation", "RandomZoom", "Rescaling", "Resizing"]
