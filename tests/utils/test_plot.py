"""lm.utils.plot_model / model_to_dot (the graph drawn, compared with Keras's) and
lm.utils.plot_history (the axes and lines of the figure)."""

import importlib.util
import pathlib
import re
import shutil
import sys
import types

import numpy as np
import pytest

import lamina as lm
from lamina import layers

pydot = pytest.importorskip("pydot", reason="pydot is the plot extra")
needs_graphviz = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")

_TITLE = re.compile(r"<b>(.*?)</b>(?: \((\w+)\))?")


def _nodes(dot) -> dict:
    """Node name -> (layer name, class name) for every box, clusters included."""
    found = {}
    for node in dot.get_nodes():
        label = node.get("label")
        if label:
            found[node.get_name()] = _TITLE.search(label).groups()
    for sub in dot.get_subgraphs():
        found.update(_nodes(sub))
    return found


def _edges(dot) -> list:
    """(source layer name, destination layer name) of every edge, clusters included."""
    names = {key: value[0] for key, value in _nodes(dot).items()}

    def collect(graph):
        pairs = [(names[e.get_source()], names[e.get_destination()]) for e in graph.get_edges()]
        for sub in graph.get_subgraphs():
            pairs += collect(sub)
        return pairs

    return sorted(collect(dot))


def _graph(model, **kwargs):
    """model_to_dot's text parsed back, as a viewer would read the .dot file."""
    (dot,) = pydot.graph_from_dot_data(lm.utils.model_to_dot(model, **kwargs).to_string())
    return dot


def _box_names(dot) -> list:
    return sorted(name for name, _ in _nodes(dot).values())


def _multi_io(module):
    """The built-in-methods guide's multi-input, multi-output model, with explicit names."""
    L = module.layers
    image = module.Input(shape=(8, 8, 3), name="img_input")
    series = module.Input(shape=(None, 10), name="ts_input")
    x1 = L.GlobalMaxPooling2D(name="pool2d")(L.Conv2D(3, 3, name="conv2d")(image))
    x2 = L.GlobalMaxPooling1D(name="pool1d")(L.Conv1D(3, 3, name="conv1d")(series))
    x = L.Concatenate(name="concat")([x1, x2])
    score = L.Dense(1, name="score_output")(x)
    classes = L.Dense(5, name="class_output")(x)
    return module.Model(inputs=[image, series], outputs=[score, classes], name="multi_io")


def _shared(module):
    """Two inputs through one shared Dense, then added: one box for the shared layer."""
    L = module.layers
    a, b = module.Input(shape=(4,), name="a"), module.Input(shape=(4,), name="b")
    shared = L.Dense(3, name="shared")
    return module.Model([a, b], L.Add(name="add")([shared(a), shared(b)]), name="siamese")


def _nested(module):
    """A Functional model and a Sequential inside a Functional model."""
    L = module.layers
    inner_input = module.Input(shape=(4,), name="inner_in")
    inner = module.Model(inner_input, L.Dense(3, name="inner_dense")(inner_input), name="inner")
    stack = module.Sequential([module.Input(shape=(3,)), L.Dense(2, name="s1"), L.Dense(2, name="s2")], name="stack")
    outer_input = module.Input(shape=(4,), name="outer_in")
    return module.Model(outer_input, L.Dense(1, name="head")(stack(inner(outer_input))), name="outer")


@pytest.mark.parametrize("build", [_multi_io, _shared, _nested], ids=["multi_io", "shared", "nested"])
@pytest.mark.parametrize("expand_nested", [False, True])
def test_functional_graph_equals_keras(keras, build, expand_nested):
    from keras.src.utils.model_visualization import model_to_dot as keras_model_to_dot

    ours = _graph(build(lm), expand_nested=expand_nested)
    theirs = keras_model_to_dot(build(keras), expand_nested=expand_nested)
    assert _nodes(ours) and sorted(_nodes(ours).values()) == sorted(_nodes(theirs).values())
    assert _edges(ours) == _edges(theirs)


