"""Ports of the Keras 3 guides "8-bit Integer Quantization in Keras" and "INT4 Quantization in
Keras" (keras-team/keras-io, guides/int8_quantization_in_keras.py and
guides/int4_quantization_in_keras.py).

Each guide's runnable part, section by section: quantize a minimal functional model in place
and compare its outputs with the float model (MSE), then save it to a ``.keras`` file and
reload it. Translation: ``keras`` -> ``lm``, ``keras.ops`` -> ``jnp``. Beyond the guides, the
same model built in Keras 3 from the same float weights gives the same quantized outputs, and
the ``.keras`` files interchange both ways (and ``.lamina`` round-trips). Left out: the
KerasHub (Gemma 3) sections, which need KerasHub and downloaded presets.
"""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm


@pytest.fixture(scope="module")
def K():
    import keras

    return keras


def _minimal_functional_model(lib):
    inputs = lib.Input(shape=(10,))
    x = lib.layers.Dense(32, activation="relu")(inputs)
    outputs = lib.layers.Dense(1, name="target")(x)
    return lib.Model(inputs, outputs)


def _quantize(model, mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the InputLayer cannot be quantized, which Keras warns about
        model.quantize(mode)


def _same_as_keras(K, tmp_path, model, float_weights, mode, x_eval, y_quantized):
    """Keras 3 quantizes the same float weights to the same outputs; the .keras files interchange."""
    reference = _minimal_functional_model(K)
    reference.set_weights(float_weights)
    _quantize(reference, mode)
    np.testing.assert_allclose(np.asarray(reference(x_eval)), np.asarray(y_quantized), rtol=1e-6, atol=1e-6)
    assert [(w.name, str(w.dtype)) for w in model.weights] == [(w.name, str(w.dtype)) for w in reference.weights]
    keras_reloaded = K.saving.load_model(tmp_path / f"{mode}.keras")  # lamina's file, read by Keras
    np.testing.assert_array_equal(np.asarray(keras_reloaded(x_eval)), np.asarray(y_quantized))
    reference.save(tmp_path / f"keras_{mode}.keras")
    ours = lm.load_model(tmp_path / f"keras_{mode}.keras")  # Keras's file, read by lamina
    assert ours.get_layer("target").dtype_policy.name == reference.get_layer("target").dtype_policy.name
    np.testing.assert_array_equal(np.asarray(ours(x_eval)), np.asarray(reference(x_eval)))


# Keras warns that the file's optimizer (not built since quantize replaced it) has fewer variables.
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_int8_guide(K, tmp_path):
    # ## Quantizing a minimal functional model.
    rng = np.random.default_rng(0)
    model = _minimal_functional_model(lm)

    # Compile and train briefly to materialize meaningful weights.
    model.compile(optimizer="adam", loss="mse")
    x_train = rng.random((256, 10)).astype("float32")
    y_train = rng.random((256, 1)).astype("float32")
    model.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)

    x_eval = rng.random((32, 10)).astype("float32")
    y_fp32 = model(x_eval)
    float_weights = [np.asarray(w) for w in model.get_weights()]

    _quantize(model, "int8")
    y_int8 = model(x_eval)
    mse = jnp.mean(jnp.square(y_fp32 - y_int8))
    assert 0.0 < float(mse) < 1e-4  # "the INT8 quantized model produces outputs close to the original"
    assert model.get_layer("target").dtype_policy.name == "int8_from_float32"

    # ## Saving and reloading a quantized model
    model.save(tmp_path / "int8.keras")
    int8_reloaded = lm.saving.load_model(tmp_path / "int8.keras")
    y_int8_reloaded = int8_reloaded(x_eval)
    roundtrip_mse = jnp.mean(jnp.square(y_int8 - y_int8_reloaded))
    assert float(roundtrip_mse) == 0.0
    model.save(tmp_path / "int8.lamina")
    np.testing.assert_array_equal(np.asarray(lm.load_model(tmp_path / "int8.lamina")(x_eval)), np.asarray(y_int8))

    _same_as_keras(K, tmp_path, model, float_weights, "int8", x_eval, y_int8)


def test_int4_guide(K, tmp_path):
    # ## Quantizing a Minimal Functional Model
    rng = np.random.default_rng(1)
    model = _minimal_functional_model(lm)
    x_eval = rng.random((32, 10)).astype("float32")
    y_fp32 = model(x_eval)
    float_weights = [np.asarray(w) for w in model.get_weights()]

    _quantize(model, "int4")
    y_int4 = model(x_eval)
    mse = jnp.mean(jnp.square(y_fp32 - y_int4))
    assert 0.0 < float(mse) < 1e-2  # larger deltas than int8, still close
    assert model.get_layer("target").dtype_policy.name == "int4/128_from_float32"
    assert model.get_layer("target").kernel.shape == (32, 1)  # one output: one packed byte per input row

    # ## Saving and Reloading a Quantized Model
    model.save(tmp_path / "int4.keras")
    int4_reloaded = lm.saving.load_model(tmp_path / "int4.keras")
    y_int4_reloaded = int4_reloaded(x_eval)
    roundtrip_mse = jnp.mean(jnp.square(y_fp32 - y_int4_reloaded))
    assert float(roundtrip_mse) == pytest.approx(float(mse))
    np.testing.assert_array_equal(np.asarray(y_int4_reloaded), np.asarray(y_int4))
    model.save(tmp_path / "int4.lamina")
    np.testing.assert_array_equal(np.asarray(lm.load_model(tmp_path / "int4.lamina")(x_eval)), np.asarray(y_int4))

    _same_as_keras(K, tmp_path, model, float_weights, "int4", x_eval, y_int4)
