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


def _same_as_keras(K, tmp_path, model, float_weights, mode, x_eval, y_quantized, both_ways=True):
    """Keras 3 quantizes the same float weights to the same outputs; the .keras files interchange
    (lamina's is read by Keras; ``both_ways``: Keras's by lamina too)."""
    reference = _minimal_functional_model(K)
    reference.set_weights(float_weights)
    _quantize(reference, mode)
    np.testing.assert_allclose(np.asarray(reference(x_eval)), np.asarray(y_quantized), rtol=1e-6, atol=1e-6)
    assert [(w.name, str(w.dtype)) for w in model.weights] == [(w.name, str(w.dtype)) for w in reference.weights]
    keras_reloaded = K.saving.load_model(tmp_path / f"{mode}.keras")  # lamina's file, read by Keras
    np.testing.assert_array_equal(np.asarray(keras_reloaded(x_eval)), np.asarray(y_quantized))
    if not both_ways:
        return
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

    # lamina reads Keras's files with the same variable layout it writes (checked for int8).
    _same_as_keras(K, tmp_path, model, float_weights, "int4", x_eval, y_int4, both_ways=False)


def test_customizing_quantization_guide():
    """The guide "Customizing Quantization with QuantizationConfig"
    (guides/customizing_quantization.py), ported the same way."""

    def get_model():
        return lm.Sequential([lm.Input(shape=(10,)), lm.layers.Dense(32, activation="relu"), lm.layers.Dense(1)])

    # ## 1. Customizing INT8 Quantization
    from lamina.quantizers import AbsMaxQuantizer, Int8QuantizationConfig

    model = get_model()
    custom_int8_config = Int8QuantizationConfig(
        weight_quantizer=AbsMaxQuantizer(value_range=(-100, 100), axis=0),
        activation_quantizer=AbsMaxQuantizer(value_range=(-100, 100), axis=-1),
    )
    model.quantize(config=custom_int8_config)
    assert str(model.layers[0].kernel.dtype) == "int8"
    assert jnp.all(jnp.less_equal(model.layers[0].kernel, 100)) and jnp.all(jnp.greater_equal(model.layers[0].kernel, -100))
    assert int(jnp.max(jnp.abs(model.layers[0].kernel.value))) == 100

    # ## 2. Weight-Only Quantization (INT4). With Keras 3.15's default block_size=128 (grouped
    # int4) the guide's custom weight quantizer is refused, by Keras as here; per-channel takes it.
    from lamina.quantizers import Int4QuantizationConfig

    with pytest.raises(ValueError, match="custom quantizers"):
        Int4QuantizationConfig(weight_quantizer=AbsMaxQuantizer(value_range=(-8, 7), output_dtype="int8", axis=0),
                               activation_quantizer=None)
    model = get_model()
    custom_int4_config = Int4QuantizationConfig(
        weight_quantizer=AbsMaxQuantizer(value_range=(-8, 7), output_dtype="int8", axis=0),
        activation_quantizer=None, block_size=None,
    )
    model.quantize(config=custom_int4_config)
    assert str(model.layers[0].kernel.dtype) == "int8" and model.layers[0].inputs_quantizer is None
    assert model.layers[0].dtype_policy.name == "int4/-1_from_float32"

    # ## 3. Custom Quantizers: Implementing a Percentile Quantizer
    from lamina.quantizers import Quantizer

    class PercentileQuantizer(Quantizer):
        """Quantizes x using the percentile-based scale."""

        def __init__(self, percentile=99.9, value_range=(-127, 127), epsilon=1e-7, output_dtype="int8"):
            super().__init__(output_dtype=output_dtype)
            self.percentile = percentile
            self.value_range = value_range
            self.epsilon = epsilon

        def __call__(self, x, axis, to_numpy=False):
            x_abs = jnp.abs(x)
            if to_numpy:
                max_val = np.percentile(np.asarray(x_abs), self.percentile, axis=axis, keepdims=True)
            else:
                max_val = jnp.quantile(x_abs, self.percentile / 100, axis=axis, keepdims=True)
            scale = jnp.divide(self.value_range[1], jnp.add(max_val, self.epsilon))
            if not to_numpy:
                scale = scale.astype(x.dtype)
            outputs = jnp.clip(jnp.round(jnp.multiply(x, scale)), self.value_range[0], self.value_range[1])
            return outputs.astype(self.output_dtype), scale

        def get_config(self):
            return {"percentile": self.percentile, "value_range": self.value_range, "epsilon": self.epsilon,
                    "output_dtype": self.output_dtype}

    model = get_model()
    x = np.random.default_rng(2).random((4, 10)).astype("float32")
    y_fp32 = model(x)
    custom_int8_config = Int8QuantizationConfig(
        weight_quantizer=AbsMaxQuantizer(axis=0),
        activation_quantizer=PercentileQuantizer(percentile=99.9),
    )
    model.quantize(config=custom_int8_config)
    assert isinstance(model.layers[0].inputs_quantizer, PercentileQuantizer)
    assert float(jnp.mean(jnp.square(model(x) - y_fp32))) < 1e-3
