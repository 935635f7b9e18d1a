"""Port of the Keras 3 guide "Customizing what happens in fit() with JAX"
(keras-team/keras-io, guides/custom_train_step_in_jax.py).

The guide writes ``train_step(self, state, data)`` / ``test_step(self, state, data)`` in the
stateless Keras-on-JAX style (``stateless_call``, ``stateless_compute_loss``,
``optimizer.stateless_apply``, ``metric.stateless_update_state``); lamina runs that style
inside ``fit``/``evaluate`` too. Translation: ``keras`` -> ``lm``; data and epochs shrunk.
Each model class is written once and built on ``lm.Model`` and on ``keras.Model``, so every
section's logged numbers are compared with Keras 3 (same initial weights, same batches).

No section is left out.
"""

import jax
import numpy as np
import pytest

import lamina as lm


@pytest.fixture(scope="module")
def K():
    import keras

    return keras


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.random((96, 32)).astype("float32")
    y = rng.random((96, 1)).astype("float32")
    return x, y


def first_simple_example_class(k):
    """## A first simple example: the guide's ``CustomModel`` on ``k.Model``."""

    class CustomModel(k.Model):
        def compute_loss_and_updates(
            self,
            trainable_variables,
            non_trainable_variables,
            metrics_variables,
            x,
            y,
            sample_weight,
            training=False,
        ):
            y_pred, non_trainable_variables = self.stateless_call(
                trainable_variables,
                non_trainable_variables,
                x,
                training=training,
            )
            loss, (
                trainable_variables,
                non_trainable_variables,
                metrics_variables,
            ) = self.stateless_compute_loss(
                trainable_variables,
                non_trainable_variables,
                metrics_variables,
                x=x,
                y=y,
                y_pred=y_pred,
                sample_weight=sample_weight,
                training=training,
            )
            return loss, (y_pred, non_trainable_variables, metrics_variables)

        def train_step(self, state, data):
            (
                trainable_variables,
                non_trainable_variables,
                optimizer_variables,
                metrics_variables,
            ) = state
            x, y, sample_weight = k.utils.unpack_x_y_sample_weight(data)

            # Get the gradient function.
            grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)

            # Compute the gradients.
            (loss, (y_pred, non_trainable_variables, metrics_variables)), grads = grad_fn(
                trainable_variables,
                non_trainable_variables,
                metrics_variables,
                x,
                y,
                sample_weight,
                training=True,
            )

            # Update trainable variables and optimizer variables.
            trainable_variables, optimizer_variables = self.optimizer.stateless_apply(
                optimizer_variables, grads, trainable_variables
            )

            # Update metrics.
            new_metrics_vars = []
            logs = {}
            for metric in self.metrics:
                this_metric_vars = metrics_variables[
                    len(new_metrics_vars) : len(new_metrics_vars) + len(metric.variables)
                ]
                if metric.name == "loss":
                    this_metric_vars = metric.stateless_update_state(
                        this_metric_vars, loss, sample_weight=sample_weight
                    )
                else:
                    this_metric_vars = metric.stateless_update_state(
                        this_metric_vars, y, y_pred, sample_weight=sample_weight
                    )
                logs[metric.name] = metric.stateless_result(this_metric_vars)
                new_metrics_vars += this_metric_vars

            # Return metric logs and updated state variables.
            state = (
                trainable_variables,
                non_trainable_variables,
                optimizer_variables,
                new_metrics_vars,
            )
            return logs, state

    return CustomModel


def lower_level_class(k):
    """## Going lower-level: loss and metrics tracked by hand, ``compile`` sets the optimizer."""

    class CustomModel(k.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_tracker = k.metrics.Mean(name="loss")
            self.mae_metric = k.metrics.MeanAbsoluteError(name="mae")
            self.loss_fn = k.losses.MeanSquaredError()

        def compute_loss_and_updates(
            self,
            trainable_variables,
            non_trainable_variables,
            x,
            y,
            sample_weight,
            training=False,
        ):
            y_pred, non_trainable_variables = self.stateless_call(
                trainable_variables,
                non_trainable_variables,
                x,
                training=training,
            )
            loss = self.loss_fn(y, y_pred, sample_weight=sample_weight)
            return loss, (y_pred, non_trainable_variables)

        def train_step(self, state, data):
            (
                trainable_variables,
                non_trainable_variables,
                optimizer_variables,
                metrics_variables,
            ) = state
            x, y, sample_weight = k.utils.unpack_x_y_sample_weight(data)

            # Get the gradient function.
            grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)

            # Compute the gradients.
            (loss, (y_pred, non_trainable_variables)), grads = grad_fn(
                trainable_variables,
                non_trainable_variables,
                x,
                y,
                sample_weight,
                training=True,
            )

            # Update trainable variables and optimizer variables.
            trainable_variables, optimizer_variables = self.optimizer.stateless_apply(
                optimizer_variables, grads, trainable_variables
            )

            # Update metrics.
            loss_tracker_vars = metrics_variables[: len(self.loss_tracker.variables)]
            mae_metric_vars = metrics_variables[len(self.loss_tracker.variables) :]

            loss_tracker_vars = self.loss_tracker.stateless_update_state(
                loss_tracker_vars, loss, sample_weight=sample_weight
            )
            mae_metric_vars = self.mae_metric.stateless_update_state(
                mae_metric_vars, y, y_pred, sample_weight=sample_weight
            )

            logs = {}
            logs[self.loss_tracker.name] = self.loss_tracker.stateless_result(
                loss_tracker_vars
            )
            logs[self.mae_metric.name] = self.mae_metric.stateless_result(mae_metric_vars)

            new_metrics_vars = loss_tracker_vars + mae_metric_vars

            # Return metric logs and updated state variables.
            state = (
                trainable_variables,
                non_trainable_variables,
                optimizer_variables,
                new_metrics_vars,
            )
            return logs, state

        @property
        def metrics(self):
            # We list our `Metric` objects here so that `reset_states()` can be
            # called automatically at the start of each epoch
            # or at the start of `evaluate()`.
            return [self.loss_tracker, self.mae_metric]

    return CustomModel


