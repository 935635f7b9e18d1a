"""Categorical preprocessing layers against Keras 3: CategoryEncoding, Discretization and
IntegerLookup through the layer checker (they run inside compiled code); StringLookup, Hashing
and HashedCrossing (host-side, NumPy) compared with Keras's outputs directly; adapt, configs,
saving, errors and the traced-call refusal."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer

import lamina as lm

INTS = np.array([[12, 1138, 42, 7], [42, 1000, 36, 12]])
VOCAB = [12, 36, 1138, 42]
WORDS = np.array([["a", "c", "d"], ["d", "z", ""]])
LETTERS = ["a", "b", "c", "d"]


def _same(mine, theirs):
    mine, theirs = np.asarray(mine), np.asarray(theirs)
    assert mine.shape == theirs.shape, (mine.shape, theirs.shape)
    if theirs.dtype.kind in "SOU":
        theirs = np.char.decode(theirs.astype(bytes), "utf-8") if theirs.dtype.kind != "U" else theirs
        np.testing.assert_array_equal(mine, theirs)
    else:
        np.testing.assert_allclose(mine, theirs, rtol=1e-6)


# --- through the layer checker (each runs eagerly, under lm.jit, saved and loaded) ----------

ENCODINGS = [
    ("multi_hot", np.array([[0, 1, 1], [3, 0, 2]])),
    ("one_hot", np.array([[3], [0], [2]])),
]


@pytest.mark.parametrize("mode, ids", ENCODINGS, ids=[m for m, _ in ENCODINGS])
def test_category_encoding_passes_the_checker(keras, mode, ids):
    check_layer(lambda: lm.layers.CategoryEncoding(4, output_mode=mode),
                lambda k: k.layers.CategoryEncoding(4, output_mode=mode), inputs=ids, keras=keras)


@pytest.mark.parametrize("mode", ["int", "multi_hot"])
def test_discretization_passes_the_checker(keras, mode):
    bounds = [-0.5, 0.0, 0.7]
    check_layer(lambda: lm.layers.Discretization(bin_boundaries=bounds, output_mode=mode),
                lambda k: k.layers.Discretization(bin_boundaries=bounds, output_mode=mode),
                input_shape=(3, 5), keras=keras)


LOOKUPS = [
    {"mask_token": 0, "num_oov_indices": 2},
    {"output_mode": "tf_idf", "idf_weights": [0.5, 0.25, 0.2, 0.1]},
    {"invert": True},
]


@pytest.mark.parametrize("config", LOOKUPS, ids=[",".join(c) or "default" for c in LOOKUPS])
def test_integer_lookup_passes_the_checker(keras, config):
    config = {"vocabulary": VOCAB, **config}
    inputs = np.array([[1, 0, 4, 7], [2, 3, 1, 9]]) if config.get("invert") else INTS
    check_layer(lambda: lm.layers.IntegerLookup(**config), lambda k: k.layers.IntegerLookup(**config),
                inputs=inputs, keras=keras)


# The other configurations, eagerly against Keras (the checker's compiled paths are the same code).
EAGER_CASES = [
    (lambda k: k.layers.CategoryEncoding(4, output_mode="count"), np.array([[0, 1, 1, 1], [3, 3, 2, 0]])),
    (lambda k: k.layers.CategoryEncoding(3, output_mode="one_hot"), np.array([2, 0, 1])),
    (lambda k: k.layers.Discretization(bin_boundaries=[-0.5, 0.0, 0.7], output_mode="one_hot"),
     np.array([[-1.0, 0.0, 0.69, 0.7], [0.2, -0.5, 9.0, -0.6]], "float32")),
    (lambda k: k.layers.Discretization(bin_boundaries=[0.0, 0.7], output_mode="count"),
     np.array([[-1.0, 0.0, 0.69, 0.7], [0.2, -0.5, 9.0, -0.6]], "float32")),
    (lambda k: k.layers.IntegerLookup(vocabulary=VOCAB), INTS),
    (lambda k: k.layers.IntegerLookup(vocabulary=VOCAB + [7, 1000], num_oov_indices=0), INTS),
    (lambda k: k.layers.IntegerLookup(vocabulary=VOCAB, output_mode="multi_hot", mask_token=1000), INTS),
    (lambda k: k.layers.IntegerLookup(vocabulary=VOCAB, output_mode="count", pad_to_max_tokens=True, max_tokens=8),
     INTS),
    (lambda k: k.layers.IntegerLookup(vocabulary=VOCAB, output_mode="one_hot"), INTS[:, :1]),
    (lambda k: k.layers.IntegerLookup(vocabulary=VOCAB, num_oov_indices=3, oov_method="farmhash", salt=3), INTS),
]


@pytest.mark.parametrize("make, inputs", EAGER_CASES, ids=[str(i) for i in range(len(EAGER_CASES))])
def test_other_integer_configurations_match_keras(keras, make, inputs):
    theirs = make(keras)
    mine = lm.layers.deserialize({"class_name": type(theirs).__name__, "config": theirs.get_config()})
    _same(mine(inputs), theirs(inputs))
    assert mine.compute_output_shape((None, *inputs.shape[1:]))[1:] == np.shape(mine(inputs))[1:]


def test_the_integer_layers_compile_into_a_model_that_fits():
    """Vocabulary and boundaries are constants of the traced step: fit, predict and a
    Functional build all work (what a string layer cannot do)."""
    ids = lm.Input((4,), dtype="int32")
    values = lm.Input((2,))
    looked_up = lm.layers.IntegerLookup(vocabulary=VOCAB, output_mode="multi_hot")(ids)
    buckets = lm.layers.CategoryEncoding(4)(lm.layers.Discretization(bin_boundaries=[0.0, 1.0, 2.0])(values))
    outputs = lm.layers.Dense(1)(lm.layers.Concatenate()([looked_up, buckets]))
    model = lm.Model([ids, values], outputs)
    assert model.output_shape == (None, 1)
    model.compile(optimizer="sgd", loss="mse")
    x = [INTS.astype("int32"), np.array([[-1.0, 0.5], [1.5, 3.0]], "float32")]
    model.fit(x, np.ones((2, 1), "float32"), epochs=1, verbose=0)
    assert np.all(np.isfinite(np.asarray(model.predict(x, verbose=0))))


# --- host-side layers, compared with Keras directly -------------------------------------------

STRING_LOOKUPS = [
    {},
    {"mask_token": ""},
    {"num_oov_indices": 3},
    {"num_oov_indices": 3, "salt": 7},
    {"output_mode": "one_hot"},
    {"output_mode": "multi_hot"},
    {"output_mode": "count"},
    {"output_mode": "tf_idf", "idf_weights": [0.1, 0.2, 0.3, 0.4]},
]


@pytest.mark.parametrize("config", STRING_LOOKUPS, ids=[",".join(c) or "default" for c in STRING_LOOKUPS])
def test_string_lookup_matches_keras(keras, config):
    inputs = WORDS[:, :1] if config.get("output_mode") == "one_hot" else WORDS
    mine = lm.layers.StringLookup(vocabulary=LETTERS, **config)
    _same(mine(inputs), keras.layers.StringLookup(vocabulary=LETTERS, **config)(inputs))
    assert mine.compute_output_shape((None, *inputs.shape[1:]))[1:] == np.shape(mine(inputs))[1:]


def test_string_lookup_inverts_indices_as_keras_does(keras):
    import tensorflow as tf

    indices = np.array([[2, 0, 1], [4, 9, 3]])
    for config in ({}, {"mask_token": "[MASK]"}):
        mine = lm.layers.StringLookup(vocabulary=LETTERS, invert=True, **config)(indices)
        _same(mine, keras.layers.StringLookup(vocabulary=LETTERS, invert=True, **config)(tf.constant(indices)).numpy())
    # Inputs from TensorFlow (bytes) and Python lists are taken too.
    lookup = lm.layers.StringLookup(vocabulary=LETTERS)
    assert lookup(tf.constant([b"c", b"q"])).tolist() == lookup(["c", "q"]).tolist() == [3, 0]


HASHINGS = [
    ({"num_bins": 5}, np.array([["A"], ["B"], ["bonjour"], ["日本"], [""]])),
    ({"num_bins": 5, "salt": [133, 137]}, np.array([["A"], ["B"], ["C"], ["D"]])),
    ({"num_bins": 5, "mask_value": ""}, np.array([["A"], [""], ["C"]])),
    ({"num_bins": 7}, np.array([[1, -2, 3], [400000, 5, 0]])),
    ({"num_bins": 7, "mask_value": 0}, np.array([[1.7, 0.0], [-3.2, 9.9]], "float32")),
    ({"num_bins": 4, "output_mode": "one_hot"}, np.array([["A"], ["B"], ["C"]])),
    ({"num_bins": 4, "output_mode": "multi_hot"}, np.array([["A", "B"], ["C", "C"]])),
    ({"num_bins": 4, "output_mode": "count"}, np.array([["A", "B", "A"], ["C", "C", "D"]])),
]


@pytest.mark.parametrize("config, inputs", HASHINGS, ids=[str(i) for i in range(len(HASHINGS))])
def test_hashing_gives_keras_bins(keras, config, inputs):
    mine = lm.layers.Hashing(**config)
    _same(mine(inputs), keras.layers.Hashing(**config)(inputs))
    assert mine.compute_output_shape(inputs.shape) == np.shape(mine(inputs))


def test_hashing_long_strings_and_many_bins_match_keras(keras):
    """Every length branch of FarmHash (0-16, 17-32, 33-64, 65+ bytes) and SipHash's tail."""
    rng = np.random.default_rng(0)
    text = np.array([["".join(rng.choice(list("abcdefgh"), size=n))] for n in (0, 1, 3, 4, 7, 8, 15, 16, 17, 20, 32, 33, 40, 63, 64, 65, 130, 300)])
    for config in ({"num_bins": 2**31 - 1}, {"num_bins": 2**31 - 1, "salt": 99}):
        _same(lm.layers.Hashing(**config)(text), keras.layers.Hashing(**config)(text))


