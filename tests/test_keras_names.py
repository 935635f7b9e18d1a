"""Keras 3's other names for things lamina implements: class aliases (``lm.layers.MaxPool2D``,
``lm.constraints.max_norm``, ...), the strings each family's ``get`` accepts, and
``lm.utils.get_source_inputs`` / ``is_keras_tensor``; checked against Keras itself."""

import importlib
import inspect
import json
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

# Keras's public alias names: (module, alias, the class or function it names).
ALIASES = [
    *[("layers", f"{short}{d}D", f"{long}{d}D") for d in (1, 2, 3)
      for short, long in (("MaxPool", "MaxPooling"), ("AvgPool", "AveragePooling"),
                          ("GlobalMaxPool", "GlobalMaxPooling"), ("GlobalAvgPool", "GlobalAveragePooling"))],
    *[("layers", f"Convolution{d}D{t}", f"Conv{d}D{t}") for d in (1, 2, 3) for t in ("", "Transpose")],
    ("layers", "SeparableConvolution1D", "SeparableConv1D"),
    ("layers", "SeparableConvolution2D", "SeparableConv2D"),
    ("layers", "GroupQueryAttention", "GroupedQueryAttention"),
    ("constraints", "max_norm", "MaxNorm"),
    ("constraints", "min_max_norm", "MinMaxNorm"),
    ("constraints", "non_neg", "NonNeg"),
    ("constraints", "unit_norm", "UnitNorm"),
    *[("initializers", alias, cls) for alias, cls in (
        ("constant", "Constant"), ("glorot_normal", "GlorotNormal"), ("glorot_uniform", "GlorotUniform"),
        ("he_normal", "HeNormal"), ("he_uniform", "HeUniform"), ("identity", "Identity"),
        ("IdentityInitializer", "Identity"), ("lecun_normal", "LecunNormal"), ("lecun_uniform", "LecunUniform"),
        ("ones", "Ones"), ("orthogonal", "Orthogonal"), ("OrthogonalInitializer", "Orthogonal"),
        ("random_normal", "RandomNormal"), ("random_uniform", "RandomUniform"),
        ("truncated_normal", "TruncatedNormal"), ("variance_scaling", "VarianceScaling"), ("zeros", "Zeros"),
        ("STFTInitializer", "STFT"), ("stft", "STFT"))],
    ("activations", "swish", "silu"),
    ("activations", "hard_swish", "hard_silu"),
    ("regularizers", "l1", "L1"),
    ("regularizers", "l2", "L2"),
    ("regularizers", "l1_l2", "L1L2"),
    ("regularizers", "orthogonal_regularizer", "OrthogonalRegularizer"),
    ("utils", "Sequence", "PyDataset"),
    ("utils", "custom_object_scope", "CustomObjectScope"),
    ("saving", "custom_object_scope", "CustomObjectScope"),
]
# Keras aliases of things lamina does not implement.
ALIASES_NOT_IMPLEMENTED = {}
ALIAS_MODULES = sorted({module for module, _, _ in ALIASES})


@pytest.mark.parametrize("module, alias, canonical", ALIASES)
def test_keras_alias_is_the_very_lamina_object(keras, module, alias, canonical):
    theirs, keras_module = getattr(getattr(keras, module), alias), getattr(keras, module)
    if hasattr(keras_module, canonical):
        assert theirs is getattr(keras_module, canonical)
    else:  # Keras 3.15 exports GroupedQueryAttention under its alias only: the class's own name
        assert theirs.__name__ == canonical
    assert getattr(getattr(lm, module), alias) is getattr(getattr(lm, module), canonical)


def test_the_alias_table_lists_every_alias_keras_exports(keras):
    exported = set()
    for module in ALIAS_MODULES:
        for name in dir(getattr(keras, module)):
            obj = getattr(getattr(keras, module), name)
            if not name.startswith("_") and not inspect.ismodule(obj) and getattr(obj, "__name__", name) != name:
                exported.add((module, name))
    assert exported - set(ALIASES_NOT_IMPLEMENTED) == {(module, alias) for module, alias, _ in ALIASES}


