"""Regularization layers: ``ActivityRegularization`` and the layers that are random in
training only, ``GaussianNoise``, ``GaussianDropout``, ``AlphaDropout`` and
``SpatialDropout1D/2D/3D`` (``Dropout`` itself is a core layer)."""

from lamina.layers.regularization.activity_regularization import ActivityRegularization
from lamina.layers.regularization.alpha_dropout import AlphaDropout
from lamina.layers.regularization.gaussian_dropout import GaussianDropout
from lamina.layers.regularization.gaussian_noise import GaussianNoise
from lamina.layers.regularization.spatial_dropout import SpatialDropout1D, SpatialDropout2D, SpatialDropout3D

__all__ = ["ActivityRegularization", "AlphaDropout", "GaussianDropout", "GaussianNoise", "SpatialDropout1D",
           "SpatialDropout2D", "SpatialDropout3D"]
