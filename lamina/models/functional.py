"""Functional models: a graph of layer calls recorded on symbolic tensors, replayed on arrays.

``lm.Model(inputs, outputs)`` walks back from ``outputs`` through the recorded ``Node``s to
``inputs``, orders the nodes so that each runs after its inputs exist, and ``call`` runs them
in that order. Shared layers (one layer, several nodes) run once per node; a model called on
symbolic tensors is a node like any layer.
"""

from __future__ import annotations

import jax

from lamina.core import state
from lamina.core.symbolic import Node, SymbolicTensor, is_symbolic
from lamina.layers.core.input_layer import InputLayer, conform_to_input
from lamina.layers.layer import _adopt
from lamina.layers.masking import get_mask, set_mask
from lamina.models.model import Model
from lamina.saving.object_registry import get_registered_name, register_builtin
from lamina.saving.serialization import deserialize_object, serialize_object


def _tensors(structure) -> list:
    return jax.tree_util.tree_leaves(structure, is_leaf=is_symbolic)


@register_builtin
class Functional(Model):
    """What ``lm.Model(inputs, outputs)`` builds; see the module docstring."""

    _lm_child_keys = "name"  # the graph's layers are adopted under their names
    _lm_model_kind = "functional"

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)
        for tensor in _tensors(inputs) + _tensors(outputs):
            if not isinstance(tensor, SymbolicTensor):
                raise TypeError(f"Model(inputs, outputs) takes symbolic tensors (from lm.Input and layer calls); got {type(tensor).__name__}.")
        inputs, outputs = _start_at_input_layers(inputs, outputs)
        self._lm_inputs = inputs
        self._lm_outputs = outputs
        self._lm_nodes = _order_nodes(_tensors(inputs), _tensors(outputs))
        layers = _keras_layer_order(_tensors(inputs), _tensors(outputs))
        _check_unique_names(self.name, layers)
        for layer in layers:
            _adopt(self, layer, layer.name)  # paths read 'model/dense/kernel'
        self._layers = layers
        state.bump_structure_version(self)
        self.built = True

    def build(self, input_shape=None) -> None:
        """Nothing to do: a functional model is built when it is made (Keras's guides still
        call ``model.build(one_batch)`` on one)."""

    @property
    def layers(self) -> list:
        return list(self._layers)

    @property
    def inputs(self) -> list:
        return _tensors(self._lm_inputs)

    @property
    def outputs(self) -> list:
        return _tensors(self._lm_outputs)

    @property
    def output_names(self) -> list:
        """The name of the layer that produced each output, in ``outputs`` order (as Keras).

        ``compile`` and ``fit`` match dicts of losses, metrics and targets to a list of
        outputs by these names; a dict output is matched by its own keys.

        Example:
            >>> import lamina as lm
            >>> inputs = lm.Input(shape=(3,))
            >>> score = lm.layers.Dense(1, name="score")(inputs)
            >>> label = lm.layers.Dense(4, name="label")(inputs)
            >>> lm.Model(inputs, [score, label]).output_names
            ['score', 'label']
        """
        return [tensor.node.layer.name for tensor in self.outputs]

    @property
    def input(self):
        return self._lm_inputs

    @property
    def output(self):
        return self._lm_outputs

    @property
    def input_shape(self):
        return _shapes(self._lm_inputs)

    @property
    def output_shape(self):
        return _shapes(self._lm_outputs)

    def call(self, inputs, training=None, mask=None):
        values = {}
        flat = self._flatten_inputs(inputs)
        masks = [None] * len(flat) if mask is None else self._flatten_masks(mask, len(flat))
        for tensor, value, value_mask in zip(self.inputs, flat, masks):
            conformed = conform_to_input(value, tensor.shape, tensor.dtype)
            if conformed is not value:  # the mask recorded on the value given stays with it
                value_mask, value = (get_mask(value) if value_mask is None else value_mask), conformed
            if value_mask is not None and get_mask(value) is None:
                set_mask(value, value_mask)  # the first layers look their input's mask up there
            values[id(tensor)] = value
        for node in self._lm_nodes:
            if isinstance(node.layer, InputLayer):
                continue
            args, kwargs = jax.tree_util.tree_map(
                lambda leaf: values[id(leaf)] if isinstance(leaf, SymbolicTensor) else leaf,
                (node.args, node.kwargs), is_leaf=is_symbolic,
            )
            result = node.layer(*args, **kwargs)
            for tensor, value in zip(node.output_tensors, jax.tree_util.tree_leaves(result)):
                values[id(tensor)] = value
        return jax.tree_util.tree_map(lambda t: values[id(t)], self._lm_outputs, is_leaf=is_symbolic)

    def _flatten_masks(self, mask, count) -> list:
        if isinstance(mask, dict) and isinstance(self._lm_inputs, dict):
            return [mask.get(key) for key in self._lm_inputs]
        if count == 1:
            return [mask]
        if isinstance(mask, (list, tuple)) and len(mask) == count:
            return list(mask)
        raise ValueError(f"Model '{self.name}' has {count} inputs; mask= must give one mask (or None) for each, "
                         f"got {type(mask).__name__}.")

    def _flatten_inputs(self, inputs) -> list:
        expected = self.inputs
        if isinstance(self._lm_inputs, dict) and isinstance(inputs, dict):
            missing = set(self._lm_inputs) - set(inputs)
            if missing:
                raise ValueError(f"Model '{self.name}' expects inputs {sorted(self._lm_inputs)}; missing {sorted(missing)}.")
            return [inputs[key] for key in self._lm_inputs]
        # One input given as a list of one array (``model([x])``, ``fit([x], y)``) is that array,
        # as in Keras.
        one_in_a_list = isinstance(inputs, (list, tuple)) and len(inputs) == 1 and len(expected) == 1
        flat = list(inputs) if isinstance(inputs, (list, tuple)) and (len(expected) > 1 or one_in_a_list) else [inputs]
        if isinstance(inputs, dict):
            by_name = {t.name: t for t in expected}
            flat = [inputs[t.name] for t in expected if t.name in inputs]
            if len(flat) != len(expected):
                raise ValueError(f"Model '{self.name}' expects inputs named {list(by_name)}; got keys {sorted(inputs)}.")
        if len(flat) != len(expected):
            raise ValueError(f"Model '{self.name}' expects {len(expected)} inputs, got {len(flat)}.")
        return flat

    # -- configuration ----------------------------------------------------------------------
    def get_config(self) -> dict:
        """Layers (by config) and the calls between them, in execution order, as JSON.

        A symbolic argument is written ``{"__tensor__": [layer_name, call_index, output_index]}``:
        the output of that layer's ``call_index``-th call in this model.
        """
        call_index, calls_so_far = {}, {}
        for node in self._lm_nodes:
            name = node.layer.name
            call_index[id(node)] = calls_so_far.get(name, 0)
            calls_so_far[name] = call_index[id(node)] + 1

        def encode(structure):
            return _map_structure(
                lambda leaf: {"__tensor__": [leaf.node.layer.name, call_index[id(leaf.node)],
                                             leaf.node.output_tensors.index(leaf)]}
                if isinstance(leaf, SymbolicTensor) else leaf,
                structure,
            )

        return {
            "name": self.name,
            "trainable": self.trainable,
            # Each layer's name is recorded here, not left to its get_config(): the calls refer
            # to layers by name, and a custom get_config() often leaves the name out.
            "layers": [{**serialize_object(layer), "name": layer.name} for layer in self._layers],
            "calls": [
                {"layer": node.layer.name, "args": encode(list(node.args)), "kwargs": encode(node.kwargs)}
                for node in self._lm_nodes if not isinstance(node.layer, InputLayer)
            ],
            "inputs": encode(self._lm_inputs),
            "outputs": encode(self._lm_outputs),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        layers = {}
        for spec in config["layers"]:
            spec = dict(spec)
            name = spec.pop("name", None)
            layer = deserialize_object(spec, kind="layer", aliases={"InputLayer": InputLayer}, custom_objects=custom_objects)
            if name is not None:
                layer._lm_name = name
            if layer.name in layers:
                raise ValueError(
                    f"Model config {config.get('name')!r} lists two layers named {layer.name!r} "
                    f"({type(layers[layer.name]).__name__} and {type(layer).__name__}); the calls refer "
                    "to layers by name, so names must be unique."
                )
            layers[layer.name] = layer
        outputs_of = {(name, 0): [layer.output] for name, layer in layers.items() if isinstance(layer, InputLayer)}
        calls_so_far = {}

        def decode(structure):
            def resolve(leaf):
                if isinstance(leaf, dict) and "__tensor__" in leaf:
                    name, index, position = leaf["__tensor__"]
                    if (name, index) not in outputs_of:
                        raise ValueError(f"Model config refers to call {index} of layer {name!r}, which does not exist (yet).")
                    return outputs_of[(name, index)][position]
                return leaf
            return _map_structure(resolve, structure, decode_dicts=True)

        for call in config["calls"]:
            name = call["layer"]
            if name not in layers:
                raise ValueError(f"Model config calls layer {name!r}, which is not among its layers.")
            result = layers[name](*decode(call["args"]), **decode(call["kwargs"]))
            index = calls_so_far.get(name, 0)
            calls_so_far[name] = index + 1
            outputs_of[(name, index)] = _tensors(result)
        return cls(decode(config["inputs"]), decode(config["outputs"]), name=config.get("name"),
                   trainable=config.get("trainable", True))


def _shapes(structure):
    """The shapes of a structure of symbolic tensors; a list of one gives its shape (as Keras)."""
    if isinstance(structure, (list, tuple)) and len(structure) == 1:
        structure = structure[0]
    return jax.tree_util.tree_map(lambda t: t.shape, structure, is_leaf=is_symbolic)


def is_functional_config(config) -> bool:
    """Whether ``config`` is a Functional model's ``get_config()``."""
    return isinstance(config, dict) and all(key in config for key in ("layers", "calls", "inputs", "outputs"))


def functional_subclass(cls) -> type:
    """The class of ``cls(inputs, outputs)`` for a ``Model`` subclass ``cls``: it derives from
    ``cls`` first (its ``train_step`` and other overrides win) and from ``Functional`` (the
    graph, layers, config). It is saved under ``cls``'s registered name, so loading it needs
    ``cls`` registered or in ``custom_objects``, as any custom class.

    Example:
        >>> import lamina as lm
        >>> class CustomModel(lm.Model):
        ...     def train_step(self, data):
        ...         return super().train_step(data)
        >>> inputs = lm.Input(shape=(3,))
        >>> model = CustomModel(inputs, lm.layers.Dense(1)(inputs))
        >>> isinstance(model, CustomModel), type(model).__name__, len(model.layers)
        (True, 'CustomModel', 2)
    """
    # Kept on the class itself (not in a module-level table), so that a class defined in a
    # function can be collected with its functional twin.
    subclass = cls.__dict__.get("_lm_functional_class")
    if subclass is None:
        namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                     "__doc__": cls.__doc__, "_lm_registered_name": get_registered_name(cls),
                     "_lm_functional_of": cls}
        subclass = type(cls.__name__, (cls, Functional), namespace)
        type.__setattr__(cls, "_lm_functional_class", subclass)
    return subclass


