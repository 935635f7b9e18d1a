"""Metric identifiers: ``get`` / ``serialize`` / ``deserialize`` and the choice behind the
string ``"accuracy"`` in ``compile`` (``resolve_accuracy``).

Configs name metric classes by their Keras class name (``{"class_name": "AUC", ...}``) and
resolve through this module's own table first, so ``"MeanSquaredError"`` means the metric here
even though the loss of the same name owns that entry of the global registry.
"""

from __future__ import annotations

import re

from lamina.core.naming import to_snake_case
from lamina.metrics import accuracy_metrics as _accuracy
from lamina.metrics import confusion as _confusion
from lamina.metrics import iou as _iou
from lamina.metrics import regression as _regression
from lamina.metrics import sensitivity_specificity as _at
from lamina.metrics.base import Mean, MeanMetricWrapper, Metric, Sum
from lamina.saving.object_registry import register_builtin, register_family
from lamina.saving.serialization import deserialize_object, serialize_object

METRIC_CLASSES = (
    Metric, Mean, Sum, MeanMetricWrapper,
    _accuracy.Accuracy, _accuracy.BinaryAccuracy, _accuracy.CategoricalAccuracy,
    _accuracy.SparseCategoricalAccuracy, _accuracy.TopKCategoricalAccuracy,
    _accuracy.SparseTopKCategoricalAccuracy,
    _regression.MeanSquaredError, _regression.MeanAbsoluteError, _regression.RootMeanSquaredError,
    _confusion.Precision, _confusion.Recall, _confusion.AUC, _confusion.TruePositives,
    _confusion.FalsePositives, _confusion.TrueNegatives, _confusion.FalseNegatives,
    _at.PrecisionAtRecall, _at.RecallAtPrecision, _at.SensitivityAtSpecificity, _at.SpecificityAtSensitivity,
    _iou.IoU, _iou.BinaryIoU, _iou.MeanIoU, _iou.OneHotIoU, _iou.OneHotMeanIoU,
)
METRIC_FUNCTIONS = (
    _accuracy.accuracy, _accuracy.binary_accuracy, _accuracy.categorical_accuracy,
    _accuracy.sparse_categorical_accuracy, _accuracy.top_k_categorical_accuracy,
    _accuracy.sparse_top_k_categorical_accuracy,
)

# Class names and their snake-case forms name classes, as in Keras 3 (so "accuracy" is
# ``Accuracy`` and "binary_accuracy" is ``BinaryAccuracy``); plus the usual short forms.
ALIASES: dict = {}
for _cls in METRIC_CLASSES:
    ALIASES[_cls.__name__] = _cls
    ALIASES[to_snake_case(_cls.__name__)] = _cls
ALIASES.update({
    "acc": _accuracy.Accuracy, "mse": _regression.MeanSquaredError,
    "MSE": _regression.MeanSquaredError, "mae": _regression.MeanAbsoluteError,
    "MAE": _regression.MeanAbsoluteError, "rmse": _regression.RootMeanSquaredError,
    "top_k_accuracy": _accuracy.TopKCategoricalAccuracy,
    "sparse_top_k_accuracy": _accuracy.SparseTopKCategoricalAccuracy,
})

# The global registry (what MeanMetricWrapper configs and saved models resolve through)
# gets the metric names that no loss shares; MeanSquaredError / MeanAbsoluteError (and their
# functions) belong to lm.losses there, and metric configs find them through ALIASES.
for _obj in (*METRIC_CLASSES, *METRIC_FUNCTIONS):
    if _obj not in (_regression.MeanSquaredError, _regression.MeanAbsoluteError):
        register_builtin(_obj)
register_family("lamina.metrics", "metric", ALIASES, Metric)


def serialize(metric):
    """A JSON-ready config for a metric (``{"class_name": ..., "config": ...}``) or a
    metric function's registered name."""
    return serialize_object(metric)


def deserialize(config, custom_objects=None):
    """A metric from a config dict or a name (``"AUC"``, ``"binary_accuracy"``)."""
    return deserialize_object(config, kind="metric", aliases=ALIASES, custom_objects=custom_objects)


def get(identifier):
    """Resolve a metric identifier to a ``Metric`` instance.

    Accepts a ``Metric`` (returned as is), a ``Metric`` subclass (instantiated), a name
    (``"accuracy"``, ``"acc"``, ``"mse"``, ``"mae"``, ``"auc"``, ``"precision"``,
    ``"binary_accuracy"``, ``"SparseCategoricalAccuracy"``, ...), a config dict, or a function
    ``fn(y_true, y_pred)`` (wrapped in ``MeanMetricWrapper`` named after it; Keras's ``get``
    returns functions unwrapped and leaves the wrapping to ``compile``). ``None`` gives
    ``None``. Like Keras, ``get("accuracy")`` is plain ``Accuracy``; ``compile`` resolves that
    string through ``resolve_accuracy`` instead.

    Example:
        >>> import lamina as lm
        >>> lm.metrics.get("mse")
        <MeanSquaredError name=mean_squared_error>
        >>> lm.metrics.get({"class_name": "AUC", "config": {"num_thresholds": 50}}).num_thresholds
        50
    """
    if identifier is None:
        return None
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, (str, dict)):
        obj = deserialize(identifier)
    else:
        obj = identifier
    if isinstance(obj, Metric):
        return obj
    if callable(obj):
        return MeanMetricWrapper(obj, name=getattr(obj, "__name__", None))
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}")


