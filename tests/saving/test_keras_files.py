"""Keras 3 ``.keras`` and ``.weights.h5`` files, both ways: models built and trained in Keras load
into lamina with the same predictions, lamina writes files Keras loads with the same
predictions, and weights files move between a Keras model and the same lamina model."""

from __future__ import annotations

import json
import warnings
import zipfile

import numpy as np
import pytest

import lamina as lm
from lamina.saving.keras_files.layout import keras_layout
from tests.saving.keras_cases import (
    CASES,
    ScaledDense,
    TwoDense,
    as_list,
    build_keras,
    build_lamina,
    keras_module,
    register_keras_subclassed,
)

pytest.importorskip("h5py")
keras = pytest.importorskip("keras")

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """``{case: (keras model, x, path of its .keras file)}``: each model built, trained and saved once."""
    keras_module()
    folder = tmp_path_factory.mktemp("keras_files")
    files = {}
    for case in CASES:
        model, x = build_keras(case, keras)
        path = folder / f"{case}.keras"
        model.save(path)
        files[case] = (model, x, path)
    return files


@pytest.fixture(scope="module")
def loaded(keras_files):
    """``{case: lamina model}`` read from each Keras file."""
    return {case: lm.load_model(path) for case, (_, _, path) in keras_files.items()}


def assert_close(expected, actual):
    expected, actual = as_list(expected), as_list(actual)
    assert len(expected) == len(actual)
    for e, a in zip(expected, actual):
        assert e.shape == a.shape
        np.testing.assert_allclose(a, e, atol=TOLERANCE, rtol=TOLERANCE)


@pytest.mark.parametrize("case", CASES)
def test_a_keras_file_loads_with_the_same_predictions(case, keras_files, loaded):
    keras_model, x, _ = keras_files[case]
    model = loaded[case]
    assert [layer.name for layer in model.layers if layer.weights] == \
        [layer.name for layer in keras_model.layers if layer.weights]
    for ours, theirs in zip(model.weights, keras_model.weights):
        np.testing.assert_array_equal(ours.numpy(), np.asarray(theirs))
    assert_close(keras_model.predict(x, verbose=0), model.predict(x, verbose=0))
    # compile_config was replayed: the optimizer is the same kind with the same settings
    assert type(model.optimizer).__name__ == type(keras_model.optimizer).__name__
    assert float(model.optimizer.learning_rate) == pytest.approx(float(keras_model.optimizer.learning_rate))


@pytest.mark.parametrize("case", CASES)
def test_a_lamina_written_keras_file_loads_in_keras(case, keras_files, loaded, tmp_path):
    keras_model, x, _ = keras_files[case]
    path = tmp_path / "from_lamina.keras"
    loaded[case].save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras notes that the file has no optimizer state
        again = keras.saving.load_model(path)
    assert type(again).__name__ == type(keras_model).__name__
    assert_close(keras_model.predict(x, verbose=0), again.predict(x, verbose=0))
    assert again.optimizer is not None and type(again.optimizer).__name__ == type(keras_model.optimizer).__name__
    # and lamina reads its own .keras file back
    for ours, theirs in zip(lm.load_model(path).weights, loaded[case].weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("case", ["convnet", "multi_input"])
def test_weights_files_move_both_ways_between_keras_and_lamina(case, keras_files, tmp_path):
    keras_model, x, _ = keras_files[case]
    keras_model.save_weights(tmp_path / "keras.weights.h5")
    model = build_lamina(case)
    model.load_weights(tmp_path / "keras.weights.h5")
    assert_close(keras_model.predict(x, verbose=0), model.predict(x, verbose=0))

    for variable in model.weights:  # change them, then hand them to a fresh Keras model
        variable.assign(variable.value * 0.5 + 0.25)
    model.save_weights(tmp_path / "lamina.weights.h5")
    fresh, _ = build_keras(case, keras, seed=1, train=False)
    fresh.load_weights(tmp_path / "lamina.weights.h5")
    assert_close(model.predict(x, verbose=0), fresh.predict(x, verbose=0))


def test_a_model_written_in_lamina_code_loads_in_keras(tmp_path):
    model = build_lamina("lstm_masking")
    x = np.random.default_rng(3).integers(1, 20, (6, 5))
    x[:3, 2:] = 0
    rng = np.random.default_rng(4)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.weights])
    model.compile("adam", "mse")
    model.save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = keras.saving.load_model(tmp_path / "m.keras")
    assert_close(model.predict(x, verbose=0), again.predict(x, verbose=0))


