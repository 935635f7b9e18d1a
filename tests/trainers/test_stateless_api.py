"""The Keras-on-JAX stateless API: code from the Keras JAX guides runs unchanged on lamina.

The guides' code (keras-io guides/writing_a_custom_training_loop_in_jax.py and
guides/custom_train_step_in_jax.py) is written once per test as a function of the library
module (``keras`` or ``lamina``), run with both on the same initial weights, and the losses,
metrics and weights compared step by step.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

RTOL, ATOL = 2e-5, 1e-6


def _digits(n=48, features=12, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    labels = rng.integers(0, classes, size=n)
    return x, np.eye(classes, dtype="float32")[labels]


def _get_model(lib, features=12, classes=4, regularize=False):
    # The guide's get_model(), smaller; with `regularize`, its ActivityRegularizationLayer.
    class ActivityRegularizationLayer(lib.layers.Layer):
        def call(self, inputs):
            self.add_loss(1e-2 * jnp.sum(inputs))
            return inputs

    inputs = lib.Input(shape=(features,), name="digits")
    x = lib.layers.Dense(16, activation="relu")(inputs)
    if regularize:
        x = ActivityRegularizationLayer()(x)
    x = lib.layers.Dense(16, activation="relu")(x)
    outputs = lib.layers.Dense(classes, name="predictions")(x)
    return lib.Model(inputs=inputs, outputs=outputs)


def _pair(keras, **kwargs):
    theirs = _get_model(keras, **kwargs)
    ours = _get_model(lm, **kwargs)
    ours.set_weights(theirs.get_weights())
    return theirs, ours


# -- defect 8: stateless_call(return_losses=True) ----------------------------------------------
def test_stateless_call_returns_the_add_loss_losses_like_keras(keras):
    theirs, ours = _pair(keras, regularize=True)
    x, _ = _digits(8)

    def losses(model):
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        eager = model.stateless_call(tv, ntv, x, return_losses=True)[2]
        jitted = jax.jit(lambda tv, ntv: model.stateless_call(tv, ntv, x, return_losses=True)[2])(tv, ntv)
        return eager, jitted

    (k_eager, k_jit), (l_eager, l_jit) = losses(theirs), losses(ours)
    assert len(l_eager) == len(k_eager) == 1
    np.testing.assert_allclose(np.asarray(l_eager), np.asarray(k_eager), rtol=RTOL)
    np.testing.assert_allclose(np.asarray(l_jit), np.asarray(k_jit), rtol=RTOL)


def test_stateless_call_losses_follow_the_given_weights_and_include_regularizers():
    layer = lm.layers.Dense(2, kernel_initializer="ones", kernel_regularizer=lm.regularizers.L2(0.5))
    x = np.ones((1, 3), "float32")
    layer(x)
    kernel = jnp.full((3, 2), 2.0)
    _, _, losses = layer.stateless_call([kernel, jnp.zeros(2)], [], x, return_losses=True)
    assert [float(v) for v in losses] == [pytest.approx(0.5 * 4.0 * 6)]


# -- the custom training loop guide -----------------------------------------------------------
def _guide_loop(lib, model, x, y, *, regularize=False, batch_size=8):
    """writing_a_custom_training_loop_in_jax, sections 1-3, with `lib` for `keras`."""
    optimizer = lib.optimizers.Adam(learning_rate=1e-3)
    loss_fn = lib.losses.CategoricalCrossentropy(from_logits=True)
    train_acc_metric = lib.metrics.CategoricalAccuracy()
    val_acc_metric = lib.metrics.CategoricalAccuracy()

    def compute_loss_and_updates(trainable_variables, non_trainable_variables, metric_variables, x, y):
        y_pred, non_trainable_variables, losses = model.stateless_call(
            trainable_variables, non_trainable_variables, x, return_losses=True
        )
        loss = loss_fn(y, y_pred)
        if regularize and losses:
            loss += jax.numpy.sum(jnp.asarray(losses))
        metric_variables = train_acc_metric.stateless_update_state(metric_variables, y, y_pred)
        return loss, (non_trainable_variables, metric_variables)

    grad_fn = jax.value_and_grad(compute_loss_and_updates, has_aux=True)

    @jax.jit
    def train_step(state, data):
        trainable_variables, non_trainable_variables, optimizer_variables, metric_variables = state
        x, y = data
        (loss, (non_trainable_variables, metric_variables)), grads = grad_fn(
            trainable_variables, non_trainable_variables, metric_variables, x, y
        )
        trainable_variables, optimizer_variables = optimizer.stateless_apply(
            optimizer_variables, grads, trainable_variables
        )
        return loss, (trainable_variables, non_trainable_variables, optimizer_variables, metric_variables)

    @jax.jit
    def eval_step(state, data):
        trainable_variables, non_trainable_variables, metric_variables = state
        x, y = data
        y_pred, non_trainable_variables = model.stateless_call(trainable_variables, non_trainable_variables, x)
        loss = loss_fn(y, y_pred)
        metric_variables = val_acc_metric.stateless_update_state(metric_variables, y, y_pred)
        return loss, (trainable_variables, non_trainable_variables, metric_variables)

    optimizer.build(model.trainable_variables)
    # The guide passes the variables themselves to jax.jit: lamina's are pytrees of their
    # value; Keras's need `.value` on this JAX (it no longer converts them by __jax_array__).
    own = (lambda variables: variables) if lib is lm else (lambda variables: [v.value for v in variables])
    state = (own(model.trainable_variables), own(model.non_trainable_variables),
             own(optimizer.variables), own(train_acc_metric.variables))
    losses, accuracies = [], []
    for start in range(0, len(x), batch_size):
        loss, state = train_step(state, (x[start:start + batch_size], y[start:start + batch_size]))
        losses.append(float(loss))
        for variable, value in zip(train_acc_metric.variables, state[3]):
            variable.assign(value)
        accuracies.append(float(train_acc_metric.result()))
    trainable_variables, non_trainable_variables, optimizer_variables, _ = state
    eval_state = (trainable_variables, non_trainable_variables, own(val_acc_metric.variables))
    val_losses = []
    for start in range(0, len(x), batch_size):
        loss, eval_state = eval_step(eval_state, (x[start:start + batch_size], y[start:start + batch_size]))
        val_losses.append(float(loss))
    for variable, value in zip(val_acc_metric.variables, eval_state[2]):
        variable.assign(value)
    weights_before = [np.asarray(v) for v in model.trainable_variables]
    for variable, value in zip(model.trainable_variables, trainable_variables):
        variable.assign(value)
    return {
        "losses": losses, "accuracies": accuracies, "val_losses": val_losses,
        "val_accuracy": float(val_acc_metric.result()),
        "weights_before": weights_before,
        "weights": [np.asarray(v) for v in model.trainable_variables],
        "optimizer": [np.asarray(v) for v in optimizer_variables],
    }


def test_custom_training_loop_guide_matches_keras_step_by_step(keras):
    # Sections 1-3 of the guide; the last one (add_loss through stateless_call) includes
    # the others, so the model has the activity-regularization layer.
    theirs, ours = _pair(keras, regularize=True)
    x, y = _digits(24)
    k = _guide_loop(keras, theirs, x, y, regularize=True)
    lam = _guide_loop(lm, ours, x, y, regularize=True)
    assert len(lam["losses"]) == 3
    np.testing.assert_allclose(lam["losses"], k["losses"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(lam["accuracies"], k["accuracies"], rtol=RTOL)
    np.testing.assert_allclose(lam["val_losses"], k["val_losses"], rtol=RTOL, atol=ATOL)
    assert lam["val_accuracy"] == pytest.approx(k["val_accuracy"])
    # The loop is stateless: the model kept its weights until they were assigned back.
    for before, kb in zip(lam["weights_before"], k["weights_before"]):
        np.testing.assert_allclose(before, kb, rtol=RTOL)
    for w, kw in zip(lam["weights"], k["weights"]):
        np.testing.assert_allclose(w, kw, rtol=1e-4, atol=1e-6)
    assert not np.allclose(lam["weights"][0], lam["weights_before"][0])
    assert int(lam["optimizer"][0]) == int(k["optimizer"][0]) == 3  # iterations


# -- the building blocks ------------------------------------------------------------------------
def test_optimizer_stateless_apply_matches_keras_and_changes_nothing(keras):
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(3, 2)).astype("float32")
    grads = [rng.normal(size=(3, 2)).astype("float32") for _ in range(3)]

    def run(lib):
        w = lib.Variable(w0)
        optimizer = lib.optimizers.Adam(learning_rate=0.1)
        optimizer.build([w])
        values, opt_values = [w.value], [v.value for v in optimizer.variables]
        step = jax.jit(optimizer.stateless_apply)
        for g in grads:
            values, opt_values = step(opt_values, [g], values)
        assert np.array_equal(np.asarray(w.value), w0) and int(optimizer.iterations.value) == 0
        return np.asarray(values[0]), int(opt_values[0])

    (theirs, k_iterations), (ours, l_iterations) = run(keras), run(lm)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    assert l_iterations == k_iterations == 3


def test_optimizer_stateless_apply_needs_a_built_optimizer_and_aligned_values():
    w = lm.Variable(np.ones(2, "float32"))
    optimizer = lm.optimizers.SGD(0.1)
    with pytest.raises(ValueError, match=r"must be built.*optimizer.build"):
        optimizer.stateless_apply([], [jnp.ones(2)], [w.value])
    optimizer.build([w])
    with pytest.raises(ValueError, match=r"expected 2 values \(one per entry of optimizer.variables"):
        optimizer.stateless_apply([optimizer.iterations.value], [jnp.ones(2)], [w.value])


@pytest.mark.parametrize("make, on_values", [
    (lambda lib: lib.metrics.Mean(), True),
    (lambda lib: lib.metrics.MeanAbsoluteError(), False),
    (lambda lib: lib.metrics.CategoricalAccuracy(), False),
])
def test_metric_stateless_methods_match_keras_and_leave_the_metric_alone(keras, make, on_values):
    y, _ = _digits(6, features=4)
    y_true, y_pred = jax.nn.softmax(y * 3), jax.nn.softmax(y)

    def run(lib):
        metric = make(lib)
        values = metric.stateless_reset_state()
        update = jax.jit(lambda values, a, b: metric.stateless_update_state(values, a, b))
        if on_values:
            update = jax.jit(lambda values, a, b: metric.stateless_update_state(values, a[:, 0]))
        for part in (slice(0, 3), slice(3, 6)):
            values = update(values, y_true[part], y_pred[part])
        untouched = [np.asarray(v) for v in metric.variables]
        return float(metric.stateless_result(values)), untouched

    (theirs, _), (ours, untouched) = run(keras), run(lm)
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert all(not a.any() for a in untouched)


def test_metric_stateless_update_state_names_the_metric_on_a_wrong_state():
    metric = lm.metrics.Mean(name="running")
    with pytest.raises(ValueError, match=r"metric 'running'.*one value per entry.*\(2, in that order\); received 1"):
        metric.stateless_update_state([jnp.zeros(())], jnp.ones(3))


def test_compiled_metrics_container_has_the_stateless_methods_like_keras():
    x, y = _digits(8)
    model = _get_model(lm)
    model.compile("sgd", "categorical_crossentropy", metrics=["mae", "accuracy"])
    model.evaluate(x, y, batch_size=8, verbose=0)  # builds the container
    container = model.metrics[1]
    y_pred = model.predict(x, verbose=0)
    values = container.stateless_reset_state()
    values = jax.jit(lambda values: container.stateless_update_state(values, y, y_pred))(values)
    ours = container.stateless_result(values)
    container.reset_state()
    container.update_state(y, y_pred)
    expected = container.result()
    assert container.name == "compile_metrics" and ours.keys() == expected.keys() == {"mae", "accuracy"}
    for key in expected:
        assert float(ours[key]) == pytest.approx(float(expected[key]), rel=1e-6)


def test_stateless_compute_loss_and_metrics_variables_match_keras(keras):
    theirs, ours = _pair(keras, regularize=True)
    x, y = _digits(8)
    results = []
    for lib, model in ((keras, theirs), (lm, ours)):
        model.extra = lib.metrics.Mean(name="extra")
        model.compile("sgd", lib.losses.CategoricalCrossentropy(from_logits=True), metrics=["mae"])
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)  # builds the metrics
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        mv = [v.value for v in model.metrics_variables]
        y_pred, ntv = model.stateless_call(tv, ntv, x)
        loss, (tv2, ntv2, mv2) = model.stateless_compute_loss(tv, ntv, mv, x=x, y=y, y_pred=y_pred)
        results.append(([m.name for m in model.metrics], float(loss), len(mv2)))
    (k_names, k_loss, k_count), (l_names, l_loss, l_count) = results
    assert l_names == k_names == ["loss", "compile_metrics", "extra"]
    assert l_count == k_count
    assert l_loss == pytest.approx(k_loss, rel=1e-5)


# -- the custom train_step guide (train_step(self, state, data) inside fit) ---------------------
def _guide_models(lib, lower_level=False, with_test_step=False):
    """custom_train_step_in_jax: the guide's CustomModel classes, subclassed (Dense(1))."""

    class Base(lib.Model):
        def __init__(self):
            super().__init__()
            self.dense = lib.layers.Dense(1)
            if lower_level:
                self.loss_tracker = lib.metrics.Mean(name="loss")
                self.mae_metric = lib.metrics.MeanAbsoluteError(name="mae")
                self.loss_fn = lib.losses.MeanSquaredError()

        def call(self, x, training=False):
            return self.dense(x)

    class FirstExample(Base):
        def compute_loss_and_updates(self, trainable_variables, non_trainable_variables,
                                     metrics_variables, x, y, sample_weight, training=False):
            y_pred, non_trainable_variables = self.stateless_call(
                trainable_variables, non_trainable_variables, x, training=training)
            loss, (trainable_variables, non_trainable_variables, metrics_variables) = (
                self.stateless_compute_loss(
                    trainable_variables, non_trainable_variables, metrics_variables, x=x, y=y,
                    y_pred=y_pred, sample_weight=sample_weight, training=training))
            return loss, (y_pred, non_trainable_variables, metrics_variables)

        def train_step(self, state, data):
            trainable_variables, non_trainable_variables, optimizer_variables, metrics_variables = state
            x, y, sample_weight = lib.utils.unpack_x_y_sample_weight(data)
            grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
            (loss, (y_pred, non_trainable_variables, metrics_variables)), grads = grad_fn(
                trainable_variables, non_trainable_variables, metrics_variables, x, y,
                sample_weight, training=True)
            trainable_variables, optimizer_variables = self.optimizer.stateless_apply(
                optimizer_variables, grads, trainable_variables)
            new_metrics_vars, logs = [], {}
            for metric in self.metrics:
                this_metric_vars = metrics_variables[
                    len(new_metrics_vars): len(new_metrics_vars) + len(metric.variables)]
                if metric.name == "loss":
                    this_metric_vars = metric.stateless_update_state(
                        this_metric_vars, loss, sample_weight=sample_weight)
                else:
                    this_metric_vars = metric.stateless_update_state(
                        this_metric_vars, y, y_pred, sample_weight=sample_weight)
                logs[metric.name] = metric.stateless_result(this_metric_vars)
                new_metrics_vars += this_metric_vars
            return logs, (trainable_variables, non_trainable_variables, optimizer_variables,
                          new_metrics_vars)

    class LowerLevel(Base):
        def compute_loss_and_updates(self, trainable_variables, non_trainable_variables, x, y,
                                     sample_weight, training=False):
            y_pred, non_trainable_variables = self.stateless_call(
                trainable_variables, non_trainable_variables, x, training=training)
            loss = self.loss_fn(y, y_pred, sample_weight=sample_weight)
            return loss, (y_pred, non_trainable_variables)

        def train_step(self, state, data):
            trainable_variables, non_trainable_variables, optimizer_variables, metrics_variables = state
            x, y, sample_weight = lib.utils.unpack_x_y_sample_weight(data)
            grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
            (loss, (y_pred, non_trainable_variables)), grads = grad_fn(
                trainable_variables, non_trainable_variables, x, y, sample_weight, training=True)
            trainable_variables, optimizer_variables = self.optimizer.stateless_apply(
                optimizer_variables, grads, trainable_variables)
            loss_tracker_vars = metrics_variables[: len(self.loss_tracker.variables)]
            mae_metric_vars = metrics_variables[len(self.loss_tracker.variables):]
            loss_tracker_vars = self.loss_tracker.stateless_update_state(
                loss_tracker_vars, loss, sample_weight=sample_weight)
            mae_metric_vars = self.mae_metric.stateless_update_state(
                mae_metric_vars, y, y_pred, sample_weight=sample_weight)
            logs = {self.loss_tracker.name: self.loss_tracker.stateless_result(loss_tracker_vars),
                    self.mae_metric.name: self.mae_metric.stateless_result(mae_metric_vars)}
            return logs, (trainable_variables, non_trainable_variables, optimizer_variables,
                          loss_tracker_vars + mae_metric_vars)

        @property
        def metrics(self):
            return [self.loss_tracker, self.mae_metric]

    class WithTestStep(Base):
        def test_step(self, state, data):
            x, y, sample_weight = lib.utils.unpack_x_y_sample_weight(data)
            trainable_variables, non_trainable_variables, metrics_variables = state
            y_pred, non_trainable_variables = self.stateless_call(
                trainable_variables, non_trainable_variables, x, training=False)
            loss, (trainable_variables, non_trainable_variables, metrics_variables) = (
                self.stateless_compute_loss(
                    trainable_variables, non_trainable_variables, metrics_variables, x=x, y=y,
                    y_pred=y_pred, sample_weight=sample_weight, training=False))
            new_metrics_vars, logs = [], {}
            for metric in self.metrics:
                this_metric_vars = metrics_variables[
                    len(new_metrics_vars): len(new_metrics_vars) + len(metric.variables)]
                if metric.name == "loss":
                    this_metric_vars = metric.stateless_update_state(
                        this_metric_vars, loss, sample_weight=sample_weight)
                else:
                    this_metric_vars = metric.stateless_update_state(
                        this_metric_vars, y, y_pred, sample_weight=sample_weight)
                logs[metric.name] = metric.stateless_result(this_metric_vars)
                new_metrics_vars += this_metric_vars
            return logs, (trainable_variables, non_trainable_variables, new_metrics_vars)

    if with_test_step:
        return WithTestStep()
    return LowerLevel() if lower_level else FirstExample()


