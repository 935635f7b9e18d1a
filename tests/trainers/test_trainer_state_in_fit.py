"""State inside compiled training: added losses, regularizers, counters, custom train steps,
freezing after fit, and memory across repeated fits."""

import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm


def _data(n=50, features=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x @ rng.normal(size=(features, 1)) + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


# -- losses added by layers -------------------------------------------------------------------
class _ActivityPenalty(lm.Layer):
    """A nested layer adding 0.5 * mean(output ** 2) with add_loss."""

    def __init__(self):
        super().__init__()
        self.dense = lm.layers.Dense(1)

    def call(self, x):
        out = self.dense(x)
        self.add_loss(0.5 * jnp.mean(out ** 2))
        return out


class _Wrapper(lm.Model):
    def __init__(self):
        super().__init__()
        self.block = _ActivityPenalty()

    def call(self, x):
        return self.block(x)


def test_add_loss_of_a_nested_layer_is_part_of_the_fit_loss():
    x, y = _data(40)
    lm.random.set_seed(0)
    model = _Wrapper()
    model.compile(lm.optimizers.SGD(0.0), "mse")  # a zero rate: the weights stay put
    history = model.fit(x, y, batch_size=40, epochs=1, verbose=0)
    prediction = model.predict(x, verbose=0)
    expected = np.mean((prediction - y) ** 2) + 0.5 * np.mean(prediction ** 2)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)


def test_add_loss_of_a_nested_layer_shapes_the_gradient():
    # With only the added loss to minimise (no compiled loss), training shrinks the outputs.
    x, _ = _data(40)
    lm.random.set_seed(0)
    model = _Wrapper()
    model.compile(lm.optimizers.SGD(0.1))
    before = float(np.mean(model.predict(x, verbose=0) ** 2))
    history = model.fit(x, batch_size=40, epochs=5, verbose=0)
    after = float(np.mean(model.predict(x, verbose=0) ** 2))
    assert after < 0.5 * before
    assert history.history["loss"][0] == pytest.approx(0.5 * before, rel=1e-5)


def test_kernel_regularizer_penalty_is_part_of_the_fit_loss():
    x, y = _data(40)
    lm.random.set_seed(0)
    model = lm.Sequential([
        lm.layers.Dense(3, kernel_regularizer=lm.regularizers.L2(0.1), input_shape=(4,)),
        lm.layers.Dense(1),
    ])
    model.compile(lm.optimizers.SGD(0.0), "mse")
    history = model.fit(x, y, batch_size=40, epochs=1, verbose=0)
    prediction = model.predict(x, verbose=0)
    kernel = model.layers[0].kernel.numpy()
    expected = np.mean((prediction - y) ** 2) + 0.1 * np.sum(kernel ** 2)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)


# -- a counter written in call -------------------------------------------------------------
class _CountingDense(lm.Layer):
    def __init__(self):
        super().__init__()
        self.count = lm.Variable(jnp.zeros((), jnp.int32), trainable=False, name="count")
        self.dense = lm.layers.Dense(1)

    def call(self, x, training=None):
        if training:
            self.count.assign_add(1)
        return self.dense(x)


@pytest.mark.parametrize(
    "compile_kwargs",
    [{"steps_per_execution": 1}, {"steps_per_execution": 4}, {"steps_per_execution": "auto"}],
    ids=["spe1", "spe4", "auto"],
)
def test_counter_assigned_in_call_counts_each_training_step_exactly(compile_kwargs):
    # 66 samples in batches of 2: 33 steps (blocks of 4 or, for "auto", of 2, then single
    # steps); in batches of 8: 8 full batches and a partial one. Discovery traces must not
    # count.
    x, y = _data(66)
    lm.random.set_seed(0)
    counter = _CountingDense()
    model = lm.Sequential([counter])
    model.compile(lm.optimizers.SGD(0.01), "mse", **compile_kwargs)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert int(counter.count.numpy()) == 33
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert int(counter.count.numpy()) == 33 + 2 * 9
    # Inference does not count, compiled or not.
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert int(counter.count.numpy()) == 33 + 2 * 9
    assert int(model.optimizer.iterations.numpy()) == 33 + 2 * 9


# -- a custom, stateful train_step --------------------------------------------------------
class _CustomStep(lm.Model):
    """A train_step written as eager code, with a Python side effect to count its traces."""

    def __init__(self):
        super().__init__()
        self.dense = lm.layers.Dense(1)
        self.loss_mean = lm.metrics.Mean(name="loss")
        self.mae = lm.metrics.MeanAbsoluteError(name="my_mae")
        self.traces = 0

    def call(self, x):
        return self.dense(x)

    @property
    def metrics(self):
        return [self.loss_mean, self.mae]

    def train_step(self, data):
        self.traces += 1  # Python: runs when the step is traced
        x, y, _ = lm.data.unpack_batch(data)

        def loss_fn():
            y_pred = self(x, training=True)
            return jnp.mean((y_pred - y) ** 2), y_pred

        (loss, y_pred), grads = lm.value_and_grad(loss_fn, self.trainable_weights, has_aux=True)()
        self.optimizer.apply(grads, self.trainable_weights)
        self.loss_mean.update_state(loss)
        self.mae.update_state(y, y_pred)
        return {"loss": self.loss_mean.result(), "my_mae": self.mae.result()}


