"""Keras's ``save_own_variables`` / ``load_own_variables`` overrides, honoured by saving.

A layer whose class (a user's, outside lamina) overrides either hook saves its own state
(its variables, not its sublayers') through them, as in Keras's guide "Customizing Saving and
Serialization": ``model.save`` and ``save_weights`` call ``save_own_variables(store)`` and
write each ``store[key]`` as the tensor ``<layer key>/<key>`` (``<key>`` alone for the model
itself); loading gathers the file's tensors under that layer key into a store and calls
``load_own_variables(store)`` with them, after every other tensor of the file has been
checked and before any variable is assigned. Every other layer is saved exactly as before
(its variables by path), so files of models without overrides do not change.

Safety is unchanged: the store holds NumPy arrays read from the file, never code; a key the
layer asks for and the file lacks, or a key of the file the layer did not read, raises an
error naming the layer's path. Store keys are strings without ``/`` (each is one tensor
directly under the layer's key, so they cannot clash with a sublayer's keys).

Built-in layers keep lamina's keys even where they define the hooks (a class may say
otherwise with ``_lm_own_store = True``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

_HOOKS = ("save_own_variables", "load_own_variables")
_uses_store: dict = {}  # layer class -> whether saving goes through its hooks


def has_own_store(layer) -> bool:
    """Whether saving ``layer`` goes through its ``save_own_variables`` / ``load_own_variables``:
    its class (or a base outside lamina) overrides one of them, or says so (``_lm_own_store``)."""
    cls = type(layer)
    found = _uses_store.get(cls)
    if found is None:
        flag = getattr(cls, "_lm_own_store", None)
        found = _uses_store[cls] = bool(flag) if flag is not None else any(_user_defined(cls, h) for h in _HOOKS)
    return found


def _user_defined(cls, name: str) -> bool:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return not klass.__module__.startswith("lamina.")
    return False


class StoreEntry:
    """One value of a layer's store, standing where saving and loading expect a variable
    (``value``, ``shape``, ``dtype``, ``path``; ``assign`` keeps what loading read)."""

    __slots__ = ("layer", "key", "value", "shape", "dtype", "path")

    def __init__(self, layer, key: str, shape, dtype, value=None):
        self.layer, self.key, self.value = layer, key, value
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.path = f"{layer.path}/{key}"

    def assign(self, value) -> None:
        self.value = value


def saved_entries(layer, key_prefix: str, structural_prefix: str) -> list:
    """``[(key, structural_key, StoreEntry)]``: what ``layer.save_own_variables`` put in its store."""
    store: dict = {}
    layer.save_own_variables(store)
    found = []
    for name, value in store.items():
        _check_key(layer, name)
        array = _as_array(layer, name, value)
        found.append((_join(key_prefix, name), _join(structural_prefix, name),
                      StoreEntry(layer, name, array.shape, array.dtype, array)))
    return found


def _check_key(layer, name) -> None:
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"Layer '{layer.path}' ({type(layer).__name__}): save_own_variables stored key {name!r}; "
                         "store keys must be non-empty strings without '/'.")


def _as_array(layer, name: str, value) -> np.ndarray:
    raw = getattr(value, "value", value)  # a Variable: its current value
    try:
        array = np.asarray(raw)
    except Exception as error:
        raise TypeError(f"Layer '{layer.path}' ({type(layer).__name__}): save_own_variables stored "
                        f"{type(value).__name__} under {name!r}, which is not an array ({error}).") from None
    numeric = array.dtype.kind in "biuf" or (array.dtype.kind == "V" and array.dtype.names is None
                                              and array.dtype.itemsize in (1, 2))  # bfloat16 and kin
    if not numeric:
        raise TypeError(f"Layer '{layer.path}' ({type(layer).__name__}): save_own_variables stored an array of "
                        f"dtype {array.dtype} under {name!r}; only numbers and booleans can be saved "
                        "(encode strings as integer ids, or save them as an asset with save_assets).")
    return array if array.flags.c_contiguous else np.ascontiguousarray(array).reshape(array.shape)


def add_slots(targets: dict, structure: dict | None, stores: list, entries: dict, file_structure: dict | None) -> None:
    """Add to ``targets`` (and ``structure``) an empty ``StoreEntry`` for each tensor of the file
    that belongs to the store of a layer in ``stores`` (``[(layer, key_prefix,
    structural_prefix)]``): a tensor directly under the layer's key, or, for a layer none of
    whose keys the file has, under its structural key (a copy of the model whose generated
    layer names differ). ``entries``: the file's ``{key: entry}`` with ``shape`` and ``dtype``."""
    if not stores:
        return
    by_key = {prefix: (layer, sprefix) for layer, prefix, sprefix in stores}
    by_structure = {sprefix: (layer, prefix) for layer, prefix, sprefix in stores}
    claimed = set()
    for key, entry in entries.items():
        parent, _, name = key.rpartition("/")
        match = by_key.get(parent)
        if match is not None and name and key not in targets:
            layer, sprefix = match
            targets[key] = StoreEntry(layer, name, entry.shape, entry.dtype)
            if structure is not None:
                structure[key] = _join(sprefix, name)
            claimed.add(id(layer))
    if not file_structure or structure is None:
        return
    for key, entry in entries.items():
        parent, _, name = file_structure.get(key, "").rpartition("/")
        match = by_structure.get(parent) if name else None
        if match is not None and id(match[0]) not in claimed and key not in targets:
            layer, prefix = match
            target = _join(prefix, name)
            if target not in targets:
                targets[target] = StoreEntry(layer, name, entry.shape, entry.dtype)
                structure[target] = file_structure[key]