def test_functional_edges_by_hand():
    """The graphs themselves (not only equal to Keras's): branches, a shared layer, nesting."""
    assert _edges(_graph(_multi_io(lm))) == [
        ("concat", "class_output"), ("concat", "score_output"), ("conv1d", "pool1d"), ("conv2d", "pool2d"),
        ("img_input", "conv2d"), ("pool1d", "concat"), ("pool2d", "concat"), ("ts_input", "conv1d"),
    ]
    shared = _graph(_shared(lm))
    assert _box_names(shared) == ["a", "add", "b", "shared"]  # one box for two calls
    assert _edges(shared) == [("a", "shared"), ("b", "shared"), ("shared", "add")]

    nested = _nested(lm)
    assert _edges(_graph(nested)) == [("inner", "stack"), ("outer_in", "inner"), ("stack", "head")]
    expanded = lm.utils.model_to_dot(nested, expand_nested=True)
    clusters = {sub.get_label(): _box_names(sub) for sub in expanded.get_subgraphs()}
    assert clusters == {"inner": ["inner_dense", "inner_in"], "stack": ["s1", "s2"]}
    assert _edges(expanded) == [("inner_dense", "s1"), ("inner_in", "inner_dense"), ("outer_in", "inner_in"),
                                ("s1", "s2"), ("s2", "head")]


def test_sequential_is_a_chain_like_keras(keras):
    from keras.src.utils.model_visualization import model_to_dot as keras_model_to_dot

    def build(module):
        L = module.layers
        return module.Sequential([module.Input(shape=(6,)), L.Dense(8, name="d1"), L.Dropout(0.1, name="drop"),
                                  L.Dense(2, name="d2")])

    ours = _graph(build(lm))
    assert sorted(_nodes(ours).values()) == [("d1", "Dense"), ("d2", "Dense"), ("drop", "Dropout")]
    assert _edges(ours) == [("d1", "drop"), ("drop", "d2")] == _edges(keras_model_to_dot(build(keras)))


def test_subclassed_model_is_one_box_like_keras(keras):
    from keras.src.utils.model_visualization import model_to_dot as keras_model_to_dot

    def build(module):
        class TwoLayers(module.Model):
            def __init__(self):
                super().__init__(name="two_layers")
                self.hidden = module.layers.Dense(4)
                self.out = module.layers.Dense(1)

            def call(self, x):
                return self.out(self.hidden(x))

        model = TwoLayers()
        model(np.ones((2, 3), "float32"))
        return model

    ours, theirs = _graph(build(lm)), keras_model_to_dot(build(keras))
    assert list(_nodes(ours).values()) == [("two_layers", "TwoLayers")] == list(_nodes(theirs).values())
    assert _edges(ours) == [] == _edges(theirs)


class _Residual(lm.Model):
    """A subclassed model: a skip connection around Dropout and a Dense, through jnp code."""

    def __init__(self):
        super().__init__(name="residual")
        self.a = layers.Dense(4, name="a")
        self.drop = layers.Dropout(0.5, name="drop")  # computes nothing at inference: still drawn
        self.b = layers.Dense(4, name="b")
        self.out = layers.Dense(1, name="out")

    def call(self, x, training=False):
        import jax.numpy as jnp

        h = self.a(x)
        return self.out(self.b(jnp.tanh(self.drop(h))) + h)


def test_expanded_subclassed_model_shows_its_traced_sublayers():
    model = _Residual()
    model(np.ones((2, 3), "float32"))
    dot = _graph(model, expand_nested=True)
    assert _box_names(dot) == ["a", "b", "drop", "out"]
    assert _edges(dot) == [("a", "drop"), ("a", "out"), ("b", "out"), ("drop", "b")]
    assert "__call__" not in layers.Dense.__dict__ and "__call__" not in layers.Dropout.__dict__
    labels = {_TITLE.search(n.get("label")).group(1): n.get("label")
              for n in _graph(model, expand_nested=True, show_shapes=True, show_dtype=True).get_nodes() if n.get("label")}
    assert "Input shape: <b>(None, 3)</b>" in labels["a"] and "Output shape: <b>(None, 4)</b>" in labels["a"]
    assert "Output shape: <b>(None, 1)</b>" in labels["out"] and "Output dtype: <b>float32</b>" in labels["out"]

    inputs = lm.Input((3,), name="x_in")
    outer = lm.Model(inputs, layers.Dense(2, name="after")(model(inputs)))
    assert _edges(_graph(outer)) == [("residual", "after"), ("x_in", "residual")]
    expanded = lm.utils.model_to_dot(outer, expand_nested=True)
    assert {sub.get_label(): _box_names(sub) for sub in expanded.get_subgraphs()} == {
        "residual": ["a", "b", "drop", "out"]}
    assert _edges(expanded) == [("a", "drop"), ("a", "out"), ("b", "out"), ("drop", "b"), ("out", "after"),
                                ("x_in", "a")]


