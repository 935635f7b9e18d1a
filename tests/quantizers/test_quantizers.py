"""``lm.quantizers`` and the quantized dtype policies against Keras 3's: the same numbers from
the quantization functions, the same configs, and names/configs that resolve both ways."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

RNG = np.random.default_rng(0)
W = RNG.normal(size=(7, 5)).astype("float32")


def _same(ours, theirs):
    for mine, reference in zip(ours, theirs):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(reference))


@pytest.mark.parametrize("axis,to_numpy", [(0, True), (-1, False), ((0, 1), False)])
def test_abs_max_quantize_matches_keras(keras, axis, to_numpy):
    _same(lm.quantizers.abs_max_quantize(W, axis, to_numpy=to_numpy),
          keras.quantizers.abs_max_quantize(W, axis, to_numpy=to_numpy))
    ours = lm.quantizers.AbsMaxQuantizer(value_range=(-8, 7))(W, axis=axis)
    _same(ours, keras.quantizers.AbsMaxQuantizer(value_range=(-8, 7))(W, axis=axis))


def test_grouped_quantize_and_int4_packing_match_keras(keras):
    _same(lm.quantizers.abs_max_quantize_grouped_with_zero_point(W, block_size=3),
          keras.quantizers.abs_max_quantize_grouped_with_zero_point(W, block_size=3, to_numpy=True))
    values = RNG.integers(-8, 8, size=(5, 3)).astype("int8")
    for axis in (0, 1, -1):
        packed, shape, length = lm.quantizers.pack_int4(values, axis=axis)
        reference = keras.quantizers.pack_int4(values, axis=axis)
        _same([packed], [reference[0]])
        assert (shape, length) == (reference[1], reference[2])
        np.testing.assert_array_equal(np.asarray(lm.quantizers.unpack_int4(packed, length, axis=axis)), values)
    with pytest.raises(TypeError, match="int8"):
        lm.quantizers.pack_int4(values.astype("int32"))


def test_float8_helpers_match_keras(keras):
    x = jnp.asarray([1.0, -500.0, 3.3, 0.0])
    _same([lm.quantizers.quantize_and_dequantize(x, 2.0, "float8_e4m3fn", "float32")],
          [keras.quantizers.quantize_and_dequantize(x, 2.0, "float8_e4m3fn", "float32")])
    amax = jnp.asarray([0.0, 3.0, float("inf")])  # a zero or infinite amax keeps the old scale
    _same([lm.quantizers.compute_float8_scale(amax, jnp.float32(0.5), 448.0, margin=1)],
          [keras.quantizers.compute_float8_scale(amax, jnp.float32(0.5), 448.0, margin=1)])
    history = jnp.asarray([1.0, 2.0, 0.0])
    _same([lm.quantizers.compute_float8_amax_history(x, history)],
          [keras.quantizers.compute_float8_amax_history(x, history)])


def test_quantizers_and_configs_serialize_as_keras(keras):
    quantizer = lm.quantizers.AbsMaxQuantizer(axis=0, value_range=(-8, 7))
    config = quantizer.get_config()
    assert config == keras.quantizers.AbsMaxQuantizer(axis=0, value_range=(-8, 7)).get_config()
    again = lm.quantizers.deserialize(json.loads(json.dumps(lm.quantizers.serialize(quantizer))))
    assert again.get_config() == config
    assert isinstance(lm.quantizers.get("AbsMaxQuantizer"), lm.quantizers.AbsMaxQuantizer)
    assert lm.quantizers.get(None) is None and lm.quantizers.get(quantizer) is quantizer
    int8 = lm.quantizers.Int8QuantizationConfig()
    mine = json.loads(json.dumps(lm.saving.serialize(int8)["config"]))
    reference = json.loads(json.dumps(keras.saving.serialize_keras_object(keras.quantizers.Int8QuantizationConfig())))
    assert mine["weight_quantizer"] is None and reference["config"]["weight_quantizer"] is None
    assert mine["activation_quantizer"]["config"] == reference["config"]["activation_quantizer"]["config"]
    int4 = lm.quantizers.Int4QuantizationConfig(block_size=64)
    assert lm.saving.deserialize(lm.saving.serialize(int4)).block_size == 64
    assert int4.get_config() == keras.quantizers.Int4QuantizationConfig(block_size=64).get_config()


def test_config_validation():
    with pytest.raises(ValueError, match="block_size"):
        lm.quantizers.Int4QuantizationConfig(block_size=0)
    with pytest.raises(ValueError, match="custom quantizers"):
        lm.quantizers.Int4QuantizationConfig(weight_quantizer=lm.quantizers.AbsMaxQuantizer(value_range=(-8, 7)))
    with pytest.raises(ValueError, match="value_range"):
        lm.quantizers.Int4QuantizationConfig(weight_quantizer=lm.quantizers.AbsMaxQuantizer(), block_size=None)
    with pytest.raises(ValueError, match=r"\[-128, 127\]"):
        lm.quantizers.AbsMaxQuantizer(value_range=(-255, 255))
    layer = lm.layers.Dense(2)
    layer(W)
    with pytest.raises(ValueError, match="contradictory"):
        layer.quantize("int4", config=lm.quantizers.Int8QuantizationConfig())


def test_weight_only_int8_config(keras):
    """``activation_quantizer=None``: float inputs times the int8 kernel, as Keras."""
    ours, theirs = lm.layers.Dense(3), keras.layers.Dense(3)
    ours(W), theirs(W)
    theirs.set_weights(ours.get_weights())
    ours.quantize(config=lm.quantizers.Int8QuantizationConfig(activation_quantizer=None))
    theirs.quantize(config=keras.quantizers.Int8QuantizationConfig(activation_quantizer=None))
    np.testing.assert_allclose(np.asarray(ours(W)), np.asarray(theirs(W)), rtol=1e-6, atol=1e-6)
    config = ours.get_config()
    assert config["quantization_config"]["config"]["activation_quantizer"] is None
    rebuilt = lm.layers.Dense.from_config(json.loads(json.dumps(config)))
    rebuilt.build((None, 5))
    for variable in rebuilt.weights:  # a rebuilt layer creates kernel and scale before the bias, as Keras's
        variable.assign(getattr(ours, variable.name).value)
    np.testing.assert_array_equal(np.asarray(rebuilt(W)), np.asarray(ours(W)))


def test_quantized_policies_match_keras(keras):
    for name in ("int8_from_float32", "int8_from_mixed_bfloat16", "int4/128_from_float32", "int4_from_float32"):
        ours, theirs = lm.mixed_precision.get(name), keras.dtype_policies.get(name)
        assert (type(ours).__name__, ours.name, ours.quantization_mode, ours.compute_dtype, ours.variable_dtype) == (
            type(theirs).__name__, theirs.name, theirs.quantization_mode, theirs.compute_dtype, theirs.variable_dtype)
        assert ours.get_config() == theirs.get_config()
        assert lm.mixed_precision.get(lm.mixed_precision.serialize(ours)) == ours
    assert lm.mixed_precision.get("float32").quantization_mode is None
    with pytest.raises(ValueError, match="int4/<block_size>"):
        lm.mixed_precision.Int4DTypePolicy("int4/0", "float32")
    with pytest.raises(ValueError, match="float16"):
        lm.mixed_precision.get("int8_from_mixed_float16")
    layer = lm.layers.Dense(2, dtype="int8_from_float32")  # a quantized layer rebuilt from a file
    layer.build((None, 3))
    assert [(w.name, str(w.dtype)) for w in layer.weights] == [
        ("kernel", "int8"), ("kernel_scale", "float32"), ("bias", "float32")]
