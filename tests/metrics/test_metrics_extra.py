"""The regression metrics added for the Keras guides (MeanAbsolutePercentageError,
MeanSquaredLogarithmicError, LogCoshError, CosineSimilarity) against Keras 3: the same
batches, several updates with and without sample weights, a reset; their string names."""

import numpy as np
import pytest

import lamina as lm

NAMES = ["MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "LogCoshError", "CosineSimilarity"]


def _batches(seed):
    rng = np.random.default_rng(seed)
    for step in range(3):
        y_true = rng.uniform(0.0, 2.0, size=(6, 3)).astype("float32")
        y_true[0, 0] = 0.0  # MAPE divides by max(|y_true|, 1e-7)
        y_pred = rng.normal(size=(6, 3)).astype("float32")
        weight = rng.uniform(size=(6,)).astype("float32") if step != 1 else None
        yield y_true, y_pred, weight


@pytest.mark.parametrize("name", NAMES)
def test_regression_metric_matches_keras(keras, name):
    ours, theirs = getattr(lm.metrics, name)(), getattr(keras.metrics, name)()
    assert ours.name == theirs.name
    for y_true, y_pred, weight in _batches(1):
        ours.update_state(y_true, y_pred, sample_weight=weight)
        theirs.update_state(y_true, y_pred, sample_weight=weight)
        np.testing.assert_allclose(float(ours.result()), float(theirs.result()), rtol=1e-5)
    ours.reset_state()
    assert float(ours.result()) == 0.0


def test_cosine_similarity_metric_axis_matches_keras(keras):
    y_true, y_pred, _ = next(_batches(2))
    ours, theirs = lm.metrics.CosineSimilarity(axis=0), keras.metrics.CosineSimilarity(axis=0)
    np.testing.assert_allclose(float(ours(y_true, y_pred)), float(theirs(y_true, y_pred)), rtol=1e-5)
    assert lm.metrics.CosineSimilarity.from_config(ours.get_config()).axis == 0


@pytest.mark.parametrize("identifier, cls", [
    ("mape", "MeanAbsolutePercentageError"), ("MAPE", "MeanAbsolutePercentageError"),
    ("mean_absolute_percentage_error", "MeanAbsolutePercentageError"),
    ("msle", "MeanSquaredLogarithmicError"), ("MSLE", "MeanSquaredLogarithmicError"),
    ("mean_squared_logarithmic_error", "MeanSquaredLogarithmicError"),
    ("MeanSquaredLogarithmicError", "MeanSquaredLogarithmicError"),
    ("log_cosh_error", "LogCoshError"), ("cosine_similarity", "CosineSimilarity"),
])
def test_string_names_resolve_like_keras(keras, identifier, cls):
    assert type(lm.metrics.get(identifier)).__name__ == cls
    assert type(keras.metrics.get(identifier)).__name__ == cls


@pytest.mark.parametrize("name", NAMES)
def test_metric_config_round_trip_keeps_the_metric_family(name):
    # The loss of the same class name owns the global registry entry: a saved metric config
    # must still come back as the metric.
    metric = getattr(lm.metrics, name)(name="mine")
    restored = lm.saving.deserialize(lm.saving.serialize(metric))
    assert isinstance(restored, lm.metrics.Metric) and type(restored).__name__ == name
    assert restored.name == "mine"


def test_compiled_metric_strings_log_keras_names_and_values(keras):
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = np.abs(x[:, :1]) + 0.5

    def evaluate(module, weights=None):
        model = module.Sequential([module.Input((3,)), module.layers.Dense(1)])
        if weights is not None:
            model.set_weights(weights)
        model.compile(optimizer="sgd", loss="mse", metrics=["mape", "msle", "mean_absolute_percentage_error"])
        return model, model.evaluate(x, y, batch_size=16, return_dict=True, verbose=0)

    theirs, expected = evaluate(keras)
    _, logs = evaluate(lm, theirs.get_weights())
    assert sorted(logs) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(logs[name], value, rtol=1e-5)


LOSS_FUNCTIONS = ["binary_crossentropy", "binary_focal_crossentropy", "categorical_crossentropy",
                  "categorical_hinge", "hinge", "huber", "kl_divergence", "log_cosh", "mean_absolute_error",
                  "mean_absolute_percentage_error", "mean_squared_error", "mean_squared_logarithmic_error",
                  "poisson", "sparse_categorical_crossentropy", "squared_hinge"]


@pytest.mark.parametrize("name", LOSS_FUNCTIONS)
def test_metric_functions_are_the_loss_functions_as_in_keras(keras, name):
    assert getattr(keras.metrics, name) is getattr(keras.losses, name)
    assert getattr(lm.metrics, name) is getattr(lm.losses, name)


# --- probabilistic and hinge metrics --------------------------------------------------------------

def _probabilistic_batches(name, seed):
    rng = np.random.default_rng(seed)
    for step in range(3):
        weight = rng.uniform(size=(5,)).astype("float32") if step != 1 else None
        logits = rng.normal(size=(5, 4)).astype("float32")
        probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        if name == "SparseCategoricalCrossentropy":
            yield rng.integers(0, 4, size=(5,)), probs, weight
        elif name in ("BinaryCrossentropy", "Hinge", "SquaredHinge"):
            yield (rng.uniform(size=(5, 4)) > 0.5).astype("float32"), 1 / (1 + np.exp(-logits)), weight
        elif name == "Poisson":
            yield rng.poisson(2.0, size=(5, 4)).astype("float32"), np.exp(logits), weight
        else:
            yield np.eye(4, dtype="float32")[rng.integers(0, 4, size=5)], probs, weight


PROBABILISTIC = {
    "BinaryCrossentropy": [{}, {"from_logits": True, "label_smoothing": 0.1}],
    "CategoricalCrossentropy": [{}, {"label_smoothing": 0.2}],
    "SparseCategoricalCrossentropy": [{}, {"ignore_class": 2}],
    "KLDivergence": [{}], "Poisson": [{}], "Hinge": [{}], "SquaredHinge": [{}], "CategoricalHinge": [{}],
}


@pytest.mark.parametrize("name, kwargs", [(n, k) for n, ks in sorted(PROBABILISTIC.items()) for k in ks])
def test_probabilistic_and_hinge_metrics_match_keras(keras, name, kwargs):
    ours, theirs = getattr(lm.metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    assert ours.name == theirs.name
    for y_true, y_pred, weight in _probabilistic_batches(name, 3):
        ours.update_state(y_true, y_pred, sample_weight=weight)
        if weight is None and kwargs.get("ignore_class") is not None:
            # Keras leaves ignored entries out only when weights are given (they count as zeros
            # otherwise, against its documentation); lamina always leaves them out.
            weight = np.ones(len(y_true), "float32")
        theirs.update_state(y_true, y_pred, sample_weight=weight)
        np.testing.assert_allclose(float(ours.result()), float(theirs.result()), rtol=1e-5, atol=1e-6)
    expected_config = {key: value for key, value in theirs.get_config().items() if key != "dtype"}
    assert {key: value for key, value in ours.get_config().items() if key != "dtype"} == expected_config
    restored = lm.saving.deserialize(lm.saving.serialize(ours))
    assert isinstance(restored, lm.metrics.Metric) and restored.get_config() == ours.get_config()


@pytest.mark.parametrize("identifier", ["binary_crossentropy", "bce", "BCE", "categorical_crossentropy",
                                        "sparse_categorical_crossentropy", "kl_divergence", "poisson", "hinge",
                                        "squared_hinge", "categorical_hinge", "KLDivergence"])
def test_probabilistic_metric_strings_resolve_like_keras(keras, identifier):
    assert type(lm.metrics.get(identifier)).__name__ == type(keras.metrics.get(identifier)).__name__


def test_sparse_categorical_crossentropy_metric_leaves_ignored_labels_out_of_the_mean():
    y_true = np.array([0, 2, 1, 2])
    y_pred = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]], "float32")
    metric = lm.metrics.SparseCategoricalCrossentropy(ignore_class=2)
    metric.update_state(y_true, y_pred)
    np.testing.assert_allclose(float(metric.result()), -(np.log(0.7) + np.log(0.5)) / 2, rtol=1e-6)


