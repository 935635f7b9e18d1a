"""``MonitorCallback``: the shared "did the monitored value improve?" logic (Keras 3's)."""

from __future__ import annotations

import operator
import warnings

import numpy as np

from lamina.callbacks.callback import Callback

# Used by mode="auto" when the model's metrics do not state a direction. Names not listed
# here (and not ending in "loss") make mode="auto" raise, as in Keras.
_MAXIMIZED = frozenset({
    "accuracy", "acc", "binary_accuracy", "categorical_accuracy",
    "sparse_categorical_accuracy", "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy", "auc", "prc", "precision", "recall", "f1_score",
    "fbeta_score", "r2_score", "cosine_similarity", "pearson_correlation",
    "concordance_correlation", "iou", "mean_iou", "binary_iou", "one_hot_iou",
    "one_hot_mean_iou", "precision_at_recall", "recall_at_precision",
    "sensitivity_at_specificity", "specificity_at_sensitivity",
})
_MINIMIZED = frozenset({
    "mean_squared_error", "mse", "mean_absolute_error", "mae",
    "mean_absolute_percentage_error", "mape", "mean_squared_logarithmic_error", "msle",
    "root_mean_squared_error", "rmse", "binary_crossentropy", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "binary_focal_crossentropy",
    "categorical_focal_crossentropy", "kl_divergence", "kld", "poisson", "hinge",
    "squared_hinge", "categorical_hinge", "log_cosh", "logcosh", "huber", "log_cosh_error",
})


class MonitorCallback(Callback):
    """Base of callbacks that watch one logged value (``EarlyStopping``, ``ReduceLROnPlateau``).

    ``mode="auto"`` picks the direction from the name without its ``val_`` prefix: ``loss``
    (or ``*_loss``) is minimised; otherwise the direction of the model's metric of that name
    (``_direction`` or ``direction`` attribute, ``"up"``/``"down"``), else a table of the
    usual metric names (``accuracy``, ``auc``, ... up; ``mae``, ``mse``, ... down); a name it
    cannot place raises ``ValueError``. Values are compared in float32, as Keras does.
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.",
                          stacklevel=3)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self):
        if self.mode == "min":
            self.monitor_op = operator.lt
        elif self.mode == "max":
            self.monitor_op = operator.gt
        else:
            name = self.monitor.removeprefix("val_")
            direction = "down" if name == "loss" else None
            direction = _model_metric_direction(self.model, name) or direction
            if direction is None:
                if name in _MAXIMIZED:
                    direction = "up"
                elif name in _MINIMIZED or name.endswith("loss"):
                    direction = "down"
            if direction is None:
                raise ValueError(
                    f"{type(self).__name__} callback received monitor={self.monitor}, but "
                    "lamina isn't able to automatically determine whether that metric should "
                    "be maximized or minimized. Pass `mode='max'` in order to monitor based on "
                    "the highest metric value, or pass `mode='min'` in order to use the lowest "
                    "value.")
            self.monitor_op = operator.gt if direction == "up" else operator.lt
        if self.monitor_op is operator.lt:
            self.min_delta *= -1

    def _is_improvement(self, monitor_value, reference_value):
        if reference_value is None:
            return True
        # float32 like Keras's ``ops.less``/``ops.greater``, so ties decide the same way.
        return bool(self.monitor_op(np.float32(monitor_value - self.min_delta),
                                    np.float32(reference_value)))


def _model_metric_direction(model, name):
    try:
        pending = list(getattr(model, "metrics", None) or [])
    except Exception:  # e.g. a model not compiled yet: fall back to the name table
        return None
    seen = set()
    while pending:
        metric = pending.pop(0)
        if id(metric) in seen:
            continue
        seen.add(id(metric))
        inner = getattr(metric, "metrics", None)
        if isinstance(inner, (list, tuple)):  # containers such as the compiled metrics
            pending.extend(inner)
        if getattr(metric, "name", None) == name:
            direction = getattr(metric, "_direction", None) or getattr(metric, "direction", None)
            if direction in ("up", "down"):
                return direction
    return None
