"""Accuracy metrics: how often predictions match labels (Keras 3 names, defaults and numerics).

Each function returns one float32 match (1.0 or 0.0) per sample; each class is the running
(weighted) mean of its function.
"""

from __future__ import annotations

import jax.numpy as jnp

from lamina.metrics.base import MeanMetricWrapper, squeeze_or_expand_to_same_rank, to_array

_FLOATX = "float32"


def accuracy(y_true, y_pred):
    """1.0 where ``y_pred`` equals ``y_true`` exactly, else 0.0.

    Example:
        >>> accuracy([1, 2, 3], [1, 2, 4]).tolist()
        [1.0, 1.0, 0.0]
    """
    y_pred = to_array(y_pred)
    y_true = to_array(y_true, y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return (y_true == y_pred).astype(_FLOATX)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1.0 where ``y_pred > threshold`` agrees with the 0/1 label ``y_true``.

    Example:
        >>> binary_accuracy([[1], [0]], [[0.7], [0.6]]).tolist()
        [[1.0], [0.0]]
    """
    y_pred = to_array(y_pred)
    y_true = to_array(y_true)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    y_pred = (y_pred > jnp.asarray(threshold)).astype(y_true.dtype)
    return (y_true == y_pred).astype(_FLOATX)


def categorical_accuracy(y_true, y_pred):
    """1.0 where the arg-max of ``y_pred`` is the arg-max of the one-hot ``y_true``.

    Example:
        >>> categorical_accuracy([[0, 0, 1], [0, 1, 0]], [[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]).tolist()
        [1.0, 0.0]
    """
    y_true = jnp.argmax(to_array(y_true), axis=-1)
    y_pred = to_array(y_pred)
    y_true = y_true.astype(y_pred.dtype)
    original_shape = y_true.shape
    reshape_matches = False
    if y_true.ndim == y_pred.ndim:
        y_true = jnp.squeeze(y_true, -1)
        reshape_matches = True
    y_pred = jnp.argmax(y_pred, axis=-1).astype(y_true.dtype)
    matches = (y_true == y_pred).astype(_FLOATX)
    return matches.reshape(original_shape) if reshape_matches else matches


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the arg-max of ``y_pred`` is the integer label ``y_true``.

    Example:
        >>> sparse_categorical_accuracy([2, 1], [[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]).tolist()
        [1.0, 0.0]
    """
    y_pred = to_array(y_pred)
    y_true = to_array(y_true, y_pred.dtype)
    original_shape = y_true.shape
    reshape_matches = False
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = jnp.squeeze(y_true, -1)
        reshape_matches = True
    y_pred = jnp.argmax(y_pred, axis=-1).astype(y_true.dtype)
    matches = (y_true == y_pred).astype(_FLOATX)
    if reshape_matches:
        matches = matches.reshape(original_shape)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = jnp.squeeze(matches, -1)
    return matches


def _in_top_k(targets, predictions, k):
    # Keras's JAX rule: the target's rank is 1 + the number of strictly greater scores, so
    # ties count in the target's favour; a NaN score at the target never counts.
    at_label = jnp.take_along_axis(predictions, targets[..., None], axis=-1)
    at_label = jnp.where(jnp.isnan(at_label), -jnp.inf, at_label)
    rank = 1 + jnp.sum(predictions > at_label, axis=-1)
    return rank <= k


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the one-hot label's class is among the ``k`` highest scores of ``y_pred``.

    Example:
        >>> top_k_categorical_accuracy([[0, 0, 1], [0, 1, 0]], [[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]], k=2).tolist()
        [1.0, 1.0]
    """
    y_pred = to_array(y_pred)
    y_true = jnp.argmax(to_array(y_true, y_pred.dtype), axis=-1)
    original_shape = y_true.shape
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    reshape_matches = y_true.ndim > 1
    if reshape_matches:
        y_true = y_true.reshape(-1)
    matches = _in_top_k(y_true.astype("int32"), y_pred, k).astype(_FLOATX)
    return matches.reshape(original_shape) if reshape_matches else matches


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """1.0 where the integer label is among the ``k`` highest scores of ``y_pred``.

    With ``from_sorted_ids=True``, ``y_pred`` holds class ids sorted from the highest score
    down, and the label must be among its first ``k`` entries.

    Example:
        >>> sparse_top_k_categorical_accuracy([2, 1], [[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]], k=1).tolist()
        [0.0, 0.0]
    """
    y_pred = to_array(y_pred)
    y_true = to_array(y_true, y_pred.dtype if from_sorted_ids else "int32")
    original_shape = y_true.shape
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    reshape_matches = y_true.ndim > 1
    if reshape_matches:
        y_true = y_true.reshape(-1)
    if from_sorted_ids:
        matches = jnp.any(y_true[:, None] == y_pred[:, :k], axis=1)
    else:
        matches = _in_top_k(y_true, y_pred, k)
    matches = matches.astype(_FLOATX)
    return matches.reshape(original_shape) if reshape_matches else matches


class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels exactly (the mean of ``accuracy``).

    Example:
        >>> m = Accuracy()
        >>> m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]])
        >>> float(m.result())
        0.75
        >>> m.reset_state()
        >>> m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]], sample_weight=[1, 1, 0, 0])
        >>> float(m.result())
        0.5
    """

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(fn=accuracy, name=name, dtype=dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches the binary labels.

    With logits (``from_logits=True`` losses) pass ``threshold=0.0``; like Keras, the default
    ``0.5`` assumes probabilities.

    Example:
        >>> m = BinaryAccuracy()
        >>> m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
        >>> float(m.result())
        0.75
    """

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(fn=binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "threshold": self.threshold}


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max of predictions (probabilities or logits) matches one-hot labels.

    Example:
        >>> m = CategoricalAccuracy()
        >>> m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
        >>> float(m.result())
        0.5
    """

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(fn=categorical_accuracy, name=name, dtype=dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max of predictions matches integer labels.

    Example:
        >>> m = SparseCategoricalAccuracy()
        >>> m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
        >>> float(m.result())
        0.5
    """

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(fn=sparse_categorical_accuracy, name=name, dtype=dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot label's class is among the ``k`` highest predictions.

    Example:
        >>> m = TopKCategoricalAccuracy(k=1)
        >>> m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
        >>> float(m.result())
        0.5
    """

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(fn=top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "k": self.k}


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the ``k`` highest predictions.

    With ``from_sorted_ids=True``, ``y_pred`` holds the ids of the top classes, best first.

    Example:
        >>> m = SparseTopKCategoricalAccuracy(k=1)
        >>> m.update_state([2, 1], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
        >>> float(m.result())
        0.5
    """

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None, from_sorted_ids=False):
        super().__init__(fn=sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k,
                         from_sorted_ids=from_sorted_ids)
        self.k = k
        self.from_sorted_ids = from_sorted_ids

    def get_config(self) -> dict:
        config = {"name": self.name, "dtype": self.dtype, "k": self.k}
        if self.from_sorted_ids:
            config["from_sorted_ids"] = True
        return config


__all__ = [
    "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy", "TopKCategoricalAccuracy", "accuracy", "binary_accuracy",
    "categorical_accuracy", "sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
]
