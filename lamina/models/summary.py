"""``model.summary()``: a table of layers, output shapes and parameter counts (rich)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from lamina.core.symbolic import SymbolicTensor


def _count(variables) -> int:
    return sum(v.size for v in variables)


def _size(n_params: int, variables) -> str:
    total = sum(v.size * v.dtype.itemsize for v in variables)
    for unit in ("B", "KB", "MB", "GB"):
        if total < 1024 or unit == "GB":
            return f"{n_params:,} ({total:,.2f} {unit})"
        total /= 1024
    return f"{n_params:,}"


def _first_node(layer, model_nodes):
    """The layer's first call in this model (a shared layer or one a model starting at an
    inner tensor re-recorded has calls in other graphs too); else its first call."""
    nodes = layer._lm_inbound_nodes
    return next((node for node in nodes if id(node) in model_nodes), nodes[0] if nodes else None)


def _output_shape(layer, known, model_nodes=frozenset()):
    node = _first_node(layer, model_nodes)
    if node is not None:
        outputs = node.output_tensors
        shapes = [t.shape for t in outputs if isinstance(t, SymbolicTensor)]
        return shapes[0] if len(shapes) == 1 else shapes
    return known.get(id(layer), "?")


def _sequential_shapes(model) -> dict:
    """Output shape of each layer of a built Sequential, by chaining compute_output_shape."""
    shape, shapes = model.__dict__.get("_lm_declared_input_shape") or model._lm_build_shape, {}
    if shape is None:
        return shapes
    for layer in model.layers:
        try:
            shape = layer.compute_output_shape(shape)
        except Exception:  # a layer that cannot say: later shapes are unknown too
            break
        shapes[id(layer)] = shape
    return shapes


def _connected_to(layer, model_nodes=frozenset()) -> str:
    node = _first_node(layer, model_nodes)
    if node is None:
        return ""
    parts = []
    for tensor in node.input_tensors:
        node = tensor.node
        index = node.layer._lm_inbound_nodes.index(node) if node in node.layer._lm_inbound_nodes else 0
        parts.append(f"{node.layer.name}[{index}][{node.output_tensors.index(tensor)}]")
    return ", ".join(parts) or "-"


def summary_lines(model, *, line_length=None, expand_nested=False, show_trainable=False) -> list[str]:
    functional = model._lm_model_kind == "functional"
    table = Table(title=f'Model: "{model.name}"', title_justify="left", show_lines=False)
    table.add_column("Layer (type)", no_wrap=True)
    table.add_column("Output Shape")
    table.add_column("Param #", justify="right")
    if functional:
        table.add_column("Connected to")
    if show_trainable:
        table.add_column("Trainable")
    known = _sequential_shapes(model) if model._lm_model_kind == "sequential" else {}
    model_nodes = {id(node) for node in model.__dict__.get("_lm_nodes", ())}

    def add_rows(layers, depth):
        for layer in layers:
            name = ("  " * depth + ("└ " if depth else "")) + f"{layer.name} ({type(layer).__name__})"
            params = f"{_count(layer.weights):,}" if layer.built else "0 (unbuilt)"
            row = [name, str(_output_shape(layer, known, model_nodes)), params]
            if functional:
                row.append(_connected_to(layer, model_nodes) if depth == 0 else "")
            if show_trainable:
                row.append("Y" if layer.trainable else "N")
            table.add_row(*row)
            if expand_nested and layer._lm_model_kind is not None:
                add_rows(layer.layers, depth + 1)

    add_rows(model.layers, 0)
    console = Console(file=io.StringIO(), width=line_length or (120 if functional else 98), record=True,
                      color_system=None, force_terminal=False)
    console.print(table)
    trainable, frozen = model.trainable_weights, model.non_trainable_weights
    console.print(f" Total params: {_size(_count(trainable) + _count(frozen), trainable + frozen)}")
    console.print(f" Trainable params: {_size(_count(trainable), trainable)}")
    console.print(f" Non-trainable params: {_size(_count(frozen), frozen)}")
    optimizer = model.__dict__.get("optimizer")
    if optimizer is not None and getattr(optimizer, "variables", None):
        console.print(f" Optimizer params: {_size(_count(optimizer.variables), optimizer.variables)}")
    return console.export_text().rstrip("\n").split("\n")