CROSSES = [
    ({"num_bins": 5}, [np.array([1, 2, 3]), np.array(["A", "B", "C"])]),
    ({"num_bins": 10}, [np.array([[1], [-2]]), np.array([[7], [8]]), np.array([["x"], ["y"]])]),
    ({"num_bins": 4, "output_mode": "one_hot"}, [np.array([[1], [2], [3]]), np.array([["A"], ["B"], ["C"]])]),
]


@pytest.mark.parametrize("config, inputs", CROSSES, ids=["int_and_string", "three_columns", "one_hot"])
def test_hashed_crossing_gives_keras_bins(keras, config, inputs):
    import tensorflow as tf

    mine = lm.layers.HashedCrossing(**config)
    theirs = keras.layers.HashedCrossing(**config)([tf.constant(x if x.dtype.kind != "i" else x.astype("int64"))
                                                    for x in inputs])
    _same(mine(inputs), theirs)
    assert mine.compute_output_shape([x.shape for x in inputs]) == np.shape(mine(inputs))


# --- adapt -------------------------------------------------------------------------------------

def _batches(array, size):
    return (array[i:i + size] for i in range(0, len(array), size))


def test_lookup_adapt_matches_keras(keras):
    import tensorflow as tf

    rng = np.random.default_rng(3)
    ints = rng.integers(0, 12, size=(30, 4))
    words = np.array(list("abcdefghij"))[rng.integers(0, 10, size=(30, 4))]
    for mine_cls, theirs_cls, data in ((lm.layers.IntegerLookup, keras.layers.IntegerLookup, ints),
                                       (lm.layers.StringLookup, keras.layers.StringLookup, words)):
        for config in ({}, {"max_tokens": 5, "mask_token": data[0, 0]}):
            mine, theirs = mine_cls(**config), theirs_cls(**config)
            mine.adapt(data)
            theirs.adapt(data)
            assert mine.get_vocabulary() == [v.item() if hasattr(v, "item") else v for v in theirs.get_vocabulary()]
            assert mine.vocabulary_size() == theirs.vocabulary_size()
            _same(mine(data[:5]), theirs(data[:5]))
        # Batches from a generator and from tf.data, (x, y) pairs included, learn the same vocabulary.
        mine, theirs = mine_cls(output_mode="tf_idf"), theirs_cls(output_mode="tf_idf")
        mine.adapt((x, None) for x in _batches(data, 8))
        theirs.adapt(tf.data.Dataset.from_tensor_slices(data).batch(8))
        assert mine.get_vocabulary() == [v.item() if hasattr(v, "item") else v for v in theirs.get_vocabulary()]
        _same(mine(data[:3]), theirs(data[:3]))
        again = mine_cls(output_mode="tf_idf")
        again.adapt(tf.data.Dataset.from_tensor_slices(data).batch(8))
        _same(again(data[:3]), mine(data[:3]))


