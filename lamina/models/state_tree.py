"""``Model.get_state_tree`` / ``set_state_tree``: every variable as nested dicts, as Keras 3 nests them.

Keras keys a variable by the path it got when it was created: the names of the layers whose
``build`` created it, then its name. So a Sequential's or a subclassed model's weights sit
under the model's name (``{"seq": {"dense": {"kernel": ...}}}``) while a Functional model's
sit under its layers' names alone (its layers are built when the graph is made, outside the
model), and a seed generator's state under its own name. lamina's ``Variable.path`` names
sublayers by attribute, so the Keras path is rebuilt here from layer names. The optimizer's
state is keyed as Keras keys it (``{"adam": {"iteration", "learning_rate",
"seq_dense_kernel_momentum", ...}}``; optax's own step ``count``, which equals ``iteration``,
is left out and set from it), lamina's names for other state Keras does not have; metric
state by metric (``{"loss": {"total", "count"}}``).
"""

from __future__ import annotations

import numpy as np

from lamina.layers.layer import _state_role

_GROUPS = ("trainable_variables", "non_trainable_variables", "optimizer_variables", "metrics_variables")
# lamina (optax) slot name -> Keras's, per optimizer class, where they differ.
_KERAS_SLOTS = {
    "Adam": {"mu": "momentum", "nu": "velocity"}, "AdamW": {"mu": "momentum", "nu": "velocity"},
    "Lamb": {"mu": "momentum", "nu": "velocity"}, "RMSprop": {"nu": "velocity"},
    "Adadelta": {"e_g": "accumulated_grad", "e_x": "accumulated_delta_var"},
    "Adagrad": {"sum_of_squares": "accumulator"}, "Lion": {"mu": "momentum"}, "SGD": {"trace": "momentum"},
}
_KERAS_SCALARS = {"iterations": "iteration"}


def keras_paths(model) -> dict:
    """``{id(variable): Keras path}`` for the model's variables (``variables``: weights, seeds,
    RNN states)."""
    paths, seeds, stack = {}, {}, [(model, "")]
    seen = set()
    while stack:
        layer, prefix = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        # A Functional model's layers are built outside it (when the graph is made): no prefix.
        here = "" if layer._lm_model_kind == "functional" else _join(prefix, layer.name)
        layer._lm_adopt_children()
        own, children, holders = layer._lm_children()
        for variable in own:
            paths.setdefault(id(variable), _join(here, variable.name))
        for holder in holders:
            if _state_role(holder) != "layer":
                continue
            # Keras creates a seed generator in the layer's __init__, outside any build: its
            # state sits under the generator's own (process-unique) name.
            base = getattr(holder, "name", None) or type(holder).__name__.lower()
            name = seeds.setdefault(id(holder), _unique(base, {n for n in seeds.values()}))
            for variable in holder._lm_state_variables():
                paths.setdefault(id(variable), _join(name, variable.name))
        stack.extend((child, here) for child in reversed(children))
    return paths


def get_state_tree(model, value_format: str = "backend_tensor") -> dict:
    """The four groups of ``model``'s variables as nested dicts (``Model.get_state_tree``)."""
    if value_format not in ("backend_tensor", "numpy_array"):
        raise ValueError("Invalid `value_format` argument. Expected one of {'numpy_array', 'backend_tensor'}. "
                         f"Received: value_format={value_format!r}")
    tree = {}
    for group, flat in _flat_groups(model).items():
        nested = {}
        for path, variable in flat.items():
            value = variable.value if value_format == "backend_tensor" else variable.numpy()
            parts = path.split("/")
            node = nested
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        tree[group] = nested
    return tree


