"""lamina: Keras-style stateful layers and models, compiled by JAX/XLA.

    import jax.numpy as jnp
    import lamina as lm

The state mechanism is ``lamina/core/state.py``; variables ``lamina/core/variable.py``;
``lm.jit`` / ``lm.value_and_grad`` ``lamina/core/transforms.py``; the layer base class
``lamina/layers/layer.py``; the train step ``lamina/trainers/trainer.py``.
"""

from lamina import (
    activations,
    backend,
    callbacks,
    config,
    constraints,
    data,
    distribution,
    export,
    initializers,
    layers,
    losses,
    metrics,
    mixed_precision,
    optimizers,
    quantizers,
    random,
    regularizers,
    saving,
    utils,
)
from lamina.core import compilation_cache as _compilation_cache
from lamina.core.remat import RematScope, remat
from lamina.core.state import StateScope, functionalize
from lamina.core.symbolic import SymbolicTensor
from lamina.core.transforms import jit, value_and_grad
from lamina.core.variable import Variable
from lamina.initializers import Initializer
from lamina.layers import Input, InputSpec, Layer
from lamina.losses import Loss
from lamina.metrics import Metric
from lamina.mixed_precision import DTypePolicy
from lamina.models import Model, Sequential
from lamina.optimizers import Optimizer
from lamina.regularizers import Regularizer
from lamina.saving import load_model
from lamina.version import __version__

KerasTensor = SymbolicTensor  # Keras's name for what lm.Input returns

# JAX's persistent compilation cache in a user folder, unless LAMINA_COMPILATION_CACHE=0 or
# JAX was configured already (lamina/core/compilation_cache.py).
_compilation_cache.configure()

__all__ = [
    "DTypePolicy",
    "Initializer",
    "Input",
    "InputSpec",
    "KerasTensor",
    "Layer",
    "Loss",
    "Metric",
    "Model",
    "Optimizer",
    "Regularizer",
    "RematScope",
    "Sequential",
    "StateScope",
    "SymbolicTensor",
    "Variable",
    "__version__",
    "activations",
    "backend",
    "callbacks",
    "config",
    "constraints",
    "data",
    "distribution",
    "export",
    "functionalize",
    "initializers",
    "jit",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "mixed_precision",
    "optimizers",
    "quantizers",
    "random",
    "regularizers",
    "remat",
    "saving",
    "utils",
    "value_and_grad",
]
