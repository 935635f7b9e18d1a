"""Callbacks inside a real (compiled) fit: order of hooks, weights they read and write,
and the learning-rate callbacks reaching the compiled step."""

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm


def _data(n=50, features=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x @ rng.normal(size=(features, 1)) + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def _model(seed=0, **compile_kwargs):
    lm.random.set_seed(seed)
    model = lm.Sequential([
        lm.layers.Dense(6, activation="tanh", input_shape=(4,)),
        lm.layers.Dense(1),
    ])
    compile_kwargs.setdefault("optimizer", lm.optimizers.SGD(0.05))
    compile_kwargs.setdefault("loss", "mse")
    model.compile(**compile_kwargs)
    return model


class _Recorder(lm.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_train_batch_begin(self, batch, logs=None):
        self.events.append(("batch_begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("batch_end", batch))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, tuple(sorted(logs))))

    def on_train_end(self, logs=None):
        self.events.append(("train_end",))


def _expected_events(epochs, steps, epoch_keys):
    events = [("train_begin",)]
    for epoch in range(epochs):
        events.append(("epoch_begin", epoch))
        for step in range(steps):
            events += [("batch_begin", step), ("batch_end", step)]
        events.append(("epoch_end", epoch, tuple(sorted(epoch_keys))))
    return events + [("train_end",)]


def test_hooks_run_in_keras_order_with_val_logs_from_validation_data():
    x, y = _data(50)
    model = _model(metrics=[lm.metrics.MeanAbsoluteError()])
    recorder = _Recorder()
    model.fit(x[:40], y[:40], batch_size=8, epochs=2, verbose=0, callbacks=[recorder],
              validation_data=(x[40:], y[40:]))
    keys = ("loss", "mean_absolute_error", "val_loss", "val_mean_absolute_error")
    assert recorder.events == _expected_events(2, 5, keys)


def test_hooks_run_in_keras_order_with_validation_split():
    x, y = _data(50)
    model = _model()
    recorder = _Recorder()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[recorder],
              validation_split=0.2)  # 40 training samples: 5 batches
    assert recorder.events == _expected_events(2, 5, ("loss", "val_loss"))


def test_epoch_logs_have_no_val_keys_without_validation():
    x, y = _data(16)
    recorder = _Recorder()
    _model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[recorder])
    assert recorder.events[-2] == ("epoch_end", 0, ("loss",))


def test_auto_steps_per_execution_runs_every_step_for_a_batch_hook():
    # 64 batches: "auto" alone would run blocks of 4 steps; a batch hook asks for every step.
    x, y = _data(256)
    model = _model(steps_per_execution="auto")
    seen = []

    class Batches(lm.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[Batches()])
    assert seen == list(range(64)) * 2
    assert int(model.optimizer.iterations.numpy()) == 128


class _WeightWatcher(lm.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epoch_weights = []
        self.batch_kernels = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_weights.append([w.copy() for w in self.model.get_weights()])

    def on_train_batch_end(self, batch, logs=None):
        self.batch_kernels.append(np.array(self.model.layers[0].kernel.numpy()))


class _EpochWeightWatcher(lm.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epoch_weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_weights.append([w.copy() for w in self.model.get_weights()])


def test_weights_read_in_callbacks_mid_fit_are_current_and_match_eager():
    x, y = _data(20)  # batches of 8, 8 and 4
    compiled, eager = _model(), _model(run_eagerly=True)
    watch_compiled, watch_eager = _WeightWatcher(), _WeightWatcher()
    compiled.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[watch_compiled])
    eager.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[watch_eager])
    assert len(watch_compiled.batch_kernels) == 9
    # Weights move between epochs, and each read equals the eager run's at the same point.
    for before, after in zip(watch_compiled.epoch_weights, watch_compiled.epoch_weights[1:]):
        assert not np.allclose(before[0], after[0])
    for a, b in zip(watch_compiled.batch_kernels, watch_eager.batch_kernels):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for got, want in zip(watch_compiled.epoch_weights, watch_eager.epoch_weights):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The last reads are the final weights.
    for a, b in zip(watch_compiled.epoch_weights[-1], compiled.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(watch_compiled.batch_kernels[-1], compiled.get_weights()[0])


@pytest.mark.parametrize("steps_per_execution", [4, "auto"])
def test_epoch_end_weights_are_current_with_blocks_of_steps(steps_per_execution):
    x, y = _data(256)
    blocked, single = _model(steps_per_execution=steps_per_execution), _model(steps_per_execution=1)
    watch_blocked, watch_single = _EpochWeightWatcher(), _EpochWeightWatcher()
    blocked.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[watch_blocked])
    single.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[watch_single])
    for got, want in zip(watch_blocked.epoch_weights, watch_single.epoch_weights):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(watch_blocked.epoch_weights[0][0], watch_blocked.epoch_weights[1][0])


@pytest.mark.parametrize("compile_kwargs", [{"steps_per_execution": 1},
                                            {"steps_per_execution": 4}])
def test_weights_set_by_a_callback_mid_fit_are_used_by_the_next_steps(compile_kwargs):
    x, y = _data(50)
    model = _model(optimizer=lm.optimizers.SGD(0.0), **compile_kwargs)
    marker = [np.full(w.shape, 0.25, "float32") for w in model.get_weights()]

    class SetWeights(lm.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.model.set_weights(marker)

    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
                        callbacks=[SetWeights()])
    for a, b in zip(model.get_weights(), marker):
        np.testing.assert_array_equal(a, b)
    # Epoch 1 trained (with a zero rate) on the weights the callback set.
    expected = np.mean((np.asarray(model(x)) - y) ** 2)
    assert history.history["loss"][1] == pytest.approx(expected, rel=1e-5)


def test_early_stopping_stops_and_restores_the_best_weights():
    x, y = _data(50)
    model = _model(optimizer=lm.optimizers.SGD(0.05))
    watcher = _EpochWeightWatcher()
    # The validation targets point the other way: val_loss rises while the loss falls.
    val = (x[:20], -3.0 * y[:20])
    stop = lm.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(x, y, batch_size=10, epochs=30, verbose=0, validation_data=val,
                        callbacks=[watcher, stop])
    val_losses = history.history["val_loss"]
    assert len(val_losses) < 30
    best = int(np.argmin(val_losses))
    assert len(val_losses) == best + 3  # patience 2 after the best epoch
    assert stop.best_epoch == best
    for a, b in zip(model.get_weights(), watcher.epoch_weights[best]):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(model.get_weights()[0], watcher.epoch_weights[-1][0])
    # The restored weights are the ones the compiled steps use from now on.
    assert model.evaluate(*val, verbose=0) == pytest.approx(val_losses[best], rel=1e-5)


def _linear_model_with_constant_gradient(learning_rate):
    """Dense(1) trained on mean(y_pred): the gradient is mean(x) whatever the weights, so
    each epoch's weight change is exactly -learning_rate * steps * mean(x)."""
    lm.random.set_seed(0)
    model = lm.Sequential([lm.layers.Dense(1, input_shape=(4,))])
    traces = []

    def mean_output(y_true, y_pred):
        traces.append(1)  # Python: runs when the step is traced, not when it runs
        return jnp.mean(y_pred)

    model.compile(lm.optimizers.SGD(learning_rate), mean_output, steps_per_execution=1)
    return model, traces


class _KernelAndTraceWatcher(lm.callbacks.Callback):
    def __init__(self, traces):
        super().__init__()
        self.traces = traces
        self.kernels = []
        self.trace_counts = []
        self.rates = []

    def on_train_begin(self, logs=None):
        self.kernels.append(np.array(self.model.layers[0].kernel.numpy()))

    def on_epoch_end(self, epoch, logs=None):
        self.kernels.append(np.array(self.model.layers[0].kernel.numpy()))
        self.trace_counts.append(len(self.traces))
        self.rates.append(float(np.asarray(self.model.optimizer.learning_rate)))


def test_learning_rate_scheduler_changes_the_compiled_update_without_retracing():
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = np.zeros((32, 1), "float32")
    model, traces = _linear_model_with_constant_gradient(0.1)
    watcher = _KernelAndTraceWatcher(traces)
    scheduler = lm.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** epoch)
    history = model.fit(x, y, batch_size=32, epochs=4, shuffle=False, verbose=0,
                        callbacks=[scheduler, watcher])
    steps = np.diff(np.stack(watcher.kernels), axis=0)  # one step per epoch
    gradient = x.mean(axis=0)[:, None]
    for epoch, step in enumerate(steps):
        np.testing.assert_allclose(step, -0.1 * 0.5 ** epoch * gradient, rtol=1e-4, atol=1e-7)
    assert watcher.rates == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    assert float(np.asarray(model.optimizer.learning_rate)) == pytest.approx(0.0125)
    assert watcher.trace_counts == [watcher.trace_counts[0]] * 4  # no retrace after epoch 0


