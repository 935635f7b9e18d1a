"""The one place where names in a config become Python classes.

Configs name classes, never modules: a name resolves only through this registry (filled by
lamina's own modules and by ``@register_serializable``) or through ``custom_objects`` given by
the caller. Nothing here imports a module or evaluates text, which is what keeps loading safe.

Each family of objects (layers, losses, metrics, ...) also registers itself here under a
*label* such as ``"lamina.metrics"`` (``register_family``). A config's optional ``module``
field may name one of these labels, to pick a family's table where two families share a
class name (the metric and the loss ``MeanSquaredError``); it is a label, never imported.
Keras's labels for the same families (``"keras.losses"``) are read as lamina's; any other
``module`` value is refused.
"""

from __future__ import annotations

import threading

_REGISTRY: dict[str, object] = {}
_FAMILIES: dict[str, tuple] = {}
_custom_objects = threading.local()


class _GlobalCustomObjects(dict):
    """The user's registrations (``"package>Name"`` keys and whatever is put in directly).

    Removing an entry (``get_custom_objects().clear()``, ``del``, ``pop``) also unregisters it
    from ``_REGISTRY``, where ``register_serializable`` puts it too; lamina's own names never
    appear here (they contain no ``>``), so clearing cannot remove a built-in.
    """

    def _forget(self, key):
        if key in self and _REGISTRY.get(key) is dict.__getitem__(self, key):
            del _REGISTRY[key]

    def __delitem__(self, key):
        self._forget(key)
        super().__delitem__(key)

    def pop(self, key, *default):
        self._forget(key)
        return super().pop(key, *default)

    def popitem(self):
        key, value = super().popitem()
        if _REGISTRY.get(key) is value:
            del _REGISTRY[key]
        return key, value

    def clear(self):
        for key in list(self):
            self._forget(key)
        super().clear()


_GLOBAL_CUSTOM_OBJECTS = _GlobalCustomObjects()


def get_custom_objects() -> dict:
    """The live dictionary of custom objects: what ``@register_serializable`` registered, plus
    anything you put in it; names in it resolve in every config (Keras's
    ``get_custom_objects``). ``get_custom_objects().clear()`` unregisters them all; lamina's
    own classes are not in it and stay. Objects of a ``custom_object_scope`` are not in it.

    Example:
        >>> import lamina as lm
        >>> def double(x):
        ...     return 2 * x
        >>> lm.saving.get_custom_objects()["double"] = double
        >>> lm.saving.deserialize("double") is double
        True
        >>> del lm.saving.get_custom_objects()["double"]
    """
    return _GLOBAL_CUSTOM_OBJECTS


def register_serializable(package: str = "Custom", name: str | None = None):
    """Class (or function) decorator: make ``obj`` loadable from configs as ``"package>Name"``.

    Example:
        >>> import lamina as lm
        >>> @lm.saving.register_serializable(package="my_pkg")
        ... class Scale(lm.Layer):
        ...     def call(self, x):
        ...         return 2 * x
        >>> lm.saving.get_registered_name(Scale)
        'my_pkg>Scale'
    """
    if not isinstance(package, str) or ">" in package:
        raise ValueError(f"`package` must be a string without '>'; received package={package!r}.")

    def decorate(obj):
        key = f"{package}>{name or obj.__name__}"
        _REGISTRY[key] = obj
        _GLOBAL_CUSTOM_OBJECTS[key] = obj
        obj._lm_registered_name = key
        return obj

    return decorate


def register_builtin(obj, *aliases: str):
    """Register one of lamina's own classes or functions under its plain name (and aliases)."""
    for key in (obj.__name__, *aliases):
        _REGISTRY[key] = obj
    return obj


def register_family(module: str, kind: str, aliases: dict | None = None, base=None) -> None:
    """Name a family of objects for configs' ``module`` field (``"lamina.losses"``).

    ``kind`` is the family's word in messages (``"loss"``), ``aliases`` its own name table
    (searched before the global registry; ``None``: the global registry only) and ``base``
    its base class (a loaded class must subclass it). Each family's own module calls this, so
    that the registry never imports the families.
    """
    _FAMILIES[module] = (kind, aliases if aliases is not None else {}, base)


def get_registered_name(obj) -> str:
    """The name under which ``obj`` (a class or function) is saved in configs."""
    cls = obj if isinstance(obj, type) or callable(obj) and not hasattr(obj, "get_config") else type(obj)
    return cls.__dict__.get("_lm_registered_name", getattr(cls, "__name__", str(cls)))


def lookup(name: str, custom_objects: dict | None = None):
    """Resolve a registered name; ``None`` when nothing answers to it."""
    for table in (custom_objects, getattr(_custom_objects, "table", None), _GLOBAL_CUSTOM_OBJECTS,
                  _REGISTRY):
        if table and name in table:
            return table[name]
    return None


def lookup_custom(name: str, custom_objects: dict | None = None):
    """Resolve ``name`` through ``custom_objects``, the active ``CustomObjectScope`` and
    ``get_custom_objects()`` only (not lamina's own names)."""
    for table in (custom_objects, getattr(_custom_objects, "table", None), _GLOBAL_CUSTOM_OBJECTS):
        if table and name in table:
            return table[name]
    return None


def get_registered_object(name: str, custom_objects: dict | None = None, module_objects: dict | None = None):
    """The class or function registered as ``name`` (Keras's ``get_registered_object``), or
    ``None``: searched in the active ``custom_object_scope``, ``get_custom_objects()``, then
    ``custom_objects`` and ``module_objects`` (Keras's order). lamina's own classes are found
    by ``lm.saving.deserialize``, not here, as in Keras.

    Example:
        >>> import lamina as lm
        >>> @lm.saving.register_serializable(package="my_pkg")
        ... class Halve(lm.Layer):
        ...     def call(self, x):
        ...         return x / 2
        >>> lm.saving.get_registered_object("my_pkg>Halve") is Halve
        True
        >>> lm.saving.get_registered_object("Halve") is None
        True
    """
    for table in (getattr(_custom_objects, "table", None), _GLOBAL_CUSTOM_OBJECTS, custom_objects,
                  module_objects):
        if table and name in table:
            return table[name]
    return None


class CustomObjectScope:
    """``with CustomObjectScope({"MyLayer": MyLayer}):`` makes those names resolvable inside.

    Example:
        >>> import lamina as lm
        >>> from lamina.saving.serialization import deserialize
        >>> class Twice(lm.Layer):
        ...     def call(self, x):
        ...         return 2 * x
        >>> with lm.saving.CustomObjectScope({"Twice": Twice}):
        ...     layer = deserialize({"class_name": "Twice", "config": {"name": "t"}})
        >>> type(layer).__name__, layer.name
        ('Twice', 't')
    """

    def __init__(self, custom_objects: dict | None):
        self._table = dict(custom_objects or {})

    def __enter__(self):
        self._previous = getattr(_custom_objects, "table", None)
        _custom_objects.table = {**(self._previous or {}), **self._table}
        return self

    def __exit__(self, *exc):
        _custom_objects.table = self._previous


# Keras's names for the same things.
custom_object_scope = CustomObjectScope
register_keras_serializable = register_serializable
