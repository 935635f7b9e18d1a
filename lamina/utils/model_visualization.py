"""``lm.utils.plot_model`` / ``lm.utils.model_to_dot``: a model's layer graph through pydot.

One box per layer, labelled as Keras labels it (``name (Class)``, shapes, dtype, activation,
trainable), and one edge per connection between layer calls. Sequential models are a chain;
Functional models follow their recorded calls (branches, several inputs and outputs, a shared
layer drawn once with an edge per call); a nested model is one box, or, with
``expand_nested=True``, a dashed cluster of its own layers wired to the outer ones. A
subclassed model has no recorded graph (its ``call`` is Python code), so it is one box, as in
Keras; with ``expand_nested=True`` lamina goes further than Keras and draws its direct
sublayers, connected as one traced call shows (``call_graph.py``).

pydot (the ``plot`` extra) is imported only when these functions run; images need Graphviz's
``dot`` program, while a ``.dot`` file is written by pydot alone.
"""

from __future__ import annotations

import errno
import html
import os
import warnings

import jax

from lamina.core.symbolic import is_symbolic
from lamina.utils.call_graph import traced_links

_EXTRA_HINT = 'pip install "lamina[plot]"'


def _import_pydot():
    try:
        import pydot
    except ImportError as error:
        raise ImportError(
            f"plot_model and model_to_dot need pydot, which is not installed: {_EXTRA_HINT} "
            "(images also need the Graphviz program `dot`, https://graphviz.org/download/)."
        ) from error
    return pydot


def _graph_kinds():
    from lamina.models.functional import Functional
    from lamina.models.sequential import Sequential

    return Functional, Sequential


def _node_id(layer) -> str:
    # Layer names may repeat between a model and a model nested in it; identities do not.
    return str(id(layer))


def _add_edge(pydot, dot, source, destination) -> None:
    src, dst = _node_id(source), _node_id(destination)
    if not dot.get_edge(src, dst):  # a shared layer called twice on one input: one edge
        edge = pydot.Edge(src, dst)
        edge.set("penwidth", "2")
        dot.add_edge(edge)


def _activation_name(activation) -> str:
    for attribute in ("name", "__name__"):
        name = getattr(activation, attribute, None)
        if isinstance(name, str):
            return name
    return str(activation)


def _structure(fn, tensors):
    return jax.tree_util.tree_map(fn, tensors, is_leaf=is_symbolic)


def _format(value) -> str:
    if value is None:
        return "?"
    if isinstance(value, dict):
        value = ", ".join(f"{key}: {item}" for key, item in value.items())
    return str(value).replace("{", "").replace("}", "")


def _io_tensors(layer):
    """The symbolic input and output of ``layer``'s first call, or ``(None, None)`` for a
    layer never called on symbolic tensors."""
    try:
        return layer.input, layer.output
    except (ValueError, AttributeError):
        return None, None


def _signature(layer, traced):
    """``(input shapes, output shapes, output dtypes)`` of ``layer``'s first call: from its
    symbolic tensors, else from a trace of the subclassed model around it, else ``None``s."""
    inputs, outputs = _io_tensors(layer)
    if outputs is not None:
        return (None if inputs is None else _structure(lambda t: t.shape, inputs),
                _structure(lambda t: t.shape, outputs), _structure(lambda t: t.dtype.name, outputs))
    return traced or (None, None, None)