def test_discretization_adapt_matches_keras(keras):
    data = np.random.default_rng(1).normal(size=(500, 3)).astype("float32")
    for epsilon, steps in ((0.01, None), (0.1, None), (0.01, 3)):
        mine = lm.layers.Discretization(num_bins=5, epsilon=epsilon)
        theirs = keras.layers.Discretization(num_bins=5, epsilon=epsilon)
        source = (lambda: _batches(data, 64)) if steps else (lambda: data)
        mine.adapt(source(), steps=steps)
        theirs.adapt(source(), steps=steps)
        np.testing.assert_allclose(mine.bin_boundaries, theirs.bin_boundaries, rtol=1e-6)
        _same(mine(data[:4]), theirs(data[:4]))


# --- configs, saving and errors ---------------------------------------------------------------

CONFIGURED = {
    "CategoryEncoding": {"num_tokens": 3},
    "Discretization": {"bin_boundaries": [0.0, 1.0]},
    "IntegerLookup": {"vocabulary": VOCAB, "mask_token": 0},
    "StringLookup": {"vocabulary": LETTERS, "num_oov_indices": 2},
    "Hashing": {"num_bins": 3, "salt": 5},
    "HashedCrossing": {"num_bins": 3, "output_mode": "one_hot"},
}


@pytest.mark.parametrize("name", sorted(CONFIGURED))
def test_configs_have_keras_keys_and_values_and_round_trip(keras, name):
    mine = getattr(lm.layers, name)(**CONFIGURED[name])
    theirs = getattr(keras.layers, name)(**CONFIGURED[name]).get_config()
    config = mine.get_config()
    # Keras's CategoryEncoding leaves `sparse` out of its config (so it is lost on reload).
    assert set(config) - {"sparse"} == set(theirs) - {"sparse"}
    for key, value in theirs.items():
        if key not in ("name", "dtype", "trainable"):
            assert config[key] == value, key
    copy = lm.saving.deserialize(json.loads(json.dumps(lm.saving.serialize(mine))))
    assert type(copy) is type(mine) and copy.get_config() == config