# --- correlation metrics --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["PearsonCorrelation", "ConcordanceCorrelation"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_correlation_metrics_match_keras(keras, name, axis):
    ours, theirs = getattr(lm.metrics, name)(axis=axis), getattr(keras.metrics, name)(axis=axis)
    assert ours.name == theirs.name and ours.get_config()["axis"] == theirs.get_config()["axis"]
    rng = np.random.default_rng(6)
    for step in range(3):
        y_true = rng.normal(size=(5, 4)).astype("float32")
        y_pred = (y_true + rng.normal(size=(5, 4))).astype("float32")
        weight = rng.uniform(size=(5 if axis == -1 else 4,)).astype("float32") if step else None
        ours.update_state(y_true, y_pred, sample_weight=weight)
        theirs.update_state(y_true, y_pred, sample_weight=weight)
        np.testing.assert_allclose(float(ours.result()), float(theirs.result()), rtol=1e-5, atol=1e-6)
    fn = name.replace("Correlation", "_correlation").lower()
    np.testing.assert_allclose(np.asarray(getattr(lm.metrics, fn)(y_true, y_pred, axis=axis)),
                               np.asarray(getattr(keras.metrics, fn)(y_true, y_pred, axis=axis)), rtol=1e-5, atol=1e-6)
    assert type(lm.metrics.get(fn)).__name__ == name == type(keras.metrics.get(fn)).__name__


# --- R2Score ----------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:More independent predictors")  # Keras's, for num_regressors=40
@pytest.mark.parametrize("kwargs", [{}, {"class_aggregation": "variance_weighted_average"},
                                    {"class_aggregation": None}, {"num_regressors": 2}, {"num_regressors": 40}])