# -- "accuracy" in compile ------------------------------------------------------------------

_BINARY_LOSSES = {"binary_crossentropy", "bce", "binary_focal_crossentropy"}
_SPARSE_LOSSES = {"sparse_categorical_crossentropy", "sparse_categorical_focal_crossentropy"}
_CATEGORICAL_LOSSES = {"categorical_crossentropy", "cce", "categorical_focal_crossentropy"}


def _loss_names(loss) -> list:
    """Snake-case names a loss goes by, most telling first: the string itself; a function's
    ``__name__``; an object's class name, wrapped function and ``name``."""
    if loss is None:
        return []
    if isinstance(loss, str):
        return [loss.lower() if loss.isupper() else to_snake_case(loss)]
    names = []
    if isinstance(loss, type):
        names.append(loss.__name__)
    elif hasattr(loss, "__name__") and not hasattr(loss, "get_config"):
        names.append(loss.__name__)
    else:
        names.append(type(loss).__name__)
        fn = getattr(loss, "fn", None) or getattr(loss, "_fn", None)
        if fn is not None and hasattr(fn, "__name__"):
            names.append(fn.__name__)
        if isinstance(getattr(loss, "name", None), str):
            names.append(loss.name)
    return [to_snake_case(re.sub(r"\W+", "", n)) for n in names]


def _shape(shape):
    return None if shape is None else tuple(shape)


def resolve_accuracy(loss=None, y_shape=None, y_pred_shape=None, *, name="accuracy"):
    """The accuracy metric that the string ``"accuracy"`` (or ``"acc"``) means in ``compile``.

    The loss decides first: a binary cross-entropy (``"binary_crossentropy"``, ``"bce"``,
    ``BinaryCrossentropy()``, focal variants) gives ``BinaryAccuracy``; a sparse categorical
    cross-entropy gives ``SparseCategoricalAccuracy``; a categorical cross-entropy gives
    ``CategoricalAccuracy``. ``loss`` may be a string, a function, a loss object or class
    (matched by class name, wrapped function or ``name``), or ``None``.

    Otherwise the shapes decide, by Keras 3's rule: with ``y_shape`` (labels) and
    ``y_pred_shape`` (predictions), predictions whose last axis is 1 are binary; labels of
    lower rank than the predictions, or with a last axis of 1 against predictions with more,
    are sparse; anything else is categorical. ``y_shape`` may also be the pair
    ``(y_true_shape, y_pred_shape)``. With predictions' shape only: last axis 1 is binary,
    else categorical; with labels' shape only: one-hot labels (rank > 1, last axis > 1) are
    categorical, else binary; with no shape, categorical (Keras 2's fallback).

    The metric is named ``name`` (Keras names it after the string given: ``"acc"`` or
    ``"accuracy"``). As in Keras, ``BinaryAccuracy``'s threshold stays 0.5 even for a
    ``from_logits=True`` loss.

    Example:
        >>> import lamina as lm
        >>> lm.metrics.resolve_accuracy("sparse_categorical_crossentropy")
        <SparseCategoricalAccuracy name=accuracy>
        >>> lm.metrics.resolve_accuracy("mse", (32, 1), (32, 10), name="acc")
        <SparseCategoricalAccuracy name=acc>
    """
    for loss_name in _loss_names(loss):
        if loss_name in _BINARY_LOSSES:
            return _accuracy.BinaryAccuracy(name=name)
        if loss_name in _SPARSE_LOSSES:
            return _accuracy.SparseCategoricalAccuracy(name=name)
        if loss_name in _CATEGORICAL_LOSSES:
            return _accuracy.CategoricalAccuracy(name=name)
    if (y_pred_shape is None and isinstance(y_shape, (list, tuple)) and len(y_shape) == 2
            and all(s is None or isinstance(s, (list, tuple)) for s in y_shape)):
        y_shape, y_pred_shape = y_shape
    y_true, y_pred = _shape(y_shape), _shape(y_pred_shape)
    if y_true is not None and y_pred is not None:
        is_binary = len(y_pred) > 0 and y_pred[-1] == 1
        t_last = y_true[-1] if y_true else None
        p_last = y_pred[-1] if y_pred else None
        is_sparse = len(y_true) < len(y_pred) or (t_last == 1 and p_last is not None and p_last > 1)
        if is_binary:
            return _accuracy.BinaryAccuracy(name=name)
        if is_sparse:
            return _accuracy.SparseCategoricalAccuracy(name=name)
        return _accuracy.CategoricalAccuracy(name=name)
    if y_pred is not None:
        if y_pred and y_pred[-1] == 1:
            return _accuracy.BinaryAccuracy(name=name)
        return _accuracy.CategoricalAccuracy(name=name)
    if y_true is not None:
        if len(y_true) > 1 and y_true[-1] is not None and y_true[-1] > 1:
            return _accuracy.CategoricalAccuracy(name=name)
        return _accuracy.BinaryAccuracy(name=name)
    return _accuracy.CategoricalAccuracy(name=name)


__all__ = ["ALIASES", "deserialize", "get", "resolve_accuracy", "serialize"]
