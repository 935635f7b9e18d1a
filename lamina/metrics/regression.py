"""Regression metrics: ``MeanSquaredError``, ``MeanAbsoluteError``, ``RootMeanSquaredError``,
``MeanAbsolutePercentageError``, ``MeanSquaredLogarithmicError``, ``LogCoshError``,
``CosineSimilarity``.

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
from lamina.metrics.base import Mean, MeanMetricWrapper, squeeze_or_expand_to_same_rank, to_array


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


__all__ = [
    "CosineSimilarity", "LogCoshError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredError", "MeanSquaredLogarithmicError", "RootMeanSquaredError",
    "mean_absolute_error", "mean_absolute_percentage_error", "mean_squared_error",
    "mean_squared_logarithmic_error",
]