def test_r2_score_matches_keras(keras, kwargs):
    ours, theirs = lm.metrics.R2Score(**kwargs), keras.metrics.R2Score(**kwargs)
    rng = np.random.default_rng(8)
    weights = [None, rng.uniform(size=(6,)).astype("float32"), rng.uniform(size=(6, 3)).astype("float32")]
    for weight in weights:
        y_true = rng.normal(size=(6, 3)).astype("float32")
        y_pred = (y_true + 0.5 * rng.normal(size=(6, 3))).astype("float32")
        ours.update_state(y_true, y_pred, sample_weight=weight)
        theirs.update_state(y_true, y_pred, sample_weight=weight)
        np.testing.assert_allclose(np.asarray(ours.result()), np.asarray(theirs.result()), rtol=1e-5, atol=1e-6)
    assert [v.shape for v in ours.variables] == [tuple(v.shape) for v in theirs.variables]
    assert {k: v for k, v in ours.get_config().items() if k != "dtype"} == {
        k: v for k, v in theirs.get_config().items() if k != "dtype"}
    ours.reset_state()
    assert all(not np.asarray(v).any() for v in ours.variables)


def test_r2_score_in_fit_and_evaluate_matches_keras(keras):
    rng = np.random.default_rng(9)
    x = rng.normal(size=(16, 3)).astype("float32")
    y = (x @ rng.normal(size=(3, 2)) + 0.1 * rng.normal(size=(16, 2))).astype("float32")

    def evaluate(module, weights=None):
        model = module.Sequential([module.Input((3,)), module.layers.Dense(2)])
        if weights is not None:
            model.set_weights(weights)
        model.compile(optimizer="sgd", loss="mse", metrics=[module.metrics.R2Score()])
        return model, model.evaluate(x, y, batch_size=8, return_dict=True, verbose=0)

    theirs, expected = evaluate(keras)
    ours, logs = evaluate(lm, theirs.get_weights())
    np.testing.assert_allclose(logs["r2_score"], expected["r2_score"], rtol=1e-5)
    history = ours.fit(x, y, batch_size=8, epochs=2, verbose=0).history
    assert len(history["r2_score"]) == 2 and np.isfinite(history["r2_score"]).all()


def test_r2_score_refuses_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="`class_aggregation` must be one of"):
        lm.metrics.R2Score(class_aggregation="median")
    with pytest.raises(ValueError, match="`num_regressors` must be an integer >= 0"):
        lm.metrics.R2Score(num_regressors=-1)
    with pytest.raises(ValueError, match=r"R2Score 'r2_score' expects 2D inputs"):
        lm.metrics.R2Score().update_state(np.ones((2, 3, 1)), np.ones((2, 3, 1)))
    metric = lm.metrics.R2Score()
    metric.update_state(np.ones((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"built for \(batch_size, 3\) inputs"):
        metric.update_state(np.ones((2, 4)), np.zeros((2, 4)))


# --- F-scores -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, kwargs", [
    ("F1Score", {}), ("F1Score", {"average": "micro", "threshold": 0.4}), ("F1Score", {"average": "macro"}),
    ("F1Score", {"average": "weighted", "threshold": 0.3}), ("FBetaScore", {"beta": 2.0}),
    ("FBetaScore", {"beta": 0.5, "average": "micro"}),
])
def test_f_scores_match_keras(keras, name, kwargs):
    ours, theirs = getattr(lm.metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    rng = np.random.default_rng(10)
    for weight in (None, rng.uniform(size=(8,)).astype("float32")):
        y_true = (rng.uniform(size=(8, 3)) > 0.6).astype("float32")
        y_pred = rng.uniform(size=(8, 3)).astype("float32")
        y_pred[0] = 0.0  # an all-zero row: no positive without a threshold
        ours.update_state(y_true, y_pred, sample_weight=weight)
        theirs.update_state(y_true, y_pred, sample_weight=weight)
        np.testing.assert_allclose(np.asarray(ours.result()), np.asarray(theirs.result()), rtol=1e-5, atol=1e-6)
    assert {k: v for k, v in ours.get_config().items() if k != "dtype"} == {
        k: v for k, v in theirs.get_config().items() if k != "dtype"}
    assert lm.saving.deserialize(lm.saving.serialize(ours)).get_config() == ours.get_config()


def test_f1_score_in_evaluate_matches_keras(keras):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]

    def evaluate(module, weights=None):
        model = module.Sequential([module.Input((4,)), module.layers.Dense(3, activation="softmax")])
        if weights is not None:
            model.set_weights(weights)
        model.compile(optimizer="sgd", loss="categorical_crossentropy",
                      metrics=[module.metrics.F1Score(average="macro")])
        return model, model.evaluate(x, y, batch_size=8, return_dict=True, verbose=0)

    theirs, expected = evaluate(keras)
    _, logs = evaluate(lm, theirs.get_weights())
    np.testing.assert_allclose(logs["f1_score"], expected["f1_score"], rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"average": "samples"}, "`average` must be None"), ({"beta": 1}, "`beta` must be a Python float > 0"),
    ({"threshold": 1.5}, r"`threshold` must be None or a Python float in \(0, 1\]"),
])
def test_f_score_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lm.metrics.FBetaScore(**kwargs)
