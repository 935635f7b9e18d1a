"""``lm.utils.FeatureSpace`` against Keras 3's FeatureSpace on the same data (adapted on the
same batches), and the core of the keras.io example "Structured data classification with
FeatureSpace" on a small synthetic frame."""

import numpy as np
import pytest

import lamina as lm

N = 96


def _frame(seed=0, n=N):
    rng = np.random.default_rng(seed)
    return {
        "age": rng.uniform(29, 77, n).astype("float32"),
        "sex": rng.integers(0, 2, n).astype("int32"),
        "cp": rng.integers(0, 4, n).astype("int32"),
        "chol": rng.normal(240, 50, n).astype("float32"),
        "thal": rng.choice(["normal", "fixed", "reversible"], n),
        "city": rng.choice(["paris", "lyon", "nice", "lille"], n),
        "zip": rng.integers(0, 1000, n).astype("int32"),
        "scaled": rng.normal(0, 1, n).astype("float32"),
        "raw": rng.normal(0, 1, n).astype("float32"),
    }


def _spec(fs, output_mode):
    return dict(
        features={
            "age": fs.float_discretized(num_bins=6),
            "sex": "integer_categorical",
            "cp": fs.integer_categorical(num_oov_indices=0),
            "chol": "float_normalized",
            "thal": "string_categorical",
            "city": fs.string_hashed(num_bins=8),
            "zip": fs.integer_hashed(num_bins=16),
            "scaled": fs.float_rescaled(scale=2.0, offset=1.0),
            "raw": "float",
        },
        crosses=[("sex", "age"), fs.cross(("thal", "cp"), crossing_dim=16)],
        crossing_dim=32,
        output_mode=output_mode,
    )


@pytest.fixture(scope="module")
def keras_reference():
    """Keras's encodings of the frame, per output mode (adapted with tf.data batches of 32)."""
    import keras
    import tensorflow as tf

    data = _frame()
    encoded = {}
    for mode in ("concat", "dict"):
        space = keras.utils.FeatureSpace(**_spec(keras.utils.FeatureSpace, mode))
        space.adapt(tf.data.Dataset.from_tensor_slices(data).batch(32))
        out = space(data)
        encoded[mode] = {k: np.asarray(v) for k, v in out.items()} if mode == "dict" else np.asarray(out)
    return data, encoded


@pytest.fixture(scope="module")
def adapted():
    space = lm.utils.FeatureSpace(**_spec(lm.utils.FeatureSpace, "concat"))
    space.adapt(_frame())
    return space


def test_concat_encoding_matches_keras(keras_reference, adapted):
    data, encoded = keras_reference
    ours = np.asarray(adapted(data))
    assert ours.shape == encoded["concat"].shape == (N, 1 + 1 + 8 + 4 + 6 + 1 + 3 + 4 + 16 + 32 + 16)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, encoded["concat"], rtol=1e-6, atol=1e-6)
    assert adapted.get_encoded_features().shape == (None, ours.shape[1])


def test_dict_encoding_matches_keras_per_feature_and_cross(keras_reference):
    data, encoded = keras_reference
    space = lm.utils.FeatureSpace(**_spec(lm.utils.FeatureSpace, "dict"))
    space.adapt(data)
    ours = space(data)
    assert sorted(ours) == sorted(encoded["dict"])
    for name, value in encoded["dict"].items():
        np.testing.assert_allclose(np.asarray(ours[name]), value, rtol=1e-6, atol=1e-6, err_msg=name)
    inputs = space.get_encoded_features()
    assert {name: t.shape for name, t in inputs.items()} == {name: (None, v.shape[1]) for name, v in ours.items()}


@pytest.mark.filterwarnings("ignore:Explicitly requested dtype int64")  # Keras's own, on JAX
def test_int_outputs_and_single_samples_match_keras():
    import keras
    import tensorflow as tf

    def spec(fs):
        return dict(features={"sex": fs.integer_categorical(output_mode="int"),
                              "thal": fs.string_categorical(output_mode="int"), "chol": "float_normalized"},
                    crosses=[fs.cross(("sex", "thal"), crossing_dim=8, output_mode="int")], output_mode="dict")

    data = {k: v for k, v in _frame(1, 40).items() if k in ("sex", "thal", "chol")}
    theirs = keras.utils.FeatureSpace(**spec(keras.utils.FeatureSpace))
    theirs.adapt(tf.data.Dataset.from_tensor_slices(data))  # unbatched: both read it 32 at a time
    ours = lm.utils.FeatureSpace(**spec(lm.utils.FeatureSpace))
    ours.adapt(tf.data.Dataset.from_tensor_slices(data))
    sample = {"sex": 1, "thal": "fixed", "chol": 250.0}
    for batch in (data, sample):
        expected, got = theirs(batch), ours(batch)
        for name in expected:
            assert np.asarray(got[name]).shape == np.asarray(expected[name]).shape
            np.testing.assert_allclose(np.asarray(got[name]), np.asarray(expected[name]), rtol=1e-6, err_msg=name)
    with pytest.raises(ValueError, match="Cannot concatenate features because feature 'sex' has not been encoded"):
        lm.utils.FeatureSpace({"sex": lm.utils.FeatureSpace.integer_categorical(output_mode="int")},
                              output_mode="concat").adapt(data)