# model.py cannot import this module (it subclasses Model): Model(inputs, outputs) reaches the
# Functional API through the class set here, and the two helpers it needs.
Functional._lm_subclass_for = staticmethod(functional_subclass)
Functional._lm_is_config = staticmethod(is_functional_config)
Model._lm_functional = Functional


def _check_unique_names(model_name, layers) -> None:
    """Refuse two layers with one name: the config refers to layers by name, so such a model
    would reload as a different one."""
    by_name = {}
    for layer in layers:
        by_name.setdefault(layer.name, []).append(layer)
    for name, same in by_name.items():
        if len(same) > 1:
            raise ValueError(
                f"Model '{model_name}': the name {name!r} is used by {len(same)} different layers "
                f"({', '.join(_describe(layer) for layer in same)}). "
                "All layer names in a model must be unique: pass name=... to tell them apart."
            )


def _describe(layer) -> str:
    inputs = [t.name for node in layer._lm_inbound_nodes[:1] for t in node.input_tensors]
    return f"a {type(layer).__name__} called on {inputs}" if inputs else f"a {type(layer).__name__}"


def _map_structure(fn, structure, decode_dicts=False):
    """``fn`` on every leaf of nested lists/tuples/dicts (a ``{"__tensor__": ...}`` dict is a
    leaf when decoding)."""
    if isinstance(structure, dict) and not (decode_dicts and "__tensor__" in structure):
        return {k: _map_structure(fn, v, decode_dicts) for k, v in structure.items()}
    if isinstance(structure, tuple):
        return tuple(_map_structure(fn, v, decode_dicts) for v in structure)
    if isinstance(structure, list):
        return [_map_structure(fn, v, decode_dicts) for v in structure]
    return fn(structure)


