"""Rebuilding a Keras 3 model config as a lamina model: Sequential, Functional (replaying
``inbound_nodes``: shared layers, several inputs and outputs, nested models) and subclassed
models registered under Keras's ``registered_name``."""

from __future__ import annotations

import jax

from lamina.core.symbolic import is_symbolic
from lamina.layers.core.input_layer import InputLayer
from lamina.saving.errors import FileFormatError
from lamina.saving.keras_files.config_in import resolve_class, translate
from lamina.saving.object_registry import _REGISTRY
from lamina.saving.rebuilding import is_model
from lamina.saving.serialization import _from_config

_MODEL_CLASSES = ("Sequential", "Functional", "Model")


def build_model(entry: dict, custom_objects, where: str = "the model"):
    """The lamina model a top-level (or nested) Keras model entry describes, unbuilt weights
    made from the graph (Functional), the input layer (Sequential) or ``build_config``."""
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str) \
            or not isinstance(entry.get("config"), dict):
        raise FileFormatError(f"{where}: a Keras model entry needs 'class_name' and a 'config' object.")
    class_name, config = entry["class_name"], entry["config"]
    registered = entry.get("registered_name")
    custom = isinstance(registered, str) and ">" in registered
    if class_name == "Sequential" and not custom:
        return _sequential(config, custom_objects)
    if _is_functional_config(config):
        cls = None
        if custom or class_name not in _MODEL_CLASSES:
            cls = _model_class_named(class_name, registered, custom_objects, config, where)
        return _functional(config, custom_objects, cls)
    cls = _model_class_named(class_name, registered, custom_objects, config, where)
    return _from_config(cls, translate(config, f"model {config.get('name')!r}", custom_objects), custom_objects)


def _model_class_named(class_name, registered, custom_objects, config, where) -> type:
    cls = resolve_class(class_name, registered, custom_objects, f"model {config.get('name')!r}")
    if not (isinstance(cls, type) and is_model(cls)):
        raise FileFormatError(f"{where}: config.json names {class_name!r}, which is not a model class in lamina.")
    return cls


