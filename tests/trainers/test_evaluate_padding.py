"""``evaluate`` pads the last, partial batch and leaves the padding out (issue 10, item 4).

Before, every distinct last-batch size compiled the test step again. Now a batch size has two
programs: the step of a whole batch, and a padded step that a partial batch, padded to a whole
one, runs with the count of its real rows (the padding counts in neither the loss nor a
metric). Where that cannot be guaranteed (losses added in the call, a user's Metric class, a
call that writes state) evaluate falls back to exact batches; the results are right either way.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

# batch 8: partial batches of 5, 3 and 6 rows, each padded to 8; the longer list adds more,
# data with no partial batch and a lone partial batch.
_SIZES = (21, 19, 14)
_MORE_SIZES = (21, 19, 12, 14, 23, 8, 3)


def _check_sizes(make_model, compile_args, x, y, sample_weight=None, sizes=_SIZES):
    """Evaluate one model on ``sizes`` rows in turn against a twin that never pads (marked as
    a model whose trace refused padding: each partial batch runs exact, as before). ``make_model()`` and ``compile_args()`` give new, identical objects."""
    model, twin = make_model(), make_model()
    model.compile(**compile_args())
    twin.compile(**compile_args())
    twin._lm_padding_refused = "the reference: exact batches"
    for n in sizes:
        pick = lambda a, n=n: a[:n]  # noqa: E731
        xs, ys = pick(x), ({k: pick(v) for k, v in y.items()} if isinstance(y, dict) else pick(y))
        sw = None if sample_weight is None else pick(sample_weight)
        got = model.evaluate(xs, ys, sample_weight=sw, batch_size=8, verbose=0)
        want = twin.evaluate(xs, ys, sample_weight=sw, batch_size=8, verbose=0)
        for got_value, want_value in zip(got, want, strict=True):
            np.testing.assert_allclose(got_value, want_value, rtol=2e-5, atol=1e-6,
                                       err_msg=f"{model.metrics_names}, {n} rows")
    return model


def _classifier(seed=0, outputs=3, activation=None):
    lm.random.set_seed(seed)
    return lm.Sequential([lm.Input((6,)), lm.layers.Dense(8, activation="relu"),
                          lm.layers.Dense(outputs, activation=activation)])


def _maker(*args):
    return lambda: _classifier(*args)


def test_ten_input_sizes_compile_the_test_step_at_most_twice_and_match_numpy(compiles):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(140, 6)).astype("float32"), rng.integers(0, 3, 140)
    model = _classifier()
    model.compile("sgd", lm.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    logits = np.asarray(model(x), np.float64)
    model.evaluate(x[:40], y[:40], batch_size=16, verbose=0)  # a whole batch and a padded one
    before = compiles.steps()
    for n in (1, 5, 16, 17, 23, 40, 61, 77, 90, 131):
        loss, accuracy = model.evaluate(x[:n], y[:n], batch_size=16, verbose=0)
        shifted = logits[:n] - logits[:n].max(axis=1, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        np.testing.assert_allclose(loss, -log_softmax[np.arange(n), y[:n]].mean(), rtol=1e-5)
        np.testing.assert_allclose(accuracy, (logits[:n].argmax(axis=1) == y[:n]).mean(), rtol=1e-6)
    # Before: one program per distinct last-batch size (8 more here).
    assert compiles.steps() == before


def _metric_cases():
    rng = np.random.default_rng(1)
    binary = (rng.uniform(size=(23, 1)) > 0.5).astype("float32")
    labels = rng.integers(0, 3, 23)
    onehot = np.eye(3, dtype="float32")[labels]
    targets = rng.normal(size=(23, 3)).astype("float32")
    m = lm.metrics
    return {
        "binary": (_maker(1, 1, "sigmoid"), binary, "binary_crossentropy", lambda: [
            m.AUC(), m.BinaryAccuracy(), m.Precision(), m.Recall(), m.TruePositives(), m.TrueNegatives(),
            m.FalsePositives(), m.FalseNegatives(), m.Hinge(), m.SquaredHinge(), m.BinaryCrossentropy()]),
        "categorical": (_maker(2, 3, "softmax"), onehot, "categorical_crossentropy", lambda: [
            m.CategoricalAccuracy(), m.TopKCategoricalAccuracy(k=2), m.F1Score(), m.FBetaScore(beta=2.0),
            m.CategoricalCrossentropy(), m.CategoricalHinge(), m.KLDivergence(), m.Poisson()]),
        "sparse": (_maker(3, 3, "softmax"), labels, "sparse_categorical_crossentropy", lambda: [
            m.SparseCategoricalAccuracy(), m.SparseTopKCategoricalAccuracy(k=2), m.SparseCategoricalCrossentropy()]),
        "regression": (_maker(4, 3), targets, "mse", lambda: [
            m.MeanAbsoluteError(), m.MeanSquaredError(), m.RootMeanSquaredError(), m.LogCoshError(),
            m.MeanAbsolutePercentageError(), m.CosineSimilarity(), m.R2Score(), m.PearsonCorrelation(),
            m.ConcordanceCorrelation(), m.Accuracy()]),
    }


@pytest.mark.parametrize("kind", ["binary", "categorical", "sparse", "regression"])
def test_every_builtin_metric_leaves_the_padding_out(kind):
    x = np.random.default_rng(1).normal(size=(23, 6)).astype("float32")
    make_model, y, loss, metrics = _metric_cases()[kind]
    model = _check_sizes(make_model, lambda: dict(optimizer="sgd", loss=loss, metrics=metrics()), x, y)
    assert model._lm_padding_refused is None  # the padded step ran


def test_sample_weights_weighted_metrics_and_loss_reductions():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(23, 6)).astype("float32")
    y = rng.normal(size=(23, 3)).astype("float32")
    sample_weight = rng.uniform(0.2, 2.0, size=23).astype("float32")
    for reduction in ("sum_over_batch_size", "sum", "mean_with_sample_weight"):
        args = lambda r=reduction: dict(optimizer="sgd", loss=lm.losses.MeanSquaredError(reduction=r),  # noqa: E731
                                        metrics=["mae"], weighted_metrics=["mse"])
        model = _check_sizes(_maker(5), args, x, y, sample_weight)
        assert model._lm_padding_refused is None


def test_per_timestep_losses_ignore_class_and_a_plain_loss_function():
    """Per-sample losses with a time axis, a loss mask of its own (ignore_class) and a loss
    the user wrote as a function all divide by the real entries only."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(23, 4, 6)).astype("float32")
    labels = rng.integers(0, 3, size=(23, 4))
    def make_model():
        lm.random.set_seed(6)
        return lm.Sequential([lm.Input((4, 6)), lm.layers.Dense(3)])

    ignore = lm.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=2)
    _check_sizes(make_model, lambda: dict(optimizer="sgd", loss=ignore, metrics=["accuracy"]), x, labels)

    def squared(y_true, y_pred):
        return jnp.mean(jnp.square(y_true - y_pred), axis=-1)

    targets = rng.normal(size=(23, 4, 3)).astype("float32")
    model = _check_sizes(make_model, lambda: dict(optimizer="sgd", loss=squared, weighted_metrics=["mae"]), x, targets,
                 sample_weight=rng.uniform(size=(23, 4)).astype("float32"))
    assert model._lm_padding_refused is None


