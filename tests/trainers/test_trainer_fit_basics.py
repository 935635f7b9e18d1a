"""compile / fit / evaluate / predict and the *_on_batch methods: what a Keras user relies on."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm


def _regression_data(n=50, features=4, outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    w = rng.normal(size=(features, outputs)).astype("float32")
    y = (x @ w + 0.1 * rng.normal(size=(n, outputs))).astype("float32")
    return x, y


def _mlp(units=(8,), outputs=1, seed=0, features=4):
    """A small MLP, built at once (``input_shape``) so that weights can be copied."""
    lm.random.set_seed(seed)
    layers = [lm.layers.Dense(u, activation="relu") for u in units]
    layers[0] = lm.layers.Dense(units[0], activation="relu", input_shape=(features,))
    return lm.Sequential([*layers, lm.layers.Dense(outputs)])


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype("float32")
    y = data.target.astype("int32")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def test_fit_on_digits_lowers_the_loss_and_generalises(digits):
    (x, y), (x_test, y_test) = digits
    model = _mlp(units=(32,), outputs=10, features=64)
    model.compile(
        optimizer=lm.optimizers.Adam(0.01),
        loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(x, y, batch_size=64, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.3 * losses[0]
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert all(np.isfinite(losses))
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= 0.9
    # The reported accuracy is the accuracy of the model's predictions.
    predicted = np.argmax(model.predict(x_test, verbose=0), axis=-1)
    np.testing.assert_allclose(accuracy, np.mean(predicted == y_test), rtol=1e-6)


def test_history_has_one_entry_per_epoch_for_every_log():
    x, y = _regression_data(60)
    model = _mlp()
    model.compile(lm.optimizers.SGD(0.01), "mse", metrics=[lm.metrics.MeanAbsoluteError()])
    history = model.fit(x[:40], y[:40], epochs=3, batch_size=16, verbose=0,
                        validation_data=(x[40:], y[40:]))
    assert isinstance(history, lm.callbacks.History)
    assert history is model.history
    assert set(history.history) == {
        "loss", "mean_absolute_error", "val_loss", "val_mean_absolute_error"
    }
    assert all(len(values) == 3 for values in history.history.values())
    assert all(isinstance(v, float) for values in history.history.values() for v in values)
    assert history.epoch == [0, 1, 2]


def test_string_metrics_are_named_as_given_like_keras():
    # Keras 3 names a metric given as a string by that string: "mae" logs as "mae".
    x, y = _regression_data(40)
    model = _mlp()
    model.compile("sgd", "mse", metrics=["mae", "mse"])
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0, validation_split=0.25)
    assert set(history.history) == {"loss", "mae", "mse", "val_loss", "val_mae", "val_mse"}


def test_evaluate_returns_loss_then_metrics_in_metrics_names_order():
    x, y = _regression_data(50)
    model = _mlp()
    model.compile(
        "sgd", "mse",
        metrics=[lm.metrics.MeanAbsoluteError(), lm.metrics.RootMeanSquaredError()],
    )
    values = model.evaluate(x, y, batch_size=16, verbose=0)
    logs = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert model.metrics_names == ["loss", "mean_absolute_error", "root_mean_squared_error"]
    assert isinstance(values, list) and len(values) == 3
    assert set(logs) == set(model.metrics_names)
    assert values == pytest.approx([logs[name] for name in model.metrics_names], rel=1e-6)
    prediction = model.predict(x, verbose=0)
    assert values[0] == pytest.approx(np.mean((prediction - y) ** 2), rel=1e-5)
    assert values[1] == pytest.approx(np.mean(np.abs(prediction - y)), rel=1e-5)
    assert values[2] == pytest.approx(np.sqrt(np.mean((prediction - y) ** 2)), rel=1e-5)


def test_evaluate_without_metrics_returns_a_float():
    x, y = _regression_data(20)
    model = _mlp()
    model.compile("sgd", "mse")
    loss = model.evaluate(x, y, verbose=0)
    assert isinstance(loss, float)


def test_predict_returns_numpy_of_the_right_shape_with_a_partial_last_batch():
    x, _ = _regression_data(50)
    model = _mlp(outputs=3)
    out = model.predict(x, batch_size=16, verbose=0)  # batches 16, 16, 16, 2
    assert isinstance(out, np.ndarray)
    assert out.shape == (50, 3)
    np.testing.assert_allclose(out, np.asarray(model(x)), rtol=1e-5, atol=1e-6)


class _TwoHeads(lm.Model):
    def __init__(self, as_dict):
        super().__init__()
        self.as_dict = as_dict
        self.a = lm.layers.Dense(2)
        self.b = lm.layers.Dense(3)

    def call(self, x):
        if self.as_dict:
            return {"a": self.a(x), "b": self.b(x)}
        return [self.a(x), self.b(x)]


def test_predict_keeps_dict_outputs():
    x, _ = _regression_data(50)
    out = _TwoHeads(as_dict=True).predict(x, batch_size=16, verbose=0)
    assert isinstance(out, dict) and set(out) == {"a", "b"}
    assert isinstance(out["a"], np.ndarray) and out["a"].shape == (50, 2)
    assert isinstance(out["b"], np.ndarray) and out["b"].shape == (50, 3)


def test_predict_keeps_list_outputs():
    x, _ = _regression_data(50)
    out = _TwoHeads(as_dict=False).predict(x, batch_size=16, verbose=0)
    assert isinstance(out, (list, tuple)) and len(out) == 2
    assert [type(o) for o in out] == [np.ndarray, np.ndarray]
    assert [o.shape for o in out] == [(50, 2), (50, 3)]


def test_train_on_batch_uses_the_whole_batch():
    x, y = _regression_data(100)  # more than the default batch size of 32
    model = _mlp()
    reference = _mlp()
    for m in (model, reference):
        m.compile(lm.optimizers.SGD(0.05), "mse")
    reference.set_weights(model.get_weights())
    before = model.predict(x, verbose=0)
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(np.mean((before - y) ** 2), rel=1e-5)
    # One SGD step on all 100 samples: what a single-batch epoch does.
    reference.fit(x, y, batch_size=100, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_test_on_batch_and_predict_on_batch_use_the_whole_batch():
    x, y = _regression_data(100)
    model = _mlp(outputs=1)
    model.compile("sgd", "mse", metrics=[lm.metrics.MeanAbsoluteError()])
    out = model.predict_on_batch(x)
    assert isinstance(out, np.ndarray) and out.shape == (100, 1)
    np.testing.assert_allclose(out, np.asarray(model(x)), rtol=1e-6)
    loss, mae = model.test_on_batch(x, y)
    assert loss == pytest.approx(np.mean((out - y) ** 2), rel=1e-5)
    assert mae == pytest.approx(np.mean(np.abs(out - y)), rel=1e-5)
    logs = model.test_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "mean_absolute_error"}


def test_on_batch_results_are_for_that_batch_only_like_keras_3():
    # Keras 3 resets the metrics in train_on_batch / test_on_batch: each call reports the
    # batch it was given, not a running mean over earlier calls (or an earlier evaluate).
    x, y = _regression_data(40)
    model = _mlp()
    model.compile(lm.optimizers.SGD(0.0), "mse")
    model.evaluate(x[:20], y[:20], verbose=0)
    expected_second_half = float(np.mean((model.predict(x[20:], verbose=0) - y[20:]) ** 2))
    assert model.test_on_batch(x[20:], y[20:]) == pytest.approx(expected_second_half, rel=1e-5)
    model.test_on_batch(x[:20], y[:20])
    assert model.train_on_batch(x[20:], y[20:]) == pytest.approx(expected_second_half, rel=1e-5)


class _SubclassedMLP(lm.Model):
    def __init__(self):
        super().__init__()
        self.hidden = lm.layers.Dense(16, activation="tanh")
        self.out = lm.layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x))


def _losses_fall(model, x, y):
    model.compile(lm.optimizers.Adam(0.02), "mse")
    history = model.fit(x, y, batch_size=16, epochs=10, verbose=0)
    return history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_subclassed_model_trains():
    lm.random.set_seed(0)
    x, y = _regression_data(64)
    model = _SubclassedMLP()
    assert _losses_fall(model, x, y)
    assert len(model.trainable_weights) == 4


def test_sequential_from_a_list_trains():
    x, y = _regression_data(64)
    lm.random.set_seed(0)
    model = lm.Sequential([lm.layers.Dense(16, activation="tanh"), lm.layers.Dense(1)])
    assert _losses_fall(model, x, y)


def test_sequential_add_with_input_shape_builds_at_once_and_trains():
    x, y = _regression_data(64)
    lm.random.set_seed(0)
    model = lm.Sequential()
    model.add(lm.layers.Dense(16, activation="tanh", input_shape=(4,)))
    assert model.built
    assert [tuple(w.shape) for w in model.weights] == [(4, 16), (16,)]
    model.add(lm.layers.Dense(1))
    assert [tuple(w.shape) for w in model.weights] == [(4, 16), (16,), (16, 1), (1,)]
    assert model.count_params() == 4 * 16 + 16 + 16 + 1
    assert _losses_fall(model, x, y)


def test_predict_returns_host_float32_arrays():
    # predict returns host NumPy, not device arrays or Variables.
    x, _ = _regression_data(10)
    model = _mlp()
    out = model.predict(x, verbose=0)
    assert not isinstance(out, jax.Array)
    assert np.all(np.isfinite(out))
    assert jnp.asarray(out).dtype == jnp.float32


@pytest.mark.parametrize("arguments", [{"loss": "mean_squared_eror"}, {"loss": "mse", "metrics": ["maee"]},
                                       {"loss": {"out": "nope"}}])
def test_compile_refuses_unknown_loss_and_metric_names_at_once(arguments):
    model = lm.Sequential([lm.Input((2,)), lm.layers.Dense(1)])
    with pytest.raises(ValueError, match="Unknown"):
        model.compile(optimizer="sgd", **arguments)
