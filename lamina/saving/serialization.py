"""Turning objects into JSON-ready configs and back, through the registry only.

``serialize_object`` gives ``{"class_name": ..., "config": {...}}`` for objects with
``get_config`` and a plain string for registered functions. ``deserialize_object`` accepts
those forms, plus the short strings each family understands (``"glorot_uniform"``), and
never imports anything: unknown names raise a ``ValueError`` saying how to register them.
"""

from __future__ import annotations

from lamina.saving.object_registry import get_registered_name, lookup


def serialize_object(obj):
    """``None`` stays ``None``; objects with ``get_config`` become a class-name/config dict."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if hasattr(obj, "get_config"):
        return {"class_name": get_registered_name(type(obj)), "config": obj.get_config()}
    if callable(obj):
        return get_registered_name(obj)
    raise TypeError(f"Cannot serialize {obj!r}: it has no get_config() and is not a function.")


def deserialize_object(identifier, *, kind: str, aliases: dict, custom_objects: dict | None = None):
    """Resolve ``identifier`` (object, string or config dict) to an object of family ``kind``.

    ``aliases`` maps the family's short strings (``"zeros"``) to classes or functions; classes
    found by string are instantiated with no arguments, as Keras does.
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        target = aliases.get(identifier) or lookup(identifier, custom_objects)
        if target is None:
            known = ", ".join(sorted(k for k in aliases if not k[0].isupper()))
            raise ValueError(
                f"Unknown {kind} {identifier!r}. Known names: {known}. A custom {kind} must be "
                "passed as an object, or registered with @lm.saving.register_serializable()."
            )
        return target() if isinstance(target, type) else target
    if isinstance(identifier, dict):
        if set(identifier) - {"class_name", "config", "module", "registered_name"} or "class_name" not in identifier:
            raise ValueError(f"A serialized {kind} must look like {{'class_name': ..., 'config': {{...}}}}; got {identifier!r}.")
        name = identifier["class_name"]
        cls = aliases.get(name) or lookup(name, custom_objects)
        if not isinstance(cls, type):
            raise ValueError(
                f"Unknown {kind} class {name!r}. Register it with "
                "@lm.saving.register_serializable() or pass it in custom_objects."
            )
        config = identifier.get("config") or {}
        return cls.from_config(config) if hasattr(cls, "from_config") else cls(**config)
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret {kind} identifier: {identifier!r}")


class Configurable:
    """Base of the small serializable families (initializers, regularizers, constraints):
    ``from_config`` calls the constructor, ``repr`` shows the config."""

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def object_family(kind: str, aliases: dict, base: type | None = None, default=None):
    """``(serialize, deserialize, get)`` for one family of objects, e.g. ``"constraint"``.

    ``get`` accepts ``None`` (gives ``default``), an object or function (returned as is), a
    subclass of ``base`` (instantiated), a short name from ``aliases``, a registered name, or a
    config dict.
    """

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
