"""TextVectorization against Keras 3 (host-side NumPy, compared with Keras's outputs directly):
standardize, split, n-grams, output modes, adapt from arrays and batches, configs, errors."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

TEXTS = np.array([
    "The quick brown fox, the LAZY dog!",
    "A dog... a cat; and THE fox?",
    "Émile's café-bar: the best",
    "",
])
QUERIES = np.array(["the dog and the fox", "an unknown Cat", "brown-fox's  café"])


def _same(mine, theirs):
    mine, theirs = np.asarray(mine), np.asarray(theirs)
    assert mine.shape == theirs.shape, (mine.shape, theirs.shape)
    np.testing.assert_allclose(mine, theirs, rtol=1e-6)


def _both(keras, **config):
    mine, theirs = lm.layers.TextVectorization(**config), keras.layers.TextVectorization(**config)
    mine.adapt(TEXTS)
    theirs.adapt(TEXTS)
    assert mine.get_vocabulary() == [str(t) for t in theirs.get_vocabulary()]
    return mine, theirs


CONFIGS = [
    {},
    {"output_sequence_length": 4},
    {"output_sequence_length": 12, "max_tokens": 6},
    {"standardize": "lower"},
    {"standardize": "strip_punctuation"},
    {"standardize": None, "split": "character"},
    {"ngrams": 2},
    {"ngrams": (1, 3), "output_mode": "count"},
    {"output_mode": "multi_hot", "max_tokens": 8},
    {"output_mode": "count", "pad_to_max_tokens": True, "max_tokens": 30},
    {"output_mode": "tf_idf"},
    {"output_mode": "tf_idf", "ngrams": 2, "pad_to_max_tokens": True, "max_tokens": 40},
]


@pytest.mark.parametrize("config", CONFIGS, ids=[",".join(f"{k}={v}" for k, v in c.items()) or "default" for c in CONFIGS])
def test_text_vectorization_matches_keras(keras, config):
    mine, theirs = _both(keras, **config)
    for texts in (QUERIES, TEXTS[:, None]):
        _same(mine(texts), theirs(texts))
    if config.get("output_mode", "int") != "int" or "output_sequence_length" in config:
        declared = mine.compute_output_shape((None, 1))
        assert declared[1:] == np.shape(mine(QUERIES))[1:]


def test_split_none_and_a_numpy_standardize_callable_match_keras(keras):
    tokens = np.array([["red", "Blue", "red"], ["green", "red", "cyan"]])

    def no_vowels(texts):  # Keras (on JAX) hands a callable a NumPy string array too
        return np.char.replace(np.char.replace(texts, "e", ""), "u", "")

    for config in ({"split": None}, {"split": None, "standardize": no_vowels},
                   {"split": None, "output_mode": "multi_hot"}):
        mine, theirs = lm.layers.TextVectorization(**config), keras.layers.TextVectorization(**config)
        mine.adapt(tokens)
        theirs.adapt(tokens)
        assert mine.get_vocabulary() == [str(t) for t in theirs.get_vocabulary()]
        _same(mine(tokens), theirs(tokens))


def test_adapt_from_batches_and_tf_data_matches_adapting_the_array(keras):
    import tensorflow as tf

    whole = lm.layers.TextVectorization(output_mode="tf_idf")
    whole.adapt(TEXTS)
    batched = lm.layers.TextVectorization(output_mode="tf_idf")
    batched.adapt(tf.data.Dataset.from_tensor_slices(TEXTS).batch(3))
    generated = lm.layers.TextVectorization(output_mode="tf_idf")
    generated.adapt((TEXTS[i:i + 2], np.zeros(2)) for i in range(0, 4, 2))
    theirs = keras.layers.TextVectorization(output_mode="tf_idf")
    theirs.adapt(tf.data.Dataset.from_tensor_slices(TEXTS).batch(3))
    assert whole.get_vocabulary() == batched.get_vocabulary() == generated.get_vocabulary()
    for layer in (whole, batched, generated):
        _same(layer(QUERIES), theirs(QUERIES))
    # A tf.string tensor and a list of str are taken like NumPy arrays.
    np.testing.assert_array_equal(whole(tf.constant(QUERIES)), whole(list(QUERIES)))


def test_given_vocabulary_config_round_trip_and_keras_keys(keras):
    vocabulary = ["the", "fox", "dog"]
    mine = lm.layers.TextVectorization(vocabulary=vocabulary, output_sequence_length=3)
    theirs = keras.layers.TextVectorization(vocabulary=vocabulary, output_sequence_length=3)
    assert mine.get_vocabulary() == ["", "[UNK]", *vocabulary] and mine.vocabulary_size() == 5
    _same(mine(QUERIES), theirs(QUERIES))
    config, reference = mine.get_config(), theirs.get_config()
    assert set(config) == set(reference)
    for key, value in reference.items():
        if key not in ("name", "dtype", "trainable"):
            assert config[key] == value, key
    copy = lm.saving.deserialize(json.loads(json.dumps(lm.saving.serialize(mine))))
    np.testing.assert_array_equal(copy(QUERIES), mine(QUERIES))
    mine.set_vocabulary(["fox"])
    assert mine(np.array(["fox dog"])).tolist() == [[2, 1, 0]]


def test_text_vectorization_refuses_traced_calls_and_bad_input():
    layer = lm.layers.TextVectorization(vocabulary=["a"])
    with pytest.raises(TypeError, match=r"data pipeline"):
        lm.jit(lambda x: layer(x))(jnp.zeros(2))
    with pytest.raises(TypeError, match=r"TextVectorization .* expects strings"):
        layer(np.array([1, 2]))
    with pytest.raises(ValueError, match=r"rank 1 or a last axis of size 1"):
        layer(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match=r"output_sequence_length"):
        lm.layers.TextVectorization(output_mode="count", output_sequence_length=3)
    with pytest.raises(ValueError, match=r"`split`"):
        lm.layers.TextVectorization(split="comma")


def test_text_vectorization_maps_over_a_tf_data_pipeline():
    """``dataset.map(layer)`` (the Keras guides' way) runs the host computation through
    tf.numpy_function; the batches equal eager calls and carry a static shape and dtype."""
    import tensorflow as tf

    layer = lm.layers.TextVectorization(output_sequence_length=5)
    layer.adapt(tf.data.Dataset.from_tensor_slices(TEXTS).batch(2))
    dataset = tf.data.Dataset.from_tensor_slices((TEXTS, np.arange(4))).batch(3).map(lambda x, y: (layer(x), y))
    assert dataset.element_spec[0] == tf.TensorSpec((None, 5), tf.int64)
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in dataset]), layer(TEXTS))


def test_only_ascii_whitespace_splits_and_only_ascii_letters_lower_as_in_keras(keras):
    texts = np.array(["a\x1cb C\u00a0D\tÉe", "Ünï  \x1f x"])
    mine, theirs = lm.layers.TextVectorization(), keras.layers.TextVectorization()
    mine.adapt(texts)
    theirs.adapt(texts)
    assert mine.get_vocabulary() == [str(t) for t in theirs.get_vocabulary()]
    _same(mine(texts), theirs(texts))
