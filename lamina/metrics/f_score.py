"""``FBetaScore`` and ``F1Score``: the F-score of a (multi-label) classifier per class, or
averaged, over every batch seen, as in Keras 3."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.core import settings
from lamina.metrics.base import Metric, to_array


class FBetaScore(Metric):
    """``(1 + beta**2) * precision * recall / (beta**2 * precision + recall)`` per class.

    ``y_true`` is one-hot or multi-hot ``(batch, classes)``. Predictions count as positive
    where they exceed ``threshold``; with ``threshold=None`` the highest score of each row (if
    not zero) is the one positive. ``average``: ``None`` (one score per class), ``"micro"``
    (counts pooled over classes), ``"macro"`` (mean over classes) or ``"weighted"`` (weighted
    by each class's true count).

    Example:
        >>> m = FBetaScore(beta=2.0, average="micro", threshold=0.5)
        >>> m.update_state([[1, 0], [0, 1]], [[0.9, 0.2], [0.6, 0.1]])
        >>> round(float(m.result()), 4)
        0.5
    """

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"{type(self).__name__} '{self.name}': `average` must be None, 'micro', 'macro' or "
                             f"'weighted'; got average={average!r}.")
        if not isinstance(beta, float) or beta <= 0.0:
            raise ValueError(f"{type(self).__name__} '{self.name}': `beta` must be a Python float > 0; got "
                             f"beta={beta!r}.")
        if threshold is not None and (not isinstance(threshold, float) or not 0.0 < threshold <= 1.0):
            raise ValueError(f"{type(self).__name__} '{self.name}': `threshold` must be None or a Python float in "
                             f"(0, 1]; got threshold={threshold!r}.")
        self.average = average
        self.beta = beta
        self.threshold = threshold
        self.axis = None if average == "micro" else 0
        self._classes = None  # the counts are created at the first update (their size is the classes')

    def _build(self, true_shape, pred_shape):
        if len(true_shape) != 2 or len(pred_shape) != 2:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects 2D inputs (batch_size, classes); got "
                             f"y_true.shape={tuple(true_shape)} and y_pred.shape={tuple(pred_shape)}.")
        shape = () if self.average == "micro" else (pred_shape[-1],)
        self.true_positives = self.add_variable(shape, name="true_positives")
        self.false_positives = self.add_variable(shape, name="false_positives")
        self.false_negatives = self.add_variable(shape, name="false_negatives")
        self.intermediate_weights = self.add_variable(shape, name="intermediate_weights")
        self._classes = pred_shape[-1]

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_true = to_array(y_true, self.dtype)
        y_pred = to_array(y_pred, self.dtype)
        if self._classes is None:
            self._build(y_true.shape, y_pred.shape)
        elif y_pred.ndim != 2 or y_pred.shape[-1] != self._classes:
            raise ValueError(f"{type(self).__name__} '{self.name}' was built for (batch_size, {self._classes}) "
                             f"inputs; got y_pred.shape={tuple(y_pred.shape)}.")
        if self.threshold is None:
            # The row's top score is the positive; abs > 1e-9 keeps an all-zero row negative.
            top = jnp.max(y_pred, axis=-1, keepdims=True)
            positive = (y_pred >= top) & (jnp.abs(y_pred) > 1e-9)
        else:
            positive = y_pred > self.threshold
        y_pred = positive.astype(self.dtype)
        weight = None if sample_weight is None else to_array(sample_weight, self.dtype)

        def weighted_sum(values):
            if weight is not None:
                values = values * jnp.expand_dims(weight, 1)
            return jnp.sum(values, axis=self.axis)

        self.true_positives.assign_add(weighted_sum(y_pred * y_true))
        self.false_positives.assign_add(weighted_sum(y_pred * (1 - y_true)))
        self.false_negatives.assign_add(weighted_sum((1 - y_pred) * y_true))
        self.intermediate_weights.assign_add(weighted_sum(y_true))

    def result(self):
        if self._classes is None:
            return jnp.asarray(0.0, self.dtype)
        tp = self.true_positives.value
        precision = tp / (tp + self.false_positives.value + settings.epsilon())
        recall = tp / (tp + self.false_negatives.value + settings.epsilon())
        beta2 = self.beta ** 2
        score = (1 + beta2) * precision * recall / (beta2 * precision + recall + settings.epsilon())
        if self.average == "weighted":
            weights = self.intermediate_weights.value
            return jnp.sum(score * weights / (jnp.sum(weights) + settings.epsilon()))
        if self.average is not None:
            return jnp.mean(score)
        return score

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    """``FBetaScore`` with ``beta=1``: ``2 * precision * recall / (precision + recall)``.

    Example:
        >>> m = F1Score(threshold=0.5)
        >>> m.update_state([[1, 0], [0, 1]], [[0.9, 0.2], [0.6, 0.7]])
        >>> [round(v, 4) for v in m.result().tolist()]
        [0.6667, 1.0]
    """

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["beta"]
        return config


__all__ = ["F1Score", "FBetaScore"]
