"""A lamina model's config in Keras 3's form, for ``config.json`` of a ``.keras`` file.

lamina's layer configs already use Keras's argument names; what changes is the envelope:
every object gets Keras's ``module`` (``"keras.layers"``, ``"keras.initializers"``...) and
``registered_name`` (``None`` for built-ins, ``"package>Name"`` for registered classes),
Functional models list ``inbound_nodes`` with ``__keras_tensor__`` references
(``keras_history``: layer name, node index, output index) and Sequential models their
``InputLayer`` first.
"""

from __future__ import annotations

from lamina.core.symbolic import SymbolicTensor
from lamina.layers.core.input_layer import InputLayer
from lamina.layers.core.lambda_layer import Lambda
from lamina.saving.object_registry import _REGISTRY, get_registered_name
from lamina.saving.rebuilding import is_model
from lamina.saving.serialization import serialize

_KERAS_MODULES = (  # lamina module prefix -> Keras module label (longest first)
    ("lamina.optimizers.schedules", "keras.optimizers.schedules"),
    ("lamina.mixed_precision", "keras"),
    ("lamina.initializers", "keras.initializers"), ("lamina.regularizers", "keras.regularizers"),
    ("lamina.constraints", "keras.constraints"), ("lamina.optimizers", "keras.optimizers"),
    ("lamina.losses", "keras.losses"), ("lamina.metrics", "keras.metrics"),
    ("lamina.layers", "keras.layers"), ("lamina.models", "keras"), ("lamina.quantizers", "keras.quantizers"),
)
# Classes Keras exports (and names in its files) under another name than the class's own.
_KERAS_CLASS_NAMES = {"GroupedQueryAttention": "GroupQueryAttention"}
_COMPILE_KEYS = ("optimizer", "loss", "loss_weights", "metrics", "weighted_metrics", "run_eagerly",
                 "steps_per_execution", "jit_compile")


def keras_module(cls) -> str | None:
    module = cls.__module__
    for prefix, label in _KERAS_MODULES:
        if module == prefix or module.startswith(prefix + "."):
            return label
    return module


def _envelope(cls, config) -> dict:
    registered = get_registered_name(cls)
    custom = ">" in registered
    return {"module": keras_module(cls), "class_name": _KERAS_CLASS_NAMES.get(cls.__name__, cls.__name__),
            "config": config,
            "registered_name": registered if custom else None}


def to_keras(value):
    """A lamina config value (serialized objects inside) in Keras's form."""
    if isinstance(value, (list, tuple)):
        return [to_keras(item) for item in value]
    if not isinstance(value, dict):
        return value
    class_name = value.get("class_name")
    if class_name == "function" and isinstance(value.get("config"), str):
        name = value["config"]
        if ">" not in name:
            return name  # Keras writes built-in functions (activations...) by plain name
        # A registered function as Keras 3 writes it: Keras looks functions up by "config", the
        # registered name (a bare name with the registered one beside it was not found).
        return {"module": "builtins", "class_name": "function", "config": name, "registered_name": "function"}
    if isinstance(class_name, str) and "config" in value and set(value) <= {"class_name", "config", "module",
                                                                              "registered_name", "build_config"}:
        cls = _REGISTRY.get(value.get("registered_name") or class_name) or _REGISTRY.get(class_name)
        module = value.get("module")
        if isinstance(module, str) and module.startswith("lamina."):
            module = "keras." + module[len("lamina."):]
        elif isinstance(cls, type):
            module = keras_module(cls)
        if class_name == "DTypePolicy":
            module = "keras"
        registered = get_registered_name(cls) if isinstance(cls, type) else class_name
        name = cls.__name__ if isinstance(cls, type) else class_name
        return {"module": module, "class_name": _KERAS_CLASS_NAMES.get(name, name),
                "config": to_keras(value["config"]),
                "registered_name": registered if ">" in registered else None}
    return {key: to_keras(item) for key, item in value.items()}


def model_entry(model) -> dict:
    """``config.json``'s top-level object for ``model`` (without ``compile_config``)."""
    if model._lm_model_kind == "sequential":
        entry = {"module": "keras", "class_name": "Sequential", "config": _sequential_config(model),
                 "registered_name": None}
        shape = entry["config"].get("build_input_shape")
    elif model._lm_model_kind == "functional":
        cls = getattr(type(model), "_lm_functional_of", None)
        entry = _envelope(cls, _functional_config(model)) if cls is not None else {
            "module": "keras.src.models.functional", "class_name": "Functional",
            "config": _functional_config(model), "registered_name": "Functional"}
        shape = None
    else:
        entry = _envelope(type(model), to_keras(model.get_config()))
        shape = model.__dict__.get("_lm_declared_input_shape") or model.__dict__.get("_lm_build_shape")
    entry["build_config"] = {"input_shape": _json_shape(shape)}
    return entry


