"""The IoU metrics (IoU, MeanIoU, BinaryIoU, OneHotIoU, OneHotMeanIoU) and the constrained-rate
metrics (PrecisionAtRecall, RecallAtPrecision, SensitivityAtSpecificity,
SpecificityAtSensitivity) against Keras 3: the same batches with and without sample weights,
reset, configs, the stateless API under jax.jit, string names, and compiled in fit/evaluate."""

import re
import warnings

import jax
import numpy as np
import pytest

import lamina as lm

# Keras's confusion matrix asks JAX for int64 indices (x64 is off): its warning, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Explicitly requested dtype int64:UserWarning")
_RNG = np.random.default_rng(7)
_N = 12  # one batch shape for every case: the eager programs compile once for all of them


def _weights(step, fractional=True):
    if step == 1:
        return None
    return _RNG.uniform(size=(_N,)).astype("float32") if fractional else _RNG.integers(0, 3, (_N,)).astype("float32")


def _sparse(n_classes, fractional=True):
    """Three (y_true, y_pred, sample_weight) batches of class ids; predictions also step
    outside [0, n_classes) so that the bounds mask is exercised."""
    return [(_RNG.integers(0, n_classes, (_N,)), _RNG.integers(-1, n_classes + 1, (_N,)), _weights(step, fractional))
            for step in range(3)]


def _one_hot(n_classes):
    return [(np.eye(n_classes, dtype="float32")[_RNG.integers(0, n_classes, _N)],
             _RNG.uniform(size=(_N, n_classes)).astype("float32"), _weights(step)) for step in range(3)]


def _scores(n_classes=None):
    out = []
    for step in range(3):
        if n_classes is None:
            y_true, y_pred = _RNG.integers(0, 2, (_N,)), _RNG.uniform(size=(_N,)).astype("float32")
            y_pred[:2] = [0.0, 1.0]  # the thresholds' end-points
        else:
            y_true = np.eye(n_classes, dtype="float32")[_RNG.integers(0, n_classes, _N)]
            y_pred = _RNG.uniform(size=(_N, n_classes)).astype("float32")
        out.append((y_true, y_pred, _weights(step)))
    return out


# (id, factory taking the metrics module, batches)
CASES = [
    ("IoU-int", lambda m: m.IoU(4, [0, 2]), _sparse(4, fractional=False)),
    ("IoU-float-ignore-dense", lambda m: m.IoU(3, [0, 1, 2], ignore_class=1, sparse_y_true=False,
                                                sparse_y_pred=False, dtype="float32"), _one_hot(3)),
    ("MeanIoU-float-ignore", lambda m: m.MeanIoU(4, ignore_class=0, dtype="float32"), _sparse(4)),
    ("MeanIoU-truncated-weights", lambda m: m.MeanIoU(4), _sparse(4)),
    ("BinaryIoU-class1", lambda m: m.BinaryIoU([1], threshold=0.3), [(y, p, None if w is None else np.round(w * 3))
                                                                     for y, p, w in _scores()]),
    ("OneHotIoU-sparse-pred", lambda m: m.OneHotIoU(3, [0, 2], sparse_y_pred=True, dtype="float32"),
     [(y, np.argmax(p, -1), w) for y, p, w in _one_hot(3)]),
    ("OneHotMeanIoU", lambda m: m.OneHotMeanIoU(3, dtype="float32"), _one_hot(3)),
    ("PrecisionAtRecall", lambda m: m.PrecisionAtRecall(0.6), _scores()),
    ("RecallAtPrecision-class", lambda m: m.RecallAtPrecision(0.4, num_thresholds=7, class_id=2), _scores(3)),
    ("SensitivityAtSpecificity-one-threshold", lambda m: m.SensitivityAtSpecificity(0.4, num_thresholds=1), _scores()),
    ("SpecificityAtSensitivity", lambda m: m.SpecificityAtSensitivity(0.7, num_thresholds=50), _scores()),
]


def _comparable(config):
    return {k: v for k, v in config.items() if k != "name"}


