"""lm.metrics against Keras 3: the same random batches, several updates with and without
sample weights, then a reset; the same sequence inside lm.jit; tracking by layers."""

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm
from lamina import metrics

N = 8  # batch size


def _binary(rng, shape):
    return (rng.uniform(size=shape) > 0.5).astype("float32")


def _probs(rng, shape):
    return rng.uniform(size=shape).astype("float32")


def _onehot(rng, n, classes):
    return np.eye(classes, dtype="float32")[rng.randint(0, classes, size=n)]


def _labels(rng, n, classes, shape=None):
    return rng.randint(0, classes, size=shape or (n,)).astype("int32")


# name -> (lamina factory, keras factory (given the keras module), batch maker(rng) -> args)
CASES = {
    "mean": (lambda: metrics.Mean(), lambda k: k.metrics.Mean(),
             lambda r: (r.normal(size=(N,)).astype("float32"),)),
    "mean_rank2": (lambda: metrics.Mean(), lambda k: k.metrics.Mean(),
                   lambda r: (r.normal(size=(N, 3)).astype("float32"),)),
    "sum": (lambda: metrics.Sum(), lambda k: k.metrics.Sum(),
            lambda r: (r.normal(size=(N, 2)).astype("float32"),)),
    "accuracy": (lambda: metrics.Accuracy(), lambda k: k.metrics.Accuracy(),
                 lambda r: (_labels(r, N, 3, (N, 1)), _labels(r, N, 3, (N, 1)))),
    "binary_accuracy": (lambda: metrics.BinaryAccuracy(), lambda k: k.metrics.BinaryAccuracy(),
                        lambda r: (_binary(r, (N, 1)), _probs(r, (N, 1)))),
    "binary_accuracy_t03_rank2": (lambda: metrics.BinaryAccuracy(threshold=0.3),
                                  lambda k: k.metrics.BinaryAccuracy(threshold=0.3),
                                  lambda r: (_binary(r, (N, 4)), _probs(r, (N, 4)))),
    "categorical_accuracy": (lambda: metrics.CategoricalAccuracy(), lambda k: k.metrics.CategoricalAccuracy(),
                             lambda r: (_onehot(r, N, 5), _probs(r, (N, 5)))),
    "sparse_categorical_accuracy": (lambda: metrics.SparseCategoricalAccuracy(),
                                    lambda k: k.metrics.SparseCategoricalAccuracy(),
                                    lambda r: (_labels(r, N, 5), _probs(r, (N, 5)))),
    "sparse_categorical_accuracy_col": (lambda: metrics.SparseCategoricalAccuracy(),
                                        lambda k: k.metrics.SparseCategoricalAccuracy(),
                                        lambda r: (_labels(r, N, 5, (N, 1)), _probs(r, (N, 5)))),
    "top_k": (lambda: metrics.TopKCategoricalAccuracy(k=2), lambda k: k.metrics.TopKCategoricalAccuracy(k=2),
              lambda r: (_onehot(r, N, 6), _probs(r, (N, 6)))),
    "top_k_default": (lambda: metrics.TopKCategoricalAccuracy(), lambda k: k.metrics.TopKCategoricalAccuracy(),
                      lambda r: (_onehot(r, N, 7), _probs(r, (N, 7)))),
    "sparse_top_k": (lambda: metrics.SparseTopKCategoricalAccuracy(k=2),
                     lambda k: k.metrics.SparseTopKCategoricalAccuracy(k=2),
                     lambda r: (_labels(r, N, 6), _probs(r, (N, 6)))),
    "mse": (lambda: metrics.MeanSquaredError(), lambda k: k.metrics.MeanSquaredError(),
            lambda r: (r.normal(size=(N, 3)).astype("float32"), r.normal(size=(N, 3)).astype("float32"))),
    "mae": (lambda: metrics.MeanAbsoluteError(), lambda k: k.metrics.MeanAbsoluteError(),
            lambda r: (r.normal(size=(N, 3)).astype("float32"), r.normal(size=(N, 3)).astype("float32"))),
    "rmse": (lambda: metrics.RootMeanSquaredError(), lambda k: k.metrics.RootMeanSquaredError(),
             lambda r: (r.normal(size=(N, 3)).astype("float32"), r.normal(size=(N, 3)).astype("float32"))),
    "precision": (lambda: metrics.Precision(), lambda k: k.metrics.Precision(),
                  lambda r: (_binary(r, (N,)), _probs(r, (N,)))),
    "precision_thresholds": (lambda: metrics.Precision(thresholds=[0.2, 0.5, 0.8]),
                             lambda k: k.metrics.Precision(thresholds=[0.2, 0.5, 0.8]),
                             lambda r: (_binary(r, (N, 2)), _probs(r, (N, 2)))),
    "precision_even_thresholds": (lambda: metrics.Precision(thresholds=[0.0, 0.25, 0.5, 0.75, 1.0]),
                                  lambda k: k.metrics.Precision(thresholds=[0.0, 0.25, 0.5, 0.75, 1.0]),
                                  lambda r: (_binary(r, (N,)), _probs(r, (N,)))),
    "precision_top_k": (lambda: metrics.Precision(top_k=2), lambda k: k.metrics.Precision(top_k=2),
                        lambda r: (_binary(r, (N, 5)), _probs(r, (N, 5)))),
    "precision_class_id": (lambda: metrics.Precision(class_id=1), lambda k: k.metrics.Precision(class_id=1),
                           lambda r: (_binary(r, (N, 4)), _probs(r, (N, 4)))),
    "recall": (lambda: metrics.Recall(), lambda k: k.metrics.Recall(),
               lambda r: (_binary(r, (N, 1)), _probs(r, (N, 1)))),
    "recall_top_k_class_id": (lambda: metrics.Recall(top_k=2, class_id=2),
                              lambda k: k.metrics.Recall(top_k=2, class_id=2),
                              lambda r: (_binary(r, (N, 5)), _probs(r, (N, 5)))),
    "recall_thresholds": (lambda: metrics.Recall(thresholds=[0.1, 0.6]),
                          lambda k: k.metrics.Recall(thresholds=[0.1, 0.6]),
                          lambda r: (_binary(r, (N,)), _probs(r, (N,)))),
    "true_positives": (lambda: metrics.TruePositives(), lambda k: k.metrics.TruePositives(),
                       lambda r: (_binary(r, (N,)), _probs(r, (N,)))),
    "false_negatives": (lambda: metrics.FalseNegatives(thresholds=[0.3, 0.7]),
                        lambda k: k.metrics.FalseNegatives(thresholds=[0.3, 0.7]),
                        lambda r: (_binary(r, (N,)), _probs(r, (N,)))),
    "auc_roc": (lambda: metrics.AUC(), lambda k: k.metrics.AUC(),
                lambda r: (_binary(r, (N,)), _probs(r, (N,)))),
    "auc_roc_rank2_50": (lambda: metrics.AUC(num_thresholds=50), lambda k: k.metrics.AUC(num_thresholds=50),
                         lambda r: (_binary(r, (N, 3)), _probs(r, (N, 3)))),
    "auc_pr": (lambda: metrics.AUC(curve="PR"), lambda k: k.metrics.AUC(curve="PR"),
               lambda r: (_binary(r, (N,)), _probs(r, (N,)))),
    "auc_pr_majoring": (lambda: metrics.AUC(curve="PR", summation_method="majoring"),
                        lambda k: k.metrics.AUC(curve="PR", summation_method="majoring"),
                        lambda r: (_binary(r, (N,)), _probs(r, (N,)))),
    "auc_roc_minoring": (lambda: metrics.AUC(summation_method="minoring"),
                         lambda k: k.metrics.AUC(summation_method="minoring"),
                         lambda r: (_binary(r, (N,)), _probs(r, (N,)))),
    "auc_prgain": (lambda: metrics.AUC(curve="PRGAIN"), lambda k: k.metrics.AUC(curve="PRGAIN"),
                   lambda r: (_binary(r, (N,)), _probs(r, (N,)))),
    "auc_logits": (lambda: metrics.AUC(from_logits=True), lambda k: k.metrics.AUC(from_logits=True),
                   lambda r: (_binary(r, (N,)), r.normal(size=(N,)).astype("float32") * 3)),
    "auc_given_thresholds": (lambda: metrics.AUC(thresholds=[0.1, 0.35, 0.5, 0.9]),
                             lambda k: k.metrics.AUC(thresholds=[0.1, 0.35, 0.5, 0.9]),
                             lambda r: (_binary(r, (N,)), _probs(r, (N,)))),
    "auc_label_weights": (lambda: metrics.AUC(label_weights=[0.5, 2.0, 1.0]),
                          lambda k: k.metrics.AUC(label_weights=[0.5, 2.0, 1.0]),
                          lambda r: (_binary(r, (N, 3)), _probs(r, (N, 3)))),
    "auc_multi_label": (lambda: metrics.AUC(multi_label=True, num_labels=3),
                        lambda k: k.metrics.AUC(multi_label=True, num_labels=3),
                        lambda r: (_binary(r, (N, 3)), _probs(r, (N, 3)))),
    "auc_multi_label_pr_weighted": (
        lambda: metrics.AUC(curve="PR", multi_label=True, label_weights=[1.0, 3.0, 0.5]),
        lambda k: k.metrics.AUC(curve="PR", multi_label=True, label_weights=[1.0, 3.0, 0.5]),
        lambda r: (_binary(r, (N, 3)), _probs(r, (N, 3)))),
}


