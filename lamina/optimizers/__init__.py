"""Optimizers (``lm.optimizers``): optax transformations whose state lives in ``lm.Variable``s.

``Optimizer`` is the base class and wraps any optax ``GradientTransformation``; ``SGD``,
``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad`` and ``Lion`` have Keras 3's names, arguments
and numbers; ``LossScaleOptimizer`` wraps one with dynamic loss scaling (mixed float16);
``schedules`` holds the learning-rate schedules. ``get("adam")`` resolves a name, a config
dict, a class or an instance.
"""

from lamina.optimizers import schedules
from lamina.optimizers.adagrad import Adagrad
from lamina.optimizers.adam import Adam, AdamW
from lamina.optimizers.base import Optimizer
from lamina.optimizers.lion import Lion
from lamina.optimizers.loss_scale_optimizer import LossScaleOptimizer
from lamina.optimizers.rmsprop import RMSprop
from lamina.optimizers.sgd import SGD
from lamina.saving.object_registry import register_builtin, register_family
from lamina.saving.serialization import deserialize_object, serialize_object

_CLASSES = (Optimizer, SGD, Adam, AdamW, RMSprop, Adagrad, Lion, LossScaleOptimizer)
_ALIASES = {
    **{cls.__name__: cls for cls in _CLASSES},
    "sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad, "lion": Lion,
}
for _cls in _CLASSES:
    register_builtin(_cls)
register_family("lamina.optimizers", "optimizer", _ALIASES, Optimizer)


def serialize(optimizer) -> dict:
    """``{"class_name": ..., "config": {...}}`` for an optimizer (its state is not included)."""
    return serialize_object(optimizer)


def deserialize(config, custom_objects=None) -> Optimizer:
    """A new optimizer from a config dict (as ``serialize`` gives) or a name such as ``"adam"``."""
    if isinstance(config, str):
        config = config.lower() if config.lower() in _ALIASES else config
    if isinstance(config, dict) and not isinstance(config.get("config", {}), dict):
        raise ValueError(f"A serialized optimizer must look like {{'class_name': ..., 'config': {{...}}}}; got {config!r}.")
    if isinstance(config, dict) and "class_name" in config:
        # Optimizer.from_config turns a serialized learning-rate schedule back into an object.
        cls = _ALIASES.get(config["class_name"])
        if cls is not None:
            return cls.from_config(config.get("config") or {}, custom_objects)
    optimizer = deserialize_object(config, kind="optimizer", aliases=_ALIASES, custom_objects=custom_objects)
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"Could not interpret optimizer identifier: {config!r}")
    return optimizer


def get(identifier) -> Optimizer:
    """An optimizer from an instance (returned as is), a class, a name (``"adam"``, ``"sgd"``,
    ``"adamw"``, ``"rmsprop"``, ``"adagrad"``, ``"lion"``; Keras's defaults) or a config dict.

    Example:
        >>> import lamina as lm
        >>> opt = lm.optimizers.get("adam")
        >>> type(opt).__name__, opt.get_config()["learning_rate"]
        ('Adam', 0.001)
        >>> lm.optimizers.get(lm.optimizers.serialize(opt)).get_config() == {**opt.get_config(), "name": opt.name}
        True
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    return deserialize(identifier)


__all__ = ["Adagrad", "Adam", "AdamW", "Lion", "LossScaleOptimizer", "Optimizer", "RMSprop", "SGD", "deserialize", "get",
           "schedules", "serialize"]