@pytest.mark.parametrize("make, batches", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_metric_matches_keras_batch_by_batch(keras, make, batches):
    ours, theirs = make(lm.metrics), make(keras.metrics)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the int metrics warn about float weights, in both libraries
        for y_true, y_pred, weight in batches:
            ours.update_state(y_true, y_pred, sample_weight=weight)
            theirs.update_state(y_true, y_pred, sample_weight=weight)
            np.testing.assert_allclose(float(ours.result()), float(theirs.result()), rtol=1e-5, atol=1e-7)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.get_config().keys() == theirs.get_config().keys()
    assert _comparable(ours.get_config()) == _comparable(theirs.get_config())
    restored = type(ours).from_config(ours.get_config())
    assert restored.get_config() == ours.get_config()
    ours.reset_state()
    assert float(ours.result()) == 0.0
    assert all(not np.any(np.asarray(v.value)) for v in ours.variables)


def test_default_names_and_dtypes_are_keras_s(keras):
    for make in (lambda m: m.IoU(3, [1]), lambda m: m.MeanIoU(2), lambda m: m.BinaryIoU(),
                 lambda m: m.OneHotIoU(3, [0]), lambda m: m.OneHotMeanIoU(3), lambda m: m.PrecisionAtRecall(0.5),
                 lambda m: m.RecallAtPrecision(0.5), lambda m: m.SensitivityAtSpecificity(0.5),
                 lambda m: m.SpecificityAtSensitivity(0.5)):
        ours, theirs = make(lm.metrics), make(keras.metrics)
        assert re.sub(r"_\d+$", "", ours.name) == re.sub(r"_\d+$", "", theirs.name)
        assert ours.dtype == theirs.dtype
        assert [v.name for v in ours.variables] == [v.name for v in theirs.variables]
        assert ours._direction == theirs._direction == "up"  # what EarlyStopping(mode="auto") reads


def test_float_weights_on_an_int_matrix_warn_and_truncate():
    m = lm.metrics.MeanIoU(2)
    with pytest.warns(UserWarning, match=r"MeanIoU 'mean_io_u.*fractions are truncated to integers.*dtype='float32'"):
        m.update_state([0, 1], [0, 1], sample_weight=np.array([0.5, 1.5], "float32"))
    assert np.asarray(m.total_cm.value).tolist() == [[0, 0], [0, 1]]


def test_a_per_sample_weight_covers_a_segmentation_map():
    y_true = np.array([[[0, 1], [1, 1]], [[0, 0], [1, 0]]])
    y_pred = np.array([[[0, 1], [0, 1]], [[1, 0], [1, 0]]])
    weighted = lm.metrics.MeanIoU(2, dtype="float32")
    weighted.update_state(y_true, y_pred, sample_weight=np.array([2.0, 0.0]))
    first_only = lm.metrics.MeanIoU(2, dtype="float32")
    first_only.update_state(y_true[:1], y_pred[:1])
    assert float(weighted.result()) == pytest.approx(float(first_only.result()))
    with pytest.raises(ValueError, match=r"MeanIoU '.*': `sample_weight` of shape \(3,\) does not fit labels of "
                                         r"shape \(2, 2, 2\)"):
        weighted.update_state(y_true, y_pred, sample_weight=np.ones(3))


@pytest.mark.parametrize("make, match", [
    (lambda: lm.metrics.IoU(3, [3]), r"IoU '.*': target class id 3 is out of range, which is \[0, 3\)"),
    (lambda: lm.metrics.IoU(3, [-1]), r"target class id -1 is out of range"),
    (lambda: lm.metrics.MeanIoU(0), r"MeanIoU '.*': `num_classes` must be an integer >= 1; got num_classes=0"),
    (lambda: lm.metrics.PrecisionAtRecall(1.5), r"PrecisionAtRecall '.*': argument `recall` must be in the range "
                                                r"\[0, 1\]. Received: recall=1.5"),
    (lambda: lm.metrics.SpecificityAtSensitivity(0.5, num_thresholds=0), r"`num_thresholds` must be an integer > 0"),
])
def test_bad_arguments_raise_naming_the_metric(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_channels_first_class_axis_equals_keras_on_the_transposed_maps(keras):
    # (Keras's own result() fails for axis=1: it sums its per-class vector over that axis too.)
    rng = np.random.default_rng(2)
    y_true = np.eye(3, dtype="float32")[rng.integers(0, 3, (2, 4))]
    y_pred = rng.uniform(size=(2, 4, 3)).astype("float32")
    ours = lm.metrics.OneHotMeanIoU(3, axis=1, dtype="float32")
    ours.update_state(y_true.transpose(0, 2, 1), y_pred.transpose(0, 2, 1))
    theirs = keras.metrics.OneHotMeanIoU(3, dtype="float32")
    theirs.update_state(y_true, y_pred)
    assert float(ours.result()) == pytest.approx(float(theirs.result()), rel=1e-6)


def test_mismatched_label_and_prediction_sizes_raise():
    with pytest.raises(ValueError, match=r"IoU '.*': labels and predictions must hold as many class ids; got y_true "
                                         r"of shape \(4,\) and y_pred of shape \(3,\)"):
        lm.metrics.IoU(3, [0]).update_state([0, 1, 2, 0], [0, 1, 2])


@pytest.mark.parametrize("make, batches", [
    (lambda: lm.metrics.OneHotMeanIoU(3, dtype="float32"), _one_hot(3)),
    (lambda: lm.metrics.SensitivityAtSpecificity(0.5, num_thresholds=20), _scores()),
], ids=["OneHotMeanIoU", "SensitivityAtSpecificity"])
def test_stateless_update_under_jit_equals_the_stateful_metric(make, batches):
    stateful, stateless = make(), make()
    values = stateless.stateless_reset_state()
    step = jax.jit(lambda v, yt, yp, w: stateless.stateless_update_state(v, yt, yp, sample_weight=w))
    for y_true, y_pred, weight in batches:
        weight = np.ones(len(y_true), "float32") if weight is None else weight
        stateful.update_state(y_true, y_pred, sample_weight=weight)
        values = step(values, y_true, y_pred, weight)
    assert float(stateless.stateless_result(values)) == pytest.approx(float(stateful.result()), rel=1e-6)
    assert float(stateless.result()) == 0.0  # the stateless calls left the metric untouched


@pytest.mark.parametrize("name, cls", [
    ("BinaryIoU", "BinaryIoU"), ("binary_io_u", "BinaryIoU"),
    ({"class_name": "MeanIoU", "config": {"num_classes": 3}}, "MeanIoU"),
    ({"class_name": "PrecisionAtRecall", "config": {"recall": 0.3}}, "PrecisionAtRecall"),
])
def test_names_and_configs_resolve_like_keras(keras, name, cls):
    assert type(lm.metrics.get(name)).__name__ == cls
    assert type(keras.metrics.get(name)).__name__ == cls


def test_compiled_metrics_in_fit_and_evaluate_equal_keras_on_the_predictions(keras):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 4)).astype("float32")
    y = (x[:, :1] + 0.3 * rng.normal(size=(40, 1)) > 0).astype("float32")
    w = rng.integers(1, 3, size=(40,)).astype("float32")  # whole numbers: the int IoU keeps them exactly
    lm.random.set_seed(0)
    model = lm.Sequential([lm.Input((4,)), lm.layers.Dense(1, activation="sigmoid")])

    def metrics(module):  # (the four constrained rates share their update: one of them here)
        return [module.BinaryIoU(threshold=0.4, dtype="float32", name="biou"), module.PrecisionAtRecall(0.6, name="par")]

    # weighted_metrics: the sample weights reach them (plain `metrics` ignore them, as in Keras); 40 rows in
    # batches of 16 also run evaluate's padded last batch (its padding rows weigh 0).
    model.compile(lm.optimizers.SGD(0.1), "binary_crossentropy", weighted_metrics=[*metrics(lm.metrics), "binary_io_u"])
    history = model.fit(x, y, sample_weight=w, batch_size=16, epochs=1, verbose=0, validation_data=(x, y, w)).history
    assert {"biou", "binary_io_u", "par"} <= set(history)
    predictions = np.asarray(model(x))  # the weights the validation ran with
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras's int BinaryIoU warns about float weights
        for theirs in [*metrics(keras.metrics), keras.metrics.BinaryIoU(name="binary_io_u")]:
            theirs.update_state(y, predictions, sample_weight=w)
            np.testing.assert_allclose(history[f"val_{theirs.name}"], [float(theirs.result())], rtol=1e-5, atol=1e-6)


