"""Turning objects into JSON-ready configs and back, through the registry only.

``serialize`` gives ``{"class_name": ..., "config": {...}}`` for objects with ``get_config``
and Keras's ``{"class_name": "function", "config": <name>, ...}`` for registered functions;
``deserialize`` turns those back into objects and, as Keras's ``deserialize_keras_object``,
leaves a plain string a string unless ``custom_objects`` names it. Names resolve only through
``custom_objects``, the active ``CustomObjectScope``, a family's own table and the registry:
nothing here imports a module, reads a file or evaluates text, and an unknown name raises a
``ValueError`` saying how to register it.

``serialize_object`` / ``deserialize_object`` are the per-family building blocks behind
``lm.losses.serialize``, ``lm.initializers.deserialize`` and the others; they keep a function
as its plain name (``"relu"``), as Keras writes an activation inside a layer's config, and
resolve such names where a function is expected (a family's ``get``, a wrapper's
``from_config``), which also reads files written when lamina saved every function by name.
"""

from __future__ import annotations

import contextlib
import functools
import inspect

import numpy as np

from lamina.saving.object_registry import (
    _FAMILIES,
    _REGISTRY,
    CustomObjectScope,
    get_registered_name,
    lookup_custom,
    register_family,
)

CONFIG_KEYS = ("class_name", "config", "module", "registered_name", "build_config")
_CONFIG_KEY_SET = frozenset(CONFIG_KEYS)
REGISTER_HINT = (
    "register it with @lm.saving.register_serializable(package=...) or pass it in custom_objects"
)


# -- serializing ----------------------------------------------------------------------------


