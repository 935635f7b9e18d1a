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
    its base class, or a function of no arguments returning it (checked after loading).
    """
    _FAMILIES[module] = (kind, aliases if aliases is not None else {}, base)


def get_registered_name(obj) -> str:
    """The name under which ``obj`` (a class or function) is saved in configs."""
    cls = obj if isinstance(obj, type) or callable(obj) and not hasattr(obj, "get_config") else type(obj)
    return cls.__dict__.get("_lm_registered_name", getattr(cls, "__name__", str(cls)))


def lookup(name: str, custom_objects: dict | None = None):
    """Resolve a registered name; ``None`` when nothing answers to it."""
    for table in (custom_objects, getattr(_custom_objects, "table", None), _REGISTRY):
        if table and name in table:
            return table[name]
    return None


def lookup_custom(name: str, custom_objects: dict | None = None):
    """Resolve ``name`` through ``custom_objects`` and the active ``CustomObjectScope`` only."""
    for table in (custom_objects, getattr(_custom_objects, "table", None)):
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
