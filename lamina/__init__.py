"""lamina: Keras-style stateful layers and models, compiled by JAX/XLA.

    import jax.numpy as jnp
    import lamina as lm

The state mechanism is ``lamina/core/state.py``; variables ``lamina/core/variable.py``;
``lm.jit`` / ``lm.value_and_grad`` ``lamina/core/transforms.py``; the layer base class
``lamina/layers/layer.py``.
"""

from lamina import activations, constraints, initializers, layers, random, regularizers, saving
from lamina.core.state import StateScope, functionalize
from lamina.core.transforms import jit, value_and_grad
from lamina.core.variable import Variable
from lamina.layers import InputSpec, Layer
from lamina.version import __version__

__all__ = [
    "InputSpec",
    "Layer",
    "StateScope",
    "Variable",
    "__version__",
    "activations",
    "constraints",
    "functionalize",
    "initializers",
    "jit",
    "layers",
    "random",
    "regularizers",
    "saving",
    "value_and_grad",
]
