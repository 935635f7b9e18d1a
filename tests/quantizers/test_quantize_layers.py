"""Post-training quantization of Dense, EinsumDense and Embedding (``layer.quantize`` and
``model.quantize``) against Keras 3 on JAX: the same float weights give the same integers,
scales and outputs; the layer's policy, variables and errors are Keras's; a quantized model
predicts, compiles with ``lm.jit`` and still trains what stays float."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

RNG = np.random.default_rng(0)
X2 = RNG.normal(size=(6, 5)).astype("float32")
X3 = RNG.normal(size=(6, 3, 5)).astype("float32")
IDS = RNG.integers(0, 10, size=(3, 4))



def _config(lib, mode, block_size):
    if block_size is None:
        return None
    return lib.quantizers.Int4QuantizationConfig(block_size=block_size)


def _twins(keras, name, args, kwargs, x, dtype=None):
    ours = getattr(lm.layers, name)(*args, dtype=dtype, **kwargs)
    ours.build(x.shape)
    theirs = getattr(keras.layers, name)(*args, dtype=dtype, **kwargs)
    theirs.build(x.shape)
    theirs.set_weights([np.asarray(w) for w in ours.get_weights()])
    return ours, theirs


def _quantize_both_and_compare(keras, ours, theirs, mode, block_size, x, rtol=0.0):
    ours.quantize(mode, config=_config(lm, mode, block_size))
    theirs.quantize(mode, config=_config(keras, mode, block_size))
    assert ours.dtype_policy.name == theirs.dtype_policy.name
    assert [(w.name, tuple(w.shape), str(w.dtype), w.trainable) for w in ours.weights] == [
        (w.name, tuple(w.shape), str(w.dtype), w.trainable) for w in theirs.weights]
    for mine, reference in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(reference))
    np.testing.assert_allclose(np.asarray(ours(x), "float32"), np.asarray(theirs(x), "float32"), rtol=rtol,
                               atol=rtol)


@pytest.mark.parametrize("mode,block_size", [("int8", None), ("int4", -1), ("int8-bf16", None)])  # -1: per channel
def test_dense_matches_keras(keras, mode, block_size):
    dtype = "mixed_bfloat16" if mode.endswith("bf16") else None
    ours, theirs = _twins(keras, "Dense", (4,), {"activation": "relu"}, X2, dtype)
    _quantize_both_and_compare(keras, ours, theirs, mode.split("-")[0], block_size, X2, rtol=1e-2 if dtype else 0.0)
    assert ours.quantization_mode == mode.split("-")[0]


@pytest.mark.parametrize("equation,output_shape,bias_axes,x,mode,block_size", [
    ("abc,cde->abde", (3, 2, 4), "e", X3, "int8", None),
    ("btd,ndh->btnh", (3, 2, 4), "h", X3, "int8", None),  # attention's projection: kernel axes reordered
    ("btd,ndh->btnh", (3, 2, 4), "h", X3, "int4", 2),
], ids=["two-outputs-int8", "heads-int8", "heads-int4-grouped"])
def test_einsum_dense_matches_keras(keras, equation, output_shape, bias_axes, x, mode, block_size):
    ours, theirs = _twins(keras, "EinsumDense", (equation, output_shape), {"bias_axes": bias_axes}, x)
    _quantize_both_and_compare(keras, ours, theirs, mode, block_size, x)


@pytest.mark.parametrize("mode,block_size", [("int8", None), ("int4", -1), ("int4", 4)])  # -1: per row
def test_embedding_matches_keras(keras, mode, block_size):
    ours, theirs = _twins(keras, "Embedding", (10, 6), {}, IDS)
    _quantize_both_and_compare(keras, ours, theirs, mode, block_size, IDS)


def test_int8_dense_numbers_follow_the_abs_max_formulas():
    layer = lm.layers.Dense(3, use_bias=False)
    layer(X2)
    kernel = np.asarray(layer.kernel.value)
    layer.quantize("int8")
    kernel_scale = 127.0 / (np.abs(kernel).max(axis=0) + 1e-7)
    np.testing.assert_allclose(np.asarray(layer.kernel_scale.value), kernel_scale, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(layer.kernel.value), np.round(kernel * kernel_scale))
    input_scale = 127.0 / (np.abs(X2).max(axis=-1, keepdims=True) + 1e-7)
    integer = np.round(X2 * input_scale) @ np.round(kernel * kernel_scale)
    np.testing.assert_allclose(np.asarray(layer(X2)), integer / (input_scale * kernel_scale), rtol=1e-5)
    assert np.abs(np.asarray(layer(X2)) - X2 @ kernel).max() < 0.05  # close to the float layer


def test_quantize_errors_name_the_layer():
    unbuilt = lm.layers.Dense(2, name="late")
    with pytest.raises(ValueError, match="late.*not built"):
        unbuilt.quantize("int8")
    layer = lm.layers.Dense(2, name="twice")
    layer(X2)
    with pytest.raises(ValueError, match="invalid quantization mode 'int16'"):
        layer.quantize("int16")
    with pytest.raises(NotImplementedError, match="'gptq' is not implemented"):
        layer.quantize("gptq")
    layer.quantize("int8")
    with pytest.raises(ValueError, match="twice.*already quantized"):
        layer.quantize("int8")
    with pytest.raises(ValueError, match="float16"):
        half = lm.layers.Dense(2, dtype="mixed_float16")
        half(X2)
        half.quantize("int8")

    class MyDense(lm.layers.Dense):
        pass

    custom = MyDense(2, name="mine")
    custom(X2)
    with pytest.raises(NotImplementedError, match="MyDense.*mine"):
        custom.quantize("int8")
    custom.quantize("int8", type_check=False)
    assert custom.quantization_mode == "int8"
    with pytest.raises(NotImplementedError, match="Dropout"):
        lm.layers.Dropout(0.5).quantize("int8")


@pytest.fixture(scope="module")
def mlp():
    lm.utils.set_random_seed(1)
    inputs = lm.Input((5,))
    hidden = lm.layers.Dense(8, activation="relu", name="hidden")(inputs)
    hidden = lm.layers.Dropout(0.1)(hidden)
    outputs = lm.layers.Dense(2, name="out")(hidden)
    model = lm.Model(inputs, outputs)
    float_outputs = model.predict(X2, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.quantize("int8")
    return model, float_outputs, [str(w.message) for w in caught]


def test_model_quantize_walks_the_layers(mlp):
    model, float_outputs, warned = mlp
    assert [layer.quantization_mode for layer in model.layers] == [None, "int8", None, "int8"]
    assert any("Dropout" in message for message in warned)  # left alone, as Keras does
    assert np.mean((model.predict(X2, verbose=0) - float_outputs) ** 2) < 1e-3
    assert [w.name for w in model.trainable_weights] == ["bias", "bias"]


def test_quantized_model_predicts_and_compiles(mlp):
    model, _, _ = mlp
    eager = np.asarray(model(X2))
    np.testing.assert_allclose(model.predict(X2, verbose=0), eager, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(lm.jit(lambda x: model(x))(X2)), eager, rtol=1e-6, atol=1e-6)


def test_gradient_reaches_the_inputs_through_the_dequantized_kernel():
    layer = lm.layers.Dense(3)
    layer(X2)
    layer.quantize("int8")
    grad = jax.grad(lambda x: jnp.sum(layer(x) * jnp.arange(3.0)))(jnp.asarray(X2))
    float_kernel = np.asarray(layer.kernel.value, "float32") / np.asarray(layer.kernel_scale.value)
    np.testing.assert_allclose(np.asarray(grad), np.tile(float_kernel @ np.arange(3.0), (6, 1)), rtol=1e-5)


def test_filters_pick_the_layers():
    model = lm.Sequential([lm.Input((5,)), lm.layers.Dense(4, name="keep"), lm.layers.Dense(2, name="quantize_me")])
    model.quantize("int8", filters="quantize")
    assert [layer.quantization_mode for layer in model.layers] == [None, "int8"]
    model.quantize("int4", filters=lambda layer: layer.name == "keep")
    assert model.get_layer("keep").dtype_policy.name == "int4/128_from_float32"
    with pytest.raises(ValueError, match="filters"):
        model.quantize("int8", filters=3)


def test_a_trained_model_quantized_trains_its_biases_with_a_fresh_optimizer(tmp_path):
    model = lm.Sequential([lm.Input((5,)), lm.layers.Dense(4, activation="relu"), lm.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    y = np.ones((6, 1), "float32")
    model.fit(X2, y, batch_size=6, verbose=0)
    model.quantize("int8")
    assert isinstance(model.optimizer, lm.optimizers.Adam) and not model.optimizer.built
    kernels = [np.asarray(layer.kernel.value) for layer in model.layers]
    biases = [np.asarray(w.value) for w in model.trainable_weights]
    history = model.fit(X2, y, batch_size=3, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    for before, layer in zip(kernels, model.layers):
        np.testing.assert_array_equal(np.asarray(layer.kernel.value), before)  # int8 kernels are frozen
    assert all(not np.allclose(np.asarray(w.value), b) for w, b in zip(model.trainable_weights, biases))
    assert not [v.path for v in model.optimizer.variables if "kernel" in v.path]  # no state for int8 kernels
    model.save(tmp_path / "m.lamina")
    np.testing.assert_array_equal(lm.load_model(tmp_path / "m.lamina").predict(X2, verbose=0),
                                  model.predict(X2, verbose=0))


def test_nested_models_compiled_functions_and_elided_equations():
    inner = lm.Sequential([lm.Input((5,)), lm.layers.Dense(4, name="inner_dense")], name="inner")
    outer = lm.Sequential([lm.Input((5,)), inner, lm.layers.EinsumDense("...b,bc->...c", 3, name="elided")])
    forward = lm.jit(lambda x: outer(x))
    float_outputs = np.asarray(forward(X2))
    outer.quantize("int8")
    assert inner.get_layer("inner_dense").quantization_mode == outer.get_layer("elided").quantization_mode == "int8"
    quantized_outputs = np.asarray(forward(X2))  # the compiled function follows the new variables
    np.testing.assert_allclose(quantized_outputs, np.asarray(outer(X2)), rtol=1e-6, atol=1e-6)
    assert 0 < np.abs(quantized_outputs - float_outputs).max() < 0.05
    assert outer.count_params() == sum(int(np.prod(w.shape)) for w in outer.weights)


def test_setting_a_quantized_policy_quantizes_a_built_layer():
    layer = lm.layers.Dense(3)
    layer(X2)
    twin = lm.layers.Dense(3)
    twin.build(X2.shape)
    twin.set_weights(layer.get_weights())
    layer.dtype_policy = "int4/2_from_float32"  # Keras's implicit quantize
    twin.quantize("int4", config=lm.quantizers.Int4QuantizationConfig(block_size=2))
    assert layer.dtype_policy == twin.dtype_policy and layer.kernel_scale.shape == (3, 3)
    np.testing.assert_array_equal(np.asarray(layer(X2)), np.asarray(twin(X2)))
    unbuilt = lm.layers.Dense(3)
    unbuilt.dtype_policy = "int8_from_float32"  # unbuilt: it builds quantized
    unbuilt.build(X2.shape)
    assert [w.name for w in unbuilt.weights] == ["kernel", "kernel_scale", "bias"]


def test_save_own_variables_keeps_keras_order(keras):
    ours, theirs = _twins(keras, "Dense", (3,), {}, X2)
    ours.quantize("int8")
    theirs.quantize("int8")
    mine, reference = {}, {}
    ours.save_own_variables(mine)
    theirs.save_own_variables(reference)
    assert list(mine) == list(reference) == ["0", "1", "2"]
    for key in reference:
        np.testing.assert_array_equal(np.asarray(mine[key]), np.asarray(reference[key]))
    rebuilt = lm.layers.Dense(3, dtype="int8_from_float32")
    rebuilt.build(X2.shape)
    rebuilt.load_own_variables({key: np.asarray(value) for key, value in reference.items()})
    np.testing.assert_array_equal(np.asarray(rebuilt(X2)), np.asarray(ours(X2)))
