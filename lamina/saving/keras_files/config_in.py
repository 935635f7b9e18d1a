"""A Keras 3 ``config.json`` turned into lamina objects, through lamina's registry only.

Classes are found by name: a Keras built-in (``"module": "keras.layers"``, ``registered_name``
null) by its class name among lamina's built-ins, a custom class by its ``registered_name``
(``"my_pkg>Block"``) among the classes registered with ``@lm.saving.register_serializable``
or passed in ``custom_objects``. A ``module`` path in the file is never imported, and a
function stored as bytecode (a ``Lambda`` layer, Keras's ``"__lambda__"`` configs) is always
refused. Keras's config keys are translated where lamina's differ: a dtype policy dict
becomes its name, ``shared_object_id`` markers are dropped, and Keras-only options lamina
lacks (``quantization_config``, ``lora_rank``, initializers' ``input_axes``...) are dropped
when they hold their neutral value and refused otherwise.
"""

from __future__ import annotations

import inspect

from lamina.layers.layer import Layer
from lamina.saving.errors import FileFormatError
from lamina.saving.object_registry import _FAMILIES, _REGISTRY, lookup_custom

_DTYPE_POLICIES = ("DTypePolicy", "FloatDTypePolicy")
# Keras-only options, with the value at which leaving them out changes nothing.
NEUTRAL_KERAS_OPTIONS = {
    "quantization_config": None, "lora_rank": None, "lora_alpha": None, "input_axes": None,
    "output_axes": None, "sparse": False, "ragged": False, "optional": False,
    "gradient_checkpointing": False,
}
_LAYER_BASE_KEYS = {"name", "dtype", "trainable", "activity_regularizer", "input_shape", "input_dim",
                    "batch_size", "autocast"}


def resolve_class(class_name, registered_name, custom_objects, where: str):
    """The lamina class a Keras config entry names; ``where`` names the entry in errors."""
    if class_name == "Lambda" or class_name == "__lambda__":
        raise FileFormatError(f"Refusing {where}: a Keras Lambda layer stores Python bytecode, and lamina never "
                              "runs code from a file. Rebuild that part in code and load the weights only.")
    candidates = [registered_name] if isinstance(registered_name, str) and ">" in registered_name else []
    candidates.append(class_name)
    for name in candidates:
        if not isinstance(name, str):
            continue
        found = lookup_custom(name, custom_objects)
        if found is None and ">" not in name:
            found = _REGISTRY.get(name)
        if isinstance(found, type):
            return found
    shown = registered_name if isinstance(registered_name, str) and ">" in registered_name else class_name
    raise FileFormatError(
        f"Unknown class {shown!r} ({where}): lamina has no built-in of that name and none is registered. "
        "For your own class, register it with @lm.saving.register_serializable(package=...) under the "
        "name Keras registered (its 'registered_name'), or pass it in custom_objects. Module paths in "
        "the file are never imported."
    )


def translate(value, where: str, custom_objects=None):
    """A Keras config value in lamina's form (see the module docstring)."""
    if isinstance(value, list):
        return [translate(item, where, custom_objects) for item in value]
    if not isinstance(value, dict):
        return value
    class_name = value.get("class_name")
    if class_name in ("__lambda__", "Lambda"):
        resolve_class(class_name, None, custom_objects, where)  # raises
    if class_name in _DTYPE_POLICIES and isinstance(value.get("config"), dict):
        return value["config"].get("name")
    if not (isinstance(class_name, str) and "config" in value):
        return {key: translate(item, where, custom_objects) for key, item in value.items()
                if key != "shared_object_id"}
    return translate_object(value, where, custom_objects)


def translate_object(entry: dict, where: str, custom_objects=None) -> dict:
    """One serialized object (``{"module", "class_name", "config", "registered_name"}``)."""
    class_name, registered = entry["class_name"], entry.get("registered_name")
    config = entry["config"]
    result = {"class_name": class_name}
    if class_name == "function":
        name = registered if isinstance(registered, str) and ">" in registered else config
        return {"module": "builtins", "class_name": "function", "config": name, "registered_name": "function"}
    if isinstance(registered, str) and ">" in registered:
        result["registered_name"] = registered
    module = entry.get("module")
    if isinstance(module, str) and module.startswith("keras.") and "lamina." + module[6:] in _FAMILIES:
        result["module"] = module  # a family label, which lamina reads as its own (never imported)
    if isinstance(config, dict):
        cls = _lookup(class_name, registered, custom_objects)
        config = drop_neutral_options(cls, config, f"{class_name} in {where}")
        config = {key: translate(item, where, custom_objects) for key, item in config.items()}
    result["config"] = config
    return result


def _lookup(class_name, registered, custom_objects):
    for name in (registered, class_name):
        if isinstance(name, str):
            found = lookup_custom(name, custom_objects) or _REGISTRY.get(name)
            if isinstance(found, type):
                return found
    return None


def drop_neutral_options(cls, config: dict, where: str) -> dict:
    """``config`` without the Keras-only options ``cls``'s constructor does not take; such an
    option set to anything but its neutral value raises, naming it."""
    if cls is None:
        return {key: value for key, value in config.items() if key != "shared_object_id"}
    accepted = _accepted_keys(cls)
    result = {}
    for key, value in config.items():
        if key == "shared_object_id":
            continue
        if accepted is not None and key not in accepted and key in NEUTRAL_KERAS_OPTIONS:
            if value != NEUTRAL_KERAS_OPTIONS[key]:
                raise FileFormatError(f"{where}: the Keras option {key}={value!r} has no lamina equivalent; "
                                      "the file is not loaded.")
            continue
        result[key] = value
    return result


def _accepted_keys(cls):
    """The constructor's keyword names, or ``None`` when it takes any keyword."""
    # A constructor passing **kwargs on to its parent's (ReversibleEmbedding -> Embedding's
    # lora_rank) accepts the parent's names too: walk up while each passes them on.
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            parameters = inspect.signature(init).parameters
        except (TypeError, ValueError):
            return None
        names |= {name for name, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return names
        if klass is Layer or not issubclass(cls, Layer):
            break
    if not issubclass(cls, Layer):
        return None
    return names | _LAYER_BASE_KEYS