def test_adapted_discretization_keeps_its_boundaries_in_the_config():
    layer = lm.layers.Discretization(num_bins=3)
    layer.adapt(np.arange(30.0))
    copy = lm.layers.deserialize(json.loads(json.dumps(lm.layers.serialize(layer))))
    assert copy.bin_boundaries == layer.bin_boundaries and copy.num_bins == 3
    np.testing.assert_array_equal(copy(np.arange(30.0)), layer(np.arange(30.0)))


def test_an_adapted_lookup_in_a_saved_model_keeps_its_vocabulary(tmp_path):
    lookup = lm.layers.IntegerLookup(output_mode="tf_idf")
    lookup.adapt(INTS)
    inputs = lm.Input((4,), dtype="int32")
    model = lm.Model(inputs, lm.layers.Dense(2)(lookup(inputs)))
    expected = np.asarray(model.predict(INTS, verbose=0))
    model.save(tmp_path / "m.lamina")
    loaded = lm.saving.load_model(tmp_path / "m.lamina")
    (reloaded,) = [layer for layer in loaded.layers if isinstance(layer, lm.layers.IntegerLookup)]
    assert reloaded.get_vocabulary() == lookup.get_vocabulary()
    np.testing.assert_allclose(np.asarray(loaded.predict(INTS, verbose=0)), expected, rtol=1e-6)