def _regression(n=64, features=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, features)).astype("float32"), rng.random((n, 1)).astype("float32")


def _built_pair(keras, x, **kwargs):
    theirs, ours = _guide_models(keras, **kwargs), _guide_models(lm, **kwargs)
    theirs(x[:1])
    ours(x[:1])
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def test_guide_first_example_fit_matches_keras(keras):
    x, y = _regression()
    theirs, ours = _built_pair(keras, x)
    histories = []
    for model in (theirs, ours):
        model.compile(optimizer="adam", loss="mse", metrics=["mae"])
        histories.append(model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history)
    k, lam = histories
    assert set(lam) == set(k) == {"loss", "mae"}  # the "compile_metrics" dict is flattened
    for key in k:
        np.testing.assert_allclose(lam[key], k[key], rtol=RTOL, atol=ATOL)
    for w, kw in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(w, kw, rtol=1e-4, atol=1e-6)
    assert int(ours.optimizer.iterations.value) == 12


def test_guide_lower_level_example_fit_matches_keras(keras):
    # compile() with the optimizer only; loss and metrics live in the subclass.
    x, y = _regression()
    theirs, ours = _built_pair(keras, x, lower_level=True)
    histories = []
    for model in (theirs, ours):
        model.compile(optimizer="adam")
        histories.append(model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history)
    k, lam = histories
    assert set(lam) == set(k) == {"loss", "mae"}
    for key in k:  # the metrics are reset each epoch, so epoch 3 is not a running mean
        np.testing.assert_allclose(lam[key], k[key], rtol=RTOL, atol=ATOL)