def test_untraceable_subclassed_model_is_drawn_without_links():
    class Branchy(lm.Model):
        def __init__(self):
            super().__init__(name="branchy")
            self.first = layers.Dense(2, name="first")
            self.second = layers.Dense(2, name="second")

        def call(self, x):
            if float(x.sum()) > 0:  # Python control flow on values: cannot be traced
                return self.second(self.first(x))
            return self.first(x)

    model = Branchy()
    model(np.ones((2, 3), "float32"))
    with pytest.warns(UserWarning, match="could not trace the subclassed model 'branchy'"):
        dot = _graph(model, expand_nested=True)
    assert _box_names(dot) == ["first", "second"] and _edges(dot) == []
    assert "__call__" not in layers.Dense.__dict__


def test_labels_shapes_dtype_activation_trainable():
    model = lm.Sequential([layers.Dense(8, activation="relu", name="hidden"), layers.Dense(2, name="out")])
    model(np.ones((5, 3), "float32"))  # built from data: the shapes come from its graph
    model.get_layer("out").trainable = False
    labels = {name: n.get("label") for n in _graph(model, show_shapes=True, show_dtype=True,
                                                   show_layer_activations=True, show_trainable=True).get_nodes()
              for name in [_TITLE.search(n.get("label") or "<b></b>").group(1)] if name}
    assert "Input shape: <b>(None, 3)</b>" in labels["hidden"] and "Output shape: <b>(None, 8)</b>" in labels["hidden"]
    assert "Input shape: <b>(None, 8)</b>" in labels["out"] and "Output shape: <b>(None, 2)</b>" in labels["out"]
    assert "Output dtype: <b>float32</b>" in labels["out"]
    assert "Activation: <b>relu</b>" in labels["hidden"] and "Activation: <b>linear</b>" in labels["out"]
    assert "<b>Trainable</b>" in labels["hidden"] and "<b>Non-trainable</b>" in labels["out"]

    plain = _graph(model).get_nodes()
    assert not any("shape" in (n.get("label") or "") for n in plain)
    classes_only = [_TITLE.search(n.get("label")).groups() for n in _graph(model, show_layer_names=False).get_nodes()
                    if n.get("label")]
    assert sorted(classes_only) == [("Dense", None), ("Dense", None)]


def test_list_input_shapes_are_listed():
    label = [n.get("label") for n in _graph(_multi_io(lm), show_shapes=True).get_nodes()
             if "concat" in (n.get("label") or "")][0]
    assert "Input shape: <b>[(None, 3), (None, 3)]</b>" in label


def test_unbuilt_model_and_bad_arguments_are_refused(tmp_path):
    unbuilt = lm.Sequential([layers.Dense(2)], name="not_built_yet")
    with pytest.raises(ValueError, match="'not_built_yet' has not yet been built"):
        lm.utils.plot_model(unbuilt, tmp_path / "m.dot")
    built = lm.Sequential([lm.Input((3,)), layers.Dense(2)])
    with pytest.raises(ValueError, match="rankdir"):
        lm.utils.model_to_dot(built, rankdir="sideways")
    with pytest.raises(ValueError, match="'bmpx' is not a Graphviz output format"):
        lm.utils.plot_model(built, tmp_path / "m.bmpx")
    with pytest.raises(TypeError, match="takes a lamina Model"):
        lm.utils.model_to_dot("model")


