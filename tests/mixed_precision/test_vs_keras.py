"""Layers under "mixed_bfloat16" against Keras 3 under the same policy, with the same weights:
outputs in bfloat16, equal within bfloat16's precision (8 bits of mantissa)."""

import numpy as np
import pytest

import lamina as lm

POLICY = "mixed_bfloat16"


def _compare(keras, ours, theirs, inputs, call_kwargs=None, atol=3e-2, rtol=2e-2):
    call_kwargs = call_kwargs or {}
    if not theirs.built:
        theirs.build(inputs.shape)
        ours.build_from_shape(inputs.shape)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    expected = theirs(inputs, **call_kwargs)
    got = ours(inputs, **call_kwargs)
    assert str(got.dtype) == str(keras.ops.convert_to_numpy(expected).dtype) == "bfloat16"
    assert all(w.dtype == np.float32 for w in ours.weights)
    np.testing.assert_allclose(np.asarray(got, np.float32), keras.ops.convert_to_numpy(expected).astype(np.float32),
                               atol=atol, rtol=rtol)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(4, 6, 8)).astype("float32")


def test_dense_and_conv(keras, x):
    _compare(keras, lm.layers.Dense(5, activation="softmax", dtype=POLICY),
             keras.layers.Dense(5, activation="softmax", dtype=POLICY), x)
    images = np.random.default_rng(1).normal(size=(2, 7, 7, 3)).astype("float32")
    _compare(keras, lm.layers.Conv2D(4, 3, activation="relu", dtype=POLICY),
             keras.layers.Conv2D(4, 3, activation="relu", dtype=POLICY), images)


def test_normalization(keras, x):
    shifted = x * 3.0 + 5.0  # statistics far from zero: a bfloat16 variance would be off
    _compare(keras, lm.layers.LayerNormalization(dtype=POLICY), keras.layers.LayerNormalization(dtype=POLICY), shifted)
    ours, theirs = lm.layers.BatchNormalization(dtype=POLICY), keras.layers.BatchNormalization(dtype=POLICY)
    _compare(keras, ours, theirs, shifted, call_kwargs={"training": True})
    assert ours.moving_mean.dtype == np.float32
    np.testing.assert_allclose(ours.moving_mean.numpy(), keras.ops.convert_to_numpy(theirs.moving_mean), rtol=1e-2)
    _compare(keras, ours, theirs, shifted, call_kwargs={"training": False})


def test_multi_head_attention(keras, x):
    ours = lm.layers.MultiHeadAttention(num_heads=2, key_dim=4, dtype=POLICY)
    theirs = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, dtype=POLICY)
    theirs.build(x.shape, x.shape)
    ours.build(x.shape, x.shape)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    assert all(w.dtype == np.float32 for w in ours.weights)
    # The fused path (jax.nn.dot_product_attention) and the explicit softmax (with scores).
    got, expected = ours(x, x, use_causal_mask=True), keras.ops.convert_to_numpy(theirs(x, x, use_causal_mask=True))
    assert str(got.dtype) == str(expected.dtype) == "bfloat16"
    np.testing.assert_allclose(np.asarray(got, np.float32), expected.astype(np.float32), atol=3e-2, rtol=2e-2)
    got, scores = ours(x, x, return_attention_scores=True)
    expected, expected_scores = theirs(x, x, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(got, np.float32), keras.ops.convert_to_numpy(expected).astype(np.float32),
                               atol=3e-2, rtol=2e-2)
    np.testing.assert_allclose(np.asarray(scores, np.float32),
                               keras.ops.convert_to_numpy(expected_scores).astype(np.float32), atol=1e-2)