def serialize_object(obj):
    """``None`` stays ``None``; objects with ``get_config`` become a class-name/config dict,
    with the objects inside the config (a sublayer, an initializer...) serialized too."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if hasattr(obj, "get_config") and not isinstance(obj, type):
        return serialize(obj)
    if callable(obj):
        return get_registered_name(obj)
    raise TypeError(f"Cannot serialize {obj!r}: it has no get_config() and is not a function.")


def serialize(obj):
    """A JSON-ready value that ``deserialize`` turns back into ``obj``.

    An object with ``get_config`` (a layer, loss, metric, optimizer, schedule, initializer,
    regularizer or constraint) becomes ``{"class_name": <registered name>, "config": {...}}``,
    with any object left inside the config serialized the same way; a function becomes
    Keras's form for it, ``{"module": "builtins", "class_name": "function", "config":
    <registered name>, "registered_name": "function"}`` (``"relu"``, ``"my_pkg>my_fn"``; the
    dict Keras writes, so that a plain string next to it stays a string); numbers, strings,
    ``None``, lists and dicts are kept (NumPy values become Python ones). Where two families
    share a class name (the loss and the metric ``MeanSquaredError``), a ``"module"`` label
    such as ``"lamina.metrics"`` says which one is meant; it is a label, never imported.

    Example:
        >>> import lamina as lm
        >>> lm.saving.serialize(lm.regularizers.L2(0.1))
        {'class_name': 'L2', 'config': {'l2': 0.1}}
        >>> lm.saving.serialize(["accuracy", lm.activations.relu])
        ['accuracy', {'module': 'builtins', 'class_name': 'function', 'config': 'relu', 'registered_name': 'function'}]
        >>> lm.saving.serialize(lm.metrics.MeanSquaredError())["module"]
        'lamina.metrics'
    """
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, (np.generic, np.ndarray)) or (hasattr(obj, "tolist") and hasattr(obj, "dtype")
                                                      and hasattr(obj, "shape")):
        return obj.tolist()
    if isinstance(obj, np.dtype):
        return obj.name
    if isinstance(obj, tuple):
        return tuple(serialize(x) for x in obj)
    if isinstance(obj, list):
        return [serialize(x) for x in obj]
    if isinstance(obj, dict):
        return {key: serialize(value) for key, value in obj.items()}
    if isinstance(obj, type):
        raise TypeError(
            f"serialize() takes an object or a function, not the class {obj.__name__}: "
            f"serialize an instance, e.g. serialize({obj.__name__}(...))."
        )
    if hasattr(obj, "get_config"):
        cls = type(obj)
        name = get_registered_name(cls)
        result = {"class_name": name, "config": serialize(obj.get_config())}
        module = _disambiguating_module(cls, name)
        if module is not None:
            result["module"] = module
        build_config = _build_config(obj)
        if build_config is not None:
            result["build_config"] = serialize(build_config)
        return result
    if callable(obj):
        name = get_registered_name(obj)
        if not (name.isidentifier() or _REGISTRY.get(name) is obj):
            raise ValueError(
                f"Cannot serialize {obj!r}: only named functions can be saved, by name, and "
                "lamina never saves code. Use a function defined with `def` and "
                f"{REGISTER_HINT} when loading."
            )
        return function_config(name)
    raise TypeError(f"Cannot serialize {obj!r}: it has no get_config() and is not a function.")


def function_config(name: str) -> dict:
    """Keras's config for the function registered as ``name``: ``"module"`` and
    ``"registered_name"`` are what Keras's ``serialize_keras_object`` writes for any function
    (labels only, never imported); the name is in ``"config"``."""
    return {"module": "builtins", "class_name": "function", "config": name, "registered_name": "function"}


def _build_config(obj):
    """What a built object's ``get_build_config()`` (as Keras's, where a class defines one)
    says; its ``build_from_config`` gets it back after ``from_config``."""
    get_build_config = getattr(obj, "get_build_config", None)
    if get_build_config is None or not callable(get_build_config) or not getattr(obj, "built", False):
        return None
    if getattr(get_build_config, "_lm_default_build_config", False):
        return None  # Layer's default (the input shape): the model's build config covers it
    return get_build_config()


def _disambiguating_module(cls, name):
    """The family label under which ``name`` means ``cls``, where the registry means another."""
    if _REGISTRY.get(name) is cls or lookup_custom(name) is cls:
        return None
    for module, (_, aliases, _) in _FAMILIES.items():
        if aliases.get(name) is cls:
            return module
    return None


# -- deserializing --------------------------------------------------------------------------


def deserialize(config, custom_objects=None):
    """The object (or function) that ``serialize`` described.

    ``config`` is what ``serialize`` gave: a ``{"class_name": ..., "config": {...}}`` dict (the
    class is rebuilt with its ``from_config``), Keras's ``{"class_name": "function", "config":
    <name>, ...}`` for a function, a plain value, or a list of those. Names resolve only
    through ``custom_objects`` (``{"MyLayer": MyLayer}``), an active ``CustomObjectScope`` and
    the registry (lamina's own classes and functions, and those decorated with
    ``@lm.saving.register_serializable``). A plain string stays the string unless
    ``custom_objects``, the scope or a registration (``"my_pkg>my_fn"``) names it, as in
    Keras: ``["accuracy", <fn>]`` in a compile config comes back as it was given, the string
    for ``compile`` to resolve. Nothing is imported: a module path in a config dict
    (``{"class_name": "function", "config": "os.system"}``), an unknown class or function in
    a dict, or a ``module`` field other than one of the family labels (lamina's, Keras's for
    the same family: ``"keras.layers"``, or ``"builtins"`` for a function) raises a
    ``ValueError``, as does a dict with keys other than ``class_name``, ``config``,
    ``module``, ``registered_name`` and ``build_config`` (given to the object's
    ``build_from_config`` when it defines one, as in Keras).

    Example:
        >>> import lamina as lm
        >>> opt = lm.optimizers.Adam(learning_rate=lm.optimizers.schedules.ExponentialDecay(
        ...     0.1, decay_steps=10, decay_rate=0.5), name="adam")
        >>> config = lm.saving.serialize(opt)
        >>> config["config"]["learning_rate"]["class_name"]
        'ExponentialDecay'
        >>> restored = lm.saving.deserialize(config)
        >>> type(restored).__name__, restored.get_config() == opt.get_config()
        ('Adam', True)
        >>> deserialize(lm.saving.serialize(lm.activations.relu)) is lm.activations.relu
        True
        >>> deserialize(["accuracy", "SGD"])  # plain strings stay strings, as in Keras
        ['accuracy', 'SGD']
        >>> def half(x):
        ...     return x / 2
        >>> deserialize("half", custom_objects={"half": half}) is half
        True
        >>> deserialize({"class_name": "MyLayer", "config": {}})
        Traceback (most recent call last):
        ...
        ValueError: Unknown object class 'MyLayer'. If it is your own class or function, register it
        with @lm.saving.register_serializable(package=...) or pass it in custom_objects.
    """
    if config is None or isinstance(config, (bool, int, float)):
        return config
    if isinstance(config, (list, tuple)):
        return [deserialize(item, custom_objects) for item in config]
    if isinstance(config, str):
        # Keras's rule: a string is data (a metric's name for compile, a layer's name...) unless
        # the caller's objects name it; resolving lamina's names here would turn "accuracy"
        # into the plain accuracy function and change what compile picks.
        target = lookup_custom(config, custom_objects)
        return config if target is None else target
    if isinstance(config, dict):
        return deserialize_object(config, kind="object", aliases=None, custom_objects=custom_objects)
    raise ValueError(f"Could not deserialize {config!r}: expected a config dict, a name or a list.")


def deserialize_object(identifier, *, kind: str, aliases: dict | None, custom_objects: dict | None = None):
    """Resolve ``identifier`` (object, string or config dict) to an object of family ``kind``.

    ``aliases`` maps the family's short strings (``"zeros"``) to classes or functions; classes
    found by string are instantiated with no arguments, as Keras does. Names resolve through
    ``custom_objects``, the active ``CustomObjectScope``, ``aliases``, then the registry.
    ``aliases=None`` means any family: a config's ``module`` label then picks the table.
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        target = _resolve(identifier, aliases or {}, custom_objects)
        if target is None:
            known = ", ".join(sorted(k for k in (aliases or {}) if not k[0].isupper()))
            raise _unknown_name_error(kind, identifier, f". Known names: {known}" if known else "")
        return target() if isinstance(target, type) else target
    if isinstance(identifier, dict):
        return _deserialize_dict(identifier, kind, aliases, custom_objects)
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret {kind} identifier: {identifier!r}")