def test_lookup_models_saved_as_keras_files_load_in_keras(keras, tmp_path):
    """A given vocabulary is in the config; an adapted one is written there too (lamina writes
    no assets into .keras files), which Keras reads as a given vocabulary."""
    adapted = lm.layers.IntegerLookup(output_mode="count", mask_token=7)
    adapted.adapt(INTS)
    inputs = lm.Input((4,), dtype="int32")
    counts = lm.layers.Concatenate()([adapted(inputs), lm.layers.IntegerLookup(vocabulary=VOCAB)(inputs)])
    model = lm.Model(inputs, lm.layers.Dense(2)(counts))
    model.save(tmp_path / "m.keras")
    theirs = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(theirs.predict(INTS, verbose=0)), np.asarray(model.predict(INTS, verbose=0)),
                               rtol=1e-5)
    assert lm.saving.load_model(tmp_path / "m.keras").layers[1].get_vocabulary() == adapted.get_vocabulary()
    idf_input = lm.Input((4,), dtype="int32")
    idf_model = lm.Model(idf_input, lm.layers.IntegerLookup(vocabulary=VOCAB, output_mode="tf_idf",
                                                            idf_weights=[1.0, 2.0, 3.0, 4.0])(idf_input))
    with pytest.raises(ValueError, match=r"tf_idf.*cannot be written to a \.keras file"):
        idf_model.save(tmp_path / "idf.keras")


def test_host_layers_refuse_traced_calls_and_say_where_to_apply_them():
    for layer, inputs in ((lm.layers.Hashing(3), jnp.arange(3)), (lm.layers.StringLookup(vocabulary=LETTERS, invert=True),
                                                                   jnp.arange(3))):
        with pytest.raises(TypeError, match=r"data pipeline"):
            lm.jit(lambda x, layer=layer: layer(x))(inputs)
        with pytest.raises(TypeError, match=type(layer).__name__):
            layer(lm.Input((3,), dtype="int32"))
        assert np.asarray(layer(np.arange(3))).shape == (3,)  # eager: fine


@pytest.mark.parametrize("make, inputs, message", [
    (lambda: lm.layers.CategoryEncoding(3), np.array([[0, 3]]), r"CategoryEncoding .*\[0, num_tokens=3\).*0 to 3"),
    (lambda: lm.layers.IntegerLookup(vocabulary=VOCAB, num_oov_indices=0), INTS, r"out-of-vocabulary values \[7, 1000\]"),
    (lambda: lm.layers.StringLookup(vocabulary=LETTERS), np.array([1, 2]), r"StringLookup .*expects strings.*IntegerLookup"),
    (lambda: lm.layers.Discretization(num_bins=3), np.zeros(2), r"adapt"),
    (lambda: lm.layers.IntegerLookup(output_mode="multi_hot"), INTS, r"vocabulary must be set"),
    (lambda: lm.layers.HashedCrossing(3), [np.array([1, 2]), np.array([1, 2, 3])], r"same shape"),
])
def test_bad_input_raises_naming_the_layer(make, inputs, message):
    with pytest.raises((ValueError, TypeError, RuntimeError), match=message):
        make()(inputs)


@pytest.mark.parametrize("make, message", [
    (lambda: lm.layers.CategoryEncoding(), r"num_tokens"),
    (lambda: lm.layers.Discretization(bin_boundaries=[0.0], num_bins=2), r"not both"),
    (lambda: lm.layers.IntegerLookup(invert=True, output_mode="count"), r"invert=True"),
    (lambda: lm.layers.StringLookup(vocabulary=["a", "a"]), r"repeats \['a'\]"),
    (lambda: lm.layers.StringLookup(vocabulary=["a", "[M]"], mask_token="[M]"), r"mask token"),
    (lambda: lm.layers.IntegerLookup(vocabulary=VOCAB, max_tokens=3), r"exceeds max_tokens=3"),
    (lambda: lm.layers.IntegerLookup(vocabulary=[1, 2**40]), r"outside int32"),
    (lambda: lm.layers.Hashing(0), r"num_bins"),
    (lambda: lm.layers.Hashing(3, output_mode="int", dtype="float32"), r"'int32' or 'int64'"),
])
def test_bad_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_lookup_vocabulary_with_special_tokens_and_from_a_file(tmp_path):
    with_specials = lm.layers.StringLookup(vocabulary=["", "[UNK]", "x", "y"], mask_token="")
    assert with_specials.get_vocabulary() == ["", "[UNK]", "x", "y"] and with_specials.vocabulary_size() == 4
    path = tmp_path / "vocab.txt"
    path.write_text("x\ny\n")
    from_file = lm.layers.StringLookup(vocabulary=path)  # a str or a pathlib.Path
    assert from_file.get_vocabulary(include_special_tokens=False) == ["x", "y"]
    assert from_file(np.array(["y", "q"])).tolist() == [2, 0]
    assert from_file.get_config()["vocabulary"] is None  # the file's tokens travel as assets


