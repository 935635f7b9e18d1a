"""Keras conformance of the training loops (issue 9): test hooks during fit's validation,
``model.metrics``, nested logs, and the custom ``train_step`` patterns of the Keras guides."""

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm


def _regression(n=32, features=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, features)).astype("float32"), rng.random((n, 1)).astype("float32")


def _keras_and_lamina(keras, build):
    theirs, ours = build(keras), build(lm)
    x, _ = _regression(2)
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def _dense_model(lib):
    class Regressor(lib.Model):
        def __init__(self):
            super().__init__()
            self.dense = lib.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    return Regressor()


# -- defect 6: the validation inside fit calls the test hooks -----------------------------------
def _recorder(lib):
    class Recorder(lib.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.events = []

        def on_epoch_begin(self, epoch, logs=None):
            self.events.append(("epoch_begin", epoch))

        def on_epoch_end(self, epoch, logs=None):
            self.events.append(("epoch_end", epoch, {k: round(float(v), 4) for k, v in logs.items()}))

        def on_test_begin(self, logs=None):
            self.events.append(("test_begin", sorted(logs or {})))

        def on_test_batch_begin(self, batch, logs=None):
            self.events.append(("test_batch_begin", batch))

        def on_test_batch_end(self, batch, logs=None):
            self.events.append(("test_batch_end", batch, sorted(logs)))

        def on_test_end(self, logs=None):
            self.events.append(("test_end", {k: round(float(v), 4) for k, v in logs.items()}))

    return Recorder()


def test_validation_in_fit_calls_the_test_hooks_in_keras_order(keras):
    x, y = _regression(24)
    vx, vy = _regression(12, seed=1)
    theirs, ours = _keras_and_lamina(keras, _dense_model)
    events = []
    for lib, model in ((keras, theirs), (lm, ours)):
        model.compile(lib.optimizers.SGD(0.1), "mse", metrics=["mae"])
        recorder = _recorder(lib)
        model.fit(x, y, batch_size=8, epochs=2, validation_data=(vx, vy), validation_batch_size=4,
                  callbacks=[recorder], shuffle=False, verbose=0)
        events.append(recorder.events)
    k, lam = events
    assert [e for e in lam if e[0] == "test_batch_end"][0] == ("test_batch_end", 0, ["loss", "mae"])
    assert lam == k


def test_validation_only_every_validation_freq_epochs_calls_the_test_hooks():
    x, y = _regression(16)
    model = _dense_model(lm)
    model.compile("sgd", "mse")
    recorder = _recorder(lm)
    model.fit(x, y, batch_size=8, epochs=3, validation_data=(x, y), validation_freq=2,
              callbacks=[recorder], verbose=0)
    begins = [i for i, e in enumerate(recorder.events) if e[0] == "test_begin"]
    assert len(begins) == 1 and recorder.events[begins[0] - 1] == ("epoch_begin", 1)


# -- defect 7: model.metrics, nested logs --------------------------------------------------------
def test_model_metrics_list_what_keras_lists(keras):
    names = []
    for lib in (keras, lm):
        plain = _dense_model(lib)
        plain.compile("sgd", "mse")
        with_metrics = _dense_model(lib)
        with_metrics.compile("sgd", "mse", metrics=["mae"])
        own = _dense_model(lib)
        own.tracker = lib.metrics.Mean(name="tracker")  # a metric attribute is listed too
        own.compile("sgd", "mse", metrics=["mae"])
        names.append([[m.name for m in model.metrics] for model in (plain, with_metrics, own)])
    assert names[1] == names[0] == [["loss"], ["loss", "compile_metrics"],
                                    ["loss", "compile_metrics", "tracker"]]


class _GuideLoop(lm.Model):
    """The training guide's custom train_step: update every metric of ``self.metrics`` and
    return ``{m.name: m.result() for m in self.metrics}`` (written the stateful lamina way)."""

    def __init__(self):
        super().__init__()
        self.dense = lm.layers.Dense(1)

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        x, y, sample_weight = lm.utils.unpack_x_y_sample_weight(data)

        def loss_fn():
            y_pred = self(x, training=True)
            return self.compute_loss(x, y, y_pred, sample_weight), y_pred

        (loss, y_pred), grads = lm.value_and_grad(loss_fn, self.trainable_weights, has_aux=True)()
        self.optimizer.apply(grads, self.trainable_weights)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def test_train_step_returning_every_metric_result_gives_flat_logs_equal_to_the_default():
    x, y = _regression(32)
    histories, seen = [], []

    class Batches(lm.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(sorted(logs))

    for cls in (_GuideLoop, lambda: _dense_model(lm)):
        lm.random.set_seed(0)
        model = cls()
        model.compile(lm.optimizers.SGD(0.1), "mse", metrics=["mae"])
        histories.append(model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
                                   callbacks=[Batches()]).history)
    guide, default = histories
    assert set(guide) == {"loss", "mae"}  # {"compile_metrics": {"mae": ...}} flattened
    assert seen[0] == ["loss", "mae"]
    for key in default:
        # The default step counts the loss per sample, this one per batch: equal batches.
        np.testing.assert_allclose(guide[key], default[key], rtol=1e-6)
    model = _GuideLoop()
    model.compile(lm.optimizers.SGD(0.1), "mse", metrics=["mae"])
    model.fit(x, y, batch_size=8, verbose=0)
    assert set(model.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "mae"}


class _CountingModel(lm.Model):
    """Metrics only from the subclass (a `metrics` override), compile() without a loss."""

    def __init__(self):
        super().__init__()
        self.dense = lm.layers.Dense(1)
        self.loss_tracker = lm.metrics.Mean(name="loss")
        self.batches = lm.metrics.Sum(name="batches")

    def call(self, x):
        return self.dense(x)

    @property
    def metrics(self):
        return [self.loss_tracker, self.batches]

    def _step(self, data, train):
        x, y = data

        def loss_fn():
            return jnp.mean((self(x, training=train) - y) ** 2)

        if train:
            loss, grads = lm.value_and_grad(loss_fn, self.trainable_weights)()
            self.optimizer.apply(grads, self.trainable_weights)
        else:
            loss = loss_fn()
        self.loss_tracker.update_state(loss)
        self.batches.update_state(1.0)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        return self._step(data, train=True)

    def test_step(self, data):
        return self._step(data, train=False)


def test_a_metrics_override_is_reset_each_epoch_and_by_evaluate():
    x, y = _regression(32)
    model = _CountingModel()
    tracker = model.loss_tracker
    model.compile(lm.optimizers.SGD(0.1))  # no loss: train_step computes it
    history = model.fit(x, y, batch_size=8, epochs=3, validation_data=(x[:16], y[:16]), verbose=0)
    assert model.loss_tracker is tracker  # compile() keeps the subclass's own tracker
    assert history.history["batches"] == [4.0, 4.0, 4.0]
    assert history.history["val_batches"] == [2.0, 2.0, 2.0]
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)["batches"] == 4.0


