"""Where each of a lamina model's weights sits in a Keras 3 weights file: the one mapping.

Keras saves every object's own variables as ``<path>/vars/<i>`` (trainable ones first, then
the others, each in creation order) and reaches sublayers by attribute name (``lstm/cell``,
``bidirectional/forward_layer``), the layers of a Sequential or Functional model under
``layers/<class name in snake case, numbered per class>`` (``layers/dense``,
``layers/dense_1``: not the layers' own names), in ``model.layers`` order. lamina's layers
keep the same attributes, except where this module's ``_SEGMENTS`` renames one (Keras saves
``MultiHeadAttention``'s ``_query_dense`` under its public alias ``query_dense``).
"""

from __future__ import annotations

import re

from lamina.saving.layer_stores import has_own_store, saved_entries
from lamina.saving.rebuilding import is_model

# lamina's attribute name -> Keras's path segment, per built-in class where they differ.
_SEGMENTS = {
    "MultiHeadAttention": {"_query_dense": "query_dense", "_key_dense": "key_dense",
                           "_value_dense": "value_dense", "_output_dense": "output_dense"},
}


def snake_case(name: str) -> str:
    """Keras's snake case of a class name, which names a layer's group in a weights file.

    Example:
        >>> snake_case("Conv2D"), snake_case("MultiHeadAttention"), snake_case("LSTM")
        ('conv2d', 'multi_head_attention', 'lstm')
    """
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def _numbered(name: str, used: dict) -> str:
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def keras_layout(model, objects: dict | None = None, stores=None) -> tuple[list, dict]:
    """``([(dataset key, variable)], {group path: object name})`` for ``model``: the
    datasets a Keras weights file holds for it, in Keras's order, and every object group
    (parents before children, as Keras visits them). ``objects``, when given, is filled with
    ``{group path: layer}``: Keras's asset folders use the same paths. ``stores``: ``"save"``
    puts the store of a layer saved through its own hooks (``layer_stores.py``) in place of its
    variables, as ``<path>/vars/<store key>``; a list gets those layers instead (``[(layer,
    group path)]``, for loading); ``None`` ignores the hooks.

    Example:
        >>> import lamina as lm
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2, name="hidden"),
        ...                        lm.layers.Dense(1, name="out")])
        >>> [(key, v.name) for key, v in keras_layout(model)[0]]
        [('layers/dense/vars/0', 'kernel'), ('layers/dense/vars/1', 'bias'), ('layers/dense_1/vars/0', 'kernel'), ('layers/dense_1/vars/1', 'bias')]
    """
    pairs, groups, seen = [], {}, set()
    _visit(model, "", pairs, groups, seen, {} if objects is None else objects, stores)
    return pairs, groups


def _visit(layer, path, pairs, groups, seen, objects, stores=None) -> None:
    if id(layer) in seen:
        return
    seen.add(id(layer))
    groups[path] = layer.name
    objects[path] = layer
    layer._lm_adopt_children()  # gives a sublayer appended to a list its segment
    own, children, _ = layer._lm_children()
    own = [v for v in own if v.trainable] + [v for v in own if not v.trainable]
    # A quantized Dense/EinsumDense/Embedding says Keras's order (kernel, bias, kernel_scale).
    keras_order = layer._lm_keras_variable_order() if hasattr(layer, "_lm_keras_variable_order") else None
    own = own if keras_order is None else keras_order
    prefix = f"{path}/vars/" if path else "vars/"
    # A LoRA-enabled layer is written as Keras writes it: its store holds the merged kernel.
    if stores is not None and (has_own_store(layer) or layer.__dict__.get("lora_enabled")):
        if stores == "save":  # as Keras writes it: the store's keys are the dataset names
            pairs.extend((f"{prefix}{key}", entry) for key, _, entry in saved_entries(layer, "", ""))
        else:
            stores.append((layer, path))
        own = []
    pairs.extend((f"{prefix}{index}", variable) for index, variable in enumerate(own))
    for segment, child in _child_paths(layer, children):
        _visit(child, f"{path}/{segment}" if path else segment, pairs, groups, seen, objects, stores)


def _child_paths(layer, children) -> list:
    if layer._lm_model_kind in ("sequential", "functional"):
        return _in_container("layers", layer.layers)
    renames = _SEGMENTS.get(type(layer).__name__, {}) if type(layer).__module__.startswith("lamina.") else {}
    found, containers = [], {}
    for child in children:
        segment = child._lm_segment or snake_case(type(child).__name__)
        if "/" in segment:  # held in a list or dict: Keras numbers them per class in the container
            container = segment.split("/", 1)[0]
            used = containers.setdefault(container, {})
            segment = f"{container}/{_numbered(snake_case(type(child).__name__), used)}"
        found.append((renames.get(segment, segment), child))
    if is_model(layer):
        # A subclassed Keras model also has a ``layers`` attribute (its direct sublayers), and
        # Keras walks attributes sorted, public before private, keeping each layer's first path.
        found = sorted(found + _in_container("layers", children), key=lambda item: _name_key(item[0]))
    return found


def _in_container(container: str, layers) -> list:
    used: dict = {}
    return [(f"{container}/{_numbered(snake_case(type(child).__name__), used)}", child) for child in layers]


def _name_key(segment: str) -> str:
    attribute = segment.split("/", 1)[0]
    return "~" + attribute if attribute.startswith("_") else attribute