def test_count_weights_weigh_each_occurrence():
    layer = lm.layers.CategoryEncoding(4, output_mode="count")
    weights = np.array([[0.1, 0.2], [0.1, 0.1], [0.2, 0.3], [0.4, 0.2]], "float32")
    out = layer(np.array([[0, 1], [0, 0], [1, 2], [3, 1]]), count_weights=weights)
    np.testing.assert_allclose(out, [[0.1, 0.2, 0, 0], [0.2, 0, 0, 0], [0, 0.2, 0.3, 0], [0, 0.2, 0, 0.4]], rtol=1e-6)
    sparse = lm.layers.CategoryEncoding(4, sparse=True)(np.array([[0, 1], [3, 3]]))
    assert isinstance(sparse, jax.experimental.sparse.BCOO)
    np.testing.assert_array_equal(sparse.todense(), [[1, 1, 0, 0], [0, 0, 0, 1]])


def test_layers_map_over_a_tf_data_pipeline():
    import tensorflow as tf

    cases = [
        (lm.layers.IntegerLookup(vocabulary=VOCAB, output_mode="multi_hot"), INTS, tf.float32),
        (lm.layers.StringLookup(vocabulary=LETTERS), WORDS, tf.int64),
        (lm.layers.StringLookup(vocabulary=LETTERS, invert=True), np.array([[1, 0, 4]]), tf.string),
        (lm.layers.Hashing(5, salt=3), WORDS, tf.int64),
        (lm.layers.Discretization(bin_boundaries=[0.0, 1.0]), np.array([[-1.0, 0.5, 3.0]], "float32"), tf.int32),
    ]
    for layer, data, dtype in cases:
        dataset = tf.data.Dataset.from_tensor_slices(data).batch(2).map(layer)
        assert dataset.element_spec.dtype == dtype and dataset.element_spec.shape[1:] == np.shape(layer(data))[1:]
        mapped = np.concatenate([x.numpy() for x in dataset])
        expected = np.asarray(layer(data))
        if dtype == tf.string:
            mapped = np.char.decode(mapped.astype(bytes), "utf-8")
        np.testing.assert_array_equal(mapped, expected)
    cross = lm.layers.HashedCrossing(5)
    columns = (np.array([1, 2, 3]), np.array(["A", "B", "C"]))
    crossed = tf.data.Dataset.from_tensor_slices(columns).batch(3).map(lambda a, b: cross([a, b]))
    np.testing.assert_array_equal(next(iter(crossed)).numpy(), cross(list(columns)))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "bfloat16"])
def test_output_dtypes_follow_the_policy_as_keras_does(keras, policy):
    ids, values = np.array([[0, 1], [2, 2]]), np.array([[0.2, 0.7]], "float32")
    for make, inputs in ((lambda m: m.layers.CategoryEncoding(3, dtype=policy), ids),
                         (lambda m: m.layers.Discretization(bin_boundaries=[0.5], output_mode="one_hot", dtype=policy),
                          values)):
        assert make(lm)(inputs).dtype == make(keras)(inputs).dtype


def test_without_oov_indices_unknown_values_map_to_minus_one_inside_compiled_code():
    layer = lm.layers.IntegerLookup(vocabulary=VOCAB, num_oov_indices=0)
    assert np.asarray(lm.jit(lambda x: layer(x))(jnp.asarray(INTS))).tolist() == [[0, 2, 3, -1], [3, -1, 1, 0]]
