"""Pooling layers: ``MaxPooling1D/2D/3D``, ``AveragePooling1D/2D/3D``,
``GlobalAveragePooling1D/2D/3D``, ``GlobalMaxPooling1D/2D/3D``,
``AdaptiveAveragePooling1D/2D/3D``, ``AdaptiveMaxPooling1D/2D/3D``.

Max pooling over non-overlapping windows (``strides == pool_size``, the default) is computed by
reshape-and-reduce, whose gradient is much faster on XLA:CPU than ``reduce_window``'s; see
``pool_ops``.
"""

from lamina.layers.pooling.adaptive_pooling import (
    AdaptiveAveragePooling1D,
    AdaptiveAveragePooling2D,
    AdaptiveAveragePooling3D,
    AdaptiveMaxPooling1D,
    AdaptiveMaxPooling2D,
    AdaptiveMaxPooling3D,
    BaseAdaptivePooling,
)
from lamina.layers.pooling.global_pooling import (
    BaseGlobalPooling,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
)
from lamina.layers.pooling.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    BasePooling,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)

__all__ = [
    "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D", "AdaptiveMaxPooling1D",
    "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D", "BaseAdaptivePooling",
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "BaseGlobalPooling", "BasePooling",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
]