def make_layer(spec: dict, custom_objects, where: str):
    """One entry of a model's ``layers`` list as a lamina layer (a nested model included)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) \
            or not isinstance(spec.get("config"), dict):
        raise FileFormatError(f"{where}: each layer entry needs 'class_name' and a 'config' object; got {spec!r:.200}.")
    config = spec["config"]
    name = spec.get("name", config.get("name"))
    described = f"layer {name!r} ({spec['class_name']}) of {where}"
    if spec["class_name"] in _MODEL_CLASSES or _is_functional_config(config):
        layer = build_model(spec, custom_objects, described)
    else:
        cls = resolve_class(spec["class_name"], spec.get("registered_name"), custom_objects, described)
        if spec["class_name"] == "InputLayer" and any(config.get(key) for key in ("sparse", "ragged", "optional")):
            raise FileFormatError(f"{described}: sparse, ragged and optional inputs are not supported by lamina.")
        lamina_config = translate({"class_name": spec["class_name"], "config": config,
                                   "registered_name": spec.get("registered_name")}, described, custom_objects)["config"]
        try:
            layer = _from_config(cls, lamina_config, custom_objects)
        except (TypeError, ValueError, KeyError) as error:
            raise FileFormatError(f"{described} could not be rebuilt from its Keras config: {error}") from error
    if isinstance(name, str):
        layer._lm_name = name
    return layer


def _is_functional_config(config) -> bool:
    return isinstance(config, dict) and "layers" in config and "input_layers" in config and "output_layers" in config


def _model_class(name: str) -> type:
    # lamina.models registers its classes on import; saving never imports lamina.models.
    return _REGISTRY[name]


def _sequential(config, custom_objects):
    where = f"Sequential {config.get('name')!r}"
    layers = [make_layer(spec, custom_objects, where) for spec in _list(config.get("layers"), "layers", where)]
    model = _model_class("Sequential")(layers, name=config.get("name"), trainable=config.get("trainable", True))
    shape = config.get("build_input_shape")
    if not model.built and shape is not None:
        model.build(_shape(shape, where))
    return model


def _functional(config, custom_objects, cls=None):
    where = f"model {config.get('name')!r}"
    specs = _list(config.get("layers"), "layers", where)
    layers, pending = {}, []
    for spec in specs:
        layer = make_layer(spec, custom_objects, where)
        if layer.name in layers:
            raise FileFormatError(f"{where} lists two layers named {layer.name!r}.")
        layers[layer.name] = layer
        nodes = spec.get("inbound_nodes", [])
        pending.append((layer, list(_list(nodes, "inbound_nodes", f"layer {layer.name!r} of {where}"))))
    outputs_of = {(name, 0): [layer.output] for name, layer in layers.items() if isinstance(layer, InputLayer)}
    done = {name: (1 if isinstance(layer, InputLayer) else 0) for name, layer in layers.items()}
    # Keras's order: layers in list order, a node waiting until the tensors it reads exist.
    progress = True
    while progress:
        progress = False
        for layer, nodes in pending:
            while done[layer.name] < len(nodes) and not isinstance(layer, InputLayer):
                node = nodes[done[layer.name]]
                decoded = _decode(node, outputs_of, layers, f"layer {layer.name!r} of {where}")
                if decoded is None:
                    break
                args, kwargs = decoded
                result = layer(*args, **kwargs)
                # Keras counts a nested Functional model's own graph as its node 0.
                nested_graph = layer._lm_model_kind == "functional"
                outputs_of[(layer.name, done[layer.name] + nested_graph)] = _flat(result)
                done[layer.name] += 1
                progress = True
    stuck = [layer.name for layer, nodes in pending if not isinstance(layer, InputLayer) and done[layer.name] < len(nodes)]
    if stuck:
        raise FileFormatError(f"{where}: the calls of layers {stuck} read tensors that no layer makes.")
    inputs = _endpoints(config["input_layers"], outputs_of, where)
    outputs = _endpoints(config["output_layers"], outputs_of, where)
    # A registered Model subclass called with (inputs, outputs) becomes its Functional twin
    # (Model.__new__), as in Keras.
    target = _model_class("Functional") if cls is None else cls
    return target(inputs, outputs, name=config.get("name"), trainable=config.get("trainable", True))


def _decode(node, outputs_of, layers, where):
    """``(args, kwargs)`` of one recorded call with its tensors, or ``None`` when a tensor it
    reads is not made yet."""
    if not isinstance(node, dict):
        raise FileFormatError(f"{where}: an inbound node must be an object with 'args' and 'kwargs'.")
    missing = []

    def resolve(value):
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            history = (value.get("config") or {}).get("keras_history")
            if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)
                    and all(isinstance(i, int) and i >= 0 for i in history[1:])):
                raise FileFormatError(f"{where}: a tensor's 'keras_history' must be [layer name, node, index].")
            name, node_index, tensor_index = history
            if name not in layers:
                raise FileFormatError(f"{where} reads a tensor of layer {name!r}, which the model does not list.")
            made = outputs_of.get((name, node_index))
            if made is None:
                missing.append(name)
                return None
            if tensor_index >= len(made):
                raise FileFormatError(f"{where} reads output {tensor_index} of layer {name!r}, which has {len(made)}.")
            return made[tensor_index]
        if isinstance(value, dict):
            return {key: resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [resolve(item) for item in value]
        return value

    args = resolve(node.get("args", []))
    kwargs = resolve(node.get("kwargs", {}))
    if missing:
        return None
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise FileFormatError(f"{where}: an inbound node's 'args' must be a list and 'kwargs' an object.")
    # Keras records ``training`` in a node but overrides it with the model call's own value
    # (so a Random* layer called symbolically stays off in predict): leave it to the call.
    kwargs = {key: value for key, value in kwargs.items()
              if key != "training" and not (key == "mask" and value is None)}
    return args, kwargs


def _endpoints(spec, outputs_of, where):
    def one(triple):
        if not (isinstance(triple, list) and len(triple) == 3 and (triple[0], triple[1]) in outputs_of):
            raise FileFormatError(f"{where}: model input/output {triple!r} names no tensor of the model.")
        made = outputs_of[(triple[0], triple[1])]
        if not isinstance(triple[2], int) or not 0 <= triple[2] < len(made):
            raise FileFormatError(f"{where}: model input/output {triple!r} names no tensor of the model.")
        return made[triple[2]]

    if isinstance(spec, dict):
        return {key: one(value) for key, value in spec.items()}
    if isinstance(spec, list) and len(spec) == 3 and isinstance(spec[0], str):
        return one(spec)
    if isinstance(spec, list):
        return [one(item) for item in spec]
    raise FileFormatError(f"{where}: 'input_layers'/'output_layers' must be lists; got {spec!r:.200}.")


def _flat(result) -> list:
    return jax.tree_util.tree_leaves(result, is_leaf=is_symbolic)


def _list(value, what, where) -> list:
    if not isinstance(value, list):
        raise FileFormatError(f"{where}: '{what}' must be a list.")
    return value


def _shape(shape, where):
    if isinstance(shape, list) and all(d is None or isinstance(d, int) for d in shape):
        return tuple(shape)
    raise FileFormatError(f"{where}: 'build_input_shape' must be a list of sizes; got {shape!r:.200}.")