def _deserialize_dict(identifier, kind, aliases, custom_objects):
    # Checked per object of a config (four per Dense layer): the set difference only on failure.
    extra = [] if identifier.keys() <= _CONFIG_KEY_SET else sorted(map(str, set(identifier) - _CONFIG_KEY_SET))
    if extra or "class_name" not in identifier:
        detail = f"unexpected keys {extra}" if extra else "no 'class_name'"
        raise ValueError(
            f"A serialized {kind} must look like {{'class_name': ..., 'config': {{...}}}} (and "
            f"may have 'module', 'registered_name' and 'build_config'); got {detail} in {identifier!r}."
        )
    name = identifier["class_name"]
    registered = identifier.get("registered_name")
    config = identifier.get("config")
    if not isinstance(name, str) or not (registered is None or isinstance(registered, str)):
        raise ValueError(
            f"A serialized {kind}'s 'class_name' and 'registered_name' must be strings; got {identifier!r}."
        )
    base = None
    family = _family(identifier.get("module"), kind, function_form=name == "function")
    if family is not None and aliases is None:
        kind, aliases, base = family
    aliases = aliases or {}

    if name == "function":  # Keras's form for a function: {"class_name": "function", "config": "relu"}
        if not isinstance(config, str):
            raise ValueError(f"A serialized {kind} function must name it in 'config'; got {identifier!r}.")
        fn = _resolve_function(config, aliases, custom_objects)
        if fn is None:
            raise _unknown_name_error(f"{kind} function", config)
        return fn

    cls = None
    for candidate in dict.fromkeys(n for n in (registered, name) if n):
        cls = _resolve(candidate, aliases, custom_objects)
        if cls is not None:
            break
    if cls is None:
        raise _unknown_name_error(f"{kind} class", registered or name)
    if not isinstance(cls, type):
        raise ValueError(
            f"The {kind} {name!r} is a function, not a class: a config dict needs a class "
            "(a function is saved as {'class_name': 'function', 'config': <its name>})."
        )
    if base is not None:
        if not issubclass(cls, base):
            raise ValueError(
                f"{name!r} is {cls.__name__}, which is not in the {kind} family (a subclass of "
                f"{base.__name__})."
            )
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValueError(f"A serialized {kind}'s 'config' must be a dict; got {identifier!r}.")
    # An empty scope changes nothing: skipped (a config of 15,000 layers enters 60,000).
    with CustomObjectScope(custom_objects) if custom_objects else contextlib.nullcontext():
        instance = _from_config(cls, config, custom_objects)
        build_config = identifier.get("build_config")
        # Layer's default build_from_config is left out as on saving: a nested layer builds
        # with its model (a Keras file's nested configs carry build configs of every layer).
        if (build_config is not None and hasattr(instance, "build_from_config") and not getattr(instance, "built", True)
                and not getattr(type(instance).build_from_config, "_lm_default_build_config", False)):
            instance.build_from_config(build_config)
            instance.built = True
        return instance


