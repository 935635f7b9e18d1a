"""What ``compile(loss=..., metrics=...)`` turns into: objects that follow the output structure.

A model's output may be one array, a list/tuple, or a dict. ``loss`` and ``metrics`` follow
Keras's rules: one entry for a single output; for several outputs a list (by position) or a
dict (by key), or a single loss applied to every output.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina import losses as losses_module
from lamina import metrics as metrics_module


def _flatten_outputs(structure):
    """``[(name, leaf)]`` of a model output: ``None`` name for a single array."""
    if isinstance(structure, dict):
        return [(str(k), v) for k, v in structure.items()]
    if isinstance(structure, (list, tuple)):
        return [(f"output_{i}", v) for i, v in enumerate(structure)]
    return [(None, structure)]


def _per_output(spec, names, what):
    """Spread ``spec`` (single, list or dict) over output ``names`` -> list aligned with names."""
    if isinstance(spec, dict):
        keys = [n for n in names if n is not None]
        unknown = set(spec) - set(keys)
        if unknown:
            raise ValueError(f"compile({what}=...) names outputs {sorted(unknown)}, but the model's outputs are {keys}.")
        return [spec.get(n) for n in names]
    if isinstance(spec, (list, tuple)) and len(names) > 1:
        if len(spec) != len(names):
            raise ValueError(f"compile({what}=...) has {len(spec)} entries for a model with {len(names)} outputs.")
        return list(spec)
    return [spec] * len(names)


class CompileLoss:
    """The compiled loss: weighted sum of one loss per output (sample weights applied)."""

    def __init__(self, loss, loss_weights=None):
        self.spec = loss
        self.weights_spec = loss_weights

    def __call__(self, y_true, y_pred, sample_weight=None):
        outputs = _flatten_outputs(y_pred)
        names = [name for name, _ in outputs]
        targets = [t for _, t in _flatten_outputs(y_true)] if len(outputs) > 1 else [y_true]
        if len(targets) != len(outputs):
            raise ValueError(f"The model has {len(outputs)} outputs but y has {len(targets)} entries.")
        loss_fns = _per_output(self.spec, names, "loss")
        weights = _per_output(self.weights_spec, names, "loss_weights") if self.weights_spec is not None else [1.0] * len(names)
        weights_sw = _per_output(sample_weight, names, "sample_weight") if isinstance(sample_weight, (dict, list, tuple)) else [sample_weight] * len(names)
        total = jnp.zeros((), jnp.float32)
        for (name, pred), target, fn, weight, sw in zip(outputs, targets, loss_fns, weights, weights_sw):
            if fn is None:
                continue
            if target is None:
                where = f" for output '{name}'" if name else ""
                raise ValueError(f"A loss is compiled{where}, but no targets (y) were given.")
            value = losses_module.to_loss_object(fn)(target, pred, sample_weight=sw)
            total = total + (1.0 if weight is None else weight) * value.astype(jnp.float32)
        return total


class CompileMetrics:
    """The compiled metrics, created at the first update (when the outputs are known).

    It behaves like one metric named ``compile_metrics`` (as in Keras 3): ``update_state``,
    ``result()`` (a dict of the inner metrics' results), ``reset_state``, ``variables`` — so a
    ``train_step`` looping over ``model.metrics`` updates and reports it. Holding metric
    objects, it exposes their variables to tracking through ``_lm_state_variables``.
    ``weighted=True`` (``compile(weighted_metrics=...)``) passes sample weights on; plain
    ``metrics`` ignore them, as Keras does.
    """

    def __init__(self, metrics, loss, weighted=False, name="compile_metrics"):
        self.spec = metrics
        self.loss = loss
        self.weighted = weighted
        self.name = name
        self.metrics: list = []
        self._by_output: list | None = None

    def _build(self, y_true, y_pred) -> None:
        outputs = _flatten_outputs(y_pred)
        names = [name for name, _ in outputs]
        specs = _per_output(self.spec, names, "metrics") if self.spec is not None else [None] * len(names)
        losses = _per_output(self.loss, names, "loss") if self.loss is not None else [None] * len(names)
        self._by_output = []
        for (name, pred), spec, loss in zip(outputs, specs, losses):
            built = []
            target = y_true if len(outputs) == 1 else dict(_flatten_outputs(y_true)).get(name)
            for entry in ([] if spec is None else spec if isinstance(spec, (list, tuple)) else [spec]):
                metric = self._resolve(entry, loss, target, pred)
                if name is not None:
                    metric.name = f"{name}_{metric.name}"
                built.append(metric)
            self._by_output.append(built)
            self.metrics.extend(built)

    @staticmethod
    def _resolve(entry, loss, target, pred):
        if isinstance(entry, str) and entry in ("accuracy", "acc"):
            return metrics_module.resolve_accuracy(
                loss, getattr(target, "shape", None), getattr(pred, "shape", None), name=entry
            )
        metric = metrics_module.get(entry)
        if isinstance(entry, str):
            metric.name = entry  # logged under the name it was given ("mae"), as Keras does
        return metric

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if self._by_output is None:
            self._build(y_true, y_pred)
        outputs = _flatten_outputs(y_pred)
        targets = [t for _, t in _flatten_outputs(y_true)] if len(outputs) > 1 else [y_true]
        weight = sample_weight if self.weighted else None
        for (_, pred), target, metrics in zip(outputs, targets, self._by_output):
            for metric in metrics:
                metric.update_state(target, pred, sample_weight=weight)

    def result(self) -> dict:
        return {metric.name: metric.result() for metric in self.metrics}

    def reset_state(self) -> None:
        for metric in self.metrics:
            metric.reset_state()

    @property
    def variables(self) -> list:
        return [v for metric in self.metrics for v in metric.variables]

    def _lm_state_variables(self) -> list:
        return self.variables


def batch_size_of(x) -> int:
    """Number of samples in a batch (the leading axis of the first leaf)."""
    leaves = jax.tree_util.tree_leaves(x)
    return leaves[0].shape[0] if leaves and getattr(leaves[0], "ndim", 0) else 1