def _keras_layer_order(inputs, outputs) -> list:
    """The model's layers in Keras's order, so that ``layers``, ``weights`` and
    ``get_weights()`` line up with a Keras model of the same graph (weights copy across).

    Keras walks the graph depth first from the outputs, noting when it first meets each layer;
    a node's depth is its distance from the outputs (a layer takes its deepest node's); layers
    come deepest first, ties in the order first met. Call this after ``_order_nodes`` (which
    checks that the graph is connected and acyclic).
    """
    input_ids = {id(t) for t in inputs}
    first_met, finished, post_order = {}, set(), []

    def visit(tensor):
        node = tensor.node
        if node is None or id(node) in finished:
            return
        is_input_node = isinstance(node.layer, InputLayer)
        if not is_input_node and id(tensor) in input_ids:  # a model input made by a layer
            finished.add(id(node))
            return
        first_met.setdefault(id(node.layer), (len(first_met), node.layer))
        if not is_input_node:
            for parent in node.input_tensors:
                visit(parent)
        finished.add(id(node))
        post_order.append(node)

    for tensor in outputs:
        visit(tensor)
    in_graph = {id(node) for node in post_order}
    node_depth, layer_depth = {}, {}
    for node in reversed(post_order):  # from the outputs towards the inputs
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = node_depth[id(node)] = depth
        if isinstance(node.layer, InputLayer):
            continue
        for parent in node.input_tensors:
            if parent.node is not None and id(parent.node) in in_graph:
                node_depth[id(parent.node)] = max(depth + 1, node_depth.get(id(parent.node), 0))
    for tensor in inputs:  # an input no output depends on still belongs to the model
        if tensor.node is not None and id(tensor.node.layer) not in layer_depth:
            layer_depth[id(tensor.node.layer)] = 0
            first_met[id(tensor.node.layer)] = (-1, tensor.node.layer)
    ranked = sorted(first_met, key=lambda key: (-layer_depth[key], first_met[key][0]))
    return [first_met[key][1] for key in ranked]