def load_stores(plan: list, view, stores: list) -> list:
    """Call ``load_own_variables`` of every layer in ``stores`` with the tensors ``plan`` matched
    to its ``StoreEntry`` slots (read as NumPy arrays); return the rest of ``plan``."""
    if not stores:
        return plan
    rest, gathered = [], {id(layer): {} for layer, _, _ in stores}
    for target, key in plan:
        if isinstance(target, StoreEntry):
            gathered[id(target.layer)][target.key] = _host_array(view, key)
        else:
            rest.append((target, key))
    for layer, _, _ in stores:
        load_into(layer, gathered[id(layer)], view.source)
    return rest


def load_into(layer, arrays: dict, source: str) -> None:
    """``layer.load_own_variables`` with ``arrays`` as its store; a key it asks for and
    ``arrays`` lacks, or one it leaves unread, raises naming the layer."""
    store = Store(layer, arrays, source)
    layer.load_own_variables(store)
    unread = sorted(set(arrays) - store.read)
    if unread:
        raise ValueError(f"{source}: layer '{layer.path}' ({type(layer).__name__}) did not read {unread} from its "
                         f"saved store in load_own_variables (it read {sorted(store.read)}): the file does not fit "
                         "the layer.")


class Store(Mapping):
    """The mapping ``load_own_variables`` gets: the layer's saved arrays by key. It remembers
    which keys were read, and a missing key raises a ``KeyError`` naming the layer."""

    def __init__(self, layer, arrays: dict, source: str):
        self._arrays, self._layer, self._source, self.read = arrays, layer, source, set()

    def __getitem__(self, key):
        if key not in self._arrays:
            raise KeyError(f"{self._source}: layer '{self._layer.path}' ({type(self._layer).__name__}) asked its "
                           f"saved store for {key!r}, which the file does not hold (it holds {sorted(self._arrays)}).")
        self.read.add(key)
        return self._arrays[key]

    def __contains__(self, key) -> bool:
        return key in self._arrays

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)


def _host_array(view, key: str) -> np.ndarray:
    region = getattr(view, "region", None)  # a bounds-checked read where the view has one
    return np.array(region(key, ()) if region is not None else view.array(key))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


class Targets(dict):
    """A load's ``{key: variable or StoreEntry}`` that also lists the layers loaded through
    their own hooks (``stores``), whose ``load_own_variables`` runs before anything is assigned."""

    def __init__(self, found: dict, stores: list):
        super().__init__(found)
        self.stores = stores


def keras_group_keys(stores: list, dataset_keys) -> dict:
    """For a Keras weights file: ``{id(layer): {store key: dataset key}}`` for each layer of
    ``stores`` (``[(layer, group path)]``), its store being the datasets of its ``vars`` group."""
    found = {}
    for layer, path in stores:
        prefix = f"{path}/vars/" if path else "vars/"
        found[id(layer)] = {key[len(prefix):]: key for key in dataset_keys
                            if key.startswith(prefix) and "/" not in key[len(prefix):]}
    return found
