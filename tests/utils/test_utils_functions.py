"""lm.utils functions the Keras guides use, against keras.utils: to_categorical, pad_sequences,
set_random_seed, unpack_x_y_sample_weight / pack_x_y_sample_weight."""

import random

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm


@pytest.mark.parametrize("labels, num_classes", [
    ([0, 2, 1, 2], None), ([0, 2, 1, 2], 5), ([[1], [0], [3]], None), (np.array([[0, 1], [2, 0]]), 4),
    (np.array([3], dtype="int8"), None), ([[0], [1]], 2),
])
def test_to_categorical_matches_keras(keras, labels, num_classes):
    ours = lm.utils.to_categorical(labels, num_classes)
    theirs = keras.utils.to_categorical(labels, num_classes)
    assert isinstance(ours, np.ndarray) and ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


def test_to_categorical_of_a_jax_array_is_one_hot_on_the_device(keras):
    labels = jnp.array([[2], [0], [1]])
    ours = lm.utils.to_categorical(labels, 3)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(keras.utils.to_categorical(labels, 3)))
    assert ours.shape == (3, 3) and ours.dtype == jnp.float32
    assert lm.utils.to_categorical(jnp.array([0, 3])).shape == (2, 4)


@pytest.mark.parametrize("labels, num_classes, message", [
    ([0, 3], 3, r"in \[0, 3\).*from 0 to 3"), ([-1, 0], None, "from -1 to 0"), ([0.5, 1.0], None, "fractional"),
    ([0, 1], 0, "positive integer"), (jnp.array([0.0, 1.0]), 2, "integer class indices"),
])
def test_to_categorical_refuses_bad_labels(labels, num_classes, message):
    with pytest.raises(ValueError, match=message):
        lm.utils.to_categorical(labels, num_classes)


SEQUENCES = [[1, 2, 3, 4], [5, 6], [], [7]]


@pytest.mark.parametrize("kwargs", [
    {}, {"maxlen": 3}, {"maxlen": 3, "padding": "post"}, {"maxlen": 2, "truncating": "post"},
    {"maxlen": 6, "value": -1}, {"dtype": "float32", "value": 0.5, "padding": "post"}
])
def test_pad_sequences_matches_keras(keras, kwargs):
    ours = lm.utils.pad_sequences(SEQUENCES, **kwargs)
    theirs = keras.utils.pad_sequences(SEQUENCES, **kwargs)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


def test_pad_sequences_to_zero_steps_gives_empty_rows():
    # Keras fails here (``s[-0:]`` keeps the whole sequence); zero steps are an empty array.
    assert lm.utils.pad_sequences(SEQUENCES, maxlen=0).shape == (4, 0)


def test_pad_sequences_with_vector_steps_matches_keras(keras):
    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(n, 2)).astype("float32") for n in (3, 1, 4)]
    ours = lm.utils.pad_sequences(sequences, maxlen=3, dtype="float32", padding="post")
    np.testing.assert_array_equal(ours, keras.utils.pad_sequences(sequences, maxlen=3, dtype="float32", padding="post"))
    assert ours.shape == (3, 3, 2)


def test_pad_sequences_feeds_embedding_masking_as_in_the_masking_guide():
    padded = lm.utils.pad_sequences([[711, 632, 71], [73, 8, 3215, 55, 927]], padding="post")
    embedded = lm.layers.Embedding(input_dim=5000, output_dim=4, mask_zero=True)
    mask = embedded.compute_mask(padded)
    np.testing.assert_array_equal(np.asarray(mask), [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])


@pytest.mark.parametrize("kwargs, message", [
    ({"padding": "middle"}, "`padding` must be 'pre' or 'post'; got padding='middle'"),
    ({"truncating": "both"}, "`truncating` must be"), ({"maxlen": -1}, "`maxlen` must be"),
    ({"value": "x"}, "string `value`"),
])
def test_pad_sequences_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lm.utils.pad_sequences(SEQUENCES, **kwargs)


def test_pad_sequences_refuses_ragged_steps_and_non_sequences():
    with pytest.raises(ValueError, match=r"sequence 1 have shape \(3,\).*\(2,\)"):
        lm.utils.pad_sequences([np.ones((2, 2)), np.ones((2, 3))], dtype="float32")
    with pytest.raises(ValueError, match="sequence 1 is not a sequence: 5"):
        lm.utils.pad_sequences([[1], 5])