def test_every_built_in_layer_with_weights_keeps_its_weights_in_keras_order(tmp_path):
    """One Keras model holding every layer kind whose weights lamina maps (sublayers, cells,
    wrappers, BatchNorm's statistics), with random weights: lamina reads it, and its .keras
    file goes back to Keras, with equal outputs."""
    L = keras.layers
    rng = np.random.default_rng(0)
    sequence, image, ids = keras.Input((5, 4)), keras.Input((6, 6, 3)), keras.Input((5,), dtype="int32")
    pool1, pool2 = L.GlobalAveragePooling1D(), L.GlobalAveragePooling2D()
    branches = [
        pool1(L.EinsumDense("abc,cd->abd", output_shape=(None, 3), bias_axes="d")(sequence)),
        pool2(L.DepthwiseConv2D(3, depth_multiplier=2)(image)), pool2(L.SeparableConv2D(2, 3)(image)),
        pool2(L.Conv2DTranspose(2, 3, strides=2)(image)),
        pool2(L.BatchNormalization()(image)), pool2(L.GroupNormalization(groups=3)(image)),
        pool1(L.MultiHeadAttention(num_heads=2, key_dim=3)(sequence, sequence)),
        L.GRU(3)(sequence), L.Bidirectional(L.LSTM(2))(sequence), pool1(L.TimeDistributed(L.Dense(2))(sequence)),
        pool1(L.Embedding(9, 3)(ids)),
    ]
    keras_model = keras.Model([sequence, image, ids], L.Dense(2)(L.Concatenate()(branches)))
    keras_model.set_weights([w + rng.normal(size=w.shape).astype(w.dtype) * 0.2 for w in keras_model.get_weights()])
    keras_model.save(tmp_path / "all.keras")
    x = [rng.normal(size=(3, 5, 4)).astype("float32"), rng.normal(size=(3, 6, 6, 3)).astype("float32"),
         rng.integers(0, 9, (3, 5))]
    model = lm.load_model(tmp_path / "all.keras")
    assert_close(keras_model.predict(x, verbose=0), model.predict(x, verbose=0))
    model.save(tmp_path / "back.keras")
    # Keras rebuilds the same layers from lamina's config and reads every weight back (equal
    # weights in equal layers: predicting again would only repeat the comparison above).
    again = keras.saving.load_model(tmp_path / "back.keras")
    assert [layer.get_config() for layer in again.layers] == [layer.get_config() for layer in keras_model.layers]
    for ours, theirs in zip(again.weights, keras_model.weights):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_the_custom_layer_is_found_by_its_registered_name_only(keras_files, loaded):
    model = loaded["custom_layer"]
    layer = model.layers[-1]
    assert type(layer) is ScaledDense and layer.scale == 0.5
    config = json.loads(zipfile.ZipFile(keras_files["custom_layer"][2]).read("config.json"))
    assert config["config"]["layers"][1]["registered_name"] == "kt>ScaledDense"



@pytest.mark.parametrize("case", CASES)
def test_the_layout_names_the_datasets_keras_wrote(case, keras_files, loaded):
    """Each lamina weight maps to the dataset Keras wrote for it (same shape), and to all of them."""
    import h5py

    with zipfile.ZipFile(keras_files[case][2]) as archive, archive.open("model.weights.h5") as member:
        with h5py.File(member, "r") as h5:
            written = {}
            h5.visititems(lambda key, item: written.update({key: item.shape}) if isinstance(item, h5py.Dataset) else None)
    pairs, _ = keras_layout(loaded[case])
    assert {key: tuple(v.shape) for key, v in pairs} == {k: s for k, s in written.items() if not k.startswith("optimizer/")}
    if case == "custom_layer":  # own variables (trainable first), then the sublayer by attribute
        assert [key for key, _ in pairs] == ["layers/scaled_dense/vars/0", "layers/scaled_dense/vars/1",
                                             "layers/scaled_dense/inner/vars/0", "layers/scaled_dense/inner/vars/1"]