def test_layers_all_lists_each_layer_class_once_and_no_alias():
    listed = [getattr(lm.layers, name) for name in lm.layers.__all__]
    assert len({id(obj) for obj in listed}) == len(listed)
    layer_aliases = {alias for module, alias, _ in ALIASES if module == "layers"}
    assert not layer_aliases & set(lm.layers.__all__)
    assert layer_aliases <= set(dir(lm.layers))
    assert {canonical for module, _, canonical in ALIASES if module == "layers"} <= set(lm.layers.__all__)


def test_a_saved_alias_built_model_names_the_canonical_classes(keras, tmp_path):
    model = lm.Sequential([
        lm.Input((8, 8, 1)),
        lm.layers.Convolution2D(2, 3, kernel_constraint=lm.constraints.max_norm(2.0)),
        lm.layers.MaxPool2D(),
        lm.layers.GlobalAvgPool2D(),
    ])
    path = str(tmp_path / "aliases.lamina")
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    layers = config["config"]["layers"]
    names = [layer["class_name"] for layer in layers]
    assert names[-3:] == ["Conv2D", "MaxPooling2D", "GlobalAveragePooling2D"]
    assert layers[-3]["config"]["kernel_constraint"]["class_name"] == "MaxNorm"
    # Keras writes the same canonical names for its aliases.
    assert keras.layers.serialize(keras.layers.MaxPool2D())["class_name"] == "MaxPooling2D"
    assert keras.constraints.serialize(keras.constraints.max_norm(2.0))["class_name"] == "MaxNorm"
    restored = lm.load_model(path)
    assert [type(layer) for layer in restored.layers] == [type(layer) for layer in model.layers]
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


# --- the strings each family's get() accepts ---------------------------------------------------------

FAMILIES = ["losses", "metrics", "optimizers", "initializers", "activations", "regularizers", "constraints"]
# Strings Keras's get() accepts that lamina refuses, because lamina lacks the object they name.
REFUSED = {
    "losses": {},
    "metrics": {},
    "optimizers": {},
    "initializers": {},
    "activations": {},
    "regularizers": {},
    "constraints": {},
}


def _keras_names(keras, family):
    """Every string Keras's ``get`` resolves without further arguments, with its result."""
    table = importlib.import_module(f"keras.src.{family}").ALL_OBJECTS_DICT
    resolved = {}
    for name in sorted(table):
        try:
            resolved[name] = getattr(keras, family).get(name)
        except Exception:  # Keras's own table holds names its get() cannot build (IoU needs num_classes)
            continue
    return resolved


def _config(obj):
    try:
        return obj.get_config()
    except NotImplementedError:  # the abstract bases (Regularizer) have none, in Keras too
        return {}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_name_keras_get_accepts_means_the_same_in_lamina(keras, family):
    ours = getattr(lm, family)
    for name, theirs in _keras_names(keras, family).items():
        if name in REFUSED[family]:
            continue
        got = ours.get(name)
        if inspect.isfunction(theirs):
            assert got is getattr(ours, theirs.__name__), (family, name)
            continue
        assert type(got).__name__ == type(theirs).__name__, (family, name)
        assert isinstance(got, getattr(ours, type(theirs).__name__)), (family, name)
        ours_config, their_config = _config(got), _config(theirs)
        for key in set(ours_config) & set(their_config) - {"name"}:
            a, b = ours_config[key], their_config[key]
            if isinstance(b, float):  # Keras keeps float32-rounded hyper-parameters
                assert a == pytest.approx(b, rel=1e-6), (family, name, key)
            else:
                assert a == b, (family, name, key)


@pytest.mark.parametrize("family", FAMILIES)
def test_refused_names_are_still_refused_with_a_clear_error(keras, family):
    keras_names = _keras_names(keras, family)
    for name in REFUSED[family]:
        assert name in keras_names, f"Keras no longer accepts {name!r}: drop it from REFUSED"
        with pytest.raises(ValueError, match=f"Unknown .*'{name}'"):
            getattr(lm, family).get(name)


@pytest.mark.parametrize("name", ["Adam", "ADAM", "SGD", "sgd", "RMSprop", "RMSProp", "AdamW", "Adagrad", "Lion",
                                  "Adadelta", "Adafactor", "Adamax", "AdaMax", "Ftrl", "FTRL", "Muon", "Nadam", "NAdam"])
