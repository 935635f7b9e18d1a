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
- ``regression.py``: ``MeanSquaredError``, ``MeanAbsoluteError``, ``RootMeanSquaredError``,
  ``MeanAbsolutePercentageError``, ``MeanSquaredLogarithmicError``, ``LogCoshError``,
  ``CosineSimilarity``, ``R2Score``.
- ``confusion.py``: ``Precision``, ``Recall``, ``AUC``, ``TruePositives``, ...
- ``correlation.py``: ``PearsonCorrelation``, ``ConcordanceCorrelation`` and their functions.
- ``sensitivity_specificity.py``: ``PrecisionAtRecall``, ``RecallAtPrecision``,
  ``SensitivityAtSpecificity``, ``SpecificityAtSensitivity``.
- ``iou.py``: ``IoU``, ``MeanIoU``, ``BinaryIoU``, ``OneHotIoU``, ``OneHotMeanIoU``.
- ``f_score.py``: ``FBetaScore``, ``F1Score``.
- ``probabilistic.py``: ``BinaryCrossentropy``, ``CategoricalCrossentropy``,
  ``SparseCategoricalCrossentropy``, ``KLDivergence``, ``Poisson``, ``Hinge``, ``SquaredHinge``,
  ``CategoricalHinge`` (the running mean of the loss of the same name).
- ``lookup.py``: ``get`` / ``serialize`` / ``deserialize`` and ``resolve_accuracy`` (what
  ``"accuracy"`` means in ``compile``).

As in Keras, the per-sample loss functions are also metric functions here
(``lm.metrics.binary_crossentropy is lm.losses.binary_crossentropy``).

Example:
    >>> import lamina as lm
    >>> m = lm.metrics.SparseCategoricalAccuracy()
    >>> m.update_state([0, 1], [[0.9, 0.1], [0.8, 0.2]])
    >>> float(m.result())
    0.5
"""

from lamina.core.naming import to_snake_case as _to_snake_case
from lamina.losses import (
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_hinge,
    hinge,
    huber,
    kl_divergence,
    log_cosh,
    poisson,
    sparse_categorical_crossentropy,
    squared_hinge,
)
from lamina.metrics import lookup as _lookup
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
from lamina.metrics.correlation import (
    ConcordanceCorrelation,
    PearsonCorrelation,
    concordance_correlation,
    pearson_correlation,
)
from lamina.metrics.f_score import F1Score, FBetaScore
from lamina.metrics.iou import BinaryIoU, IoU, MeanIoU, OneHotIoU, OneHotMeanIoU
from lamina.metrics.lookup import deserialize, get, resolve_accuracy, serialize
from lamina.metrics.probabilistic import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CategoricalHinge,
    Hinge,
    KLDivergence,
    Poisson,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)
from lamina.metrics.regression import (
    CosineSimilarity,
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    R2Score,
    RootMeanSquaredError,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)
from lamina.metrics.sensitivity_specificity import (
    PrecisionAtRecall,
    RecallAtPrecision,
    SensitivityAtSpecificity,
    SpecificityAtSensitivity,
)
from lamina.saving.object_registry import register_builtin as _register_builtin

# The string names of the later metrics, as Keras 3's metric table has them (class name, its
# snake case, and the short forms). Class names a loss shares stay the loss's in the global
# registry; metric configs find them through this family table.
for _cls in (MeanAbsolutePercentageError, MeanSquaredLogarithmicError, LogCoshError, CosineSimilarity,
             BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, KLDivergence, Poisson,
             Hinge, SquaredHinge, CategoricalHinge, PearsonCorrelation, ConcordanceCorrelation, R2Score,
             FBetaScore, F1Score):
    _lookup.ALIASES[_cls.__name__] = _cls
    _lookup.ALIASES[_to_snake_case(_cls.__name__)] = _cls
_lookup.ALIASES.update({
    "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
    "bce": BinaryCrossentropy, "BCE": BinaryCrossentropy,
})
for _obj in (LogCoshError, R2Score, FBetaScore, F1Score, PearsonCorrelation, ConcordanceCorrelation, pearson_correlation, concordance_correlation):
    _register_builtin(_obj)  # no loss shares these names

__all__ = [
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "BinaryIoU",
    "BinaryCrossentropy",
    "CategoricalAccuracy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "ConcordanceCorrelation",
    "CosineSimilarity",
    "F1Score",
    "FBetaScore",
    "FalseNegatives",
    "FalsePositives",
    "Hinge",
    "IoU",
    "KLDivergence",
    "LogCoshError",
    "Mean",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanIoU",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Metric",
    "OneHotIoU",
    "OneHotMeanIoU",
    "PearsonCorrelation",
    "R2Score",
    "Poisson",
    "Precision",
    "PrecisionAtRecall",
    "Recall",
    "RecallAtPrecision",
    "RootMeanSquaredError",
    "SensitivityAtSpecificity",
    "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy",
    "SpecificityAtSensitivity",
    "SquaredHinge",
    "Sum",
    "TopKCategoricalAccuracy",
    "TrueNegatives",
    "TruePositives",
    "accuracy",
    "binary_accuracy",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "concordance_correlation",
    "deserialize",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "pearson_correlation",
    "poisson",
    "resolve_accuracy",
    "serialize",
    "sparse_categorical_accuracy",
    "sparse_categorical_crossentropy",
    "sparse_top_k_categorical_accuracy",
    "squared_hinge",
    "top_k_categorical_accuracy",
]
