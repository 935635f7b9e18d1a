"""``lm.utils.split_dataset`` against Keras 3 on the same arrays: sizes, membership, the seeded
shuffle, errors; and the splits through ``fit``."""

import numpy as np
import pytest

import lamina as lm

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

X = np.arange(40, dtype="float32").reshape(20, 2)
Y = np.arange(20) % 3


def _rows(dataset):
    return [tuple(np.asarray(v).tolist() for v in e) if isinstance(e, tuple) else np.asarray(e).tolist()
            for e in dataset]


@pytest.mark.parametrize("sizes", [dict(left_size=0.8), dict(right_size=3), dict(left_size=5, right_size=0.25),
                                   dict(left_size=0.3, right_size=0.5)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_splits_equal_keras(sizes, shuffle):
    ours = lm.utils.split_dataset((X, Y), shuffle=shuffle, seed=11, **sizes)
    theirs = keras.utils.split_dataset((X, Y), shuffle=shuffle, seed=11, **sizes)
    for a, b in zip(ours, theirs, strict=True):
        assert _rows(a) == _rows(b)


def test_a_single_array_and_a_batched_dataset():
    left, right = lm.utils.split_dataset(X, left_size=0.5)
    assert len(left) == len(right) == 10 and np.asarray(right[0]).tolist() == X[10].tolist()
    batches = lm.utils.timeseries_dataset_from_array(X, Y, sequence_length=1, batch_size=4)
    left, right = lm.utils.split_dataset(batches, right_size=6, shuffle=True, seed=1)
    assert left.batch_size == right.batch_size == 4 and (len(left), len(right)) == (4, 2)
    targets = sorted(int(t) for ds in (left, right) for _, ys in ds for t in ys)
    assert targets == sorted(Y.tolist())


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(), ValueError, "At least one of the `left_size` or `right_size`"),
    (dict(left_size=20), ValueError, "`left_size` should be either a positive integer"),
    (dict(left_size=0.7, right_size=0.5), ValueError, "greater than 1"),
    (dict(left_size=12, right_size=10), ValueError, "should be smaller than the 20"),
    (dict(left_size="half"), TypeError, "Invalid `left_size` Type"),
    (dict(left_size=0.01), ValueError, "split will be empty"),
])
def test_bad_sizes_raise_as_keras(kwargs, error, message):
    with pytest.raises(error, match=message):
        lm.utils.split_dataset((X, Y), **kwargs)
    with pytest.raises(error, match=message):
        keras.utils.split_dataset((X, Y), **kwargs)


def test_unequal_lengths_and_unknown_types_are_refused():
    with pytest.raises(ValueError, match="same length"):
        lm.utils.split_dataset((X, Y[:5]), left_size=0.5)
    with pytest.raises(TypeError, match="must be a NumPy array"):
        lm.utils.split_dataset("abc", left_size=0.5)


def test_fit_and_evaluate_on_the_splits():
    train, val = lm.utils.split_dataset((X / 40, Y), left_size=0.75, shuffle=True, seed=0)
    model = lm.Sequential([lm.Input((2,)), lm.layers.Dense(3)])
    model.compile(optimizer="sgd", loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=1)
    history = model.fit(train.batch(5), validation_data=val.batch(5), epochs=2, verbose=0)
    assert len(history.history["val_loss"]) == 2
    with pytest.raises(ValueError, match="already batched"):
        train.batch(5).batch(5)
    with pytest.raises(ValueError, match=r"single samples .*Call `.batch\(batch_size\)`"):
        model.fit(train, epochs=1, verbose=0)
