"""model.export(format="tf_saved_model"): reloaded with tf.saved_model.load, free batch axis."""

import os
import sys

import numpy as np
import pytest

import lamina as lm

L = lm.layers


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A convnet with BatchNormalization and an LSTM branch (two inputs), exported once."""
    tf = pytest.importorskip("tensorflow")
    lm.random.set_seed(5)
    image, sequence = lm.Input((8, 8, 1), name="image"), lm.Input((4, 3), name="sequence")
    # Zero initial values, then random ones from NumPy: the layers' initializers would compile
    # a JAX program per weight shape (a QR for the LSTM's orthogonal one).
    zeros = {"kernel_initializer": "zeros"}
    x = L.MaxPooling2D(2)(L.BatchNormalization()(L.Conv2D(3, 3, activation="relu", **zeros)(image)))
    joined = L.Concatenate()([L.Flatten()(x), L.LSTM(4, recurrent_initializer="zeros", **zeros)(sequence)])
    model = lm.Model([image, sequence], L.Dense(2, activation="softmax", **zeros)(L.Dropout(0.3)(joined)))
    rng = np.random.default_rng(1)
    for v in model.weights:  # batch statistics included: inference uses them
        values = rng.uniform(0.5, 1.5, v.shape) if "variance" in v.path else rng.normal(scale=0.3, size=v.shape)
        v.assign(values.astype("float32"))
    path = tmp_path_factory.mktemp("saved") / "model"
    model.export(path, verbose=False)  # the default format, as in Keras
    return model, tf.saved_model.load(str(path)), path


def test_reloaded_outputs_equal_predict_at_two_batch_sizes(exported):
    model, reloaded, _ = exported
    rng = np.random.default_rng(0)
    for batch in (1, 6):
        x = [rng.normal(size=(batch, 8, 8, 1)).astype("float32"), rng.normal(size=(batch, 4, 3)).astype("float32")]
        np.testing.assert_allclose(reloaded.serve(*x).numpy(), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_serving_signature_has_named_inputs_and_a_free_batch(exported):
    _, reloaded, path = exported
    signature = reloaded.signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    assert sorted(inputs) == ["image", "sequence"]
    assert inputs["image"].shape.as_list() == [None, 8, 8, 1]
    assert os.path.isdir(path / "variables")  # the weights are variables, not graph constants


def test_an_existing_export_is_replaced(exported, tmp_path):
    model, _, _ = exported
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "stale.txt").write_text("old")
    model.export(tmp_path / "model", format="tf_saved_model", verbose=False)
    assert "stale.txt" not in os.listdir(tmp_path / "model") and "saved_model.pb" in os.listdir(tmp_path / "model")
    assert os.listdir(tmp_path) == ["model"]  # no temporary folder left
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        model.export(tmp_path / "file", format="tf_saved_model", verbose=False)


def test_without_tensorflow_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    model = lm.Sequential([lm.Input((3,)), L.Dense(2)])
    with pytest.raises(ImportError, match=r'pip install "lamina\[tensorflow\]"'):
        model.export(tmp_path / "m", format="tf_saved_model")
    assert not os.listdir(tmp_path)
