"""``Config``: Keras 3's attribute dictionary (``keras.utils.Config``) for experiment settings."""

from __future__ import annotations

import copy
import difflib
import json

__all__ = ["Config"]

# Names that live on the object itself; every other attribute is an entry of the config.
_OWN = frozenset({"_config", "_frozen"})


class Config:
    """A dictionary of named values, read and written as attributes or items, that can be
    frozen against changes and written as JSON (Keras 3's ``keras.utils.Config``).

    ``freeze()`` makes every later write (attribute, item, ``update``, ``pop``, ``del``) raise
    a ``ValueError``; ``unfreeze()`` lifts it. Iterating gives the keys in sorted order, as
    Keras does; ``keys()`` / ``items()`` keep insertion order. An unknown attribute raises an
    ``AttributeError`` that suggests the closest key.

    Example:
        >>> config = Config(learning_rate=0.1, momentum=0.9)
        >>> config.seed = 123
        >>> config["use_ema"] = True
        >>> config.learning_rate, config["seed"], list(config)
        (0.1, 123, ['learning_rate', 'momentum', 'seed', 'use_ema'])
        >>> config.freeze()
        >>> config.seed = 1
        Traceback (most recent call last):
        ...
        ValueError: Cannot mutate attribute(s) because the config is frozen.
        >>> config.to_json()
        '{"learning_rate": 0.1, "momentum": 0.9, "seed": 123, "use_ema": true}'
    """

    def __init__(self, **kwargs):
        object.__setattr__(self, "_config", dict(kwargs))
        object.__setattr__(self, "_frozen", False)

    @property
    def frozen(self):
        """Whether the config refuses changes."""
        return self._frozen

    def freeze(self):
        """Refuse every later change (until ``unfreeze``)."""
        object.__setattr__(self, "_frozen", True)

    def unfreeze(self):
        """Allow changes again."""
        object.__setattr__(self, "_frozen", False)

    def _raise_if_frozen(self):
        if self._frozen:
            raise ValueError("Cannot mutate attribute(s) because the config is frozen.")

    def as_dict(self):
        """A shallow copy of the entries, as a ``dict``."""
        return copy.copy(self._config)

    def to_json(self):
        """The entries as a JSON string (``json.dumps``)."""
        return json.dumps(self._config)

    def keys(self):
        return self._config.keys()

    def values(self):
        return self._config.values()

    def items(self):
        return self._config.items()

    def get(self, keyname, value=None):
        return self._config.get(keyname, value)

    def pop(self, *args):
        self._raise_if_frozen()
        return self._config.pop(*args)

    def update(self, *args, **kwargs):
        self._raise_if_frozen()
        return self._config.update(*args, **kwargs)

    def __setattr__(self, name, value):
        if name in _OWN or hasattr(type(self), name):
            # Methods and properties are not entries (Keras's rule too): `config.frozen = x`
            # reaches the read-only property and fails as it would on any object.
            return object.__setattr__(self, name, value)
        self._raise_if_frozen()
        self._config[name] = value

    def __getattr__(self, name):
        # Only called when normal lookup fails, i.e. for entries.
        if name.startswith("__") or name in _OWN:
            raise AttributeError(name)
        config = object.__getattribute__(self, "_config")
        if name in config:
            return config[name]
        message = f"Unknown attribute: '{name}'."
        closest = difflib.get_close_matches(name, list(config.keys()), n=1, cutoff=0.7)
        if closest:
            message += f" Did you mean '{closest[0]}'?"
        raise AttributeError(message)

    def __delattr__(self, name):
        if name in _OWN or hasattr(type(self), name):
            return object.__delattr__(self, name)
        self._raise_if_frozen()
        try:
            del self._config[name]
        except KeyError:
            raise AttributeError(f"Unknown attribute: '{name}'.") from None

    def __setitem__(self, key, item):
        self._raise_if_frozen()
        self._config[key] = item

    def __getitem__(self, key):
        return self._config[key]

    def __delitem__(self, key):
        self._raise_if_frozen()
        del self._config[key]

    def __contains__(self, item):
        return item in self._config

    def __iter__(self):
        yield from sorted(self._config.keys())

    def __len__(self):
        return len(self._config)

    def __repr__(self):
        return f"<Config {self._config}>"

    def __getstate__(self):
        return {"config": self._config, "frozen": self._frozen}

    def __setstate__(self, state):
        object.__setattr__(self, "_config", state["config"])
        object.__setattr__(self, "_frozen", state["frozen"])
