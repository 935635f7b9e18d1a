"""What ``fit`` accepts and how it walks through it: generators, ``lm.data.Dataset``,
``validation_split``, ``initial_epoch``, ``steps_per_epoch``; retracing; bad input."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm


def _data(n=50, features=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x @ rng.normal(size=(features, 1)) + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def _model(learning_rate=0.05, **compile_kwargs):
    lm.random.set_seed(0)
    model = lm.Sequential([lm.layers.Dense(1, input_shape=(4,))])
    model.compile(lm.optimizers.SGD(learning_rate), "mse", **compile_kwargs)
    return model


class _StepCounter(lm.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []  # per epoch: the batch indices seen
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)
        self.batches.append([])

    def on_train_batch_end(self, batch, logs=None):
        self.batches[-1].append(batch)


def test_fit_on_a_generator_with_steps_per_epoch():
    x, y = _data(40)

    def endless():
        while True:
            for i in range(0, 40, 10):
                yield x[i:i + 10], y[i:i + 10]

    model = _model()
    counter = _StepCounter()
    history = model.fit(endless(), epochs=3, steps_per_epoch=4, verbose=0, callbacks=[counter])
    assert counter.batches == [[0, 1, 2, 3]] * 3
    assert len(history.history["loss"]) == 3
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_fit_on_a_one_shot_generator_runs_until_it_is_exhausted():
    x, y = _data(40)
    model = _model()
    counter = _StepCounter()
    batches = ((x[i:i + 10], y[i:i + 10]) for i in range(0, 40, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exhausted generator warns for later epochs
        history = model.fit(batches, epochs=1, verbose=0, callbacks=[counter])
    assert counter.batches == [[0, 1, 2, 3]]
    assert int(model.optimizer.iterations.numpy()) == 4
    assert len(history.history["loss"]) == 1


def test_a_generator_batch_may_carry_sample_weights():
    x, y = _data(40)
    zero_weights = np.zeros((10,), "float32")
    model = _model()
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(((x[i:i + 10], y[i:i + 10], zero_weights) for i in range(0, 40, 10)),
                        epochs=1, verbose=0)
    # Every sample weighs zero: no gradient, and a zero loss.
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert history.history["loss"] == [0.0]


class _Batches(lm.data.Dataset):
    def __init__(self, x, y, batch_size):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[s], self.y[s]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_fit_on_a_dataset_visits_every_batch_each_epoch():
    x, y = _data(50)
    dataset = _Batches(x, y, batch_size=16)  # 16, 16, 16, 2
    model = _model()
    counter = _StepCounter()
    history = model.fit(dataset, epochs=3, verbose=0, callbacks=[counter])
    assert counter.batches == [[0, 1, 2, 3]] * 3
    assert dataset.epochs_ended == 3
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_fit_on_a_dataset_equals_fit_on_the_arrays_without_shuffling():
    x, y = _data(50)
    from_dataset, from_arrays = _model(), _model()
    from_dataset.fit(_Batches(x, y, batch_size=16), epochs=2, shuffle=False, verbose=0)
    from_arrays.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(from_dataset.get_weights(), from_arrays.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_validation_split_holds_out_the_last_samples():
    x, y = _data(50)
    model = _model()
    counter = _StepCounter()
    history = model.fit(x, y, batch_size=8, epochs=1, validation_split=0.2, shuffle=False,
                        verbose=0, callbacks=[counter])
    assert counter.batches == [[0, 1, 2, 3, 4]]  # 40 training samples in batches of 8
    # Validation ran on the last 10 samples with the weights at the end of the epoch.
    assert history.history["val_loss"][0] == pytest.approx(
        model.evaluate(x[40:], y[40:], verbose=0), rel=1e-5)
    reference = _model()
    reference.fit(x[:40], y[:40], batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_initial_epoch_resumes_the_epoch_count():
    x, y = _data(32)
    model = _model()
    counter = _StepCounter()
    history = model.fit(x, y, batch_size=16, epochs=4, initial_epoch=2, verbose=0,
                        callbacks=[counter])
    assert counter.epochs == [2, 3]
    assert history.epoch == [2, 3]
    assert len(history.history["loss"]) == 2
    assert int(model.optimizer.iterations.numpy()) == 2 * 2


def test_steps_per_epoch_limits_each_epoch_and_carries_on_through_the_data():
    x, y = _data(60)
    model = _model(learning_rate=0.0)
    counter = _StepCounter()
    # 6 batches of 10; 3 steps per epoch: epochs 0 and 1 together make one pass.
    history = model.fit(x, y, batch_size=10, epochs=2, steps_per_epoch=3, shuffle=False,
                        verbose=0, callbacks=[counter])
    assert counter.batches == [[0, 1, 2], [0, 1, 2]]
    assert int(model.optimizer.iterations.numpy()) == 6
    prediction = model.predict(x, verbose=0)
    # With a zero rate the epoch losses are those of the first and the second half.
    assert history.history["loss"][0] == pytest.approx(np.mean((prediction[:30] - y[:30]) ** 2), rel=1e-5)
    assert history.history["loss"][1] == pytest.approx(np.mean((prediction[30:] - y[30:]) ** 2), rel=1e-5)


class _TracedStep(lm.Model):
    def __init__(self):
        super().__init__()
        self.dense = lm.layers.Dense(1)
        self.traces = 0

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        self.traces += 1  # Python: runs at trace time only
        return super().train_step(data)


class _TraceWatcher(lm.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.counts = []

    def on_epoch_end(self, epoch, logs=None):
        self.counts.append(self.model.traces)


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_the_partial_last_batch_does_not_retrace_every_epoch(steps_per_execution):
    x, y = _data(50)  # batches of 8: 6 full and one of 2
    lm.random.set_seed(0)
    model = _TracedStep()
    model.compile(lm.optimizers.SGD(0.05), "mse", steps_per_execution=steps_per_execution)
    watcher = _TraceWatcher()
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[watcher])
    # Per compiled function: a discovery trace and the real one (a block's scan traces its
    # step twice more); then one more trace for the partial batch's shape. Never per epoch.
    assert watcher.counts[0] <= 8
    assert watcher.counts == [watcher.counts[0]] * 3
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert model.traces == watcher.counts[0]


# -- bad input fails before any training step -----------------------------------------------
def _untouched(model, before):
    return all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before)) and \
        int(model.optimizer.iterations.numpy()) == 0


def test_mismatched_lengths_of_x_and_y_fail_before_training():
    x, y = _data(50)
    model = _model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"(?s)x.*50.*y.*40|y.*40.*x.*50"):
        model.fit(x, y[:40], verbose=0)
    assert _untouched(model, before)


def test_missing_y_with_a_compiled_loss_fails_before_training():
    x, _ = _data(50)
    model = _model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"`y`"):
        model.fit(x, verbose=0)
    assert _untouched(model, before)


def test_missing_y_in_generator_batches_fails_before_training():
    x, _ = _data(40)
    model = _model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"`y`"):
        model.fit((x[i:i + 10] for i in range(0, 40, 10)), verbose=0)
    assert _untouched(model, before)


@pytest.mark.parametrize("which", ["x", "y"])
def test_string_data_fails_before_training_with_the_dtype(which):
    x, y = _data(10)
    strings = np.array([[str(v) for v in row] for row in (x if which == "x" else y)])
    model = _model()
    before = model.get_weights()
    args = (strings, y) if which == "x" else (x, strings)
    with pytest.raises(ValueError, match=rf"(?s)`{which}`.*dtype"):
        model.fit(*args, verbose=0)
    assert _untouched(model, before)


def test_fit_before_compile_raises_with_advice():
    x, y = _data(10)
    model = lm.Sequential([lm.layers.Dense(1)])
    with pytest.raises(RuntimeError, match=r"compile"):
        model.fit(x, y, verbose=0)
    with pytest.raises(RuntimeError, match=r"compile"):
        model.evaluate(x, y, verbose=0)
    with pytest.raises(RuntimeError, match=r"compile"):
        model.train_on_batch(x, y)


def test_predict_works_without_compile():
    x, _ = _data(10)
    lm.random.set_seed(0)
    model = lm.Sequential([lm.layers.Dense(2)])
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(out, np.asarray(model(jnp.asarray(x))), rtol=1e-6)
