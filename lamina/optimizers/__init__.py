"""Optimizers (``lm.optimizers``): optax transformations whose state lives in ``lm.Variable``s.

``Optimizer`` is the base class and wraps any optax ``GradientTransformation``; ``SGD``,
``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``, ``Lion``, ``Adadelta``, ``Adafactor``,
``Adamax``, ``Ftrl``, ``Lamb``, ``Muon``, ``Nadam`` and ``ScheduleFreeAdamW`` have Keras 3's names,
arguments and numbers; ``LossScaleOptimizer`` wraps one with dynamic loss scaling (mixed
float16), ``MultiOptimizer`` gives weights different optimizers (``OptimizerMap``); ``schedules``
holds the learning-rate schedules. ``get("adam")`` resolves a name, a config dict, a class or
an instance.
"""

from lamina.optimizers import lookup, schedules
from lamina.optimizers.adadelta import Adadelta
from lamina.optimizers.adafactor import Adafactor
from lamina.optimizers.adagrad import Adagrad
from lamina.optimizers.adam import Adam, AdamW
from lamina.optimizers.adamax import Adamax
from lamina.optimizers.base import Optimizer
from lamina.optimizers.ftrl import Ftrl
from lamina.optimizers.lamb import Lamb
from lamina.optimizers.lion import Lion
from lamina.optimizers.lookup import deserialize, get, serialize
from lamina.optimizers.loss_scale_optimizer import LossScaleOptimizer
from lamina.optimizers.multi_optimizer import MultiOptimizer, OptimizerMap
from lamina.optimizers.muon import Muon
from lamina.optimizers.nadam import Nadam
from lamina.optimizers.rmsprop import RMSprop
from lamina.optimizers.schedule_free_adamw import ScheduleFreeAdamW
from lamina.optimizers.sgd import SGD
from lamina.saving.object_registry import register_builtin, register_family

# The wrapper rebuilds its inner optimizer through ``lookup``, so ``lookup`` cannot import it:
# the package completes the table.
for _cls in (LossScaleOptimizer, MultiOptimizer):
    lookup.ALIASES[_cls.__name__] = _cls
for _cls in (*lookup.CLASSES, LossScaleOptimizer, MultiOptimizer, OptimizerMap):
    register_builtin(_cls)
register_family("lamina.optimizers", "optimizer", lookup.ALIASES, Optimizer)


__all__ = ["Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "Ftrl", "Lamb", "Lion", "LossScaleOptimizer",
           "MultiOptimizer", "Muon", "Nadam", "Optimizer", "OptimizerMap", "RMSprop", "SGD", "ScheduleFreeAdamW",
           "deserialize", "get", "schedules", "serialize"]