def test_compile_false_and_an_unknown_compile_argument(keras_files, tmp_path):
    path = keras_files["mlp"][2]
    assert getattr(lm.load_model(path, compile=False), "optimizer", None) is None
    with zipfile.ZipFile(path) as source:
        members = {name: source.read(name) for name in source.namelist()}
    config = json.loads(members["config.json"])
    config["compile_config"]["loss"] = "my_unregistered_loss"
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "odd.keras", "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
    with pytest.warns(UserWarning, match="returned uncompiled"):
        model = lm.load_model(tmp_path / "odd.keras")
    assert getattr(model, "optimizer", None) is None
    assert_close(keras_files["mlp"][0].predict(keras_files["mlp"][1], verbose=0),
                 model.predict(keras_files["mlp"][1], verbose=0))


def test_nested_models_and_a_registered_subclassed_model(tmp_path):
    L = keras.layers
    rng = np.random.default_rng(5)
    x = rng.normal(size=(5, 4)).astype("float32")
    inner_sequential = keras.Sequential([keras.Input((4,)), L.Dense(3, activation="relu"), L.BatchNormalization()])
    inner_input = keras.Input((3,))
    inner_functional = keras.Model(inner_input, L.Dense(2)(inner_input))
    outer_input = keras.Input((4,))
    hidden = inner_sequential(outer_input)
    nested = keras.Model(outer_input, [inner_functional(hidden), L.Dense(1)(hidden)])
    subclassed = register_keras_subclassed(keras)(units=3)
    subclassed(x)
    for keras_model in (nested, subclassed):
        keras_model.set_weights([w + rng.normal(size=w.shape).astype("float32") for w in keras_model.get_weights()])
        keras_model.save(tmp_path / "model.keras")
        model = lm.load_model(tmp_path / "model.keras")
        assert_close(keras_model.predict(x, verbose=0), model.predict(x, verbose=0))
        model.save(tmp_path / "again.keras")
        again = keras.saving.load_model(tmp_path / "again.keras")
        for ours, theirs in zip(again.weights, keras_model.weights):
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    assert type(model) is TwoDense and model.units == 3


@pytest.mark.parametrize("case", ["custom_layer", "lstm_masking"])  # Adam, RMSprop
def test_optimizer_state_moves_both_ways(case, keras_files, tmp_path):
    """After loading, one more step in each library gives the same weights: with a fresh
    optimizer (step 1 instead of 3, zero moments) the step would differ."""
    _, x, path = keras_files[case]
    keras_model = keras.saving.load_model(path)  # a copy with the saved optimizer state
    model = lm.load_model(path)
    assert int(model.optimizer.iterations.numpy()) == int(np.asarray(keras_model.optimizer.iterations)) == 2
    _assert_one_more_step_agrees(keras_model, model, x, np.asarray(keras_model.predict(x, verbose=0)) + 0.5,
                                 tmp_path)


def _assert_one_more_step_agrees(keras_model, model, x, y, tmp_path):
    """One more training step in each library gives the same weights, and the optimizer state
    lamina then writes is the one Keras holds."""
    keras_model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    for ours, theirs in zip(model.weights, keras_model.weights):
        np.testing.assert_allclose(ours.numpy(), np.asarray(theirs), atol=TOLERANCE, rtol=TOLERANCE)
    model.save(tmp_path / "trained.keras")
    again = keras.saving.load_model(tmp_path / "trained.keras")
    assert len(again.optimizer.variables) == len(keras_model.optimizer.variables)
    for ours, theirs in zip(again.optimizer.variables, keras_model.optimizer.variables):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=TOLERANCE, rtol=TOLERANCE)


@pytest.mark.parametrize("name", ["Adagrad", "Lion"])
def test_adagrad_and_lion_state_moves_both_ways(name, tmp_path):
    """Keras's Adagrad ``accumulator`` and Lion ``momentum`` are optax's ``sum_of_squares`` and
    ``mu``: a Keras model trained two steps continues identically in lamina, and back."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(8, 5)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    keras_model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    keras_model.compile(getattr(keras.optimizers, name)(learning_rate=0.05), "mse")
    for _ in range(2):
        keras_model.train_on_batch(x, y)
    keras_model.save(tmp_path / "model.keras")
    model = lm.load_model(tmp_path / "model.keras")
    _assert_one_more_step_agrees(keras_model, model, x, y, tmp_path)