def test_adapt_sources_agree_and_one_sample_gives_a_vector(adapted):
    import pandas as pd

    data = _frame()
    expected = np.asarray(adapted(data))
    from_frame = lm.utils.FeatureSpace(**_spec(lm.utils.FeatureSpace, "concat"))
    from_frame.adapt(pd.DataFrame(data))
    np.testing.assert_allclose(np.asarray(from_frame(pd.DataFrame(data).to_dict("series"))), expected, atol=1e-6)
    from_batches = lm.utils.FeatureSpace(**_spec(lm.utils.FeatureSpace, "concat"))
    from_batches.adapt({k: v[i:i + 32] for k, v in data.items()} for i in range(0, N, 32))
    np.testing.assert_allclose(np.asarray(from_batches(data)), expected, atol=1e-6)
    again = lm.utils.FeatureSpace({"thal": "string_categorical"})
    again.adapt({"thal": ["a", "b"]})
    again.adapt({"thal": ["a", "b", "c", "d"]})  # a second adapt widens the one-hot encoding
    # [OOV, d, c, b, a]: equal counts, larger token first (Keras's order)
    np.testing.assert_array_equal(np.asarray(again({"thal": ["d"]})), [[0, 1, 0, 0, 0]])
    assert again.get_encoded_features().shape == (None, 5)
    one = adapted({k: v[3] for k, v in data.items()})
    assert one.shape == expected.shape[1:]
    np.testing.assert_allclose(np.asarray(one), expected[3], atol=1e-6)


def test_save_and_load_model_file(adapted, tmp_path):
    path = str(tmp_path / "space.lamina")
    adapted.save(path)
    loaded = lm.load_model(path)
    assert isinstance(loaded, lm.utils.FeatureSpace)
    data = _frame(5, 20)  # new data, with values unseen in adapt
    np.testing.assert_allclose(np.asarray(loaded(data)), np.asarray(adapted(data)), atol=1e-6)
    assert loaded.get_config()["crosses"] == adapted.get_config()["crosses"]
    with pytest.raises(ValueError, match="'.lamina'"):
        adapted.save(str(tmp_path / "space.keras"))


def test_custom_preprocessor_and_given_bin_boundaries():
    # Keras 3.15 fails on both (its symbolic concat of the TF-IDF output, and adapt() on a
    # Discretization given boundaries): lamina's results are checked against the layer and NumPy.
    fs = lm.utils.FeatureSpace
    data = {"text": np.array(["1st string", "2nd string", "3rd string", "1st 1st"]),
            "x": np.array([0.5, 1.0, 2.5, 3.5], "float32")}
    vectorizer = lm.layers.TextVectorization(output_mode="tf_idf")
    space = fs({"text": fs.feature(preprocessor=vectorizer, dtype="string", output_mode="float"),
                "x": fs.float_discretized(num_bins=3, bin_boundaries=[1.0, 2.0])})
    space.adapt(data)
    encoded = np.asarray(space(data))
    width = vectorizer.vocabulary_size()
    assert encoded.shape == (4, width + 3) and space.get_encoded_features().shape == (None, width + 3)
    np.testing.assert_allclose(encoded[:, :width], np.asarray(vectorizer(data["text"][:, None])), rtol=1e-6)
    np.testing.assert_array_equal(encoded[:, width:], np.eye(3)[np.digitize(data["x"], [1.0, 2.0])])


