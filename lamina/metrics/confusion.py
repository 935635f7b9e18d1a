"""Confusion-matrix metrics: ``Precision``, ``Recall``, ``AUC`` and the four raw counts.

The counts (true/false positives/negatives per threshold) are accumulated in variables exactly
as Keras 3 does, including its fast path for evenly spaced thresholds (a bucketed reverse
cumulative sum), so results agree with Keras to float rounding. A prediction counts as
positive at threshold ``t`` when ``y_pred > t``; labels are cast to bool.

Not supported (they raise): ``multi_label=True`` together with ``label_weights`` passed to
the *count* update (Keras refuses it too; ``AUC`` applies them when averaging instead).
Supported beyond the brief: ``AUC(multi_label=True)``, with ``num_labels`` or built from the
first batch's shape (a build inside ``lm.jit`` works, as variables are created concretely).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lamina.metrics.base import Metric, divide_no_nan, squeeze_or_expand_to_same_rank, to_array

NEG_INF = -1e10  # Keras's stand-in threshold for "every top-k prediction is positive"
_EPSILON = 1e-7  # Keras's backend.epsilon()

TP, FP, TN, FN = "tp", "fp", "tn", "fn"


def _to_list(x):
    return list(x) if isinstance(x, (list, tuple, np.ndarray)) else [x]


def _parse_thresholds(thresholds, default):
    if thresholds is not None:
        bad = [t for t in _to_list(thresholds) if t is None or t < 0 or t > 1]
        if bad:
            raise ValueError(f"Threshold values must be in [0, 1]. Received: {bad}")
    return [float(t) for t in _to_list(default if thresholds is None else thresholds)]


def _evenly_distributed(thresholds) -> bool:
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=_EPSILON))


def _filter_top_k(x, k):
    """Keep the ``k`` largest values of the last axis; the rest become ``NEG_INF``."""
    _, idx = jax.lax.top_k(x, k)
    mask = jnp.sum(jax.nn.one_hot(idx, x.shape[-1], dtype=x.dtype), axis=-2)
    return x * mask + NEG_INF * (1 - mask)


def update_confusion_matrix_variables(variables, y_true, y_pred, thresholds, top_k=None,
                                      class_id=None, sample_weight=None, multi_label=False,
                                      label_weights=None, thresholds_distributed_evenly=False):
    """Add one batch's weighted counts to ``variables`` (a dict with keys among
    ``"tp"``, ``"fp"``, ``"tn"``, ``"fn"``), one entry per threshold (and label when
    ``multi_label``). ``thresholds`` is a Python list of floats."""
    if multi_label and label_weights is not None:
        raise ValueError("`label_weights` for multilabel data must be applied outside the "
                         "count update when `multi_label` is True.")
    invalid = [k for k in variables if k not in (TP, FP, TN, FN)]
    if invalid or not variables:
        raise ValueError(f"Invalid confusion-matrix keys {invalid}; expected some of tp, fp, tn, fn.")
    dtype = next(iter(variables.values())).dtype
    y_true = to_array(y_true, dtype)
    y_pred = to_array(y_pred, dtype)
    with_epsilon = thresholds[0] < 0.0 or thresholds[-1] > 1.0
    thresholds = jnp.asarray(thresholds, dtype)
    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    if sample_weight is not None:
        sample_weight = jnp.expand_dims(to_array(sample_weight, dtype), -1)
        _, sample_weight = squeeze_or_expand_to_same_rank(y_true, sample_weight, expand_rank_1=False)
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError("When class_id is provided, y_pred must be a 2D array with shape "
                             f"(num_samples, num_classes), found shape: {y_pred.shape}")
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
    if thresholds_distributed_evenly:
        return _update_evenly(variables, y_true, y_pred, thresholds, multi_label, sample_weight,
                              label_weights, with_epsilon)

    # General thresholds: compare every prediction with every threshold, shape (T, N*L) or,
    # multi-label, (T, N, L); broadcasting stands in for Keras's explicit tiling.
    if multi_label:
        preds, labels = y_pred[None], y_true.astype(bool)[None]
        thresh = thresholds.reshape(-1, 1, 1)
    else:
        preds, labels = y_pred.reshape(1, -1), y_true.astype(bool).reshape(1, -1)
        thresh = thresholds.reshape(-1, 1)
    pred_is_pos = preds > thresh
    weights = None
    if sample_weight is not None:
        weights = jnp.broadcast_to(sample_weight.astype(y_pred.dtype), y_pred.shape)
        weights = weights[None] if multi_label else weights.reshape(1, -1)
    if label_weights is not None:  # not multi_label (refused above)
        lw = jnp.broadcast_to(jnp.expand_dims(to_array(label_weights, dtype), 0), y_pred.shape).reshape(1, -1)
        weights = lw if weights is None else weights * lw

    def add(var, label, pred):
        both = jnp.logical_and(label, pred)
        if weights is None:
            counts = both.astype(var.dtype)
        else:
            counts = jnp.where(both, jnp.broadcast_to(weights, both.shape).astype(var.dtype), 0)
        var.assign(var.value + jnp.sum(counts, axis=1))

    pred_is_neg = jnp.logical_not(pred_is_pos)
    label_is_neg = jnp.logical_not(labels)
    pairs = {TP: (labels, pred_is_pos), FN: (labels, pred_is_neg),
             FP: (label_is_neg, pred_is_pos), TN: (label_is_neg, pred_is_neg)}
    for key in (TP, FN, FP, TN):  # Keras's update order
        if key in variables:
            add(variables[key], *pairs[key])


def _update_evenly(variables, y_true, y_pred, thresholds, multi_label, sample_weights,
                   label_weights, with_epsilon):
    """Keras's O(T + N) update for evenly spaced thresholds: bucket each prediction by
    ``ceil(p * (T - 1)) - 1`` and take a reverse cumulative sum over the buckets."""
    num_thresholds = thresholds.shape[0]
    if sample_weights is None:
        sample_weights = 1.0
    else:
        sample_weights = jnp.broadcast_to(sample_weights.astype(y_pred.dtype), y_pred.shape)
        if not multi_label:
            sample_weights = sample_weights.reshape(-1)
    if label_weights is None:
        label_weights = 1.0
    else:
        label_weights = jnp.broadcast_to(jnp.expand_dims(to_array(label_weights, y_pred.dtype), 0), y_pred.shape)
        if not multi_label:
            label_weights = label_weights.reshape(-1)
    weights = jnp.asarray(jnp.multiply(sample_weights, label_weights)).astype(y_true.dtype)
    y_pred = jnp.clip(y_pred, 0.0, 1.0)
    y_true = y_true.astype(bool).astype(y_true.dtype)
    if not multi_label:
        y_true, y_pred = y_true.reshape(-1), y_pred.reshape(-1)
    true_labels = y_true * weights
    false_labels = (1.0 - y_true) * weights
    buckets = jnp.ceil(y_pred * (num_thresholds - 1)) - 1
    if with_epsilon:
        buckets = jax.nn.relu(buckets)
    buckets = buckets.astype("int32")

    def bucket_sums(data, ids):
        # Out-of-range ids (a prediction of exactly 0 without the epsilon end-point) drop out.
        return jax.ops.segment_sum(data, ids, num_segments=num_thresholds)

    if multi_label:
        true_labels, false_labels, buckets = true_labels.T, false_labels.T, buckets.T
        tp_buckets = jax.vmap(bucket_sums)(true_labels, buckets)
        fp_buckets = jax.vmap(bucket_sums)(false_labels, buckets)
        tp = jnp.flip(jnp.cumsum(jnp.flip(tp_buckets), axis=1)).T
        fp = jnp.flip(jnp.cumsum(jnp.flip(fp_buckets), axis=1)).T
        total_true, total_false = jnp.sum(true_labels, axis=1), jnp.sum(false_labels, axis=1)
    else:
        tp = jnp.flip(jnp.cumsum(jnp.flip(bucket_sums(true_labels, buckets))))
        fp = jnp.flip(jnp.cumsum(jnp.flip(bucket_sums(false_labels, buckets))))
        total_true, total_false = jnp.sum(true_labels), jnp.sum(false_labels)
    updates = {TP: tp, FP: fp, TN: total_false - fp, FN: total_true - tp}
    for key in (TP, FP, TN, FN):
        if key in variables:
            var = variables[key]
            var.assign(var.value + updates[key])


class _ConfusionMatrixConditionCount(Metric):
    """One confusion-matrix count per threshold (default ``0.5``)."""

    _condition = TP

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds = _parse_thresholds(thresholds, 0.5)
        self._thresholds_distributed_evenly = _evenly_distributed(self.thresholds)
        self.accumulator = self.add_variable((len(self.thresholds),), "zeros", name="accumulator")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        update_confusion_matrix_variables(
            {self._condition: self.accumulator}, y_true, y_pred, self.thresholds,
            thresholds_distributed_evenly=self._thresholds_distributed_evenly,
            sample_weight=sample_weight,
        )

    def result(self):
        value = self.accumulator.value
        return value[0] if len(self.thresholds) == 1 else value

    def get_config(self) -> dict:
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConfusionMatrixConditionCount):
    """The (weighted) number of true positives, per threshold.

    Example:
        >>> m = TruePositives()
        >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
        >>> float(m.result())
        2.0
    """

    _condition = TP


class FalsePositives(_ConfusionMatrixConditionCount):
    """The (weighted) number of false positives, per threshold.

    Example:
        >>> m = FalsePositives()
        >>> m.update_state([0, 1, 0, 0], [0, 0, 1, 1])
        >>> float(m.result())
        2.0
    """

    _condition = FP


class TrueNegatives(_ConfusionMatrixConditionCount):
    """The (weighted) number of true negatives, per threshold.

    Example:
        >>> m = TrueNegatives()
        >>> m.update_state([0, 1, 0, 0], [1, 1, 0, 0])
        >>> float(m.result())
        2.0
    """

    _condition = TN


class FalseNegatives(_ConfusionMatrixConditionCount):
    """The (weighted) number of false negatives, per threshold.

    Example:
        >>> m = FalseNegatives()
        >>> m.update_state([0, 1, 1, 1], [0, 1, 0, 0])
        >>> float(m.result())
        2.0
    """

    _condition = FN


class _PrecisionRecallBase(Metric):
    """Shared set-up of ``Precision`` and ``Recall``: two count variables per threshold."""

    _second = FP  # the count in the denominator with the true positives

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        default = 0.5 if top_k is None else NEG_INF
        self.thresholds = _parse_thresholds(thresholds, default)
        self._thresholds_distributed_evenly = _evenly_distributed(self.thresholds)
        n = len(self.thresholds)
        self.true_positives = self.add_variable((n,), "zeros", name="true_positives")
        second = "false_positives" if self._second == FP else "false_negatives"
        setattr(self, second, self.add_variable((n,), "zeros", name=second))

    def _second_variable(self):
        return self.false_positives if self._second == FP else self.false_negatives

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        update_confusion_matrix_variables(
            {TP: self.true_positives, self._second: self._second_variable()},
            y_true, y_pred, self.thresholds,
            thresholds_distributed_evenly=self._thresholds_distributed_evenly,
            top_k=self.top_k, class_id=self.class_id, sample_weight=sample_weight,
        )

    def result(self):
        tp = self.true_positives.value
        value = divide_no_nan(tp, tp + self._second_variable().value)
        return value[0] if len(self.thresholds) == 1 else value

    def get_config(self) -> dict:
        return {**super().get_config(), "thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Precision(_PrecisionRecallBase):
    """``true_positives / (true_positives + false_positives)``, per threshold.

    A prediction is positive above ``thresholds`` (default ``0.5``; a list gives one result
    per threshold). ``top_k`` counts only the ``k`` highest predictions of each sample as
    positive; ``class_id`` restricts the metric to one class of a ``(batch, classes)`` input.

    Example:
        >>> m = Precision()
        >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
        >>> round(float(m.result()), 4)
        0.6667
        >>> m = Precision(top_k=2)
        >>> m.update_state([0, 0, 1, 1], [1, 1, 1, 1])
        >>> float(m.result())
        0.0
    """

    _second = FP

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(thresholds=thresholds, top_k=top_k, class_id=class_id, name=name, dtype=dtype)


class Recall(_PrecisionRecallBase):
    """``true_positives / (true_positives + false_negatives)``, per threshold.

    Arguments as for ``Precision``.

    Example:
        >>> m = Recall()
        >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
        >>> round(float(m.result()), 4)
        0.6667
    """

    _second = FN

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(thresholds=thresholds, top_k=top_k, class_id=class_id, name=name, dtype=dtype)


_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = ("interpolation", "majoring", "minoring")


class AUC(Metric):
    """Area under the ROC or precision-recall curve, approximated over fixed thresholds.

    ``num_thresholds`` evenly spaced thresholds in ``[0, 1]`` (or the sorted ``thresholds``
    given, plus the two end-points) discretise the curve; ``curve`` is ``"ROC"``, ``"PR"`` or
    ``"PRGAIN"``; ``summation_method`` is ``"interpolation"`` (trapezoids; for PR, Davis &
    Goadrich's interpolation), ``"minoring"`` or ``"majoring"``. ``from_logits=True`` applies a
    sigmoid to predictions first. ``multi_label=True`` keeps counts per label (the last axis of
    a rank-2 input) and averages the per-label areas, weighted by ``label_weights``;
    otherwise every element is one binary prediction and ``label_weights`` weights the
    columns.

    Example:
        >>> m = AUC(num_thresholds=3)
        >>> m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
        >>> float(m.result())
        0.75
    """

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        curve_key = str(getattr(curve, "value", curve))
        if curve_key.lower() not in _CURVES:
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected one of ["PR", "ROC", "PRGAIN"].')
        summation_key = str(getattr(summation_method, "value", summation_method)).lower()
        if summation_key not in _SUMMATIONS:
            raise ValueError(f'Invalid AUC summation method value: "{summation_method}". '
                             f"Expected one of {list(_SUMMATIONS)}.")
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            self.num_thresholds = len(thresholds) + 2
            thresholds = sorted(float(t) for t in thresholds)
            self._thresholds_distributed_evenly = _evenly_distributed(np.array([0.0] + thresholds + [1.0]))
        else:
            if num_thresholds <= 1:
                raise ValueError(f"Argument `num_thresholds` must be an integer > 1. Received: "
                                 f"num_thresholds={num_thresholds}")
            self.num_thresholds = int(num_thresholds)
            thresholds = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._thresholds_distributed_evenly = True
        # End-points just outside [0, 1] absorb float imprecision at 0 and 1.
        self._thresholds = np.array([0.0 - _EPSILON] + thresholds + [1.0 + _EPSILON])
        self.curve = _CURVES[curve_key.lower()]
        self.summation_method = summation_key
        super().__init__(name=name, dtype=dtype)
        self.multi_label = bool(multi_label)
        self.num_labels = num_labels
        if label_weights is not None:
            label_weights = [float(w) for w in np.asarray(label_weights).reshape(-1)]
        self.label_weights = label_weights  # a list, so that the config is JSON
        self._from_logits = bool(from_logits)
        self._built = False
        if self.multi_label:
            if num_labels:
                self._build((None, num_labels))
        else:
            if num_labels:
                raise ValueError("`num_labels` is needed only when `multi_label` is True.")
            self._build(None)

    @property
    def thresholds(self) -> list:
        """The thresholds used, including the two end-points just outside ``[0, 1]``."""
        return list(self._thresholds)

    def _build(self, shape) -> None:
        if self.multi_label:
            if len(shape) != 2:
                raise ValueError("`y_pred` must have rank 2 when `multi_label=True`. Found rank "
                                 f"{len(shape)}. Full shape received for `y_pred`: {shape}")
            self._num_labels = int(shape[1])
            variable_shape = (self.num_thresholds, self._num_labels)
        else:
            variable_shape = (self.num_thresholds,)
        self._build_input_shape = shape
        self.true_positives = self.add_variable(variable_shape, "zeros", name="true_positives")
        self.false_positives = self.add_variable(variable_shape, "zeros", name="false_positives")
        self.true_negatives = self.add_variable(variable_shape, "zeros", name="true_negatives")
        self.false_negatives = self.add_variable(variable_shape, "zeros", name="false_negatives")
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_pred = to_array(y_pred)
        if not self._built:
            self._build(y_pred.shape)
        if self._from_logits:
            y_pred = jax.nn.sigmoid(y_pred)
        update_confusion_matrix_variables(
            {TP: self.true_positives, TN: self.true_negatives, FP: self.false_positives,
             FN: self.false_negatives},
            y_true, y_pred, list(self._thresholds),
            thresholds_distributed_evenly=self._thresholds_distributed_evenly,
            sample_weight=sample_weight, multi_label=self.multi_label,
            label_weights=None if self.multi_label else self.label_weights,
        )

    def _average_over_labels(self, by_threshold):
        if not self.multi_label:
            return jnp.sum(by_threshold)
        by_label = jnp.sum(by_threshold, axis=0)
        if self.label_weights is None:
            return jnp.mean(by_label)
        weights = jnp.asarray(self.label_weights, by_label.dtype)
        return divide_no_nan(jnp.sum(by_label * weights), jnp.sum(weights))

    def interpolate_pr_auc(self):
        """PR-AUC with precision interpolated as in Davis & Goadrich (2006), as in Keras."""
        n = self.num_thresholds
        tp, fp, fn = self.true_positives.value, self.false_positives.value, self.false_negatives.value
        dtp = tp[: n - 1] - tp[1:]
        p = tp + fp
        dp = p[: n - 1] - p[1:]
        prec_slope = divide_no_nan(dtp, jnp.maximum(dp, 0))
        intercept = tp[1:] - prec_slope * p[1:]
        safe_p_ratio = jnp.where(
            jnp.logical_and(p[: n - 1] > 0, p[1:] > 0),
            divide_no_nan(p[: n - 1], jnp.maximum(p[1:], 0)),
            jnp.ones_like(p[1:]),
        )
        increment = divide_no_nan(prec_slope * (dtp + intercept * jnp.log(safe_p_ratio)),
                                  jnp.maximum(tp[1:] + fn[1:], 0))
        return self._average_over_labels(increment)

    def result(self):
        if not self._built:
            return jnp.zeros((), self.dtype)
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self.interpolate_pr_auc()
        n = self.num_thresholds
        tp, fp = self.true_positives.value, self.false_positives.value
        tn, fn = self.true_negatives.value, self.false_negatives.value
        recall = divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, divide_no_nan(tp, tp + fp)
        else:  # PRGAIN, with Keras's guards for no true positives and negative recall gain
            scaling = divide_no_nan(tp + fn, tn + fp)
            recall_gain = 1.0 - scaling * divide_no_nan(fn, tp)
            precision_gain = 1.0 - scaling * divide_no_nan(fp, tp)
            recall_gain = jnp.maximum(jnp.where(tp == 0.0, 0.0, recall_gain), 0.0)
            precision_gain = jnp.where(tp == 0.0, 1.0, precision_gain)
            x, y = recall_gain, precision_gain
        if self.summation_method == "interpolation":
            heights = (y[: n - 1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = jnp.minimum(y[: n - 1], y[1:])
        else:
            heights = jnp.maximum(y[: n - 1], y[1:])
        return self._average_over_labels((x[: n - 1] - x[1:]) * heights)

    def reset_state(self) -> None:
        if self._built:
            super().reset_state()

    def get_config(self) -> dict:
        config = {
            **super().get_config(),
            "num_thresholds": self.num_thresholds, "curve": self.curve,
            "summation_method": self.summation_method, "multi_label": self.multi_label,
            "num_labels": self.num_labels, "label_weights": self.label_weights,
            "from_logits": self._from_logits,
        }
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config


__all__ = [
    "AUC", "FalseNegatives", "FalsePositives", "Precision", "Recall", "TrueNegatives",
    "TruePositives", "update_confusion_matrix_variables",
]
