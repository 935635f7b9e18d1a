"""``lm.distribution``: run a model over many devices with ``jax.sharding`` (API.md, "Scale").

A distribution says how each variable and each batch is split over a ``DeviceMesh``;
variables created while one is active are created split that way (``placement.py``). See
docs/distribution.md for what works today and what is coming.
"""

from lamina.distribution.current import distribution
from lamina.distribution.devices import distribute_tensor, get_device_count, list_devices
from lamina.distribution.distributions import FSDP, DataParallel, Distribution, ModelParallel, set_distribution
from lamina.distribution.explain import Explanation, explain
from lamina.distribution.initialize import initialize
from lamina.distribution.layout import LayoutMap, TensorLayout
from lamina.distribution.mesh import DeviceMesh

__all__ = [
    "FSDP",
    "DataParallel",
    "DeviceMesh",
    "Distribution",
    "Explanation",
    "LayoutMap",
    "ModelParallel",
    "TensorLayout",
    "distribute_tensor",
    "distribution",
    "explain",
    "get_device_count",
    "initialize",
    "list_devices",
    "set_distribution",
]
