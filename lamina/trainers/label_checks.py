"""Sparse labels against the model's class count, checked once per ``fit`` / ``evaluate``.

An out-of-range sparse label does not fail inside the compiled step: its one-hot row is all
zeros, so sparse categorical cross-entropy reads 0.0 and accuracy a miss, and training goes on
learning nothing from it. Per step a check would cost a device round trip; instead the
in-memory targets are checked once, before the loop, for each output whose loss or metric
reads sparse labels, against that output's last axis. Targets from generators and datasets
are not checked (that would mean reading them twice).
"""

from __future__ import annotations

import jax
import numpy as np

from lamina import losses as losses_module
from lamina import metrics as metrics_module
from lamina.core.abstract import abstract_eval
from lamina.data.checks import check_class_labels
from lamina.trainers.compile_utils import _Outputs

_SPARSE_METRIC_FNS = (
    metrics_module.sparse_categorical_accuracy,
    metrics_module.sparse_top_k_categorical_accuracy,
    metrics_module.sparse_categorical_crossentropy,
)


def check_sparse_targets(model, x, y, *, batch_size: int, where: str = "y") -> None:
    """Raise a ``ValueError`` naming the loss (or metric), the label and the class count if an
    in-memory target of ``y`` holds a sparse label outside ``[0, classes)``.

    Example:
        >>> import numpy as np, lamina as lm
        >>> model = lm.Sequential([lm.Input((2,)), lm.layers.Dense(3)])
        >>> model.compile("sgd", "sparse_categorical_crossentropy")
        >>> check_sparse_targets(model, np.zeros((2, 2)), np.array([0, 2]), batch_size=32)
        >>> check_sparse_targets(model, np.zeros((2, 2)), np.array([0, 7]), batch_size=32)
        Traceback (most recent call last):
        ...
        ValueError: Label 7 at y[1] is out of range for the loss 'sparse_categorical_crossentropy': ...
    """
    loss_spec = model.compiled_loss.spec if model.compiled_loss is not None else None
    metric_specs = [model.compiled_metrics.spec, model.compiled_weighted_metrics.spec]
    if y is None or not _may_read_sparse_labels(loss_spec, metric_specs):
        return
    if not all(_is_numeric_array(leaf) for leaf in jax.tree_util.tree_leaves((x, y))):
        return  # other inputs are for the data adapter to check or refuse
    predictions = _output_specs(model, x, batch_size)
    if predictions is None:
        return
    outputs = _Outputs(predictions, model.compiled_metrics.output_names)
    losses = outputs.spread(loss_spec, "loss") if loss_spec is not None else [None] * len(outputs)
    try:
        targets = outputs.targets(y, [loss is not None for loss in losses], what=where)
    except ValueError:
        return  # a y that does not fit the outputs: the step says so, with the full story
    metrics = [model.compiled_metrics._spread_metrics(outputs),
               model.compiled_weighted_metrics._spread_metrics(outputs)]
    for i, (target, prediction) in enumerate(zip(targets, outputs.leaves)):
        if not _is_numeric_array(target) or not prediction.shape:
            continue
        readers = [_sparse_loss(losses[i])] + [
            _sparse_metric(entry, losses[i], target, prediction) for per_output in metrics for entry in per_output[i]
        ]
        of_output = "" if outputs.labels[i] is None else f" of output '{outputs.labels[i]}'"
        for reader in readers:
            if reader is None:
                continue
            user, axis, ignore_class = reader
            classes = prediction.shape[axis]
            if classes is not None:
                check_class_labels(np.asarray(target) if not isinstance(target, jax.Array) else target, classes,
                                   user=user + of_output, where=where, ignore_class=ignore_class)
                break  # one check per target: the first reader's message is enough


def _output_specs(model, x, batch_size: int):
    """The model's outputs as objects with a ``shape``: a graph model's symbolic outputs, else
    the abstract result of a call on the first batch's shapes (which also builds an unbuilt
    model, as the first step would)."""
    if hasattr(type(model), "outputs"):  # Functional, Sequential
        try:
            return model.output
        except (AttributeError, ValueError):  # a Sequential without a known input shape
            pass
    leaves = jax.tree_util.tree_leaves(x)
    if not leaves or any(np.ndim(leaf) == 0 for leaf in leaves):
        return None
    rows = min(len(leaves[0]), batch_size)
    specs = jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct((rows, *a.shape[1:]), jax.dtypes.canonicalize_dtype(a.dtype)), x
    )
    return abstract_eval(lambda x: model(x, training=False), specs)  # whatever the call writes is dropped


def _is_numeric_array(value) -> bool:
    return isinstance(value, (np.ndarray, jax.Array)) and value.dtype.kind in "biuf"


def _flat_entries(spec) -> list:
    if isinstance(spec, dict):
        return [e for value in spec.values() for e in _flat_entries(value)]
    if isinstance(spec, (list, tuple)):
        return [e for value in spec for e in _flat_entries(value)]
    return [] if spec is None else [spec]


def _may_read_sparse_labels(loss_spec, metric_specs) -> bool:
    """Cheap test on the compile arguments, so that other models pay nothing."""
    if any(_sparse_loss(entry) for entry in _flat_entries(loss_spec)):
        return True
    for entry in (e for spec in metric_specs for e in _flat_entries(spec)):
        if isinstance(entry, str) and entry.lower() in ("accuracy", "acc"):
            return True
        if _sparse_metric(entry, None, None, None):
            return True
    return False


def _sparse_loss(spec):
    """``(description, class axis, ignore_class)`` when ``spec`` is a sparse categorical
    cross-entropy, else ``None``."""
    if spec is None:
        return None
    loss = losses_module.to_loss_object(spec)
    if getattr(loss, "fn", None) is not losses_module.sparse_categorical_crossentropy:
        return None
    kwargs = getattr(loss, "_fn_kwargs", {})
    name = repr(spec) if isinstance(spec, str) else type(loss).__name__
    return f"loss {name}", kwargs.get("axis", -1), kwargs.get("ignore_class")


def _sparse_metric(entry, loss, target, prediction):
    """As ``_sparse_loss``, for a metric entry of ``compile(metrics=...)``."""
    if isinstance(entry, str) and entry.lower() in ("accuracy", "acc"):
        if target is None:
            return None
        entry = metrics_module.resolve_accuracy(loss, target.shape, prediction.shape, name=entry)
        metric = entry
    elif callable(entry) and not hasattr(entry, "update_state") and not isinstance(entry, type):
        metric = None
        fn, kwargs = entry, {}
    else:
        metric = metrics_module.get(entry) if isinstance(entry, (str, dict, type)) else entry
    if metric is not None:
        fn, kwargs = getattr(metric, "_fn", None), getattr(metric, "_fn_kwargs", {})
    if fn not in _SPARSE_METRIC_FNS or kwargs.get("from_sorted_ids"):
        return None  # sorted ids: the output's last axis is k, not the class count
    name = getattr(metric, "name", None) or getattr(fn, "__name__", "metric")
    return f"metric '{name}'", kwargs.get("axis", -1), kwargs.get("ignore_class")
