"""Regression metrics: ``MeanSquaredError``, ``MeanAbsoluteError``, ``RootMeanSquaredError``.

The per-sample functions are the losses' (``lm.losses.mean_squared_error`` /
``mean_absolute_error``: the mean over the last axis), as in Keras.
"""

from __future__ import annotations

import jax.numpy as jnp

from lamina.losses import mean_absolute_error, mean_squared_error
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
    "MeanAbsoluteError", "MeanSquaredError", "RootMeanSquaredError", "mean_absolute_error",
    "mean_squared_error",
]