def _from_config(cls, config, custom_objects):
    from_config = getattr(cls, "from_config", None)
    if not cls.__module__.startswith("lamina.") and (
            from_config is None or getattr(from_config, "_lm_passes_config_to_constructor", False)):
        # The default from_config hands the config to the constructor: the objects that
        # get_config() returned (a sublayer, an initializer...) must be objects again. A class
        # with its own from_config gets the config as saved and revives what it needs itself
        # (as in Keras); lamina's own classes take their configs as they save them.
        config = revive_nested(config, custom_objects)
    if from_config is None:
        return cls(**config)
    try:
        takes_custom = "custom_objects" in signature_of(from_config).parameters
    except (TypeError, ValueError):
        takes_custom = False
    if takes_custom:
        return from_config(config, custom_objects=custom_objects)
    return from_config(config)


@functools.lru_cache(maxsize=4096)
def signature_of(fn) -> inspect.Signature:
    """``inspect.signature(fn)``, once per function (or bound method): loading a file of
    15,000 layers asked for the same two signatures 30,000 times (0.7 s)."""
    return inspect.signature(fn)


def passes_config_to_constructor(from_config):
    """Mark a base class's ``from_config`` as the default one, which hands the config to the
    constructor: a user's class inheriting it gets the nested objects of its config (a
    sublayer, an initializer...) rebuilt first, as Keras does.

    Example:
        >>> class Base:
        ...     def __init__(self, **config): self.config = config
        ...     @classmethod
        ...     @passes_config_to_constructor
        ...     def from_config(cls, config): return cls(**config)
        >>> Base.from_config._lm_passes_config_to_constructor
        True
    """
    from_config._lm_passes_config_to_constructor = True
    return from_config


def _is_serialized_object(value) -> bool:
    """Whether ``value`` is what ``serialize`` makes of an object with a config."""
    return (isinstance(value, dict) and isinstance(value.get("class_name"), str) and "config" in value
            and set(value) <= set(CONFIG_KEYS))


