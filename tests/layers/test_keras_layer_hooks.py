"""Keras 3's overridable Layer hooks: save_own_variables / load_own_variables (and saving that
honours overrides), get_build_config / build_from_config, compute_output_spec, input_dtype."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm


def _store_shapes(layer):
    store = {}
    layer.save_own_variables(store)
    return {key: tuple(np.shape(value)) for key, value in store.items()}


def test_default_store_has_keras_keys_and_order(keras):
    """Keras stores trainable variables first: BatchNormalization's gamma, beta, then the statistics."""
    ours, theirs = lm.layers.BatchNormalization(), keras.layers.BatchNormalization()
    ours.build((None, 3, 5))
    theirs.build((None, 3, 5))
    ours.gamma.assign(np.arange(5, dtype="float32"))
    assert _store_shapes(ours) == _store_shapes(theirs) == {"0": (5,), "1": (5,), "2": (5,), "3": (5,)}
    store = {}
    ours.save_own_variables(store)
    np.testing.assert_array_equal(store["0"], np.arange(5))
    np.testing.assert_array_equal(store["2"], np.zeros(5))  # moving_mean, after beta
    twin = lm.layers.BatchNormalization()
    twin.build((None, 3, 5))
    twin.load_own_variables({key: np.asarray(value) for key, value in store.items()})
    np.testing.assert_array_equal(twin.gamma.numpy(), np.arange(5))


def test_default_load_checks_keys_and_shapes_before_assigning():
    layer = lm.layers.Dense(2, name="dense_hooks")
    layer.build((None, 3))
    kernel = layer.kernel.numpy()
    with pytest.raises(ValueError, match=r"'dense_hooks'.*\['kernel', 'bias'\].*\['0', '1'\].*\['0', '1', '2'\]"):
        layer.load_own_variables({"0": np.zeros((3, 2)), "1": np.zeros(2), "2": np.zeros(1)})
    with pytest.raises(ValueError, match=r"'dense_hooks/bias' \(key '1'\): expected shape \(2,\), got \(4,\)"):
        layer.load_own_variables({"0": np.zeros((3, 2)), "1": np.zeros(4)})
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel)  # nothing changed


def test_build_config_round_trip_as_keras(keras):
    ours, theirs = lm.layers.Dense(3), keras.layers.Dense(3)
    ours(np.ones((2, 4), "float32"))
    theirs(np.ones((2, 4), "float32"))
    assert ours.get_build_config() == theirs.get_build_config() == {"input_shape": (2, 4)}
    assert lm.layers.Dense(3).get_build_config() is None  # unbuilt
    fresh = lm.layers.Dense(3)
    fresh.build_from_config({"input_shape": [None, 4]})  # as JSON gives it back
    assert fresh.built and fresh.kernel.shape == (4, 3) and fresh.get_build_config() == {"input_shape": (None, 4)}
    merge = lm.layers.Add()
    merge.build_from_config({"input_shape": [[None, 3], [None, 3]]})
    assert merge.built


def test_default_build_config_stays_out_of_serialized_configs():
    layer = lm.layers.Dense(2)
    layer.build((None, 3))
    assert "build_config" not in lm.saving.serialize(layer)


def test_compute_output_spec_and_input_dtype(keras):
    layer = lm.layers.Dense(4, dtype="mixed_bfloat16")
    spec = layer.compute_output_spec(jax.ShapeDtypeStruct((2, 3), jnp.float32))
    assert spec == jax.ShapeDtypeStruct((2, 4), jnp.bfloat16)
    theirs = keras.layers.Dense(4, dtype="mixed_bfloat16")
    their_spec = theirs.compute_output_spec(keras.KerasTensor((2, 3)))
    assert (their_spec.shape, their_spec.dtype) == (spec.shape, str(spec.dtype))
    assert layer.input_dtype == theirs.input_dtype == "bfloat16"
    attention = lm.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    q, v = jax.ShapeDtypeStruct((2, 5, 8), jnp.float32), jax.ShapeDtypeStruct((2, 7, 8), jnp.float32)
    out, scores = attention.compute_output_spec(q, v, return_attention_scores=True)
    assert (out.shape, scores.shape) == ((2, 5, 8), (2, 2, 5, 7))
    assert lm.layers.InputLayer(shape=(3,), dtype="int32").input_dtype == "int32"
    with pytest.raises(ValueError, match="ShapeDtypeStruct"):
        attention.compute_output_spec("not an input")