def set_state_tree(model, state_tree: dict) -> None:
    """Assign the values of a (possibly partial) state tree to ``model``'s variables
    (``Model.set_state_tree``). Every group, path and shape is checked first: an unknown one
    raises naming it, and nothing changes."""
    if not isinstance(state_tree, dict):
        raise ValueError(f"Model '{model.name}': set_state_tree expects a dict of groups {list(_GROUPS)}, "
                         f"got {type(state_tree).__name__}.")
    unknown = [key for key in state_tree if key not in _GROUPS]
    if unknown:
        raise ValueError(f"Model '{model.name}': unknown state tree group(s) {unknown}; expected some of {list(_GROUPS)}.")
    groups = _flat_groups(model)
    plan, problems = [], []
    for group, subtree in state_tree.items():
        flat = groups[group]
        for path, value in _flatten(subtree, group, model).items():
            variable = flat.get(path)
            if variable is None:
                problems.append(f"{group}: no variable at '{path}'")
            elif tuple(np.shape(value)) != tuple(variable.shape):
                problems.append(f"{group}: '{path}' has shape {tuple(variable.shape)}, the tree gives "
                                f"{tuple(np.shape(value))}")
            else:
                plan.append((variable, value))
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise ValueError(f"Model '{model.name}': the state tree does not fit ({len(problems)} problem(s)); "
                         "no variable was changed.\n  " + "\n  ".join(shown))
    for variable, value in plan:
        variable.assign(value)
    optimizer = getattr(model, "optimizer", None)
    iteration = state_tree.get("optimizer_variables", {}).get(getattr(optimizer, "name", None), {}).get("iteration")
    if iteration is not None:
        for field, variable, weight in optimizer.state_items():
            if weight is None and field == "count":  # optax's own step count follows `iteration`
                variable.assign(np.asarray(iteration).astype(np.dtype(variable.dtype)))


def _flat_groups(model) -> dict:
    """``{group: {Keras path: variable}}`` for the four groups."""
    paths = keras_paths(model)
    optimizer = getattr(model, "optimizer", None)
    return {
        "trainable_variables": _unique_paths(model, [(paths.get(id(v), v.path), v) for v in model.trainable_variables]),
        "non_trainable_variables": _unique_paths(model, [(paths.get(id(v), v.path), v)
                                                         for v in model.non_trainable_variables]),
        "optimizer_variables": _unique_paths(model, _optimizer_paths(optimizer, paths)),
        "metrics_variables": _unique_paths(model, [(v.path, v) for v in model.metrics_variables]),
    }


def _optimizer_paths(optimizer, paths: dict) -> list:
    if optimizer is None:
        return []
    slots = _KERAS_SLOTS.get(type(optimizer).__name__, {})
    found = []
    for field, variable, weight in optimizer.state_items():
        if weight is None and field == "count":
            continue  # optax's step count: Keras has only `iteration`, which set_state_tree copies here
        if weight is None:
            name = _KERAS_SCALARS.get(field, field)
        else:
            weight_path = paths.get(id(weight), weight.path).replace("/", "_")
            name = f"{weight_path}_{slots.get(field, field)}"
        found.append((f"{optimizer.name}/{name}", variable))
    return found


def _unique_paths(model, pairs) -> dict:
    flat = {}
    for path, variable in pairs:
        if path in flat and flat[path] is not variable:
            raise ValueError(f"The following variable path is found twice in model '{model.name}': '{path}'. "
                             "get_state_tree() needs unique paths: give your layers (and other objects) unique names.")
        flat[path] = variable
    return flat


def _flatten(subtree, group: str, model) -> dict:
    if not isinstance(subtree, dict):
        raise ValueError(f"Model '{model.name}': state tree group '{group}' must be a nested dict, got "
                         f"{type(subtree).__name__}.")
    flat, stack = {}, [("", subtree)]
    while stack:
        prefix, node = stack.pop()
        for key, value in node.items():
            if isinstance(value, dict):
                stack.append((f"{prefix}{key}/", value))
            else:
                flat[f"{prefix}{key}"] = value
    return flat


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _unique(base: str, used: set) -> str:
    name, count = base, 0
    while name in used:
        count += 1
        name = f"{base}_{count}"
    return name