def _label(layer, traced=None, *, show_layer_names, show_layer_activations, show_dtype, show_shapes,
           show_trainable) -> str:
    from lamina.layers.core.input_layer import InputLayer

    class_name = type(layer).__name__
    cell = '<font point-size="14">{}</font>'
    cols = []
    input_shape, output_shape, dtype = _signature(layer, traced)
    if show_shapes:
        if not isinstance(layer, InputLayer):
            shape = input_shape
            cols.append('<td bgcolor="white">' + cell.format(f"Input shape: <b>{html.escape(_format(shape))}</b>") + "</td>")
        shape = output_shape
        cols.append('<td bgcolor="white">' + cell.format(f"Output shape: <b>{html.escape(_format(shape))}</b>") + "</td>")
    if show_dtype:
        cols.append('<td bgcolor="white">' + cell.format(f"Output dtype: <b>{html.escape(_format(dtype))}</b>") + "</td>")
    if show_trainable and layer.weights:
        if layer.trainable:
            cols.append('<td bgcolor="forestgreen"><font point-size="14" color="white"><b>Trainable</b></font></td>')
        else:
            cols.append('<td bgcolor="firebrick"><font point-size="14" color="white"><b>Non-trainable</b></font></td>')
    colspan = max(1, len(cols))

    title = f"<b>{html.escape(layer.name)}</b> ({class_name})" if show_layer_names else f"<b>{class_name}</b>"
    rows = [f'<tr><td colspan="{colspan}" bgcolor="black"><font point-size="16" color="white">{title}</font></td></tr>']
    activation = getattr(layer, "activation", None)
    if show_layer_activations and activation is not None:
        name = html.escape(_activation_name(activation))
        rows.append(f'<tr><td bgcolor="white" colspan="{colspan}">' + cell.format(f"Activation: <b>{name}</b>") + "</td></tr>")
    if cols:
        rows.append(f"<tr>{''.join(cols)}</tr>")
    return '<<table border="0" cellborder="1" bgcolor="black" cellpadding="10">' + "".join(rows) + "</table>>"


def _expandable(layer) -> bool:
    """Whether ``expand_nested`` draws ``layer`` as a cluster of its layers (a model that has
    layers; a plain Layer stays one box, as in Keras)."""
    from lamina.models.model import Model

    return isinstance(layer, Model) and bool(layer.layers)


def _is_subclassed(model) -> bool:
    return not isinstance(model, _graph_kinds())


def _trace(model, traces):
    """The traced :class:`~lamina.utils.call_graph.CallGraph` of a subclassed model, once per
    drawing; ``None`` (with a warning) when the model cannot be traced."""
    if id(model) not in traces:
        try:
            traces[id(model)] = traced_links(model)
        except Exception as error:  # any failure of user code under tracing: draw without links
            warnings.warn(f"plot_model: could not trace the subclassed model '{model.name}' "
                          f"({type(error).__name__}: {error}); its layers are drawn without the "
                          "connections between them.", stacklevel=4)
            traces[id(model)] = None
    return traces[id(model)]


def _output_layer(model, index, traces):
    """The innermost layer that makes output ``index`` of ``model``: an expanded model has no
    box of its own for edges to start from."""
    layer = model
    while _expandable(layer):
        if _is_subclassed(layer):
            graph = _trace(layer, traces)
            makers = graph.to_output[index] if graph is not None and index < len(graph.to_output) else []
            layer, index = (makers[-1] if makers else layer.layers[-1]), 0
        else:
            tensor = layer.outputs[index]
            index = tensor.node.output_tensors.index(tensor)
            layer = tensor.node.layer
    return layer


def _input_layer(model, index, traces):
    """The innermost layer that receives input ``index`` of ``model``: a Functional model's
    InputLayer, a Sequential's first layer (it draws no InputLayer), or the first layer of a
    subclassed model that reads that input."""
    _, Sequential = _graph_kinds()
    layer = model
    while _expandable(layer):
        if isinstance(layer, Sequential):
            layer, index = layer.layers[0], 0
        elif _is_subclassed(layer):
            graph = _trace(layer, traces)
            readers = graph.from_input[index] if graph is not None and index < len(graph.from_input) else []
            layer, index = (readers[0] if readers else layer.layers[0]), 0
        else:
            layer = layer.inputs[index].node.layer
    return layer


def _calls(model, traces) -> list:
    """``(source_layer, output_index, destination_layer, input_index)`` for every connection
    in ``model``'s graph, in call order."""
    Functional, Sequential = _graph_kinds()
    if isinstance(model, Sequential):
        layers = model.layers
        return [(a, 0, b, 0) for a, b in zip(layers, layers[1:])]
    if not isinstance(model, Functional):
        graph = _trace(model, traces)
        return [] if graph is None else [(a, 0, b, 0) for a, b in graph.links]
    from lamina.layers.core.input_layer import InputLayer

    links = []
    for node in model._lm_nodes:
        if isinstance(node.layer, InputLayer):
            continue
        for input_index, tensor in enumerate(node.input_tensors):
            if tensor.node is None:
                continue
            links.append((tensor.node.layer, tensor.node.output_tensors.index(tensor), node.layer, input_index))
    return links