def test_set_random_seed_repeats_python_numpy_and_lamina_draws():
    def draws():
        layer = lm.layers.Dense(3)
        layer(np.ones((1, 2)))
        return random.random(), np.random.rand(), np.asarray(layer.kernel), np.asarray(lm.random.normal((2,)))

    lm.utils.set_random_seed(123)
    first = draws()
    lm.utils.set_random_seed(123)
    second = draws()
    lm.utils.set_random_seed(124)
    third = draws()
    for a, b, c in zip(first, second, third):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_set_random_seed_refuses_non_integers():
    with pytest.raises(ValueError, match=r"`seed` must be an integer; got seed=1.5 \(of type float\)"):
        lm.utils.set_random_seed(1.5)


@pytest.mark.parametrize("data", [
    "x", ("x",), ["x", "y"], ("x", "y", "w"), (("a", "b"),), {"x": 1},
])
def test_unpack_x_y_sample_weight_matches_keras(keras, data):
    assert lm.utils.unpack_x_y_sample_weight(data) == keras.utils.unpack_x_y_sample_weight(data)


def test_unpack_refuses_four_items_like_keras(keras):
    with pytest.raises(ValueError):
        keras.utils.unpack_x_y_sample_weight((1, 2, 3, 4))
    with pytest.raises(ValueError, match="length 4"):
        lm.utils.unpack_x_y_sample_weight((1, 2, 3, 4))


@pytest.mark.parametrize("args", [("x",), (("a", "b"),), ("x", "y"), ("x", "y", "w"), (["a"],)])
def test_pack_x_y_sample_weight_matches_keras(keras, args):
    assert lm.utils.pack_x_y_sample_weight(*args) == keras.utils.pack_x_y_sample_weight(*args)
    assert lm.utils.unpack_x_y_sample_weight(lm.utils.pack_x_y_sample_weight(*args))[:len(args)] == (
        tuple(args) if not isinstance(args[0], list) else (args[0],))


def test_utils_has_keras_registry_helpers(keras):
    names = ["CustomObjectScope", "custom_object_scope", "deserialize_keras_object", "get_custom_objects",
             "get_registered_name", "get_registered_object", "register_keras_serializable", "serialize_keras_object"]
    for name in names:
        assert hasattr(keras.utils, name)
        assert getattr(lm.utils, name) is getattr(lm.saving, name)


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("axis", [-1, 0])
def test_normalize_matches_keras_for_numpy_and_jax_arrays(keras, order, axis):
    x = np.random.default_rng(0).normal(size=(3, 4))
    x[1] = 0.0
    ours = lm.utils.normalize(x, axis, order)
    assert isinstance(ours, np.ndarray)
    norm = np.linalg.norm(x, order, axis, keepdims=True)
    np.testing.assert_allclose(ours, x / np.where(norm == 0, 1, norm), rtol=1e-12)
    if axis == -1:  # Keras's NumPy path fails for axis=0 (it reads `axis or -1`)
        np.testing.assert_allclose(ours, keras.utils.normalize(x, axis, order), rtol=1e-12)
    x32 = jnp.asarray(x, jnp.float32)
    np.testing.assert_allclose(np.asarray(lm.utils.normalize(x32, axis, order)),
                               np.asarray(keras.utils.normalize(x32, axis, order)), rtol=1e-5, atol=1e-7)


def test_normalize_refuses_a_bad_order():
    with pytest.raises(ValueError, match="`order` must be an integer >= 1; got order=0"):
        lm.utils.normalize(np.ones(3), order=0)


def test_utils_all_lists_every_public_function():
    public = {name for name in dir(lm.utils) if not name.startswith("_") and callable(getattr(lm.utils, name))}
    assert public <= set(lm.utils.__all__), sorted(public - set(lm.utils.__all__))


def test_clear_session_restarts_layer_names_like_keras(keras):
    for module in (lm, keras):
        module.utils.clear_session()
        first = [module.layers.Dense(2).name, module.layers.Dense(2).name]
        module.utils.clear_session(free_memory=False)
        assert [module.layers.Dense(2).name] + first == ["dense", "dense", "dense_1"]