def _start_at_input_layers(inputs, outputs):
    """``(inputs, outputs)`` where every input comes from an ``InputLayer``.

    As in Keras, ``Model(inputs, outputs)`` may start at tensors that layers made
    (``Model(hidden, prediction)``: a model of the layers after ``hidden``). Each such input is
    replaced by the tensor of a new ``InputLayer`` named ``"<tensor name>CLONE"`` (Keras's
    suffix; "/" becomes "_"), and the calls between it and the outputs are recorded again on
    the new tensors (new nodes of the same layers, no tracing), so the model neither runs nor
    saves the layers before its inputs.
    """
    flat = _tensors(inputs)
    if all(isinstance(t, SymbolicTensor) and isinstance(t.node.layer, InputLayer) for t in flat):
        return inputs, outputs
    replaced = {}
    for tensor in flat:
        if not isinstance(tensor.node.layer, InputLayer):
            clone = InputLayer(batch_shape=tensor.shape, dtype=tensor.dtype.name, name=tensor.name.replace("/", "_") + "CLONE").output
            clone._keras_mask = tensor._keras_mask
            replaced[id(tensor)] = clone
    node_order = _order_nodes(flat, _tensors(outputs))

    def swap(structure):
        return jax.tree_util.tree_map(lambda t: replaced.get(id(t), t) if isinstance(t, SymbolicTensor) else t,
                                      structure, is_leaf=is_symbolic)

    for node in node_order:
        if isinstance(node.layer, InputLayer) or not any(id(t) in replaced for t in node.input_tensors):
            continue
        layer = node.layer
        copy = Node(layer, *swap((node.args, node.kwargs)), None)

        def renew(tensor, copy=copy, layer=layer):
            new = SymbolicTensor(tensor.shape, tensor.dtype, name=f"{tensor.name}_clone", node=copy,
                                 index=len(layer._lm_inbound_nodes))
            new._keras_mask = tensor._keras_mask
            replaced[id(tensor)] = new
            return new

        copy.outputs = jax.tree_util.tree_map(renew, node.outputs, is_leaf=is_symbolic)
        layer._lm_inbound_nodes.append(copy)
    return swap(inputs), swap(outputs)


def _order_nodes(inputs, outputs) -> list:
    """The nodes between ``inputs`` and ``outputs``, each after the nodes it depends on."""
    known = {id(t) for t in inputs}
    order, done, active = [], set(), set()

    def visit(tensor, needed_by):
        if id(tensor) in known:
            return
        node = tensor.node
        if node is None or isinstance(node.layer, InputLayer):
            raise ValueError(
                f"Graph disconnected: tensor {tensor.name!r} (needed by {needed_by}) is not computed from "
                "the model's inputs. Pass every lm.Input the outputs depend on in Model(inputs=...)."
            )
        if id(node) in done:
            return
        if id(node) in active:
            raise ValueError("The layer graph has a cycle.")
        active.add(id(node))
        for parent in node.input_tensors:
            visit(parent, f"layer '{node.layer.name}'")
        active.discard(id(node))
        done.add(id(node))
        order.append(node)

    for tensor in outputs:
        visit(tensor, "the outputs")
    input_nodes = [t.node for t in inputs]
    return input_nodes + order
