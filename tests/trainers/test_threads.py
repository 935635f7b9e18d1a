"""One model used from two threads at once: ``fit`` in one, ``predict`` in another.

Without a lock, a ``predict`` step could read a weight's array while a training step was
donating it (XLA: "buffer has been deleted or donated"). Each compiled call on a model and
its write-back now hold the model's lock.
"""

import threading

import numpy as np

import lamina as lm

_TIMEOUT_S = 60  # a deadlock fails the test instead of hanging it


def _run_in_threads(*targets):
    """Run each target in its own thread; returns the exceptions they raised (None: ok)."""
    errors = [None] * len(targets)

    def wrap(i, target):
        try:
            target()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors[i] = error

    threads = [threading.Thread(target=wrap, args=(i, t), daemon=True) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(_TIMEOUT_S)
    hung = [t.name for t in threads if t.is_alive()]
    assert not hung, f"threads still running after {_TIMEOUT_S} s (deadlock?): {hung}"
    return errors


def _model():
    lm.random.set_seed(0)
    model = lm.Sequential([lm.Input((8,)), lm.layers.Dense(16, activation="relu"), lm.layers.Dense(2)])
    model.compile(lm.optimizers.SGD(0.05), "mse", steps_per_execution=1)
    return model


def test_fit_and_predict_in_two_threads_both_finish_correctly():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = rng.normal(size=(256, 2)).astype("float32")
    probe = x[:40]
    model = _model()
    snapshots = []  # the weights after each training step, taken by the training thread

    class Snapshot(lm.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            snapshots.append([np.array(w) for w in self.model.get_weights()])

    initial = [np.array(w) for w in model.get_weights()]
    history, predictions, fit_done = {}, [], threading.Event()

    def train():
        try:
            history["h"] = model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[Snapshot()])
        finally:
            fit_done.set()

    def predict():
        while not fit_done.is_set() or len(predictions) < 5:
            predictions.append(model.predict(probe, batch_size=16, verbose=0))

    errors = _run_in_threads(train, predict)
    assert errors == [None, None], errors
    assert len(history["h"].history["loss"]) == 3
    assert np.all(np.isfinite(history["h"].history["loss"]))
    assert len(predictions) >= 5

    # Every prediction is the model's output at some step: the initial weights or the
    # weights after one of the training steps (compared with a NumPy forward pass).
    def forward(weights):
        k1, b1, k2, b2 = weights
        return np.maximum(probe @ k1 + b1, 0) @ k2 + b2

    candidates = np.stack([forward(w) for w in [initial, *snapshots]])
    for out in predictions:
        assert out.shape == (40, 2) and np.all(np.isfinite(out))
        distance = np.abs(candidates - out).max(axis=(1, 2))
        assert distance.min() < 1e-4, f"a prediction matches no step's weights (closest {distance.min()})"
    # Training was not disturbed: the same run without the predicting thread ends with the
    # same weights.
    final = [np.array(w) for w in model.get_weights()]
    alone = _model()
    alone.fit(x, y, batch_size=16, epochs=3, verbose=0)
    for got, want in zip(final, alone.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