def layer_entry(layer) -> dict:
    if isinstance(layer, Lambda):
        raise ValueError(f"Layer '{layer.name}' is a Lambda layer: a .keras file would need its Python "
                         "bytecode, which lamina never writes. Save as .lamina, or replace it with a registered layer.")
    if is_model(layer):
        entry = model_entry(layer)
        entry.pop("build_config")
    else:
        # A layer whose state Keras keeps in assets (an adapted vocabulary) states it in its config.
        own = getattr(layer, "keras_file_config", None)
        config = to_keras(own() if own is not None else layer.get_config())
        config["name"] = layer.name
        # No build_config: Keras builds each layer by replaying the graph (a build_config
        # would go to its build(), whose arguments differ per class: MultiHeadAttention's).
        entry = _envelope(type(layer), config)
    entry["name"] = layer.name
    return entry


def _input_layer_entry(input_layer) -> dict:
    config = {"batch_shape": list(input_layer.batch_shape), "dtype": input_layer.input_dtype,
              "sparse": False, "ragged": False, "name": input_layer.name}
    return {"module": "keras.layers", "class_name": "InputLayer", "config": config, "registered_name": None}


def _sequential_config(model) -> dict:
    layers = [layer_entry(layer) for layer in model.layers]
    for entry in layers:
        entry.pop("name")
    input_layer = model.__dict__.get("_lm_input_layer")
    shape = None
    if input_layer is not None:
        layers.insert(0, _input_layer_entry(input_layer))
        shape = list(input_layer.batch_shape)
    elif model.built:
        shape = _json_shape(model.__dict__.get("_lm_build_shape"))
    return {"name": model.name, "trainable": model.trainable, "layers": layers, "build_input_shape": shape}


def _functional_config(model) -> dict:
    node_index, per_layer = {}, {}
    for node in model._lm_nodes:
        # Keras counts a nested Functional model's own graph as its node 0.
        node_index[id(node)] = per_layer.get(id(node.layer), int(node.layer._lm_model_kind == "functional"))
        per_layer[id(node.layer)] = node_index[id(node)] + 1

    def encode(value):
        if isinstance(value, SymbolicTensor):
            node = value.node
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": list(value.shape), "dtype": value.dtype.name,
                               "keras_history": [node.layer.name, node_index.get(id(node), 0),
                                                 node.output_tensors.index(value)]}}
        if isinstance(value, (list, tuple)):
            return [encode(item) for item in value]
        if isinstance(value, dict):
            return {key: encode(item) for key, item in value.items()}
        return to_keras(value)

    nodes_of = {}
    for node in model._lm_nodes:
        if not isinstance(node.layer, InputLayer):
            nodes_of.setdefault(id(node.layer), []).append(
                {"args": encode(list(node.args)), "kwargs": encode(dict(node.kwargs))})
    layers = []
    for layer in model.layers:
        entry = _input_layer_entry(layer) if isinstance(layer, InputLayer) else layer_entry(layer)
        entry["name"] = layer.name
        entry["inbound_nodes"] = nodes_of.get(id(layer), [])
        layers.append(entry)

    def endpoints(structure):
        tensors = structure if isinstance(structure, (list, tuple, dict)) else [structure]
        if isinstance(tensors, dict):
            return {key: encode(t)["config"]["keras_history"] for key, t in tensors.items()}
        triples = [encode(t)["config"]["keras_history"] for t in tensors]
        return triples[0] if not isinstance(structure, (list, tuple)) else triples

    return {"name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": endpoints(model._lm_inputs), "output_layers": endpoints(model._lm_outputs)}


def compile_entry(model):
    """``compile_config`` in Keras's form, or ``None`` (not compiled, or not expressible)."""
    config = model.get_compile_config()
    if not config:
        return None
    result = {key: to_keras(serialize(config[key])) if key == "optimizer" else to_keras(config.get(key))
              for key in _COMPILE_KEYS if key in config}
    if not isinstance(result.get("steps_per_execution"), int):
        result["steps_per_execution"] = 1  # lamina's "auto" has no Keras counterpart
    return result


def _json_shape(shape):
    if shape is None:
        return None
    if isinstance(shape, (list, tuple)) and all(d is None or isinstance(d, int) for d in shape):
        return list(shape)
    if isinstance(shape, (list, tuple)):
        return [_json_shape(s) for s in shape]
    if isinstance(shape, dict):
        return {key: _json_shape(s) for key, s in shape.items()}
    return shape
