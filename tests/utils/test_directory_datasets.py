"""``lm.utils.image_dataset_from_directory`` / ``text_dataset_from_directory`` against Keras 3
(tf.data) on the same folder of tiny files: class names, file order, labels, pixel values
after resizing, splits; then ``fit`` from each."""

import os

import numpy as np
import pytest

import lamina as lm

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")
PIL = pytest.importorskip("PIL.Image")

SIZES = [(5, 7), (9, 4), (6, 6), (12, 10), (3, 8)]


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    count = 0
    for label, n in (("cats", 4), ("dogs", 3), ("owls", 2)):
        os.makedirs(root / label / "nested")
        for i in range(n):
            h, w = SIZES[count % len(SIZES)]
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            folder = root / label / ("nested" if i == 2 else "")
            if count % 4 == 3:  # an RGBA file among them
                PIL.fromarray(np.dstack([pixels, np.full((h, w), 200, np.uint8)]), "RGBA").save(folder / f"{i}.png")
            else:
                PIL.fromarray(pixels).save(folder / f"img{i}.PNG")
            count += 1
        (root / label / "notes.txt").write_text("not an image")
    return str(root)


@pytest.fixture(scope="module")
def text_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("texts")
    words = ["good", "bad", "fine", "awful", "great", "poor", "nice", "dull"]
    for label, offset in (("neg", 1), ("pos", 0)):
        os.makedirs(root / label)
        for i in range(6):
            text = " ".join(words[(i + j) % 8] for j in range(3 + i)) + " é"
            (root / label / f"{i}.txt").write_text(text if offset else text.upper(), encoding="utf-8")
    (root / "pos" / "skip.md").write_text("ignored")
    return str(root)


def _keras_batches(ds):
    return [tuple(np.asarray(t) for t in batch) if isinstance(batch, tuple) else np.asarray(batch) for batch in ds]


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(interpolation="nearest", label_mode="categorical", image_size=(4, 6)),
    dict(interpolation="bicubic", image_size=(11, 5), batch_size=4),
    dict(interpolation="area", crop_to_aspect_ratio=True, image_size=(3, 5)),
    dict(pad_to_aspect_ratio=True, image_size=(8, 4), color_mode="rgba"),
    dict(labels=None, image_size=(7, 7), data_format="channels_first"),
])
def test_images_labels_and_paths_equal_keras(image_root, kwargs):
    kwargs = dict(dict(image_size=(6, 8), batch_size=3, shuffle=False, verbose=False), **kwargs)
    ours = lm.utils.image_dataset_from_directory(image_root, **kwargs)
    theirs = keras.utils.image_dataset_from_directory(image_root, **kwargs)
    assert ours.file_paths == theirs.file_paths and ours.class_names == theirs.class_names
    keras_batches = _keras_batches(theirs)
    assert len(ours) == len(keras_batches) == 3
    for a, b in zip(ours, keras_batches):
        images, expected = (a, b) if kwargs.get("labels", "inferred") is None else (a[0], b[0])
        assert images.dtype == np.float32 and images.shape == expected.shape
        np.testing.assert_allclose(images, expected.astype("float32"), atol=1e-3)
        if images is not a:
            np.testing.assert_array_equal(a[1], b[1])
            assert a[1].dtype == b[1].dtype


def test_grayscale_and_binary_labels(image_root):
    kwargs = dict(class_names=["owls", "cats"], label_mode="binary", color_mode="grayscale",
                  image_size=(5, 5), shuffle=False, verbose=False)
    ours = lm.utils.image_dataset_from_directory(image_root, **kwargs)
    theirs = keras.utils.image_dataset_from_directory(image_root, **kwargs)
    assert ours.file_paths == theirs.file_paths and ours.class_names == ["owls", "cats"]
    (x, y), = list(ours)
    (kx, ky), = _keras_batches(theirs)
    np.testing.assert_array_equal(y, ky)
    assert y.shape == (6, 1) and y.dtype == np.float32
    # Pillow's and libpng's RGB -> gray conversions round differently: one level at most.
    assert x.shape == kx.shape == (6, 5, 5, 1)
    np.testing.assert_allclose(x, kx, atol=1.001)


def test_explicit_labels_follow_the_sorted_files(image_root):
    labels = [3, 1, 4, 1, 5, 9, 2, 6, 5]
    ours = lm.utils.image_dataset_from_directory(image_root, labels=labels, image_size=(4, 4), shuffle=False,
                                                 batch_size=9, verbose=False)
    theirs = keras.utils.image_dataset_from_directory(image_root, labels=labels, image_size=(4, 4),
                                                      shuffle=False, batch_size=9, verbose=False)
    assert ours.class_names == theirs.class_names == ["1", "2", "3", "4", "5", "6", "9"]
    np.testing.assert_array_equal(ours[0][1], _keras_batches(theirs)[0][1])