def test_dot_file_needs_no_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` program to be found
    model = _shared(lm)
    assert lm.utils.plot_model(model, tmp_path / "m.dot", rankdir="LR") is None
    (dot,) = pydot.graph_from_dot_file(str(tmp_path / "m.dot"))
    assert _edges(dot) == [("a", "shared"), ("b", "shared"), ("shared", "add")]
    assert dot.get("rankdir") == "LR"


def test_image_without_graphviz_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ImportError, match=r"Graphviz's `dot` program was not found.*lamina\[plot\].*model\.dot"):
        lm.utils.plot_model(_shared(lm), tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()


def test_missing_pydot_names_the_extra(tmp_path, monkeypatch):
    model = _shared(lm)
    monkeypatch.setitem(sys.modules, "pydot", None)  # `import pydot` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "lamina\[plot\]"'):
        lm.utils.plot_model(model, tmp_path / "m.png")
    with pytest.raises(ImportError, match=r"lamina\[plot\]"):
        lm.utils.model_to_dot(model)


@needs_graphviz
def test_images_are_written_by_graphviz(tmp_path):
    model = _nested(lm)
    lm.utils.plot_model(model, tmp_path / "m.png", show_shapes=True, expand_nested=True, dpi=50)
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lm.utils.plot_model(model, str(tmp_path / "m.svg"))
    svg = (tmp_path / "m.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and all(name in svg for name in ("outer_in", "inner", "stack", "head"))
    lm.utils.plot_model(model, tmp_path / "m.pdf")
    assert (tmp_path / "m.pdf").read_bytes()[:5] == b"%PDF-"
    lm.utils.plot_model(model, tmp_path / "no_extension")  # Keras's default: PNG
    assert (tmp_path / "no_extension").read_bytes()[:4] == b"\x89PNG"


@needs_graphviz
def test_notebook_gets_an_image(tmp_path, monkeypatch):
    shown = []
    display = types.SimpleNamespace(Image=lambda filename: shown.append(("Image", filename)) or "image",
                                    SVG=lambda filename: shown.append(("SVG", filename)) or "svg")
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(display=display))
    model = _shared(lm)
    assert lm.utils.plot_model(model, tmp_path / "m.png", dpi=30) == "image"
    assert lm.utils.plot_model(model, tmp_path / "m.svg") == "svg"
    assert lm.utils.plot_model(model, tmp_path / "m.pdf") is None
    assert shown == [("Image", str(tmp_path / "m.png")), ("SVG", str(tmp_path / "m.svg"))]


# -- plot_history ---------------------------------------------------------------------------

@pytest.fixture
def pyplot():
    matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is the plot extra")
    matplotlib.use("Agg")
    import matplotlib.pyplot

    yield matplotlib.pyplot
    matplotlib.pyplot.close("all")


def test_plot_history_of_a_fit(pyplot, tmp_path):
    lm.random.set_seed(0)
    model = lm.Sequential([lm.Input((4,)), layers.Dense(3)])
    model.compile(optimizer="sgd", loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    rng = np.random.default_rng(0)
    history = model.fit(rng.random((40, 4), dtype=np.float32), rng.integers(0, 3, 40), epochs=3, batch_size=40,
                        validation_split=0.25, verbose=0)

    figure = lm.utils.plot_history(history, to_file=tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert [ax.get_title() for ax in figure.axes] == ["loss", "accuracy"]
    for ax in figure.axes:
        name = ax.get_title()
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == name
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert sorted(lines) == ["train", "validation"]
        np.testing.assert_allclose(lines["train"].get_xdata(), [1, 2, 3])
        assert all(float(tick).is_integer() for tick in ax.get_xticks())
        np.testing.assert_allclose(lines["train"].get_ydata(), history.history[name])
        np.testing.assert_allclose(lines["validation"].get_ydata(), history.history[f"val_{name}"])
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation"]


def test_digits_demo_draws_its_curves(pyplot, tmp_path):
    path = pathlib.Path(__file__).parents[2] / "examples" / "digits.py"
    spec = importlib.util.spec_from_file_location("lamina_example_digits_plot", path)
    digits = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(digits)
    digits.main(epochs=1, verbose=0, curves=str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert [ax.get_title() for ax in pyplot.gcf().axes] == ["loss", "accuracy"]


def test_plot_history_choice_of_metrics_and_layout(pyplot):
    logs = {"accuracy": [0.5, 0.6], "loss": [1.0, 0.8], "val_loss": [1.1, 0.9], "mae": [3.0, 2.0],
            "auc": [0.6, 0.7], "val_only": [0.2, 0.1]}
    figure = lm.utils.plot_history(logs)
    assert [ax.get_title() for ax in figure.axes] == ["loss", "accuracy", "mae", "auc", "only"]
    assert [line.get_label() for line in figure.axes[-1].get_lines()] == ["validation"]
    assert len(figure.axes) == 5  # a 2x3 grid without its empty sixth cell

    chosen = lm.utils.plot_history(logs, metrics="mae")
    assert [ax.get_title() for ax in chosen.axes] == ["mae"]
    np.testing.assert_allclose(chosen.axes[0].get_lines()[0].get_ydata(), [3.0, 2.0])
    with pytest.raises(ValueError, match=r"no values for \['recall'\].*'loss', 'accuracy'"):
        lm.utils.plot_history(logs, metrics=["recall"])
    with pytest.raises(ValueError, match="empty"):
        lm.utils.plot_history({})
    with pytest.raises(TypeError, match="takes the History"):
        lm.utils.plot_history([0.5, 0.4])


def test_plot_history_without_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "lamina\[plot\]"'):
        lm.utils.plot_history({"loss": [1.0]})
