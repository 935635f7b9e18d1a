"""Probabilistic and hinge metrics: the running mean of a loss function, as Keras 3's
``BinaryCrossentropy``, ``CategoricalCrossentropy``, ``SparseCategoricalCrossentropy``,
``KLDivergence``, ``Poisson``, ``Hinge``, ``SquaredHinge`` and ``CategoricalHinge`` metrics.

Each shares its class name with the loss of ``lm.losses``; ``lm.metrics.<Name>`` is the metric
(a configurable running mean), ``lm.losses.<Name>`` the loss.
"""

from __future__ import annotations

from lamina.losses import (
    _sparse_categorical_crossentropy,
    apply_mask,
    binary_crossentropy,
    categorical_crossentropy,
    categorical_hinge,
    hinge,
    kl_divergence,
    poisson,
    sparse_categorical_crossentropy,
    squared_hinge,
)
from lamina.metrics.base import Mean, MeanMetricWrapper


class _LossMean(MeanMetricWrapper):
    """A metric that averages one loss function; ``get_config`` lists its own arguments."""

    _loss = None
    _arguments: tuple = ()

    def __init__(self, name, dtype, **kwargs):
        super().__init__(type(self)._loss, name=name, dtype=dtype, **kwargs)
        for key, value in kwargs.items():
            setattr(self, key, value)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, **{key: getattr(self, key) for key in self._arguments}}


class BinaryCrossentropy(_LossMean):
    """The running mean of ``binary_crossentropy`` (labels 0/1, one probability or logit each).

    Example:
        >>> m = BinaryCrossentropy()
        >>> m.update_state([[0.0, 1.0]], [[0.5, 0.5]])
        >>> round(float(m.result()), 4)
        0.6931
    """

    _loss = staticmethod(binary_crossentropy)
    _arguments = ("from_logits", "label_smoothing")

    def __init__(self, name="binary_crossentropy", dtype=None, from_logits=False, label_smoothing=0):
        super().__init__(name, dtype, from_logits=from_logits, label_smoothing=label_smoothing)


class CategoricalCrossentropy(_LossMean):
    """The running mean of ``categorical_crossentropy`` (one-hot labels).

    Example:
        >>> m = CategoricalCrossentropy()
        >>> m.update_state([[0.0, 1.0]], [[0.5, 0.5]])
        >>> round(float(m.result()), 4)
        0.6931
    """

    _loss = staticmethod(categorical_crossentropy)
    _arguments = ("from_logits", "label_smoothing", "axis")

    def __init__(self, name="categorical_crossentropy", dtype=None, from_logits=False, label_smoothing=0, axis=-1):
        super().__init__(name, dtype, from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


class SparseCategoricalCrossentropy(_LossMean):
    """The running mean of ``sparse_categorical_crossentropy`` (integer labels); entries
    labelled ``ignore_class`` do not count.

    Example:
        >>> m = SparseCategoricalCrossentropy()
        >>> m.update_state([1], [[0.5, 0.5]])
        >>> round(float(m.result()), 4)
        0.6931
    """

    _loss = staticmethod(sparse_categorical_crossentropy)
    _arguments = ("from_logits", "ignore_class", "axis")

    def __init__(self, name="sparse_categorical_crossentropy", dtype=None, from_logits=False, ignore_class=None,
                 axis=-1):
        super().__init__(name, dtype, from_logits=from_logits, ignore_class=ignore_class, axis=axis)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        # As Keras: entries labelled ``ignore_class`` are left out of the mean (weight 0), not
        # averaged in as zeros.
        values, valid = _sparse_categorical_crossentropy(y_true, y_pred, self.from_logits, self.ignore_class,
                                                         self.axis)
        Mean.update_state(self, values, sample_weight=apply_mask(sample_weight, valid, self.dtype, "sum"))


class KLDivergence(_LossMean):
    """The running mean of ``kl_divergence``: ``sum(y_true * log(y_true / y_pred))``.

    Example:
        >>> m = KLDivergence()
        >>> m.update_state([[0.5, 0.5]], [[0.5, 0.5]])
        >>> float(m.result())
        0.0
    """

    _loss = staticmethod(kl_divergence)

    def __init__(self, name="kl_divergence", dtype=None):
        super().__init__(name, dtype)


class Poisson(_LossMean):
    """The running mean of ``poisson``: ``mean(y_pred - y_true * log(y_pred))``.

    Example:
        >>> m = Poisson()
        >>> m.update_state([[0.0, 0.0]], [[1.0, 1.0]])
        >>> float(m.result())
        1.0
    """

    _loss = staticmethod(poisson)

    def __init__(self, name="poisson", dtype=None):
        super().__init__(name, dtype)


class Hinge(_LossMean):
    """The running mean of ``hinge``: ``mean(max(1 - y_true * y_pred, 0))`` (0/1 labels become
    -1/1).

    Example:
        >>> m = Hinge()
        >>> m.update_state([[1.0, 0.0]], [[0.5, -0.5]])
        >>> float(m.result())
        0.5
    """

    _loss = staticmethod(hinge)

    def __init__(self, name="hinge", dtype=None):
        super().__init__(name, dtype)


class SquaredHinge(_LossMean):
    """The running mean of ``squared_hinge``: ``mean(max(1 - y_true * y_pred, 0) ** 2)``.

    Example:
        >>> m = SquaredHinge()
        >>> m.update_state([[1.0, 0.0]], [[0.5, -0.5]])
        >>> float(m.result())
        0.25
    """

    _loss = staticmethod(squared_hinge)

    def __init__(self, name="squared_hinge", dtype=None):
        super().__init__(name, dtype)


class CategoricalHinge(_LossMean):
    """The running mean of ``categorical_hinge``: ``max(0, 1 + max(neg) - pos)`` per sample.

    Example:
        >>> m = CategoricalHinge()
        >>> m.update_state([[0.0, 1.0]], [[0.25, 0.75]])
        >>> float(m.result())
        0.5
    """

    _loss = staticmethod(categorical_hinge)

    def __init__(self, name="categorical_hinge", dtype=None):
        super().__init__(name, dtype)


__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "CategoricalHinge", "Hinge", "KLDivergence", "Poisson",
           "SparseCategoricalCrossentropy", "SquaredHinge"]