def test_reduce_lr_on_plateau_changes_the_compiled_update_without_retracing():
    x = np.random.default_rng(1).normal(size=(32, 4)).astype("float32")
    y = np.zeros((32, 1), "float32")
    model, traces = _linear_model_with_constant_gradient(0.1)
    watcher = _KernelAndTraceWatcher(traces)
    # mode="max" on a falling loss: no epoch after the first improves, so with patience 1
    # the rate halves at the end of epochs 1, 2 and 3.
    reduce = lm.callbacks.ReduceLROnPlateau(monitor="loss", mode="max", factor=0.5,
                                            patience=1, min_delta=0.0)
    model.fit(x, y, batch_size=32, epochs=5, shuffle=False, verbose=0,
              callbacks=[reduce, watcher])
    rates_used = [0.1, 0.1, 0.05, 0.025, 0.0125]
    assert watcher.rates == pytest.approx([0.1, 0.05, 0.025, 0.0125, 0.00625])
    steps = np.diff(np.stack(watcher.kernels), axis=0)
    gradient = x.mean(axis=0)[:, None]
    for rate, step in zip(rates_used, steps):
        np.testing.assert_allclose(step, -rate * gradient, rtol=1e-4, atol=1e-7)
    assert watcher.trace_counts == [watcher.trace_counts[0]] * 5