def test_errors_as_keras():
    fs = lm.utils.FeatureSpace
    with pytest.raises(ValueError, match="The `features` argument cannot be None or empty."):
        fs({})
    with pytest.raises(ValueError, match="Invalid feature type: floaty"):
        fs({"a": "floaty"})
    with pytest.raises(ValueError, match="Received unknown features"):
        fs({"a": "float"}, crosses=[("a", "b")])
    with pytest.raises(ValueError, match="Expected one of {'dict', 'concat'}"):
        fs({"a": "float"}, output_mode="list")
    space = fs({"a": "float_normalized", "s": "string_categorical"})
    with pytest.raises(ValueError, match="You need to call `.adapt\\(dataset\\)` on the FeatureSpace"):
        space({"a": [1.0], "s": ["x"]})
    space.adapt({"a": [1.0, 3.0], "s": ["x", "y"]})
    with pytest.raises(ValueError, match="A FeatureSpace can only be called with a dict"):
        space([1.0])
    with pytest.raises(ValueError, match="has no feature\\(s\\) \\['s'\\]"):
        space({"a": [1.0]})
    with pytest.raises(TypeError, match="features \\['s'\\] are strings"):
        space.get_inputs()
    numeric = fs({"a": "float", "b": "integer_hashed"})
    assert {k: (v.shape, str(v.dtype)) for k, v in numeric.get_inputs().items()} == {
        "a": ((None, 1), "float32"), "b": ((None, 1), "int32")}


def test_keras_io_structured_data_example_core():
    """The keras.io example's steps on a synthetic heart-disease frame: customised features,
    adapt on a tf.data dataset without labels, preprocessing in dataset.map, a training model
    on the encoded features, inference on one raw sample."""
    import pandas as pd
    import tensorflow as tf

    rng = np.random.default_rng(3)
    n = 64
    dataframe = pd.DataFrame({
        "age": rng.integers(29, 77, n), "sex": rng.integers(0, 2, n), "cp": rng.integers(0, 4, n),
        "trestbps": rng.integers(94, 200, n), "chol": rng.integers(126, 564, n), "fbs": rng.integers(0, 2, n),
        "restecg": rng.integers(0, 3, n), "thalach": rng.integers(71, 202, n), "exang": rng.integers(0, 2, n),
        "oldpeak": rng.uniform(0, 6.2, n).round(1), "slope": rng.integers(1, 4, n), "ca": rng.integers(0, 4, n),
        "thal": rng.choice(["fixed", "normal", "reversible"], n), "target": rng.integers(0, 2, n)})
    val_dataframe = dataframe.sample(frac=0.25, random_state=1337)
    train_dataframe = dataframe.drop(val_dataframe.index)

    def dataframe_to_dataset(frame):
        frame = frame.copy()
        labels = frame.pop("target")
        return tf.data.Dataset.from_tensor_slices((dict(frame), labels)).shuffle(buffer_size=len(frame))

    train_ds = dataframe_to_dataset(train_dataframe).batch(16)
    val_ds = dataframe_to_dataset(val_dataframe).batch(16)
    fs = lm.utils.FeatureSpace
    categorical = {name: fs.integer_categorical(num_oov_indices=0)
                   for name in ("sex", "cp", "fbs", "restecg", "exang", "ca")}
    feature_space = fs(
        features={**categorical, "thal": fs.string_categorical(num_oov_indices=0),
                  "age": fs.float_discretized(num_bins=30),
                  **{name: fs.float_normalized() for name in ("trestbps", "chol", "thalach", "oldpeak", "slope")}},
        crosses=[fs.cross(feature_names=("sex", "age"), crossing_dim=64),
                 fs.cross(feature_names=("thal", "ca"), crossing_dim=16)],
        output_mode="concat")
    feature_space.adapt(train_ds.map(lambda x, _: x))
    for x, _ in train_ds.take(1):
        preprocessed_x = feature_space(x)
    width = 2 + 4 + 2 + 3 + 2 + 4 + 3 + 30 + 5 + 64 + 16
    assert preprocessed_x.shape == (16, width) and preprocessed_x.dtype == np.float32

    preprocessed_train_ds = train_ds.map(lambda x, y: (feature_space(x), y)).prefetch(tf.data.AUTOTUNE)
    preprocessed_val_ds = val_ds.map(lambda x, y: (feature_space(x), y)).prefetch(tf.data.AUTOTUNE)
    encoded_features = feature_space.get_encoded_features()
    x = lm.layers.Dense(8, activation="relu")(encoded_features)
    x = lm.layers.Dropout(0.5)(x)
    predictions = lm.layers.Dense(1, activation="sigmoid")(x)
    training_model = lm.Model(inputs=encoded_features, outputs=predictions)
    training_model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = training_model.fit(preprocessed_train_ds, epochs=2, validation_data=preprocessed_val_ds, verbose=0)
    assert len(history.history["val_accuracy"]) == 2 and np.isfinite(history.history["loss"]).all()

    sample = {"age": 60, "sex": 1, "cp": 1, "trestbps": 145, "chol": 233, "fbs": 1, "restecg": 2, "thalach": 150,
              "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0, "thal": "fixed"}
    input_dict = {name: tf.convert_to_tensor([value]) for name, value in sample.items()}
    probability = training_model.predict(feature_space(input_dict), verbose=0)
    assert probability.shape == (1, 1) and 0.0 <= probability[0, 0] <= 1.0