def test_custom_stateful_train_step_trains_and_is_compiled():
    x, y = _data(50)
    lm.random.set_seed(0)
    model = _CustomStep()
    model.compile(lm.optimizers.SGD(0.05), steps_per_execution=1)
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0)  # 7 steps per epoch
    assert set(history.history) == {"loss", "my_mae"}
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert int(model.optimizer.iterations.numpy()) == 21
    assert 1 <= model.traces <= 4  # traced for discovery and per batch shape, never per step
    # The metrics are the model's own variables: after fit they hold the last epoch's state.
    assert float(model.mae.result()) == pytest.approx(history.history["my_mae"][-1], rel=1e-6)
    traced = model.traces
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert model.traces == traced  # the compiled step is reused by the next fit


def test_custom_train_step_can_unpack_data_as_x_y_like_keras():
    # The Keras guide "Customizing what happens in fit()" writes `x, y = data`: with arrays
    # x and y (no sample weights), the batch handed to train_step is the pair (x, y).
    x, y = _data(32)
    seen = []

    class PairStep(lm.Model):
        def __init__(self):
            super().__init__()
            self.dense = lm.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            seen.append(type(data).__name__ + str(len(data)))
            x, y = data
            def loss_fn():
                return jnp.mean((self(x, training=True) - y) ** 2)
            loss, grads = lm.value_and_grad(loss_fn, self.trainable_weights)()
            self.optimizer.apply(grads, self.trainable_weights)
            return {"loss": loss}

    lm.random.set_seed(0)
    model = PairStep()
    model.compile("sgd")
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1


def test_keras_guide_train_step_updating_self_metrics_reports_compiled_metrics():
    # The Keras guide's loop: update every metric in self.metrics ("loss" with the loss, the
    # others with (y, y_pred)) and return {m.name: m.result()}. The compiled metrics must be
    # among self.metrics for that (Keras 3 lists a "compile_metrics" container there).
    x, y = _data(32)

    class GuideStep(lm.Model):
        def __init__(self):
            super().__init__()
            self.dense = lm.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            x, y, _ = lm.data.unpack_batch(data)

            def loss_fn():
                y_pred = self(x, training=True)
                return self.compute_loss(y=y, y_pred=y_pred), y_pred

            (loss, y_pred), grads = lm.value_and_grad(loss_fn, self.trainable_weights, has_aux=True)()
            self.optimizer.apply(grads, self.trainable_weights)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return self.get_metrics_result()

    lm.random.set_seed(0)
    model = GuideStep()
    model.compile("sgd", "mse", metrics=[lm.metrics.MeanAbsoluteError()])
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "mean_absolute_error"}


# -- freezing after fit ----------------------------------------------------------------------
@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_trainable_false_after_fit_freezes_on_the_next_fit(steps_per_execution):
    x, y = _data(64)
    lm.random.set_seed(0)
    model = lm.Sequential([lm.layers.Dense(3, input_shape=(4,)), lm.layers.Dense(1)])
    model.compile(lm.optimizers.SGD(0.1), "mse", steps_per_execution=steps_per_execution)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    first, second = model.layers
    first.trainable = False
    assert len(model.trainable_weights) == 2
    frozen = [w.numpy().copy() for w in first.weights]
    moving = [w.numpy().copy() for w in second.weights]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for w, before in zip(first.weights, frozen):
        np.testing.assert_array_equal(w.numpy(), before)
    assert any(not np.array_equal(w.numpy(), b) for w, b in zip(second.weights, moving))
    # And unfreezing trains it again.
    first.trainable = True
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert not np.array_equal(first.kernel.numpy(), frozen[0])


# -- memory ------------------------------------------------------------------------------------
def test_repeated_fits_do_not_grow_the_live_arrays():
    x, y = _data(64)
    lm.random.set_seed(0)
    model = lm.Sequential([lm.layers.Dense(8, activation="relu"), lm.layers.Dense(1)])
    model.compile("adam", "mse", metrics=[lm.metrics.MeanAbsoluteError()])
    counts = []
    for _ in range(5):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, validation_split=0.25)
        model.evaluate(x, y, verbose=0)
        model.predict(x, verbose=0)
        gc.collect()
        counts.append(len(jax.live_arrays()))
    assert max(counts[1:]) <= counts[1], counts


def test_a_trained_model_is_freed_when_dropped():
    # No cache keyed by model objects may keep a model (and its arrays) alive (Keras #20245).
    x, y = _data(32)
    refs = []
    for round_ in range(3):
        if round_ == 1:
            # After one model: JAX's one-time caches (constants of freshly compiled helpers)
            # are filled; from here on nothing may accumulate per model.
            gc.collect()
            baseline = len(jax.live_arrays())
        model = lm.Sequential([lm.layers.Dense(8, activation="relu"), lm.layers.Dense(1)])
        model.compile("adam", "mse")
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        model.evaluate(x, y, verbose=0)
        model.predict(x, verbose=0)
        refs.append(weakref.ref(model))
        del model
    gc.collect()
    assert all(ref() is None for ref in refs)
    assert len(jax.live_arrays()) <= baseline + 2
