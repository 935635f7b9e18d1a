"""Metrics (``lm.metrics``): stateful running statistics with Keras 3 names and numerics.

A metric keeps its running statistics in non-trainable ``lm.Variable``s and exposes
``update_state(y_true, y_pred, sample_weight=None)``, ``result()`` and ``reset_state()``;
calling it updates and returns the result. Because the state is variables, the same metric
works eagerly, inside ``lm.jit`` and in ``fit``, and a layer or model holding one lists its
state in ``variables``.

- ``base.py``: ``Metric``, ``Mean``, ``Sum``, ``MeanMetricWrapper``.
- ``accuracy_metrics.py``: ``Accuracy``, ``BinaryAccuracy``, ``CategoricalAccuracy``,
  ``SparseCategoricalAccuracy``, ``TopKCategoricalAccuracy``, ``SparseTopKCategoricalAccuracy``
  and their functions.
- ``regression.py``: ``MeanSquaredError``, ``MeanAbsoluteError``, ``RootMeanSquaredError``.
- ``confusion.py``: ``Precision``, ``Recall``, ``AUC``, ``TruePositives``, ...
- ``lookup.py``: ``get`` / ``serialize`` / ``deserialize`` and ``resolve_accuracy`` (what
  ``"accuracy"`` means in ``compile``).

Example:
    >>> import lamina as lm
    >>> m = lm.metrics.SparseCategoricalAccuracy()
    >>> m.update_state([0, 1], [[0.9, 0.1], [0.8, 0.2]])
    >>> float(m.result())
    0.5
"""

from lamina.metrics.accuracy_metrics import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from lamina.metrics.base import Mean, MeanMetricWrapper, Metric, Sum
from lamina.metrics.confusion import (
    AUC,
    FalseNegatives,
    FalsePositives,
    Precision,
    Recall,
    TrueNegatives,
    TruePositives,
)
from lamina.metrics.lookup import deserialize, get, resolve_accuracy, serialize
from lamina.metrics.regression import (
    MeanAbsoluteError,
    MeanSquaredError,
    RootMeanSquaredError,
    mean_absolute_error,
    mean_squared_error,
)

__all__ = [
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "FalseNegatives",
    "FalsePositives",
    "Mean",
    "MeanAbsoluteError",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "Metric",
    "Precision",
    "Recall",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "Sum",
    "TopKCategoricalAccuracy",
    "TrueNegatives",
    "TruePositives",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "deserialize",
    "get",
    "mean_absolute_error",
    "mean_squared_error",
    "resolve_accuracy",
    "serialize",
    "sparse_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
]
