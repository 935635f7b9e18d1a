"""Which key each variable of a model (and of its optimizer) is saved under.

Keys are paths below the model (``dense/kernel``), the optimizer's state follows under
``optimizer/``; each key also has a *structural* key, independent of generated layer names
(``weights.py`` explains both). The weights file, the ``.lamina`` file and the sharded
checkpoint all name their tensors this way.
"""

from __future__ import annotations

from lamina.core.naming import to_snake_case
from lamina.layers.layer import _state_role
from lamina.saving.layer_stores import has_own_store, saved_entries

OPTIMIZER_PREFIX = "optimizer/"
STRUCTURE_METADATA = "lamina_structure"  # safetensors metadata: JSON {key: structural key}


def model_variables(model) -> dict:
    """``{key: Variable}`` for the model's weights and layer-held state (seeds, RNN states)."""
    return _unique_keys((key, v) for key, _, v in _walk_model(model))


def _walk_model(model, visited: list | None = None, stores=None) -> list:
    """``[(key, structural_key, variable)]`` in ``model.variables`` order (so metric and
    optimizer state left out); a shared layer is reached once, under its first path.
    ``visited`` (a list) gets every layer walked, in ``model._flatten_layers()`` order.
    ``stores``: ``"save"`` finds the store entries of layers saved through their own hooks
    (``layer_stores.py``) in place of their variables; a list gets those layers instead
    (``[(layer, key prefix, structural prefix)]``, for loading); ``None`` ignores the hooks."""
    walk = _Walk(model.path + "/", stores)
    walk.visit(model, "")
    if visited is not None:
        visited.extend(walk.layers)
    return walk.found


class _Walk:
    """``_walk_model``'s state. A class, not a closure calling itself: that closure is a
    reference cycle, which would leave everything found to the garbage collector."""

    def __init__(self, prefix: str, stores=None):
        self.prefix, self.stores = prefix, stores
        self.found, self.layers, self.seen_layers, self.seen_variables = [], [], set(), set()

    def visit(self, layer, structural_prefix: str) -> None:
        if id(layer) in self.seen_layers:
            return
        self.seen_layers.add(id(layer))
        self.layers.append(layer)
        layer._lm_adopt_children()  # keys are paths: a layer appended to a list gets its own
        own, children, holders = layer._lm_children()
        if self.stores is not None and has_own_store(layer):
            own = self._own_store(layer, structural_prefix)
        held = [v for h in holders if _state_role(h) == "layer" for v in h._lm_state_variables()]
        prefix = self.prefix
        for v in own + held:
            if id(v) not in self.seen_variables:
                self.seen_variables.add(id(v))
                path = v.path
                key = path[len(prefix):] if path.startswith(prefix) else path
                self.found.append((key, structural_prefix + v.name, v))
        for child, segment in zip(children, _structural_segments(layer, children)):
            self.visit(child, f"{structural_prefix}{segment}/")

    def _own_store(self, layer, structural_prefix: str) -> list:
        """A layer saved through its own hooks: saving finds its store's entries, loading
        lists it; its own variables are left to the hooks (so none is returned)."""
        path, root = layer.path, self.prefix[:-1]
        key_prefix = "" if path == root else path[len(self.prefix):] if path.startswith(self.prefix) else path
        if self.stores == "save":
            self.found.extend(saved_entries(layer, key_prefix, structural_prefix[:-1]))
        else:
            self.stores.append((layer, key_prefix, structural_prefix[:-1]))
        return []


_snake_names: dict = {}  # layer class -> its snake-cased name (a regex per layer otherwise)


def _structural_segments(parent, children) -> list:
    """Each child's structural key segment: its attribute path where ``parent`` holds it in an
    attribute (reproducible), else its class and rank among its siblings of that class."""
    known_by_name = parent._lm_child_keys == "name"
    counts, segments = {}, []
    for child in children:
        adopted_here = child._lm_parent is not None and child._lm_parent() is parent
        if adopted_here and not known_by_name and child._lm_segment:
            segments.append(child._lm_segment)
            continue
        base = _snake_names.get(type(child))
        if base is None:
            base = _snake_names[type(child)] = to_snake_case(type(child).__name__)
        rank = counts[base] = counts.get(base, -1) + 1
        segments.append(base if rank == 0 else f"{base}_{rank}")
    return segments


def keyed_variables(model, optimizer=None, visited: list | None = None, stores=None) -> tuple[dict, dict]:
    """``({key: Variable}, {key: structural_key})`` for the model's variables, then (when
    ``optimizer`` is given) its state, whose structural keys name the structural weight keys.
    ``visited`` (a list) gets the model's layers walked, ``stores`` is ``_walk_model``'s."""
    walked = _walk_model(model, visited, stores)
    variables = _unique_keys((key, v) for key, _, v in walked)
    structural = _unique_keys((skey, v) for _, skey, v in walked)
    structure = dict(zip(variables, structural))  # both in walk order
    if optimizer is not None:
        by_key = optimizer_variables(optimizer, {id(v): k for k, v in variables.items()})
        by_structure = optimizer_variables(optimizer, {id(v): k for k, v in structural.items()})
        variables.update(by_key)
        structure.update(zip(by_key, by_structure))
    return variables, structure


def optimizer_variables(optimizer, weight_keys: dict) -> dict:
    """``{key: Variable}`` for an optimizer's state (``optimizer/<field>[/<weight key>]``);
    ``weight_keys`` maps ``id(weight)`` to key."""
    if optimizer is None:
        return {}
    found = []
    for field, variable, weight in optimizer.state_items():
        tail = [] if weight is None else [weight_keys.get(id(weight), weight.path)]
        found.append(("/".join([OPTIMIZER_PREFIX + field, *tail]), variable))
    return _unique_keys(found)


def saved_variables(model, include_optimizer: bool = True) -> tuple[dict, dict]:
    """Everything a file holds for ``model`` (its variables, then its optimizer's state), and
    their structural keys: ``({key: Variable}, {key: structural_key})``."""
    optimizer = getattr(model, "optimizer", None) if include_optimizer else None
    if optimizer is not None and not optimizer.built:
        optimizer = None  # nothing to save before the first step
    return keyed_variables(model, optimizer, stores="save")


def _unique_keys(pairs) -> dict:
    # Two variables with one path (a layer that names two weights alike) get "_1", "_2"...
    # in creation order, so a model and its rebuilt copy agree on the keys.
    result = {}
    for key, variable in pairs:
        candidate, count = key, 0
        while candidate in result:
            count += 1
            candidate = f"{key}_{count}"
        result[candidate] = variable
    return result