def test_mean_iou_of_segmentation_maps_in_evaluate_weighs_whole_samples(keras):
    """One weight per sample covers its whole map (Keras needs the weights spelled out per
    pixel; here they are, for the reference) and the padded last batch counts for nothing."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(10, 6, 2)).astype("float32")
    y = rng.integers(0, 3, size=(10, 6))
    w = rng.uniform(0.5, 2.0, size=(10, 1)).astype("float32")  # (batch, 1): it also weighs the per-step losses
    model = lm.Sequential([lm.Input((6, 2)), lm.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy",
                  weighted_metrics=[lm.metrics.MeanIoU(3, sparse_y_pred=False, dtype="float32", name="miou"),
                                    lm.metrics.IoU(3, [2], sparse_y_pred=False, dtype="float32", name="iou2")])
    logs = model.evaluate(x, y, sample_weight=w, batch_size=4, verbose=0, return_dict=True)
    predictions = np.asarray(model(x))
    per_pixel = np.broadcast_to(w, y.shape)
    for theirs in (keras.metrics.MeanIoU(3, sparse_y_pred=False, dtype="float32", name="miou"),
                   keras.metrics.IoU(3, [2], sparse_y_pred=False, dtype="float32", name="iou2")):
        theirs.update_state(y, predictions, sample_weight=per_pixel)
        np.testing.assert_allclose(logs[theirs.name], float(theirs.result()), rtol=1e-5)