def revive_nested(config: dict, custom_objects=None) -> dict:
    """``config`` with every serialized object in it (also inside lists and dicts) rebuilt.

    Example:
        >>> import lamina as lm
        >>> config = {"units": 3, "init": lm.saving.serialize(lm.initializers.Constant(2.0))}
        >>> revive_nested(config)["init"]
        Constant(value=2.0)
    """
    def revive(value):
        if _is_serialized_object(value):
            return deserialize_object(value, kind="object", aliases=None, custom_objects=custom_objects)
        if isinstance(value, dict):
            return {key: revive(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(revive(item) for item in value)
        return value

    return {key: revive(value) for key, value in config.items()}


def _resolve(name, aliases, custom_objects):
    """``custom_objects``, the active scope, the family's ``aliases``, then the registry."""
    target = lookup_custom(name, custom_objects)
    if target is None:
        target = aliases.get(name)
    if target is None:
        target = _REGISTRY.get(name)
    return target


def _resolve_function(name, aliases, custom_objects):
    """As ``_resolve``, but only a function answers: a family's table may give a class for the
    same name (the metrics' ``"mean_squared_error"`` is the class), the registry the function."""
    for target in (lookup_custom(name, custom_objects), aliases.get(name), _REGISTRY.get(name)):
        if target is not None and callable(target) and not isinstance(target, type):
            return target
    return None


def _family(module, kind, function_form=False):
    """The registered family a config's ``module`` label names; anything else is refused.

    Keras's labels for the same families (``"keras.layers"``, ``"keras.losses"``, ...) are
    accepted as their lamina counterparts, and ``"builtins"`` in Keras's form for a function
    (``{"module": "builtins", "class_name": "function", "config": "relu"}``): all are labels
    only, never imported.
    """
    if module is None or (function_form and module == "builtins"):
        return None
    label = module
    if isinstance(label, str) and label.startswith("keras."):
        label = "lamina." + label[len("keras."):]
    if isinstance(label, str) and label in _FAMILIES:
        return _FAMILIES[label]
    labels = ", ".join(sorted(_FAMILIES))
    raise ValueError(
        f"Refusing {kind} config whose 'module' is {module!r}: lamina never imports modules "
        f"named in a config. 'module' may only be one of lamina's family labels ({labels}) or "
        "Keras's for the same families ('keras.layers', ...); "
        f"classes resolve only through the registry and custom_objects. For your own class, "
        f"{REGISTER_HINT}."
    )


def _unknown_name_error(kind, name, known=""):
    if any(sep in name for sep in ".:/\\"):
        return ValueError(
            f"Refusing {kind} {name!r}: it looks like a module path, and lamina never imports "
            "modules named in a config; names resolve only through the registry and "
            f"custom_objects. For your own class or function, {REGISTER_HINT}."
        )
    return ValueError(
        f"Unknown {kind} {name!r}{known}. If it is your own class or function, {REGISTER_HINT}."
    )


# -- family building blocks -----------------------------------------------------------------


class Configurable:
    """Base of the small serializable families (initializers, regularizers, constraints):
    ``from_config`` calls the constructor, ``repr`` shows the config."""

    def get_config(self) -> dict:
        return {}

    @classmethod
    @passes_config_to_constructor
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def object_family(kind: str, aliases: dict, base: type | None = None, default=None,
                  module: str | None = None):
    """``(serialize, deserialize, get)`` for one family of objects, e.g. ``"constraint"``.

    ``get`` accepts ``None`` (gives ``default``), an object or function (returned as is), a
    subclass of ``base`` (instantiated), a short name from ``aliases``, a registered name, or a
    config dict. With ``module`` (``"lamina.constraints"``) the family is also registered
    under that label for configs' ``module`` field.
    """
    if module is not None:
        register_family(module, kind, aliases, base)

    def serialize(obj):
        return serialize_object(obj)

    def deserialize(config, custom_objects=None):
        return deserialize_object(config, kind=kind, aliases=aliases, custom_objects=custom_objects)

    def get(identifier):
        if identifier is None:
            return default
        if base is not None and isinstance(identifier, type) and issubclass(identifier, base):
            return identifier()
        return deserialize(identifier)

    serialize.__doc__ = f"A JSON-ready config (or name) for a {kind}."
    deserialize.__doc__ = f"A {kind} from a config dict or a name."
    get.__doc__ = f"Resolve a {kind} from None, an object, a name or a config dict."
    return serialize, deserialize, get