def test_guide_test_step_evaluate_matches_keras(keras):
    x, y = _regression(48)
    theirs, ours = _built_pair(keras, x, with_test_step=True)
    results = []
    for model in (theirs, ours):
        model.compile(loss="mse", metrics=["mae"])
        results.append(model.evaluate(x, y, batch_size=16, return_dict=True, verbose=0))
    k, lam = results
    assert lam.keys() == k.keys() == {"loss", "mae"}
    for key in k:
        assert lam[key] == pytest.approx(k[key], rel=RTOL)


def test_stateless_train_step_in_blocks_equals_one_step_per_call():
    x, y = _regression(64)
    results = []
    for steps_per_execution in (1, 4):
        lm.random.set_seed(3)
        model = _guide_models(lm)
        model.compile(optimizer="adam", loss="mse", metrics=["mae"], steps_per_execution=steps_per_execution)
        history = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history
        results.append((history, [w.copy() for w in model.get_weights()]))
    (h1, w1), (h4, w4) = results
    for key in h1:
        np.testing.assert_allclose(h4[key], h1[key], rtol=1e-5)
    for a, b in zip(w4, w1):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_stateless_predict_step_runs_in_predict():
    class Doubled(lm.Model):
        def __init__(self):
            super().__init__()
            self.dense = lm.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

        def predict_step(self, state, data):
            trainable_variables, non_trainable_variables = state
            x, _, _ = lm.utils.unpack_x_y_sample_weight(data)
            outputs, non_trainable_variables = self.stateless_call(
                trainable_variables, non_trainable_variables, x)
            return outputs * 2.0, non_trainable_variables

    x, _ = _regression(10, features=3)
    model = Doubled()
    np.testing.assert_allclose(model.predict(x, batch_size=4, verbose=0), 2.0 * np.asarray(model(x)),
                               rtol=1e-5, atol=1e-6)