def evaluation_step_class(k):
    """## Providing your own evaluation step: ``test_step(self, state, data)``."""

    class CustomModel(k.Model):
        def test_step(self, state, data):
            # Unpack the data.
            x, y, sample_weight = k.utils.unpack_x_y_sample_weight(data)
            (
                trainable_variables,
                non_trainable_variables,
                metrics_variables,
            ) = state

            # Compute predictions and loss.
            y_pred, non_trainable_variables = self.stateless_call(
                trainable_variables,
                non_trainable_variables,
                x,
                training=False,
            )
            loss, (
                trainable_variables,
                non_trainable_variables,
                metrics_variables,
            ) = self.stateless_compute_loss(
                trainable_variables,
                non_trainable_variables,
                metrics_variables,
                x=x,
                y=y,
                y_pred=y_pred,
                sample_weight=sample_weight,
                training=False,
            )

            # Update metrics.
            new_metrics_vars = []
            logs = {}
            for metric in self.metrics:
                this_metric_vars = metrics_variables[
                    len(new_metrics_vars) : len(new_metrics_vars) + len(metric.variables)
                ]
                if metric.name == "loss":
                    this_metric_vars = metric.stateless_update_state(
                        this_metric_vars, loss, sample_weight=sample_weight
                    )
                else:
                    this_metric_vars = metric.stateless_update_state(
                        this_metric_vars, y, y_pred, sample_weight=sample_weight
                    )
                logs[metric.name] = metric.stateless_result(this_metric_vars)
                new_metrics_vars += this_metric_vars

            # Return metric logs and updated state variables.
            state = (
                trainable_variables,
                non_trainable_variables,
                new_metrics_vars,
            )
            return logs, state

    return CustomModel


def construct(k, make_class, weights=None):
    """The guide's construction: a Functional graph handed to the ``CustomModel`` subclass."""
    inputs = k.Input(shape=(32,))
    outputs = k.layers.Dense(1)(inputs)
    model = make_class(k)(inputs, outputs)
    if weights is not None:
        model.set_weights(weights)
    return model


def test_a_first_simple_example(data, K):
    """## A first simple example (stateless train_step with the compiled loss and metrics)."""
    x, y = data
    model = construct(lm, first_simple_example_class)
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    twin = construct(K, first_simple_example_class, model.get_weights())
    twin.compile(optimizer="adam", loss="mse", metrics=["mae"])

    # Just use `fit` as usual (no shuffling here, so that both see the same batches).
    history = model.fit(x, y, epochs=3, shuffle=False)
    expected = twin.fit(x, y, epochs=3, shuffle=False, verbose=0)
    assert sorted(history.history) == sorted(expected.history) == ["loss", "mae"]
    for name in ("loss", "mae"):
        np.testing.assert_allclose(history.history[name], expected.history[name], rtol=1e-4)
    assert history.history["loss"][2] < history.history["loss"][0]
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_going_lower_level(data, K):
    """## Going lower-level (own loss tracker and metric; ``compile`` only sets the optimizer)."""
    x, y = data
    model = construct(lm, lower_level_class)
    # We don't pass a loss or metrics here.
    model.compile(optimizer="adam")
    twin = construct(K, lower_level_class, model.get_weights())
    twin.compile(optimizer="adam")

    history = model.fit(x, y, epochs=5, shuffle=False)
    expected = twin.fit(x, y, epochs=5, shuffle=False, verbose=0)
    assert sorted(history.history) == ["loss", "mae"]
    for name in ("loss", "mae"):
        np.testing.assert_allclose(history.history[name], expected.history[name], rtol=1e-4)
    # The metrics are reset at the start of each epoch: the epoch's mean loss equals the
    # mean of its batch losses, not a running mean over the whole fit.
    assert history.history["loss"][4] < history.history["loss"][0]


def test_providing_your_own_evaluation_step(data, K):
    """## Providing your own evaluation step (stateless test_step in evaluate)."""
    x, y = data
    model = construct(lm, evaluation_step_class)
    model.compile(loss="mse", metrics=["mae"])

    # Evaluate with our custom test_step
    logs = model.evaluate(x, y, return_dict=True)
    assert sorted(logs) == ["loss", "mae"]
    pred = np.asarray(model.predict(x, verbose=0))
    assert logs["loss"] == pytest.approx(float(np.mean((pred - y) ** 2)), rel=1e-5)
    assert logs["mae"] == pytest.approx(float(np.mean(np.abs(pred - y))), rel=1e-5)

    twin = construct(K, evaluation_step_class, model.get_weights())
    twin.compile(loss="mse", metrics=["mae"])
    expected = twin.evaluate(x, y, return_dict=True, verbose=0)
    assert logs == pytest.approx(expected, rel=1e-5)