def test_several_outputs_with_loss_weights_match_keras(keras):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(23, 5)).astype("float32")
    y = {"a": rng.normal(size=(23, 2)).astype("float32"), "b": rng.integers(0, 3, 23)}
    inputs = lm.Input((5,))
    hidden = lm.layers.Dense(6, activation="tanh")(inputs)
    model = lm.Model(inputs, {"a": lm.layers.Dense(2, name="a")(hidden), "b": lm.layers.Dense(3, name="b")(hidden)})
    k_inputs = keras.Input((5,))
    k_hidden = keras.layers.Dense(6, activation="tanh")(k_inputs)
    reference = keras.Model(k_inputs, {"a": keras.layers.Dense(2, name="a")(k_hidden),
                                       "b": keras.layers.Dense(3, name="b")(k_hidden)})
    reference.set_weights(model.get_weights())
    args = dict(optimizer="sgd", loss={"a": "mse", "b": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
                loss_weights={"a": 0.5, "b": 2.0}, metrics={"b": ["accuracy"]})
    reference.compile(**args)
    args["loss"] = {"a": "mse", "b": lm.losses.SparseCategoricalCrossentropy(from_logits=True)}
    model.compile(**args)
    for n in (21, 19, 14):
        sub = {k: v[:n] for k, v in y.items()}
        got = model.evaluate(x[:n], sub, batch_size=8, verbose=0, return_dict=True)
        want = reference.evaluate(x[:n], sub, batch_size=8, verbose=0, return_dict=True)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=2e-5, err_msg=f"{name}, {n} rows")
    assert model._lm_padding_refused is None


