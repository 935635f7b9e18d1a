"""Regression metrics: ``MeanSquaredError``, ``MeanAbsoluteError``, ``RootMeanSquaredError``,
``MeanAbsolutePercentageError``, ``MeanSquaredLogarithmicError``, ``LogCoshError``,
``CosineSimilarity``, ``R2Score``.

The per-sample functions are the losses' (``lm.losses.mean_squared_error``,
``mean_absolute_percentage_error``, ...: the mean over the last axis), as in Keras; only
``CosineSimilarity`` differs from its loss, whose sign is flipped so that it can be minimized.
"""

from __future__ import annotations

import jax.numpy as jnp

from lamina.losses import (
    cosine_similarity,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)
from lamina.metrics.base import Mean, MeanMetricWrapper, Metric, squeeze_or_expand_to_same_rank, to_array


class MeanSquaredError(MeanMetricWrapper):
    """The running mean of ``mean_squared_error``.

    Example:
        >>> m = MeanSquaredError()
        >>> m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
        >>> float(m.result())
        0.25
    """

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(fn=mean_squared_error, name=name, dtype=dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class MeanAbsoluteError(MeanMetricWrapper):
    """The running mean of ``mean_absolute_error``.

    Example:
        >>> m = MeanAbsoluteError()
        >>> m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]], sample_weight=[1, 0])
        >>> float(m.result())
        0.5
    """

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(fn=mean_absolute_error, name=name, dtype=dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class MeanAbsolutePercentageError(MeanMetricWrapper):
    """The running mean of ``mean_absolute_percentage_error``:
    ``100 * mean(abs((y_true - y_pred) / max(abs(y_true), 1e-7)))``.

    Example:
        >>> m = MeanAbsolutePercentageError()
        >>> m.update_state([[2.0, 4.0], [1.0, 1.0]], [[1.0, 4.0], [1.0, 0.0]])
        >>> float(m.result())
        37.5
    """

    def __init__(self, name="mean_absolute_percentage_error", dtype=None):
        super().__init__(fn=mean_absolute_percentage_error, name=name, dtype=dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    """The running mean of ``mean_squared_logarithmic_error``:
    ``mean(square(log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1)))``.

    Example:
        >>> import math
        >>> m = MeanSquaredLogarithmicError()
        >>> m.update_state([[0.0], [0.0]], [[math.e - 1], [0.0]])
        >>> round(float(m.result()), 4)
        0.5
    """

    def __init__(self, name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(fn=mean_squared_logarithmic_error, name=name, dtype=dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class LogCoshError(MeanMetricWrapper):
    """The running mean of ``log_cosh``: ``mean(log(cosh(y_pred - y_true)))``; Keras names it
    ``"logcosh"``.

    Example:
        >>> m = LogCoshError()
        >>> m.update_state([[0.0, 0.0]], [[0.0, 0.0]])
        >>> float(m.result())
        0.0
    """

    def __init__(self, name="logcosh", dtype=None):
        super().__init__(fn=log_cosh, name=name, dtype=dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


def _cosine_similarity(y_true, y_pred, axis=-1):
    # The loss is the negated similarity (to be minimized); the metric reports it as is.
    return -cosine_similarity(y_true, y_pred, axis=axis)


class CosineSimilarity(MeanMetricWrapper):
    """The running mean of ``sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)``: 1 when
    the vectors point the same way (unlike the loss ``lm.losses.CosineSimilarity``, which is
    its negative).

    Example:
        >>> m = CosineSimilarity()
        >>> m.update_state([[0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 1.0]])
        >>> round(float(m.result()), 4)
        0.5
    """

    def __init__(self, name="cosine_similarity", dtype=None, axis=-1):
        super().__init__(fn=_cosine_similarity, name=name, dtype=dtype, axis=axis)
        self.axis = axis

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "axis": self.axis}


class RootMeanSquaredError(Mean):
    """``sqrt`` of the running (weighted) mean of the squared errors over all elements.

    Example:
        >>> m = RootMeanSquaredError()
        >>> m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
        >>> float(m.result())
        0.5
    """

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_true = to_array(y_true, self.dtype)
        y_pred = to_array(y_pred, self.dtype)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        super().update_state(jnp.square(y_pred - y_true), sample_weight=sample_weight)

    def result(self):
        return jnp.sqrt(super().result())


class R2Score(Metric):
    """The coefficient of determination, ``1 - sum((y - y_pred)**2) / sum((y - mean(y))**2)``,
    per output column over every batch seen, as ``keras.metrics.R2Score``.

    Inputs are ``(batch, outputs)``. ``class_aggregation`` combines the columns:
    ``"uniform_average"`` (their mean, the default), ``"variance_weighted_average"`` (weighted
    by each column's variance), or ``None`` (one score per column). ``num_regressors > 0``
    gives the adjusted R2 with ``n`` counted as Keras counts it (every entry of ``y_true``); it
    falls back to the plain score when ``num_regressors >= n - 1``. A constant column scores 0.

    Example:
        >>> m = R2Score()
        >>> m.update_state([[1.0], [2.0], [3.0]], [[1.0], [2.0], [2.0]])
        >>> float(m.result())
        0.5
    """

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        choices = (None, "uniform_average", "variance_weighted_average")
        if class_aggregation not in choices:
            raise ValueError(f"R2Score '{self.name}': `class_aggregation` must be one of {choices}; got "
                             f"class_aggregation={class_aggregation!r}.")
        if isinstance(num_regressors, bool) or not isinstance(num_regressors, int) or num_regressors < 0:
            raise ValueError(f"R2Score '{self.name}': `num_regressors` must be an integer >= 0; got "
                             f"num_regressors={num_regressors!r}.")
        self.class_aggregation = class_aggregation
        self.num_regressors = num_regressors
        self.num_samples = self.add_variable((), name="num_samples")
        self._columns = None  # per-column sums, created at the first update (their size is the outputs')

    def _build(self, true_shape, pred_shape):
        if len(true_shape) != 2 or len(pred_shape) != 2:
            raise ValueError(f"R2Score '{self.name}' expects 2D inputs (batch_size, output_dim); got "
                             f"y_true.shape={tuple(true_shape)} and y_pred.shape={tuple(pred_shape)}.")
        size = (pred_shape[-1],)
        # Keras's variable order and names.
        self.squared_sum = self.add_variable(size, name="squared_sum")
        self.sum = self.add_variable(size, name="sum")
        self.total_mse = self.add_variable(size, name="residual")
        self.count = self.add_variable(size, name="count")
        self._columns = size[0]

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_true = to_array(y_true, self.dtype)
        y_pred = to_array(y_pred, self.dtype)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        if self._columns is None:
            self._build(y_true.shape, y_pred.shape)
        elif y_pred.ndim != 2 or y_pred.shape[-1] != self._columns:
            raise ValueError(f"R2Score '{self.name}' was built for (batch_size, {self._columns}) inputs; got "
                             f"y_pred.shape={tuple(y_pred.shape)}.")
        weight = jnp.asarray(1.0 if sample_weight is None else to_array(sample_weight), self.dtype)
        if weight.ndim == 1:
            weight = weight[:, None]
        weight = jnp.broadcast_to(weight, y_true.shape)
        weighted = y_true * weight
        self.sum.assign_add(jnp.sum(weighted, axis=0))
        self.squared_sum.assign_add(jnp.sum(y_true * weighted, axis=0))
        self.total_mse.assign_add(jnp.sum(jnp.square(y_true - y_pred) * weight, axis=0))
        self.count.assign_add(jnp.sum(weight, axis=0))
        self.num_samples.assign_add(jnp.asarray(y_true.size, self.dtype))

    def result(self):
        if self._columns is None:
            return jnp.asarray(0.0, self.dtype)
        mean = self.sum.value / self.count.value
        total = self.squared_sum.value - self.sum.value * mean
        raw = 1 - self.total_mse.value / total
        raw = jnp.where(jnp.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            score = jnp.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            score = jnp.sum(total * raw) / jnp.sum(total)
        else:
            score = raw
        if self.num_regressors:
            # Keras decides in Python (eager only); a where keeps this usable in compiled steps.
            n, p = self.num_samples.value, float(self.num_regressors)
            adjusted = 1.0 - (1.0 - score) * (n - 1.0) / (n - p - 1.0)
            score = jnp.where(p < n - 1.0, adjusted, score)
        return score

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


__all__ = [
    "CosineSimilarity", "LogCoshError", "R2Score", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredError", "MeanSquaredLogarithmicError", "RootMeanSquaredError",
    "mean_absolute_error", "mean_absolute_percentage_error", "mean_squared_error",
    "mean_squared_logarithmic_error",
]