def test_stateless_train_step_returning_a_wrong_state_is_a_clear_error():
    class Wrong(lm.Model):
        def __init__(self):
            super().__init__()
            self.dense = lm.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def train_step(self, state, data):
            trainable_variables, non_trainable_variables, optimizer_variables, _ = state
            return {"loss": 0.0}, (trainable_variables, non_trainable_variables, optimizer_variables)

    x, y = _regression(8)
    model = Wrong()
    model.compile("sgd")
    with pytest.raises(ValueError, match=r"Wrong.train_step\(state, data\) must return \(logs, state\) with "
                                         r"state = \(trainable_variables, non_trainable_variables, "
                                         r"optimizer_variables, metrics_variables\); the returned state is a tuple of 3"):
        model.fit(x, y, batch_size=8, verbose=0)


def _builtin_loss_model(lib):
    """A train_step(state, data) on the built-in compute_loss_and_updates, with add_loss."""

    class Penalized(lib.Model):
        def __init__(self):
            super().__init__()
            self.dense = lib.layers.Dense(1)

        def call(self, x, training=False):
            out = self.dense(x)
            self.add_loss(0.1 * jnp.mean(jnp.abs(out)))
            return out

        def train_step(self, state, data):
            trainable_variables, non_trainable_variables, optimizer_variables, metrics_variables = state
            x, y, sample_weight = lib.utils.unpack_x_y_sample_weight(data)
            grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
            (_, (loss, _, non_trainable_variables, metrics_variables)), grads = grad_fn(
                trainable_variables, non_trainable_variables, metrics_variables, x, y, sample_weight,
                training=True, optimizer_variables=optimizer_variables)
            trainable_variables, optimizer_variables = self.optimizer.stateless_apply(
                optimizer_variables, grads, trainable_variables)
            # Not "loss": Keras would then report its (here never updated) loss tracker.
            return {"batch_loss": loss}, (trainable_variables, non_trainable_variables, optimizer_variables,
                                    metrics_variables)

    return Penalized()