def test_compute_loss_in_a_custom_train_step_adds_the_model_losses():
    class WithPenalty(lm.Model):
        def __init__(self):
            super().__init__()
            self.dense = lm.layers.Dense(1, kernel_initializer="ones")

        def call(self, x):
            out = self.dense(x)
            self.add_loss(0.5 * jnp.mean(out))
            return out

        def train_step(self, data):
            x, y = data
            y_pred = self(x, training=True)
            return {"loss": self.compute_loss(x, y, y_pred)}

    x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
    model = WithPenalty()
    model.compile("sgd", "mse")
    logs = model.train_on_batch(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(2.0 ** 2 + 0.5 * 2.0)


def test_compute_loss_override_without_training_argument_still_works():
    # Keras 3.3 added `training` to compute_loss; older overrides do not take it.
    class OldStyle(lm.Model):
        def __init__(self):
            super().__init__()
            self.dense = lm.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
            return 3.0 * jnp.mean((y_pred - y) ** 2)

    x, y = _regression(8)
    model = OldStyle()
    model.compile("sgd")
    assert np.isfinite(model.fit(x, y, batch_size=8, verbose=0).history["loss"][0])


@pytest.mark.parametrize("name", ["Accuracy", "ACC"])
def test_accuracy_string_in_any_case_picks_the_accuracy_that_fits_the_loss(name):
    """Keras lower-cases the string: "Accuracy" with sparse labels is sparse categorical accuracy."""
    model = lm.Sequential([lm.Input((4,)), lm.layers.Dense(3)])
    model.compile(loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=[name])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype("float32"), rng.integers(0, 3, 16)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    expected = np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y)
    np.testing.assert_allclose(logs[name], expected, rtol=1e-6)