def test_seeded_shuffle_and_validation_split_match_keras(image_root, capsys):
    kwargs = dict(validation_split=0.35, seed=123, image_size=(4, 4), batch_size=2)
    train, val = lm.utils.image_dataset_from_directory(image_root, subset="both", **kwargs)
    out = capsys.readouterr().out
    assert "Found 9 files belonging to 3 classes." in out and "Using 6 files for training." in out
    assert "Using 3 files for validation." in out
    k_train, k_val = keras.utils.image_dataset_from_directory(image_root, subset="both", verbose=False, **kwargs)
    assert train.file_paths == k_train.file_paths and val.file_paths == k_val.file_paths
    assert not set(train.file_paths) & set(val.file_paths)
    assert len(set(train.file_paths) | set(val.file_paths)) == 9
    alone = lm.utils.image_dataset_from_directory(image_root, subset="validation", verbose=False, **kwargs)
    assert alone.file_paths == val.file_paths
    # Each label belongs to its file, whatever the order of the batches.
    labels_by_path = {p: train.class_names.index(p.split(os.sep)[-2 if "nested" not in p else -3])
                      for p in train.file_paths}
    assert [int(y) for _, ys in train for y in ys] == [labels_by_path[p] for p in train.file_paths]
    # Same seed, same order, pass after pass (train has made one pass already).
    again = lm.utils.image_dataset_from_directory(image_root, subset="training", verbose=False, **kwargs)
    list(again)
    for _ in range(2):
        np.testing.assert_array_equal(np.concatenate([x for x, _ in train]), np.concatenate([x for x, _ in again]))


def test_image_errors_name_the_argument(image_root):
    with pytest.raises(ValueError, match="exactly 2 class_names"):
        lm.utils.image_dataset_from_directory(image_root, label_mode="binary", verbose=False)
    with pytest.raises(ValueError, match="you must provide a `seed`"):
        lm.utils.image_dataset_from_directory(image_root, validation_split=0.2, subset="training")
    with pytest.raises(ValueError, match="`interpolation` should be one of"):
        lm.utils.image_dataset_from_directory(image_root, interpolation="cubic")
    with pytest.raises(ValueError, match="did not match the names of the subdirectories"):
        lm.utils.image_dataset_from_directory(image_root, class_names=["cats", "bats"])


def test_text_dataset_equals_keras(text_root):
    for kwargs in (dict(shuffle=False), dict(max_length=9, label_mode="categorical", shuffle=False),
                   dict(validation_split=0.25, subset="validation", seed=5)):
        ours = lm.utils.text_dataset_from_directory(text_root, batch_size=4, verbose=False, **kwargs)
        theirs = keras.utils.text_dataset_from_directory(text_root, batch_size=4, verbose=False, **kwargs)
        assert ours.class_names == theirs.class_names == ["neg", "pos"]
        if kwargs.get("shuffle", True):  # Keras's buffer shuffle reorders: compare as sets
            k_pairs = {(t.decode(), int(y)) for b in theirs for t, y in zip(*(np.asarray(v) for v in b))}
            assert {(t, int(y)) for b in ours for t, y in zip(*b)} == k_pairs
            continue
        for (texts, labels), (k_texts, k_labels) in zip(ours, _keras_batches(theirs), strict=True):
            assert texts.tolist() == [t.decode("utf-8", "ignore") for t in k_texts.tolist()]
            np.testing.assert_array_equal(labels, k_labels)


def test_fit_from_image_and_text_datasets(image_root, text_root):
    images = lm.utils.image_dataset_from_directory(image_root, image_size=(4, 4), batch_size=3, seed=1,
                                                   verbose=False)  # full batches: one compilation
    model = lm.Sequential([lm.Input((4, 4, 3)), lm.layers.Rescaling(1 / 255), lm.layers.Flatten(),
                           lm.layers.Dense(3)])
    model.compile(optimizer="sgd", loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=1)
    assert len(model.fit(images, epochs=2, verbose=0).history["loss"]) == 2

    raw = lm.utils.text_dataset_from_directory(text_root, batch_size=4, seed=2, verbose=False)
    vectorize = lm.layers.TextVectorization(max_tokens=20, output_mode="int", output_sequence_length=6)
    vectorize.adapt(raw.map(lambda x, y: x))
    train = raw.map(lambda x, y: (np.asarray(vectorize(x)), y))
    classifier = lm.Sequential([lm.Input((6,), dtype="int32"), lm.layers.Embedding(20, 4),
                                lm.layers.GlobalAveragePooling1D(), lm.layers.Dense(1)])
    classifier.compile(optimizer="sgd", loss=lm.losses.BinaryCrossentropy(from_logits=True), steps_per_execution=1)
    history = classifier.fit(train, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_datasets_pickle_for_worker_processes(image_root, text_root):
    # use_multiprocessing=True sends a pickled copy of the dataset to each worker process.
    import pickle

    datasets = [
        lm.utils.image_dataset_from_directory(image_root, image_size=(4, 4), seed=1, verbose=False),
        lm.utils.text_dataset_from_directory(text_root, max_length=5, seed=1, verbose=False),
        lm.utils.timeseries_dataset_from_array(np.arange(20), np.arange(20), sequence_length=3, batch_size=4),
        lm.utils.split_dataset(np.arange(20), left_size=0.5)[0].batch(4),
    ]
    for ds in datasets:
        clone = pickle.loads(pickle.dumps(ds))
        assert len(clone) == len(ds)
        ours, theirs = clone[0], ds[0]
        for a, b in zip(*((batch,) if not isinstance(batch, tuple) else batch for batch in (ours, theirs)),
                        strict=True):
            np.testing.assert_array_equal(a, b)
