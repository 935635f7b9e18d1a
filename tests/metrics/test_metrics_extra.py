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
