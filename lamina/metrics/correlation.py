"""Correlation metrics: ``PearsonCorrelation`` and ``ConcordanceCorrelation`` (the running mean
of each batch's per-sample correlation along ``axis``), as in Keras 3."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.core import settings
from lamina.metrics.base import MeanMetricWrapper, squeeze_or_expand_to_same_rank, to_array


def _pair(y_true, y_pred):
    y_pred = to_array(y_pred)
    y_true = to_array(y_true, y_pred.dtype)
    return squeeze_or_expand_to_same_rank(y_true, y_pred)


def pearson_correlation(y_true, y_pred, axis=-1):
    """Pearson's correlation of ``y_true`` and ``y_pred`` along ``axis``: the mean product of
    their standardized values (population standard deviations).

    Example:
        >>> round(float(pearson_correlation([1.0, 2.0, 3.0], [2.0, 4.0, 7.0])), 4)
        0.9934
    """
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = y_true - jnp.mean(y_true, axis=axis, keepdims=True)
    y_pred = y_pred - jnp.mean(y_pred, axis=axis, keepdims=True)
    y_true = y_true / jnp.std(y_true, axis=axis, keepdims=True)
    y_pred = y_pred / jnp.std(y_pred, axis=axis, keepdims=True)
    return jnp.mean(y_true * y_pred, axis=axis)


def concordance_correlation(y_true, y_pred, axis=-1):
    """Lin's concordance correlation along ``axis``:
    ``2 cov / (var(y_true) + var(y_pred) + (mean(y_true) - mean(y_pred))**2 + 1e-7)``.

    Example:
        >>> round(float(concordance_correlation([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])), 4)
        1.0
    """
    y_true, y_pred = _pair(y_true, y_pred)
    true_mean = jnp.mean(y_true, axis=axis, keepdims=True)
    pred_mean = jnp.mean(y_pred, axis=axis, keepdims=True)
    true_var = jnp.var(y_true - true_mean, axis=axis, keepdims=True)
    pred_var = jnp.var(y_pred - pred_mean, axis=axis, keepdims=True)
    # Keras's form: centring y_true on y_pred's mean gives the same covariance, since the
    # centred y_pred sums to zero along the axis.
    covariance = (y_true - pred_mean) * (y_pred - pred_mean)
    norm = true_var + pred_var + jnp.square(true_mean - pred_mean)
    return jnp.mean(2 * covariance / (norm + settings.epsilon()), axis=axis)


class PearsonCorrelation(MeanMetricWrapper):
    """The running mean of ``pearson_correlation`` (1: perfectly correlated).

    Example:
        >>> m = PearsonCorrelation()
        >>> m.update_state([[1.0, 2.0, 3.0]], [[2.0, 4.0, 6.0]])
        >>> round(float(m.result()), 4)
        1.0
    """

    def __init__(self, name="pearson_correlation", dtype=None, axis=-1):
        super().__init__(fn=pearson_correlation, name=name, dtype=dtype, axis=axis)
        self.axis = axis

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "axis": self.axis}


class ConcordanceCorrelation(MeanMetricWrapper):
    """The running mean of ``concordance_correlation`` (1: equal values).

    Example:
        >>> m = ConcordanceCorrelation()
        >>> m.update_state([[1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0]])
        >>> round(float(m.result()), 4)
        1.0
    """

    def __init__(self, name="concordance_correlation", dtype=None, axis=-1):
        super().__init__(fn=concordance_correlation, name=name, dtype=dtype, axis=axis)
        self.axis = axis

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "axis": self.axis}


__all__ = ["ConcordanceCorrelation", "PearsonCorrelation", "concordance_correlation", "pearson_correlation"]