def test_optimizer_names_in_any_case_as_keras(keras, name):
    assert type(lm.optimizers.get(name)).__name__ == type(keras.optimizers.get(name)).__name__


@pytest.mark.parametrize("family, name, expected", [
    ("regularizers", "l1l2", {"l1": 0.0, "l2": 0.0}),
    ("constraints", "max_norm", {"max_value": 2, "axis": 0}),
])
def test_snake_case_class_names_build_keras_defaults(keras, family, name, expected):
    assert getattr(lm, family).get(name).get_config() == expected
    assert getattr(keras, family).get(name).get_config() == pytest.approx(expected)


def test_constraint_aliases_constrain_as_keras(keras):
    w = np.random.default_rng(1).normal(size=(4, 3)).astype("float32") * 3
    for make in (lambda c: c.max_norm(1.5), lambda c: c.min_max_norm(0.5, 1.0, rate=0.5), lambda c: c.non_neg(),
                 lambda c: c.unit_norm(axis=1)):
        np.testing.assert_allclose(np.asarray(make(lm.constraints)(w)), np.asarray(make(keras.constraints)(w)),
                                   rtol=1e-5, atol=1e-6)


# --- lm.utils.get_source_inputs / is_keras_tensor -----------------------------------------------------

def _two_branch_graph(api):
    a = api.Input(shape=(3,), name="a")
    b = api.Input(shape=(3,), name="b")
    shared = api.layers.Dense(3)(a)
    left = api.layers.Add()([shared, b])
    right = api.layers.Multiply()([b, a])
    return a, b, api.layers.Concatenate()([right, left])


def test_get_source_inputs_finds_each_input_once_in_keras_order(keras):
    a, b, out = _two_branch_graph(lm)
    sources = lm.utils.get_source_inputs(out)
    assert len(sources) == 2 and sources[0] is b and sources[1] is a
    _, _, keras_out = _two_branch_graph(keras)
    assert [t.name for t in sources] == [t.name for t in keras.utils.get_source_inputs(keras_out)]
    assert lm.utils.get_source_inputs(a) == [a]


def test_get_source_inputs_walks_through_a_nested_model():
    inner_in = lm.Input(shape=(4,))
    inner = lm.Model(inner_in, lm.layers.Dense(2)(inner_in))
    x = lm.Input(shape=(4,), name="outer")
    y = lm.layers.Dense(1)(inner(lm.layers.Dense(4)(x)))
    sources = lm.utils.get_source_inputs(y)
    assert len(sources) == 1 and sources[0] is x


def test_get_source_inputs_refuses_arrays():
    with pytest.raises(TypeError, match="expects a symbolic tensor .* got ndarray"):
        lm.utils.get_source_inputs(np.ones((2, 3)))


def test_is_keras_tensor_is_true_for_symbolic_tensors_only(keras):
    x = lm.Input(shape=(3,))
    assert lm.utils.is_keras_tensor(x) and lm.utils.is_keras_tensor(lm.layers.Dense(2)(x))
    for value in (np.ones((1, 3)), jnp.ones((1, 3)), lm.Variable(np.ones(3)), [x], 1.0):
        assert not lm.utils.is_keras_tensor(value)
    assert keras.utils.is_keras_tensor(keras.Input(shape=(3,))) and not keras.utils.is_keras_tensor(np.ones(3))


def test_top_level_base_classes_keras_exports():
    """``keras.Loss``, ``keras.Metric``... are the base classes a user subclasses."""
    assert lm.Loss is lm.losses.Loss
    assert lm.Metric is lm.metrics.Metric
    assert lm.Optimizer is lm.optimizers.Optimizer
    assert lm.Initializer is lm.initializers.Initializer
    assert lm.Regularizer is lm.regularizers.Regularizer
    assert isinstance(lm.Input(shape=(2,)), lm.KerasTensor)


def test_objects_keras_exports_from_two_modules_are_the_same_object(keras):
    assert keras.mixed_precision.LossScaleOptimizer is keras.optimizers.LossScaleOptimizer
    assert lm.mixed_precision.LossScaleOptimizer is lm.optimizers.LossScaleOptimizer