def _check_built(model, caller) -> None:
    from lamina.layers.layer import Layer

    if not isinstance(model, Layer):
        raise TypeError(f"{caller} takes a lamina Model (or Layer), got {type(model).__name__}.")
    if not model.built:
        raise ValueError(
            f"{caller}: model '{model.name}' has not yet been built, so its layers are unknown. "
            "Build it first: start a Sequential with lm.Input(shape=...), call model.build(input_shape), "
            "or call the model on a batch of data."
        )


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
                 expand_nested=False, dpi=200, subgraph=False, show_layer_activations=False,
                 show_trainable=False, splines="ortho"):
    """The layer graph of ``model`` as a ``pydot.Dot`` (a ``pydot.Cluster`` with ``subgraph=True``).

    Arguments as :func:`plot_model`. Node names are layer identities; each node's ``label`` is
    an HTML table headed ``name (Class)``.

    Example:
        >>> import lamina as lm
        >>> inputs = lm.Input(shape=(4,), name="features")
        >>> outputs = lm.layers.Dense(2, name="logits")(lm.layers.Dense(8, name="hidden")(inputs))
        >>> dot = lm.utils.model_to_dot(lm.Model(inputs, outputs))
        >>> title = lambda node: node.get("label").split("<b>")[1].split("</b>")[0]
        >>> names = {n.get_name(): title(n) for n in dot.get_nodes() if n.get("label")}
        >>> sorted((names[e.get_source()], names[e.get_destination()]) for e in dot.get_edges())
        [('features', 'hidden'), ('hidden', 'logits')]
    """
    _check_built(model, "model_to_dot")
    pydot = _import_pydot()
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"model_to_dot: rankdir must be one of 'TB', 'LR', 'BT', 'RL', got {rankdir!r}.")
    if subgraph:
        dot = _cluster(pydot, model)
    else:
        dot = pydot.Dot()
        dot.set("rankdir", rankdir)
        dot.set("concentrate", True)
        dot.set("dpi", dpi)
        dot.set("splines", splines)
        dot.set_node_defaults(shape="record")
    label_options = dict(show_layer_names=show_layer_names, show_layer_activations=show_layer_activations,
                         show_dtype=show_dtype, show_shapes=show_shapes, show_trainable=show_trainable)
    if show_shapes or show_dtype:
        _connect_sequential(model)
    if _is_subclassed(model) and not (expand_nested and _expandable(model)):
        dot.add_node(_make_node(pydot, model, label_options))  # no recorded graph: one box, as Keras
        return dot
    _draw(pydot, dot, model, label_options, expand_nested, traces={})
    return dot


def _cluster(pydot, model):
    cluster = pydot.Cluster(graph_name=_node_id(model), style="dashed")
    cluster.set("label", model.name)
    cluster.set("labeljust", "l")
    return cluster


def _draw(pydot, dot, model, label_options, expand_nested, traces) -> None:
    """Add ``model``'s layers (clusters for expanded nested models) and their edges to ``dot``."""
    graph = _trace(model, traces) if _is_subclassed(model) else None
    for layer in model.layers:
        if expand_nested and _expandable(layer):
            cluster = _cluster(pydot, layer)
            _draw(pydot, cluster, layer, label_options, expand_nested, traces)
            dot.add_subgraph(cluster)
        else:
            dot.add_node(_make_node(pydot, layer, label_options, graph.shapes.get(id(layer)) if graph else None))
    for source, output_index, destination, input_index in _calls(model, traces):
        if expand_nested:
            source = _output_layer(source, output_index, traces)
            destination = _input_layer(destination, input_index, traces)
        _add_edge(pydot, dot, source, destination)


def _connect_sequential(model) -> None:
    """Make the symbolic graph of a Sequential built from data, so its layers have shapes."""
    from lamina.models.model import Model

    _, Sequential = _graph_kinds()
    if isinstance(model, Sequential):
        try:
            _ = model.outputs  # connects the layers symbolically
        except (AttributeError, ValueError):  # no known input shape: shapes are drawn as '?'
            pass
    for layer in model.layers if isinstance(model, Model) else []:
        _connect_sequential(layer)


