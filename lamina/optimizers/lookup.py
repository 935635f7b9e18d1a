"""Optimizers by name or config: ``get``, ``serialize`` and ``deserialize`` (re-exported as
``lm.optimizers.get``...).

A module of its own so that ``LossScaleOptimizer`` and ``MultiOptimizer`` can rebuild their
inner optimizers through it while the package imports them.
"""

from lamina.optimizers.adadelta import Adadelta
from lamina.optimizers.adafactor import Adafactor
from lamina.optimizers.adagrad import Adagrad
from lamina.optimizers.adam import Adam, AdamW
from lamina.optimizers.adamax import Adamax
from lamina.optimizers.base import Optimizer
from lamina.optimizers.ftrl import Ftrl
from lamina.optimizers.lamb import Lamb
from lamina.optimizers.lion import Lion
from lamina.optimizers.muon import Muon
from lamina.optimizers.nadam import Nadam
from lamina.optimizers.rmsprop import RMSprop
from lamina.optimizers.schedule_free_adamw import ScheduleFreeAdamW
from lamina.optimizers.sgd import SGD
from lamina.saving.serialization import deserialize_object, serialize_object

CLASSES = (Optimizer, SGD, Adam, AdamW, RMSprop, Adagrad, Lion, Adadelta, Adafactor, Adamax, Ftrl, Lamb,
           Muon, Nadam, ScheduleFreeAdamW)
# Names and class names ``deserialize`` looks up first; the package adds the wrappers
# (``LossScaleOptimizer``, ``MultiOptimizer``).
ALIASES = {
    **{cls.__name__: cls for cls in CLASSES},
    "sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad, "lion": Lion,
    "adadelta": Adadelta, "adafactor": Adafactor, "adamax": Adamax, "ftrl": Ftrl, "lamb": Lamb,
    "muon": Muon, "nadam": Nadam, "schedulefreeadamw": ScheduleFreeAdamW,
}


def serialize(optimizer) -> dict:
    """``{"class_name": ..., "config": {...}}`` for an optimizer (its state is not included)."""
    return serialize_object(optimizer)


def deserialize(config, custom_objects=None) -> Optimizer:
    """A new optimizer from a config dict (as ``serialize`` gives) or a name such as ``"adam"``."""
    if isinstance(config, str):
        config = config.lower() if config.lower() in ALIASES else config
    if isinstance(config, dict) and not isinstance(config.get("config", {}), dict):
        raise ValueError(f"A serialized optimizer must look like {{'class_name': ..., 'config': {{...}}}}; got {config!r}.")
    if isinstance(config, dict) and "class_name" in config:
        # Optimizer.from_config turns a serialized learning-rate schedule back into an object.
        cls = ALIASES.get(config["class_name"])
        if cls is not None:
            return cls.from_config(config.get("config") or {}, custom_objects)
    optimizer = deserialize_object(config, kind="optimizer", aliases=ALIASES, custom_objects=custom_objects)
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"Could not interpret optimizer identifier: {config!r}")
    return optimizer


def get(identifier) -> Optimizer:
    """An optimizer from an instance (returned as is), a class, a name (``"adam"``, ``"sgd"``,
    ``"adamw"``, ``"rmsprop"``, ``"adagrad"``, ``"lion"``, ``"adadelta"``, ``"adafactor"``,
    ``"adamax"``, ``"ftrl"``, ``"lamb"``, ``"muon"``, ``"nadam"``, ``"schedulefreeadamw"``; Keras's
    defaults) or a config dict.

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