class _RowCounter(lm.layers.Layer):
    """Counts the rows it sees in inference: padding rows would be counted."""

    def build(self, input_shape):
        self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False, name="seen")

    def call(self, x, training=False):
        if not training:
            self.seen.assign_add(jnp.float32(x.shape[0]))
        return x


class _ActivityPenalty(lm.layers.Layer):
    def call(self, x):
        self.add_loss(jnp.mean(jnp.square(x)))
        return x


class _FirstRowsMean(lm.metrics.Metric):
    """A user metric that ignores sample weights (as many custom metrics do)."""

    def __init__(self, name="first_rows_mean"):
        super().__init__(name=name)
        self.total = self.add_variable((), initializer="zeros", name="total")
        self.count = self.add_variable((), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.total.assign_add(jnp.sum(y_pred[:, 0]))
        self.count.assign_add(jnp.float32(y_pred.shape[0]))

    def result(self):
        return self.total / self.count


@pytest.mark.parametrize("case", ["writes_state", "add_loss", "user_metric", "activity_regularizer", "adjusted_r2"])
def test_what_padding_would_corrupt_falls_back_to_exact_batches(case, compiles):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(23, 6)).astype("float32"), rng.normal(size=(23, 3)).astype("float32")

    def make_model():
        lm.random.set_seed(7)
        regularizer = "l2" if case == "activity_regularizer" else None
        layers = [lm.Input((6,)), lm.layers.Dense(3, activity_regularizer=regularizer)]
        if case == "writes_state":
            layers.append(_RowCounter())
        elif case == "add_loss":
            layers.append(_ActivityPenalty())
        return lm.Sequential(layers)

    metrics = {"user_metric": lambda: [_FirstRowsMean()],  # counts rows whatever their weight:
               "adjusted_r2": lambda: [lm.metrics.R2Score(num_regressors=1)]}.get(case, lambda: ["mae"])
    model = _check_sizes(make_model, lambda: dict(optimizer="sgd", loss="mse", metrics=metrics()), x, y,
                         sizes=_MORE_SIZES)
    assert model._lm_padding_refused  # the trace found the padding would count
    if case == "writes_state":
        counter = model.layers[-1]
        counter.seen.assign(0.0)
        model.evaluate(x[:19], y[:19], batch_size=8, verbose=0)
        assert float(counter.seen.value) == 19.0
    steps = compiles.steps()
    model.evaluate(x[:17], y[:17], batch_size=8, verbose=0)  # a new last-batch size: exact
    assert compiles.steps() == steps + 1


def test_an_overridden_test_step_gets_exact_batches():
    seen = []

    class Custom(lm.Model):
        def __init__(self):
            super().__init__()
            self.dense = lm.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

        def test_step(self, data):
            x, y = data
            seen.append(x.shape[0])
            return super().test_step(data)

    model = Custom()
    model.compile("sgd", "mse")
    x, y = np.ones((21, 3), "float32"), np.zeros((21, 2), "float32")
    model.evaluate(x, y, batch_size=8, verbose=0)
    model.evaluate(x[:19], y[:19], batch_size=8, verbose=0)
    assert sorted(set(seen)) == [3, 5, 8]  # traced shapes: never a padded batch


def test_a_loss_that_relies_on_the_batch_shape_gets_exact_batches():
    """The "customizing saving" guide's loss broadcasts (4,) targets against (4, 4)
    predictions: right for the 4 exact rows only. Padded to 32 rows the trace fails, and
    evaluate falls back to the exact batch instead of raising."""

    def small_square_sum_loss(y_true, y_pred):
        return jnp.sum(jnp.square(y_pred - y_true) / 10.0, axis=1)

    lm.random.set_seed(8)
    model = lm.Sequential([lm.Input((8,)), lm.layers.Dense(4)])
    model.compile("sgd", small_square_sum_loss)
    x = np.random.default_rng(6).random((4, 8)).astype("float32")
    y = np.random.default_rng(7).random((4,)).astype("float32")
    pred = np.asarray(model(x))
    loss = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(loss, np.mean(np.sum((pred - y) ** 2 / 10.0, axis=1)), rtol=1e-5)
    assert "padded trace failed" in model._lm_padding_refused