def _batches(make, seed, weighted, count=3):
    """``count`` batches ``(args, sample_weight or None)`` from a fixed seed."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(count):
        args = make(rng)
        weight = rng.uniform(0.0, 2.0, size=(N,)).astype("float32") if weighted else None
        out.append((args, weight))
    return out


def _update(metric, args, weight):
    if weight is None:
        metric.update_state(*args)
    else:
        metric.update_state(*args, sample_weight=weight)


def _close(a, b, what):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6, err_msg=what)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_keras_over_updates_and_reset(keras, case):
    """Two plain updates, two weighted ones, a reset, then one of each again."""
    make_lm, make_keras, make_batch = CASES[case]
    ours, theirs = make_lm(), make_keras(keras)
    seed = sorted(CASES).index(case)
    plain, weighted = _batches(make_batch, seed, False, 2), _batches(make_batch, seed + 100, True, 2)
    sequence = plain + weighted + [None] + weighted[:1] + plain[:1]
    for i, batch in enumerate(sequence):
        if batch is None:
            ours.reset_state()
            theirs.reset_state()
            what = "reset"
        else:
            _update(ours, *batch)
            _update(theirs, *batch)
            what = f"update {i + 1} ({'weighted' if batch[1] is not None else 'plain'})"
        _close(ours.result(), theirs.result(), f"{case}: after {what}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_jit_updates_give_the_eager_numbers(case):
    make_lm, _, make_batch = CASES[case]
    eager, compiled = make_lm(), make_lm()
    step = lm.jit(lambda *args: compiled.update_state(*args[:-1], sample_weight=args[-1]))
    step_plain = lm.jit(lambda *args: compiled.update_state(*args))
    batches = _batches(make_batch, 1, True) + _batches(make_batch, 2, False)
    for i, (args, weight) in enumerate(batches):
        _update(eager, args, weight)
        if weight is None:
            step_plain(*args)
        else:
            step(*args, weight)
        _close(compiled.result(), eager.result(), f"{case}: after update {i + 1}")
    compiled.reset_state()
    eager.reset_state()
    step(*batches[0][0], batches[0][1])  # the compiled step picks up the eager reset
    _update(eager, *batches[0])
    _close(compiled.result(), eager.result(), f"{case}: after reset")


@pytest.mark.parametrize("make", [lambda: metrics.Mean(), lambda: metrics.AUC(num_thresholds=5)])
def test_reset_inside_jit(make):
    m = make()
    update = lm.jit(lambda *args: m.update_state(*args))
    update(*([jnp.array([0.2, 0.9])] * (1 if isinstance(m, metrics.Mean) else 2)))
    assert any(float(jnp.sum(jnp.abs(v.value))) > 0 for v in m.variables)
    lm.jit(m.reset_state)()
    assert all(float(jnp.sum(jnp.abs(v.value))) == 0 for v in m.variables)


def test_mean_sample_weight_shapes_match_keras(keras):
    rng = np.random.RandomState(0)
    values = rng.normal(size=(N, 3)).astype("float32")
    for weight in (np.float32(0.5), rng.uniform(size=(N, 1)).astype("float32"),
                   rng.uniform(size=(N, 3)).astype("float32")):
        ours, theirs = metrics.Mean(), keras.metrics.Mean()
        ours.update_state(values, sample_weight=weight)
        theirs.update_state(values, sample_weight=weight)
        _close(ours.result(), theirs.result(), f"sample_weight shape {np.shape(weight)}")


def test_metric_functions_match_keras(keras):
    rng = np.random.RandomState(3)
    onehot, probs = _onehot(rng, N, 6), _probs(rng, (N, 6))
    labels = _labels(rng, N, 6)
    from keras.src.metrics.accuracy_metrics import accuracy as keras_accuracy  # not exported

    pairs = [
        (metrics.accuracy, keras_accuracy, (_labels(rng, N, 2), _labels(rng, N, 2))),
        (metrics.binary_accuracy, keras.metrics.binary_accuracy, (_binary(rng, (N, 1)), _probs(rng, (N, 1)))),
        (metrics.categorical_accuracy, keras.metrics.categorical_accuracy, (onehot, probs)),
        (metrics.sparse_categorical_accuracy, keras.metrics.sparse_categorical_accuracy, (labels, probs)),
        (metrics.top_k_categorical_accuracy, keras.metrics.top_k_categorical_accuracy, (onehot, probs)),
        (metrics.sparse_top_k_categorical_accuracy, keras.metrics.sparse_top_k_categorical_accuracy,
         (labels, probs)),
    ]
    for ours, theirs, args in pairs:
        np.testing.assert_array_equal(np.asarray(ours(*args)), np.asarray(theirs(*args)), err_msg=ours.__name__)


def test_call_updates_and_returns_result():
    m = metrics.Mean()
    assert float(m([1.0, 3.0])) == 2.0
    assert float(m([5.0])) == 3.0
    assert float(m.result()) == 3.0


def test_variables_are_non_trainable_and_named_under_the_metric():
    m = metrics.Precision(name="prec")
    assert [v.path for v in m.variables] == ["prec/true_positives", "prec/false_positives"]
    assert not any(v.trainable for v in m.variables)


def test_layer_tracks_metric_state_in_metrics_variables_not_weights():
    class Scorer(lm.Layer):
        def __init__(self):
            super().__init__()
            self.scale = self.add_weight(shape=(), initializer="ones")
            self.tracker = metrics.Mean(name="tracked_mean")

        def call(self, x):
            y = x * self.scale
            self.tracker.update_state(y)
            return y

    layer = Scorer()
    weights = layer.weights
    assert len(weights) == 1 and weights[0] is layer.scale
    # As in Keras 3: metric state is in metrics_variables, not in variables.
    assert len(layer.variables) == 1 and layer.variables[0] is layer.scale
    assert [v.path for v in layer.metrics_variables] == ["tracked_mean/total", "tracked_mean/count"]
    assert all(any(v is s for v in layer.metrics_variables) for s in layer.tracker.variables)

    step = lm.jit(lambda x: layer(x))
    step(jnp.array([1.0, 2.0]))
    step(jnp.array([3.0]))
    assert float(layer.tracker.result()) == 2.0
    assert float(layer.tracker.count.value) == 3.0


def test_result_inside_jit_and_state_visible_afterwards():
    m = metrics.SparseCategoricalAccuracy()

    @lm.jit
    def step(y, p):
        m.update_state(y, p)
        return m.result()

    out = step(jnp.array([0, 1]), jnp.array([[0.9, 0.1], [0.9, 0.1]]))
    assert float(out) == 0.5 == float(m.result())
    out = step(jnp.array([0, 1]), jnp.array([[0.9, 0.1], [0.1, 0.9]]))
    assert float(out) == 0.75 == float(m.result())


def test_multi_label_auc_built_by_first_update_inside_jit(keras):
    rng = np.random.RandomState(5)
    ours, theirs = metrics.AUC(multi_label=True), keras.metrics.AUC(multi_label=True)
    assert ours.variables == []
    step = lm.jit(ours.update_state)
    for _ in range(2):
        y, p = _binary(rng, (N, 4)), _probs(rng, (N, 4))
        step(y, p)
        theirs.update_state(y, p)
    assert [v.shape for v in ours.variables] == [(200, 4)] * 4
    _close(ours.result(), theirs.result(), "lazily built multi-label AUC")


def test_reset_restores_initial_values_of_custom_initializers():
    class Counter(metrics.Metric):
        def __init__(self):
            super().__init__(name="counter")
            self.n = self.add_variable((), initializer="ones", name="n")

        def update_state(self, x):
            self.n.assign_add(jnp.sum(jnp.asarray(x)))

        def result(self):
            return self.n.value

    m = Counter()
    m.update_state([2.0, 3.0])
    assert float(m.result()) == 6.0
    m.reset_state()
    assert float(m.result()) == 1.0


def test_forgetting_super_init_is_a_clear_error():
    class Broken(metrics.Metric):
        def __init__(self):
            pass

    with pytest.raises(RuntimeError, match="super"):
        Broken().add_variable(())


def test_metric_holding_metrics_exposes_their_variables():
    class Both(metrics.Metric):
        def __init__(self):
            super().__init__(name="both")
            self.parts = [metrics.Precision(), metrics.Recall()]

        def update_state(self, y, p):
            for part in self.parts:
                part.update_state(y, p)

        def result(self):
            p, r = (part.result() for part in self.parts)
            return 2 * p * r / (p + r)

    m = Both()
    assert len(m.variables) == 4
    m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
    m.reset_state()
    assert all(float(jnp.sum(v.value)) == 0.0 for v in m.variables)


@pytest.mark.parametrize("identifier, cls, name", [
    ("accuracy", metrics.Accuracy, "accuracy"),
    ("acc", metrics.Accuracy, "accuracy"),
    ("mse", metrics.MeanSquaredError, "mean_squared_error"),
    ("mae", metrics.MeanAbsoluteError, "mean_absolute_error"),
    ("binary_accuracy", metrics.BinaryAccuracy, "binary_accuracy"),
    ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy, "sparse_categorical_accuracy"),
    ("auc", metrics.AUC, "auc"),
    ("AUC", metrics.AUC, "auc"),
    ("precision", metrics.Precision, "precision"),
    ("recall", metrics.Recall, "recall"),
    ("RootMeanSquaredError", metrics.RootMeanSquaredError, "root_mean_squared_error"),
])
def test_get_resolves_strings(identifier, cls, name):
    m = metrics.get(identifier)
    assert type(m) is cls
    assert m.name.startswith(name)


def test_get_other_identifiers():
    m = metrics.Mean()
    assert metrics.get(m) is m
    assert metrics.get(None) is None
    assert type(metrics.get(metrics.Recall)) is metrics.Recall
    wrapped = metrics.get(metrics.binary_accuracy)
    assert isinstance(wrapped, metrics.MeanMetricWrapper) and wrapped.name == "binary_accuracy"
    auc = metrics.get({"class_name": "AUC", "config": {"num_thresholds": 10, "curve": "PR"}})
    assert (auc.num_thresholds, auc.curve) == (10, "PR")
    with pytest.raises(ValueError, match="Unknown metric"):
        metrics.get("no_such_metric")


@pytest.mark.parametrize("metric", [
    metrics.Mean(name="m"), metrics.BinaryAccuracy(threshold=0.2),
    metrics.SparseTopKCategoricalAccuracy(k=3, from_sorted_ids=True), metrics.MeanSquaredError(),
    metrics.Precision(thresholds=[0.3, 0.6], class_id=1), metrics.Recall(top_k=2),
    metrics.AUC(num_thresholds=20, curve="PR", summation_method="minoring", from_logits=True),
    metrics.AUC(thresholds=[0.2, 0.4]), metrics.AUC(multi_label=True, num_labels=2, label_weights=[1, 2]),
    metrics.MeanMetricWrapper(metrics.top_k_categorical_accuracy, name="top2", k=2),
], ids=lambda m: type(m).__name__)
def test_config_round_trip(metric):
    import json

    config = json.loads(json.dumps(metrics.serialize(metric)))
    again = metrics.deserialize(config)
    assert type(again) is type(metric)
    assert again.get_config() == metric.get_config()


def test_config_keys_match_keras(keras):
    pairs = [(metrics.AUC(), keras.metrics.AUC()), (metrics.Precision(), keras.metrics.Precision()),
             (metrics.BinaryAccuracy(), keras.metrics.BinaryAccuracy()),
             (metrics.SparseTopKCategoricalAccuracy(), keras.metrics.SparseTopKCategoricalAccuracy())]
    for ours, theirs in pairs:
        assert set(ours.get_config()) == set(theirs.get_config()), type(ours).__name__


class _NamedLoss:
    def __init__(self, name):
        self.name = name

    def get_config(self):
        return {"name": self.name}


class BinaryCrossentropy:  # stands in for lm.losses.BinaryCrossentropy, matched by class name
    name = "my_loss"

    def get_config(self):
        return {}


def sparse_categorical_crossentropy(y_true, y_pred):  # stands in for the loss function
    return y_pred


@pytest.mark.parametrize("loss, shapes, expected", [
    ("binary_crossentropy", (), metrics.BinaryAccuracy),
    ("BinaryCrossentropy", ((N, 5), (N, 5)), metrics.BinaryAccuracy),
    ("bce", (), metrics.BinaryAccuracy),
    (BinaryCrossentropy(), (), metrics.BinaryAccuracy),
    (BinaryCrossentropy, (), metrics.BinaryAccuracy),
    ("sparse_categorical_crossentropy", ((N, 1), (N, 1)), metrics.SparseCategoricalAccuracy),
    (sparse_categorical_crossentropy, (), metrics.SparseCategoricalAccuracy),
    (_NamedLoss("sparse_categorical_crossentropy"), (), metrics.SparseCategoricalAccuracy),
    ("categorical_crossentropy", ((N,), (N, 1)), metrics.CategoricalAccuracy),
    ("cce", (), metrics.CategoricalAccuracy),
    # The loss does not decide: Keras 3's shape rule.
    ("mse", ((N, 1), (N, 1)), metrics.BinaryAccuracy),
    ("mse", ((N,), (N, 1)), metrics.BinaryAccuracy),
    ("mse", ((N,), (N, 10)), metrics.SparseCategoricalAccuracy),
    ("mse", ((N, 1), (N, 10)), metrics.SparseCategoricalAccuracy),
    (None, ((N, 10), (N, 10)), metrics.CategoricalAccuracy),
    ("crossentropy", ((N, 10), (N, 10)), metrics.CategoricalAccuracy),
    ("mse", (((N, 1), (N, 10)),), metrics.SparseCategoricalAccuracy),  # y_shape as a pair
    ("hinge", (None, (N, 1)), metrics.BinaryAccuracy),
    ("hinge", ((N, 4),), metrics.CategoricalAccuracy),
    ("hinge", ((N,),), metrics.BinaryAccuracy),
    ("mse", (), metrics.CategoricalAccuracy),
])
def test_resolve_accuracy(loss, shapes, expected):
    m = metrics.resolve_accuracy(loss, *shapes)
    assert type(m) is expected
    assert m.name == "accuracy"
    assert metrics.resolve_accuracy(loss, *shapes, name="acc").name == "acc"


@pytest.mark.parametrize("shapes", [((N, 1), (N, 1)), ((N,), (N, 1)), ((N,), (N, 10)),
                                    ((N, 1), (N, 10)), ((N, 10), (N, 10))])
def test_resolve_accuracy_shape_rule_agrees_with_keras(keras, shapes):
    from keras.src.trainers.compile_utils import get_metric

    y_true, y_pred = (np.zeros(s, "float32") for s in shapes)
    expected = type(get_metric("accuracy", y_true, y_pred)).__name__
    assert type(metrics.resolve_accuracy("mse", *shapes)).__name__ == expected
