"""Intersection-over-union metrics, as Keras 3: ``IoU``, ``MeanIoU``, ``BinaryIoU``,
``OneHotIoU``, ``OneHotMeanIoU``.

Each keeps one ``(num_classes, num_classes)`` confusion matrix (rows: true class, columns:
predicted class) summed over every batch seen; the result is the mean, over the target
classes whose row or column is not empty, of ``tp / (tp + fp + fn)``.

As in Keras the matrix is an integer (``int32``) variable unless ``dtype`` says otherwise, so
float sample weights are truncated (a warning says so when an eager update gets fractions;
compiled steps cannot tell): pass ``dtype="float32"`` to weight by fractions. Labels and
predictions outside ``[0, num_classes)``, and labels equal to ``ignore_class``, are left out.

Beyond Keras (only where Keras raises): a per-sample weight of shape ``(batch,)`` applies to
every element of a ``(batch, ...)`` segmentation map, and a class ``axis`` such as ``1``
(channels-first one-hot maps) works (Keras's ``result`` also sums its 1-D vector of per-class
values over ``axis``, which fails for any axis but ``0`` and ``-1``).
"""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from lamina.core import settings
from lamina.core.variable import Variable
from lamina.metrics.base import Metric, to_array


def _metric_dtype(dtype):
    # Keras's default ("int") is int32 on JAX (int64 needs jax_enable_x64).
    return "int32" if dtype is None or dtype == "int" else dtype