def test_setting_the_learning_rate_between_fits_does_not_retrace():
    x = np.random.default_rng(2).normal(size=(32, 4)).astype("float32")
    y = np.zeros((32, 1), "float32")
    model, traces = _linear_model_with_constant_gradient(0.1)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    traced = len(traces)
    kernel = np.array(model.layers[0].kernel.numpy())
    model.optimizer.learning_rate = 0.02
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    np.testing.assert_allclose(model.layers[0].kernel.numpy() - kernel,
                               -0.02 * x.mean(axis=0)[:, None], rtol=1e-4, atol=1e-7)
    assert len(traces) == traced


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_arrays_a_callback_keeps_stay_readable_after_later_steps(steps_per_execution):
    # The compiled step donates the state it updates; arrays handed out to a callback
    # (variable values, batch logs) must never be among the donated ones (Keras #19402).
    x, y = _data(32)
    model = _model(optimizer=lm.optimizers.Adam(0.1), steps_per_execution=steps_per_execution)
    kept, copies, losses = [], [], []

    class Keep(lm.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            kernel = self.model.layers[0].kernel.value
            kept.append(kernel)
            copies.append(np.array(kernel))
            losses.append(logs["loss"])

    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[Keep()])
    assert len(kept) == (16 if steps_per_execution == 1 else 4)
    for array, copy in zip(kept, copies):
        np.testing.assert_array_equal(np.asarray(array), copy)
    assert all(np.isfinite(float(loss)) for loss in losses)
    assert not np.array_equal(copies[0], copies[-1])