def test_builtin_compute_loss_and_updates_counts_add_loss_like_keras(keras):
    x, y = _regression(32)
    theirs, ours = _builtin_loss_model(keras), _builtin_loss_model(lm)
    theirs(x[:1])
    ours(x[:1])
    ours.set_weights(theirs.get_weights())
    histories = []
    for model in (theirs, ours):
        model.compile(optimizer="sgd", loss="mse")
        histories.append(model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history)
    np.testing.assert_allclose(histories[1]["batch_loss"], histories[0]["batch_loss"], rtol=RTOL)
    for w, kw in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(w, kw, rtol=1e-5, atol=1e-7)


def test_the_stateless_methods_take_the_variables_themselves_as_values():
    # The guides pass `metric.variables`, `model.trainable_variables` and `optimizer.variables`
    # straight in, eagerly too: each Variable stands for its current value.
    model = _get_model(lm)
    x, y = _digits(4)
    metric = lm.metrics.CategoricalAccuracy()
    y_pred, _ = model.stateless_call(model.trainable_variables, model.non_trainable_variables, x)
    np.testing.assert_allclose(np.asarray(y_pred), np.asarray(model(x)), rtol=1e-6)
    values = metric.stateless_update_state(metric.variables, y, y_pred)
    assert float(metric.stateless_result(values)) == pytest.approx(
        float(np.mean(np.argmax(y, 1) == np.argmax(np.asarray(y_pred), 1))))
    assert float(metric.stateless_result(metric.variables)) == 0.0
    optimizer = lm.optimizers.SGD(0.1)
    optimizer.build(model.trainable_variables)
    grads = [jnp.ones(v.shape) for v in model.trainable_variables]
    new, _ = optimizer.stateless_apply(optimizer.variables, grads, model.trainable_variables)
    np.testing.assert_allclose(np.asarray(new[0]), np.asarray(model.trainable_variables[0]) - 0.1, rtol=1e-6)
    model.compile("sgd", "mse")
    loss, _ = model.stateless_compute_loss(model.trainable_variables, model.non_trainable_variables,
                                           model.metrics_variables, x, y, y_pred)
    assert float(loss) == pytest.approx(float(np.mean((np.asarray(y_pred) - y) ** 2)), rel=1e-5)