def _make_node(pydot, layer, label_options, traced=None):
    node = pydot.Node(_node_id(layer), label=_label(layer, traced, **label_options))
    node.set("fontname", "Helvetica")
    node.set("border", "0")
    node.set("margin", "0")
    return node


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=True,
               rankdir="TB", expand_nested=False, dpi=200, show_layer_activations=False,
               show_trainable=False, splines="ortho"):
    """Draw ``model``'s layer graph to ``to_file``; the format follows its extension.

    ``.png`` (also when there is no extension), ``.svg``, ``.pdf``, ``.jpg`` ... are drawn by
    Graphviz's ``dot`` program; ``.dot`` writes the graph as Graphviz text with pydot alone.

    Args:
        model: A built lamina model (Sequential, Functional or subclassed) or layer.
        to_file: Where to write the picture.
        show_shapes: Show each layer's input and output shapes.
        show_dtype: Show each layer's output dtype.
        show_layer_names: Head each box with the layer's name and class (else the class only).
        rankdir: ``"TB"`` (top to bottom) or ``"LR"`` (left to right), as Graphviz.
        expand_nested: Draw nested models as clusters of their layers. A subclassed model
            (also the one plotted) then shows its direct sublayers, linked as a trace of one
            call at its built input shape finds them (with the shapes seen in that trace).
        dpi: Resolution of bitmap images.
        show_layer_activations: Show the ``activation`` of layers that have one.
        show_trainable: Mark layers with weights as trainable or frozen.
        splines: Graphviz's edge style (``"ortho"``, ``"spline"``, ``"line"``, ...).

    Returns:
        An ``IPython.display.Image`` of the file (``SVG`` for ``.svg``) when IPython is
        installed and the file is an image, for display in notebooks; otherwise ``None``.

    Raises:
        ImportError: pydot is missing (install ``lamina[plot]``), or an image was asked for
            and Graphviz's ``dot`` program is missing (install Graphviz, or write ``.dot``).

    Example:
        >>> import os, tempfile, lamina as lm
        >>> model = lm.Sequential([lm.Input((4,)), lm.layers.Dense(8), lm.layers.Dense(1)])
        >>> path = os.path.join(tempfile.mkdtemp(), "model.dot")
        >>> lm.utils.plot_model(model, path, show_shapes=True)
        >>> "Output shape: <b>(None, 1)</b>" in open(path).read()
        True
    """
    to_file = os.fspath(to_file)
    dot = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                       rankdir=rankdir, expand_nested=expand_nested, dpi=dpi,
                       show_layer_activations=show_layer_activations, show_trainable=show_trainable,
                       splines=splines)
    extension = os.path.splitext(to_file)[1][1:].lower() or "png"
    if extension in ("dot", "gv"):
        data = dot.to_string().encode("utf-8")
    else:
        data = _render(dot, extension, to_file)
    with open(to_file, "wb") as file:
        file.write(data)
    return _notebook_image(to_file, extension)


def _render(dot, extension, to_file) -> bytes:
    if extension not in dot.formats:
        raise ValueError(f"plot_model cannot write {to_file!r}: {extension!r} is not a Graphviz output format. "
                         "Use .png, .svg, .pdf, .jpg, .gif, ... or .dot for the graph as text.")
    try:
        return dot.create(prog="dot", format=extension)
    except OSError as error:  # pydot runs `dot` from PATH
        if error.errno != errno.ENOENT:
            raise
        raise ImportError(
            f"plot_model cannot draw {to_file!r}: Graphviz's `dot` program was not found on PATH. "
            "Install Graphviz (https://graphviz.org/download/, e.g. `apt-get install graphviz` or "
            f"`brew install graphviz`; the Python side comes with {_EXTRA_HINT}), "
            "or write the graph as text with to_file='model.dot'."
        ) from error


def _notebook_image(to_file, extension):
    if extension in ("dot", "gv", "pdf", "ps", "eps"):
        return None
    try:
        from IPython import display
    except ImportError:
        return None
    if extension == "svg":
        return display.SVG(filename=to_file)
    return display.Image(filename=to_file)


__all__ = ["model_to_dot", "plot_model"]
