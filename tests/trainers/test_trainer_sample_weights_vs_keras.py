"""``sample_weight`` and ``class_weight`` weigh the loss exactly as Keras 3 does: the same
weights copied into a Keras model of the same architecture give the same numbers."""

import numpy as np
import pytest

import lamina as lm

CLASS_WEIGHT = {0: 0.5, 1: 2.0, 2: 1.5}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(70, 6)).astype("float32")
    y = rng.integers(0, 3, size=(70,)).astype("int32")
    sample_weight = rng.uniform(0.1, 2.0, size=(70,)).astype("float32")
    return x, y, sample_weight


def _pair(keras, metrics=None):
    """A lamina model and a Keras model with identical weights, compiled alike."""
    lm.random.set_seed(0)
    ours = lm.Sequential([
        lm.layers.Dense(5, activation="tanh", input_shape=(6,)),
        lm.layers.Dense(3),
    ])
    ours.compile(lm.optimizers.SGD(0.1), lm.losses.SparseCategoricalCrossentropy(from_logits=True),
                 metrics=metrics)
    theirs = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(5, activation="tanh"),
        keras.layers.Dense(3),
    ])
    theirs.set_weights(ours.get_weights())
    theirs.compile(keras.optimizers.SGD(0.1),
                   keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=metrics)
    return ours, theirs


def _assert_same_weights(ours, theirs):
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-6)


def test_evaluate_with_sample_weight_matches_keras(keras, data):
    x, y, sample_weight = data
    ours, theirs = _pair(keras)
    # Batches of 16: the last one is partial, so the per-batch means are weighted by size.
    got = ours.evaluate(x, y, sample_weight=sample_weight, batch_size=16, verbose=0)
    want = theirs.evaluate(x, y, sample_weight=sample_weight, batch_size=16, verbose=0)
    assert got == pytest.approx(want, rel=1e-5)
    unweighted = ours.evaluate(x, y, batch_size=16, verbose=0)
    assert got != pytest.approx(unweighted, rel=1e-3)  # the weights did change the loss


def test_compiled_metrics_ignore_sample_weight_like_keras(keras, data):
    # Keras 3 applies sample weights to the loss and to `weighted_metrics`, not to `metrics`.
    x, y, sample_weight = data
    ours, theirs = _pair(keras, metrics=["accuracy"])
    got = ours.evaluate(x, y, sample_weight=sample_weight, batch_size=16, verbose=0)
    want = theirs.evaluate(x, y, sample_weight=sample_weight, batch_size=16, verbose=0)
    assert got == pytest.approx(want, rel=1e-5)


def test_train_on_batch_with_sample_weight_matches_keras(keras, data):
    x, y, sample_weight = data
    ours, theirs = _pair(keras)
    got = ours.train_on_batch(x, y, sample_weight=sample_weight)
    want = theirs.train_on_batch(x, y, sample_weight=sample_weight)
    assert got == pytest.approx(float(want), rel=1e-5)
    _assert_same_weights(ours, theirs)


def test_train_on_batch_with_class_weight_matches_keras(keras, data):
    x, y, _ = data
    ours, theirs = _pair(keras)
    got = ours.train_on_batch(x, y, class_weight=CLASS_WEIGHT)
    want = theirs.train_on_batch(x, y, class_weight=CLASS_WEIGHT)
    assert got == pytest.approx(float(want), rel=1e-5)
    _assert_same_weights(ours, theirs)
    # And the class weights did matter: the unweighted loss differs.
    ours2, _ = _pair(keras)
    assert ours2.test_on_batch(x, y) != pytest.approx(got, rel=1e-3)


def test_fit_with_class_weight_matches_keras(keras, data):
    x, y, _ = data
    ours, theirs = _pair(keras)
    h_ours = ours.fit(x, y, class_weight=CLASS_WEIGHT, batch_size=16, epochs=2, shuffle=False,
                      verbose=0)
    h_theirs = theirs.fit(x, y, class_weight=CLASS_WEIGHT, batch_size=16, epochs=2,
                          shuffle=False, verbose=0)
    np.testing.assert_allclose(h_ours.history["loss"], h_theirs.history["loss"], rtol=1e-5)
    _assert_same_weights(ours, theirs)
