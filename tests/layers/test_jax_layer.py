"""``JaxLayer`` and ``FlaxLayer`` against Keras 3's, training under ``fit`` and ``lm.jit`` (params
trained, state updated, a fresh ``rng`` at every step), saving with registered functions and
modules (``.lamina`` and Keras files, both ways), and the errors Keras gives."""

import sys

import jax.numpy as jnp
import keras
import numpy as np
import pytest
from jax_layer_cases import PACKAGE, BatchNormMLP, mlp_apply, mlp_init, tracked_apply, tracked_init
from layer_checker import check_layer, random_input

import lamina as lm
from lamina.layers import FlaxLayer, JaxLayer

# A user moving models between the libraries registers their functions and modules in both.
for _obj in (mlp_init, mlp_apply, tracked_init, tracked_apply, BatchNormMLP):
    keras.saving.register_keras_serializable(PACKAGE)(_obj)


@pytest.mark.parametrize("make", [
    lambda layers: layers.JaxLayer(mlp_apply, mlp_init),
    lambda layers: layers.JaxLayer(tracked_apply, tracked_init, seed=3),
], ids=["params", "params-state-rng"])
def test_jax_layer_matches_keras(keras, make):
    check_layer(lambda: make(lm.layers), lambda k: make(k.layers), input_shape=(5, 3), keras=keras)


def test_flax_layer_matches_keras(keras):
    """Weights (params, then batch statistics) copied from Keras's FlaxLayer; at inference."""
    check_layer(lambda: FlaxLayer(BatchNormMLP()), lambda k: k.layers.FlaxLayer(BatchNormMLP()),
                input_shape=(5, 4), keras=keras)


def test_weights_are_named_after_their_place_in_the_structure():
    layer = JaxLayer(tracked_apply, tracked_init)
    layer.build((None, 2))
    assert [(w.path, w.shape, w.trainable) for w in layer.weights] == [
        (f"{layer.name}/params/w", (2, 3), True), (f"{layer.name}/state/mean", (3,), False),
        (f"{layer.name}/state/steps", (), False)]
    assert layer.state["steps"].dtype == jnp.int32 and layer.params["w"].dtype == jnp.float32


def test_jax_layer_trains_under_fit_with_state_updates_and_fresh_rng():
    lm.random.set_seed(0)
    layer = JaxLayer(tracked_apply, tracked_init, seed=1)
    model = lm.Sequential([lm.Input((3,)), layer])
    model.compile(optimizer="sgd", loss="mse")
    x, y = random_input((16, 3)), random_input((16, 3), seed=1)
    w_before = layer.params["w"].numpy()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert int(layer.state["steps"].value) == 4  # written back from each compiled step
    assert not np.allclose(layer.params["w"].numpy(), w_before)
    assert np.abs(layer.state["mean"].numpy()).sum() > 0
    # In training each compiled call draws a new rng; at inference there is none.
    step = lm.jit(lambda v: layer(v, training=True))
    first, second = np.asarray(step(x)), np.asarray(step(x))
    assert (first == 0).any() and not np.array_equal(first == 0, second == 0)
    assert int(layer.state["steps"].value) == 6
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_flax_layer_trains_under_fit_and_updates_batch_statistics():
    layer = FlaxLayer(BatchNormMLP(), seed=2)
    model = lm.Sequential([lm.Input((4,)), layer])
    model.compile(optimizer="adam", loss="mse")
    x = random_input((16, 4))
    before = [w.numpy() for w in layer.weights]
    model.fit(x, x[:, :2], epochs=1, batch_size=8, verbose=0)
    names = [w.name for w in layer.weights]
    assert "state/batch_stats/BatchNorm_0/mean" in names and "params/params/Dense_0/kernel" in names
    assert all(not np.allclose(b, w.numpy()) for b, w in zip(before, layer.weights))  # params and statistics


def test_saved_and_loaded_with_registered_functions_and_modules(tmp_path):
    x = random_input((3, 4))
    jax_model = lm.Sequential([lm.Input((4,)), JaxLayer(mlp_apply, mlp_init, name="mlp")])
    flax_model = lm.Sequential([lm.Input((4,)), FlaxLayer(BatchNormMLP(features=5), name="bn")])
    for model in (jax_model, flax_model):
        expected = np.asarray(model(x))
        lamina_path, keras_path = str(tmp_path / "m.lamina"), str(tmp_path / "m.keras")
        model.save(lamina_path)
        np.testing.assert_allclose(np.asarray(lm.load_model(lamina_path)(x)), expected, rtol=1e-6)
        model.save(keras_path)
        in_keras = keras.saving.load_model(keras_path)  # Keras finds the same registered names
        np.testing.assert_allclose(np.asarray(in_keras(x)), expected, rtol=1e-5, atol=1e-6)
        in_keras.save(keras_path)
        np.testing.assert_allclose(np.asarray(lm.load_model(keras_path)(x)), expected, rtol=1e-5, atol=1e-6)
    assert lm.load_model(lamina_path).layers[0].module.features == 5


def test_saving_needs_named_functions_and_loading_needs_them_registered(tmp_path):
    model = lm.Sequential([lm.Input((3,)), JaxLayer(lambda inputs: inputs * 2, name="doubler")])
    with pytest.raises(ValueError, match=r"JaxLayer '[a-z_0-9]*/doubler' cannot be saved: its `call_fn`"):
        model.save(str(tmp_path / "m.lamina"))

    def local_apply(params, inputs):
        return inputs @ params

    local = lm.Sequential([lm.Input((3,)), JaxLayer(local_apply, params=np.ones((3, 2), "float32"))])
    path = str(tmp_path / "local.lamina")
    local.save(path)  # a named function: its name is saved, as Keras does
    with pytest.raises(ValueError, match=r"'local_apply'.*register"):
        lm.load_model(path)
    with pytest.raises(ValueError, match=r"`init_fn`, `params` and `state` cannot all be None"):
        lm.load_model(path, custom_objects={"local_apply": local_apply})  # no init_fn: as in Keras


def test_bad_functions_and_state_name_the_layer():
    with pytest.raises(ValueError, match=r"JaxLayer 'j1'.*unsupported argument\(s\) \['x'\] in `call_fn`"):
        JaxLayer(lambda params, x: x, params={}, name="j1")
    with pytest.raises(ValueError, match=r"'j2'.*`init_fn` must take an `inputs` argument"):
        JaxLayer(mlp_apply, lambda rng: [], name="j2")
    with pytest.raises(ValueError, match=r"'j3'.*cannot all be None"):
        JaxLayer(mlp_apply, name="j3")
    layer = JaxLayer(lambda params, state, inputs: (inputs, {"other": [jnp.ones(())]}), params={},
                     state={"count": 0.0}, name="j4")
    with pytest.raises(ValueError, match=r"'j4'.*state `call_fn` returned does not have the structure"):
        layer(np.ones((1, 2), "float32"))


def test_flax_layer_without_flax_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "flax", None)
    with pytest.raises(ImportError, match=r'pip install "lamina\[flax\]"'):
        FlaxLayer(object())