class _IoUBase(Metric):
    """The confusion matrix the IoU metrics share, accumulated by ``update_state``."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        super().__init__(name=name, dtype=_metric_dtype(dtype))
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"{type(self).__name__} '{self.name}': `num_classes` must be an integer >= 1; "
                             f"got num_classes={num_classes!r}.")
        self._direction = "up"
        self.num_classes = num_classes
        self.ignore_class = ignore_class
        self.sparse_y_true = sparse_y_true
        self.sparse_y_pred = sparse_y_pred
        self.axis = axis
        self.total_cm = self.add_variable((num_classes, num_classes), "zeros", dtype=self.dtype,
                                          name="total_confusion_matrix")

    def _weights(self, sample_weight, shape):
        """Per-element weights of a batch whose (argmax-reduced) labels have ``shape``."""
        if sample_weight is None:
            return jnp.ones(shape, self.dtype)
        raw = sample_weight.value if isinstance(sample_weight, Variable) else sample_weight
        if "int" in self.dtype and not isinstance(raw, jax.core.Tracer):
            values = np.asarray(raw)
            if np.issubdtype(values.dtype, np.floating) and np.any(values != np.trunc(values)):
                warnings.warn(
                    f"{type(self).__name__} '{self.name}': sample weights with fractions are truncated to "
                    f"integers, as the metric's dtype is {self.dtype} (as in Keras). Pass dtype='float32' to the "
                    "metric to weight by fractions.", stacklevel=3)
        weight = to_array(sample_weight, self.dtype)
        given = tuple(weight.shape)
        if weight.size == 1 or weight.size == math.prod(shape):  # a scalar, or one weight per label
            return jnp.broadcast_to(weight.reshape(()), shape) if weight.size == 1 else weight.reshape(shape)
        if weight.ndim >= 1 and weight.shape[-1] == 1:
            weight = weight.reshape(weight.shape[:-1])
        if weight.ndim <= len(shape) and tuple(weight.shape) == tuple(shape[:weight.ndim]):
            # One weight per sample (or per leading position) of a segmentation map.
            return jnp.broadcast_to(weight.reshape(weight.shape + (1,) * (len(shape) - weight.ndim)), shape)
        raise ValueError(
            f"{type(self).__name__} '{self.name}': `sample_weight` of shape {given} "
            f"does not fit labels of shape {tuple(shape)}; expected a scalar, one weight per label, or one "
            "per sample.")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        """Add one batch to the confusion matrix (labels and predictions of the same size)."""
        y_true, y_pred = to_array(y_true), to_array(y_pred)
        if not self.sparse_y_true:
            y_true = jnp.argmax(y_true, axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = jnp.argmax(y_pred, axis=self.axis)
        if y_true.size != y_pred.size:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': labels and predictions must hold as many class ids; "
                f"got y_true of shape {tuple(y_true.shape)} and y_pred of shape {tuple(y_pred.shape)} "
                f"(sparse_y_true={self.sparse_y_true}, sparse_y_pred={self.sparse_y_pred}).")
        weight = self._weights(sample_weight, tuple(y_true.shape)).reshape(-1)
        self.total_cm.assign(_add_batch(self.total_cm.value, y_true.reshape(-1), y_pred.reshape(-1), weight,
                                        num_classes=self.num_classes, ignore_class=self.ignore_class))


@functools.partial(jax.jit, static_argnames=("num_classes", "ignore_class"))
def _add_batch(total, y_true, y_pred, weight, num_classes, ignore_class):
    """``total`` plus the batch's weighted confusion matrix; one program per shape (eager
    updates would otherwise compile each operation)."""
    dtype = total.dtype
    # Converted to the metric's dtype first, as Keras does (an int metric truncates floats).
    y_true, y_pred = y_true.astype(dtype), y_pred.astype(dtype)
    valid = (y_true >= 0) & (y_true < num_classes) & (y_pred >= 0) & (y_pred < num_classes)
    if ignore_class is not None:
        valid = valid & (y_true != ignore_class)
    rows = jnp.where(valid, y_true, 0).astype("int32")
    cols = jnp.where(valid, y_pred, 0).astype("int32")
    weight = jnp.where(valid, weight, 0).astype(dtype)
    return total.at[rows, cols].add(weight)


@functools.partial(jax.jit, static_argnames=("target_class_ids",))
def _mean_iou(cm, target_class_ids):
    tp = jnp.diag(cm).astype("float32")
    denominator = (jnp.sum(cm, axis=0) + jnp.sum(cm, axis=1)).astype("float32") - tp
    ids = jnp.asarray(target_class_ids, "int32")
    tp, denominator = tp[ids], denominator[ids]
    valid = denominator > 1e-9  # a class never seen (neither labelled nor predicted) does not count
    iou = jnp.where(valid, tp / (denominator + settings.epsilon()), 0.0)
    return jnp.sum(iou) / (jnp.sum(valid.astype("float32")) + settings.epsilon())


class IoU(_IoUBase):
    """Intersection-over-union ``tp / (tp + fp + fn)`` of the classes in ``target_class_ids``,
    averaged over those present, from a confusion matrix summed over every batch.

    Args:
        num_classes: How many classes the task has (the matrix is ``num_classes`` square).
        target_class_ids: The classes averaged (one id gives that class's IoU).
        ignore_class: A label (e.g. a "void" class such as 255) whose entries are left out.
        sparse_y_true / sparse_y_pred: ``False`` takes the ``argmax`` over ``axis`` first.
        axis: The class axis of dense inputs (default ``-1``).
        dtype: Of the confusion matrix; ``int32`` by default (float weights are truncated).

    Example:
        >>> m = IoU(num_classes=2, target_class_ids=[0])
        >>> m.update_state([0, 0, 1, 1], [0, 1, 0, 1])
        >>> round(float(m.result()), 4)
        0.3333
    """

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None,
                 sparse_y_true=True, sparse_y_pred=True, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis)
        target_class_ids = [int(i) for i in target_class_ids]
        if not target_class_ids:
            raise ValueError(f"{type(self).__name__} '{self.name}': `target_class_ids` must name at least one class.")
        if max(target_class_ids) >= num_classes or min(target_class_ids) < 0:
            bad = max(target_class_ids) if max(target_class_ids) >= num_classes else min(target_class_ids)
            raise ValueError(f"{type(self).__name__} '{self.name}': target class id {bad} is out of range, which "
                             f"is [0, {num_classes}).")
        self.target_class_ids = target_class_ids

    def result(self):
        return _mean_iou(self.total_cm.value, tuple(self.target_class_ids))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes,
                "target_class_ids": self.target_class_ids, "ignore_class": self.ignore_class,
                "sparse_y_true": self.sparse_y_true, "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class BinaryIoU(IoU):
    """``IoU`` of a binary task: predictions ``>= threshold`` are class 1, the rest class 0;
    ``target_class_ids`` is ``[0]``, ``[1]`` or ``[0, 1]`` (their mean).

    Example:
        >>> m = BinaryIoU(target_class_ids=[0, 1], threshold=0.3)
        >>> m.update_state([0, 1, 0, 1], [0.1, 0.2, 0.4, 0.7])
        >>> round(float(m.result()), 4)
        0.3333
    """

    def __init__(self, target_class_ids=(0, 1), threshold=0.5, name=None, dtype=None):
        super().__init__(num_classes=2, target_class_ids=target_class_ids, name=name, dtype=dtype)
        self.threshold = threshold

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_pred = to_array(y_pred, "float32") >= self.threshold
        super().update_state(to_array(y_true), y_pred.astype(self.dtype), sample_weight)

    def get_config(self) -> dict:
        return {"target_class_ids": self.target_class_ids, "threshold": self.threshold, "name": self.name,
                "dtype": self.dtype}


class MeanIoU(IoU):
    """The mean ``IoU`` over all ``num_classes`` classes (those present).

    Example:
        >>> m = MeanIoU(num_classes=2, dtype="float32")
        >>> m.update_state([0, 0, 1, 1], [0, 1, 0, 1], sample_weight=[0.3, 0.3, 0.3, 0.1])
        >>> round(float(m.result()), 4)
        0.2381
    """

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        super().__init__(num_classes, target_class_ids=list(range(num_classes)), name=name, dtype=dtype,
                         ignore_class=ignore_class, sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred,
                         axis=axis)

    def get_config(self) -> dict:
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class OneHotIoU(IoU):
    """``IoU`` for one-hot labels (``argmax`` over ``axis``) and scores (or, with
    ``sparse_y_pred=True``, class ids).

    Example:
        >>> m = OneHotIoU(num_classes=3, target_class_ids=[0, 2])
        >>> m.update_state([[0, 0, 1], [1, 0, 0], [0, 1, 0]], [[0.2, 0.3, 0.5], [0.6, 0.2, 0.2], [0.5, 0.3, 0.2]])
        >>> round(float(m.result()), 4)
        0.75
    """

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None,
                 sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, target_class_ids, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=False, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self) -> dict:
        return {"num_classes": self.num_classes, "target_class_ids": self.target_class_ids, "name": self.name,
                "dtype": self.dtype, "ignore_class": self.ignore_class, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


class OneHotMeanIoU(MeanIoU):
    """``MeanIoU`` for one-hot labels (``argmax`` over ``axis``) and scores.

    Example:
        >>> m = OneHotMeanIoU(num_classes=2)
        >>> m.update_state([[1, 0], [0, 1], [0, 1]], [[0.9, 0.1], [0.3, 0.7], [0.8, 0.2]])
        >>> round(float(m.result()), 4)
        0.5
    """

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self) -> dict:
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


__all__ = ["BinaryIoU", "IoU", "MeanIoU", "OneHotIoU", "OneHotMeanIoU"]
