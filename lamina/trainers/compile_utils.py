"""What ``compile(loss=..., metrics=...)`` turns into: objects that follow the output structure.

A model's output may be one array, a list/tuple of arrays, or a dict of arrays. Each output
has a name: a dict output's key; for a list, the model's ``output_names`` (a Functional
model's output layers), or none for a subclassed model. Everything given per output follows
Keras 3's rules:

- ``y``, ``loss``, ``loss_weights``, ``metrics``, ``weighted_metrics`` and ``sample_weight``
  given as a dict are matched to the outputs by name, whatever the dict's order; a key that
  names no output is an error that lists the output names;
- a list or tuple is matched by position (one entry per output);
- a single loss (or sample weight, or loss weight) applies to every output.

An output that has a loss needs a target; one without a loss may have none. With several
outputs, each loss is also logged unweighted as ``<output>_loss`` and each metric as
``<output>_<metric>``, as Keras 3 logs them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina import losses as losses_module
from lamina import metrics as metrics_module
from lamina.metrics.base import StatelessMetricMixin  # Keras's stateless_* methods
from lamina.trainers import padded_evaluation


class _Outputs:
    """A model output seen as a flat list: ``leaves``, their ``names`` (``None`` when unnamed)
    and the ``labels`` that prefix log names (``None`` for a model with one output)."""

    def __init__(self, y_pred, output_names=None):
        if isinstance(y_pred, dict):
            self.keyed = True
            keys = sorted(y_pred, key=str)  # Keras flattens a dict in sorted key order
            self.leaves = [y_pred[k] for k in keys]
            self.names = list(keys)
        elif isinstance(y_pred, (list, tuple)):
            self.keyed = False
            self.leaves = list(y_pred)
            named = output_names is not None and len(output_names) == len(self.leaves)
            self.names = list(output_names) if named else [None] * len(self.leaves)
        else:
            self.keyed = False
            self.leaves = [y_pred]
            named = output_names is not None and len(output_names) == 1
            self.names = list(output_names) if named else [None]
        for index, (name, leaf) in enumerate(zip(self.names, self.leaves)):
            if isinstance(leaf, (list, tuple, dict)):
                where = f"'{name}'" if name is not None else str(index)
                raise ValueError(
                    "compile(loss=..., metrics=...) handles a model output that is one array, a "
                    f"list/tuple of arrays or a dict of arrays; output {where} is a "
                    f"{type(leaf).__name__}. Flatten the model's outputs, or compute the loss in "
                    "a custom train_step."
                )
        if len(self.leaves) == 1:
            self.labels = [None]
        else:
            self.labels = _unique([str(n) if n is not None else f"output_{i}" for i, n in enumerate(self.names)])

    def __len__(self) -> int:
        return len(self.leaves)

    def describe(self) -> str:
        known = [n for n in self.names if n is not None]
        if known:
            return f"named {known}"
        return f"unnamed ({len(self)} output{'s' if len(self) > 1 else ''}, matched by position)"

    def by_name(self, spec: dict, what: str) -> list:
        """``spec``'s values aligned with the outputs (``None`` where a key is absent)."""
        if not any(n is not None for n in self.names):
            raise ValueError(
                f"{what} is a dict with keys {list(spec)}, but this model's outputs have no names "
                "(a subclassed model returning a list): give a list, one entry per output."
            )
        unknown = [k for k in spec if k not in self.names]
        if unknown:
            raise ValueError(
                f"{what} has keys {unknown} that name no output of the model; the model's "
                f"outputs are named {[n for n in self.names if n is not None]}."
            )
        for key in spec:
            if self.names.count(key) > 1:
                raise ValueError(
                    f"{what} has key '{key}', but {self.names.count(key)} of the model's outputs "
                    f"{self.names} have that name: give a list, one entry per output."
                )
        return [spec.get(n) if n is not None else None for n in self.names]

    def spread(self, spec, what: str) -> list:
        """A per-output argument (loss, loss weight, sample weight) as a list aligned with the
        outputs: a dict by name, a list by position, anything else for every output."""
        if isinstance(spec, dict):
            return self.by_name(spec, what)
        if isinstance(spec, (list, tuple)):
            if len(spec) == len(self):
                return list(spec)
            raise ValueError(
                f"{what} has {len(spec)} entries, but the model has {len(self)} output"
                f"{'s' if len(self) > 1 else ''} ({self.describe()}): give one entry per output, "
                "or a dict keyed by output name."
            )
        return [spec] * len(self)

    def targets(self, y_true, has_loss=None, what: str = "y") -> list:
        """The target of each output (``None`` where a dict ``y`` has none).

        ``has_loss`` (one bool per output) allows Keras's short form for a model where some
        outputs have no loss: a list (or one array) with a target for each output that has
        a loss, in order."""
        if len(self) == 1:
            name = self.names[0]
            if isinstance(y_true, dict) and name is not None and not self.keyed:
                if set(y_true) != {name}:
                    raise ValueError(
                        f"{what} is a dict with keys {list(y_true)}, but the model has one output, "
                        f"named '{name}': give its target as an array, or as {{'{name}': ...}}."
                    )
                return [y_true[name]]
            if self.keyed and isinstance(y_true, dict):
                return self.by_name(y_true, what)
            if isinstance(y_true, (list, tuple)) and len(y_true) == 1:
                return [y_true[0]]
            return [y_true]  # a structured target for one output goes to the loss as is
        if isinstance(y_true, dict):
            return self.by_name(y_true, what)
        entries = list(y_true) if isinstance(y_true, (list, tuple)) else [y_true]
        if len(entries) == len(self):
            return entries
        with_loss = [i for i, flag in enumerate(has_loss or ()) if flag]
        if len(entries) == len(with_loss):
            return self._onto(entries, with_loss)
        if not isinstance(y_true, (list, tuple)):
            raise ValueError(
                f"{what} is a single array, but the model has {len(self)} outputs ({self.describe()}): "
                "give a list with one target per output, or a dict keyed by output name."
            )
        raise ValueError(
            f"{what} has {len(entries)} entries, but the model has {len(self)} outputs "
            f"({self.describe()}): give one target per output, or a dict keyed by output name."
        )

    def _onto(self, entries: list, indices: list) -> list:
        aligned = [None] * len(self)
        for index, entry in zip(indices, entries):
            aligned[index] = entry
        return aligned

    def sample_weights(self, sample_weight, has_loss=None) -> list:
        """Each output's sample weights: a dict by name, a list by position (or, like ``y``,
        one per output that has a loss), one array for all."""
        if isinstance(sample_weight, (list, tuple)) and len(sample_weight) != len(self):
            with_loss = [i for i, flag in enumerate(has_loss or ()) if flag]
            if len(sample_weight) == len(with_loss):
                return self._onto(list(sample_weight), with_loss)
        if isinstance(sample_weight, (dict, list, tuple)):
            return self.spread(sample_weight, "sample_weight")
        return [sample_weight] * len(self)

    def missing_target(self, index: int, what: str) -> ValueError:
        name = self.names[index]
        output = f"output '{name}'" if name is not None else f"output {index}"
        return ValueError(
            f"compile({what}=...) covers {output}, but y has no target for it; the model's "
            f"outputs are {self.describe()}."
        )


def _unique(names: list) -> list:
    """``names`` with repeats suffixed ``_1``, ``_2``, ... (log keys must differ)."""
    seen, result = {}, []
    for name in names:
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name] - 1}"
        else:
            seen[name] = 1
        result.append(name)
    return result


class CompileLoss:
    """The compiled loss: the weighted sum of one loss per output (sample weights applied).

    ``output_names`` are the model's output names (``model.output_names``), used to match
    dict arguments to a list of outputs. Built at the first call, when the outputs are known;
    with more than one loss it then holds one ``Mean`` per loss in ``metrics``, which records
    that output's unweighted loss as ``<output>_loss``.

    Example:
        >>> import numpy as np, lamina as lm
        >>> inputs = lm.Input(shape=(3,))
        >>> z = lm.layers.Dense(2, name="z_out")(inputs)
        >>> a = lm.layers.Dense(1, name="a_out")(inputs)
        >>> model = lm.Model(inputs, [z, a])
        >>> model.compile("sgd", loss={"a_out": "mae", "z_out": "mse"}, loss_weights={"a_out": 2.0})
        >>> x, y = np.ones((4, 3)), {"a_out": np.zeros((4, 1)), "z_out": np.zeros((4, 2))}
        >>> sorted(model.fit(x, y, epochs=1, verbose=0).history)
        ['a_out_loss', 'loss', 'z_out_loss']
    """

    def __init__(self, loss, loss_weights=None, output_names=None):
        self.spec = loss
        self.weights_spec = loss_weights
        self.output_names = list(output_names) if output_names is not None else None
        self.metrics: list = []
        self._built_names = None
        self._losses = None
        self._weights = None
        self._trackers = None

    def _build(self, outputs: _Outputs) -> None:
        losses = outputs.spread(self.spec, "loss")
        if self.weights_spec is None:
            weights = [None] * len(outputs)
        else:
            weights = outputs.spread(self.weights_spec, "loss_weights")
        self._losses = [losses_module.to_loss_object(fn) for fn in losses]
        self._weights = weights
        with_loss = [i for i, fn in enumerate(self._losses) if fn is not None]
        self._trackers = [None] * len(outputs)
        if len(with_loss) > 1:
            for i in with_loss:
                self._trackers[i] = metrics_module.Mean(name=f"{outputs.labels[i]}_loss")
            order = list(range(len(outputs)))
            if outputs.keyed and isinstance(self.spec, dict):
                # Keras lists a dict output's losses in the loss dict's order.
                keys = list(self.spec)
                order.sort(key=lambda i: keys.index(outputs.names[i]) if outputs.names[i] in keys else len(keys))
            self.metrics = [self._trackers[i] for i in order if self._trackers[i] is not None]
        self._built_names = list(outputs.names)

    def __call__(self, y_true, y_pred, sample_weight=None, real_rows=None):
        """The weighted sum of the per-output losses. ``real_rows`` (a boolean per row) makes
        rows where it is False count nowhere (``evaluate``'s padding; see
        ``padded_evaluation.py``)."""
        outputs = _Outputs(y_pred, self.output_names)
        if self._built_names is None:
            self._build(outputs)
        elif outputs.names != self._built_names:
            raise ValueError(
                f"The model's outputs changed since the loss was built: {self._built_names} then "
                f"{outputs.names}. Call compile() again."
            )
        has_loss = [fn is not None for fn in self._losses]
        targets = outputs.targets(y_true, has_loss)
        sample_weights = outputs.sample_weights(sample_weight, has_loss)
        total = jnp.zeros((), jnp.float32)
        for i, fn in enumerate(self._losses):
            if fn is None:
                continue
            if targets[i] is None:
                raise outputs.missing_target(i, "loss")
            pred = outputs.leaves[i]
            if jnp.iscomplexobj(targets[i]) and not jnp.iscomplexobj(pred):
                # The loss would cast them to the predictions' dtype, dropping the imaginary part.
                of_output = "" if outputs.labels[i] is None else f" of output '{outputs.labels[i]}'"
                raise ValueError(f"The loss '{_loss_name(fn)}'{of_output} got complex targets (dtype {targets[i].dtype}) for real "
                                 f"predictions (dtype {pred.dtype}); pass real targets (e.g. jnp.real(y), "
                                 "jnp.abs(y), or real and imaginary parts as separate outputs).")
            try:
                if real_rows is None:
                    value = fn(targets[i], pred, sample_weight=sample_weights[i])
                else:
                    value = padded_evaluation.loss_of_real_rows(fn, targets[i], pred, sample_weights[i], real_rows)
                value = value.astype(jnp.float32)
            except TypeError as error:
                _raise_if_shapes_differ(fn, outputs.labels[i], targets[i], pred, error)
                raise
            if self._trackers[i] is not None:
                rows = batch_size_of(pred) if real_rows is None else jnp.sum(real_rows)
                self._trackers[i].update_state(value, sample_weight=rows)
            weight = self._weights[i]
            total = total + (value if weight is None else weight * value)
        return total


class CompileMetrics(StatelessMetricMixin):
    """The compiled metrics, created at the first update (when the outputs are known).

    It behaves like one metric named ``compile_metrics`` (as in Keras 3): ``update_state``,
    ``result()`` (a dict of the inner metrics' results), ``reset_state``, ``variables`` — so a
    ``train_step`` looping over ``model.metrics`` updates and reports it. Holding metric
    objects, it exposes their variables to tracking through ``_lm_state_variables``.
    ``weighted=True`` (``compile(weighted_metrics=...)``) passes sample weights on; plain
    ``metrics`` ignore them, as Keras does. With several outputs a result is named
    ``<output>_<metric>``; a name already taken gets ``_1``, ``_2``, ... and a weighted metric
    whose name the plain metrics (``after``) took is named ``weighted_<metric>`` (Keras 3's
    rules).

    Example:
        >>> import numpy as np, lamina as lm
        >>> inputs = lm.Input(shape=(3,))
        >>> z = lm.layers.Dense(2, name="z_out")(inputs)
        >>> a = lm.layers.Dense(1, name="a_out")(inputs)
        >>> model = lm.Model(inputs, [z, a])
        >>> model.compile("sgd", loss="mse", metrics={"a_out": "mae"})
        >>> x, y = np.ones((4, 3)), [np.zeros((4, 2)), np.zeros((4, 1))]
        >>> sorted(model.evaluate(x, y, verbose=0, return_dict=True))
        ['a_out_loss', 'a_out_mae', 'loss', 'z_out_loss']
    """

    def __init__(self, metrics, loss, weighted=False, name="compile_metrics", output_names=None,
                 after=None):
        self.spec = metrics
        self.loss = loss
        self.weighted = weighted
        self.name = name
        self.output_names = list(output_names) if output_names is not None else None
        self.after = after
        self.metrics: list = []
        self._by_output: list | None = None
        self._labels: list = []
        self._built_names = None

    def _spread_metrics(self, outputs: _Outputs) -> list:
        what = "weighted_metrics" if self.weighted else "metrics"
        spec = self.spec
        if spec is None:
            return [[] for _ in range(len(outputs))]
        if isinstance(spec, dict):
            entries = outputs.by_name(spec, what)
        elif isinstance(spec, (list, tuple)) and len(outputs) == 1:
            entries = [list(spec)]  # one output: every metric of the list is its
        elif isinstance(spec, (list, tuple)):
            if len(spec) != len(outputs):
                raise ValueError(
                    f"{what} has {len(spec)} entries, but the model has {len(outputs)} outputs "
                    f"({outputs.describe()}): give one entry (a metric or a list of metrics) per "
                    "output, or a dict keyed by output name."
                )
            entries = list(spec)
        else:
            entries = [spec] * len(outputs)
        return [[] if e is None else list(e) if isinstance(e, (list, tuple)) else [e] for e in entries]

    def _build(self, outputs: _Outputs, targets: list) -> None:
        losses = outputs.spread(self.loss, "loss") if self.loss is not None else [None] * len(outputs)
        by_output, metrics, labels = [], [], []
        for i, entries in enumerate(self._spread_metrics(outputs)):
            if entries and targets[i] is None:
                raise outputs.missing_target(i, "weighted_metrics" if self.weighted else "metrics")
            built = [self._resolve(entry, losses[i], targets[i], outputs.leaves[i]) for entry in entries]
            by_output.append(built)
            metrics.extend(built)
            labels.extend([outputs.labels[i]] * len(built))
        # All at once: a build that raised (a missing target) leaves the metrics unbuilt, so
        # the next call with the right data builds them instead of reporting changed outputs.
        self._by_output, self.metrics, self._labels = by_output, metrics, labels
        self._built_names = list(outputs.names)

    @staticmethod
    def _resolve(entry, loss, target, pred):
        if isinstance(entry, str) and entry.lower() in ("accuracy", "acc"):
            return metrics_module.resolve_accuracy(
                loss, getattr(target, "shape", None), getattr(pred, "shape", None), name=entry
            )
        metric = metrics_module.get(entry)
        if isinstance(entry, str):
            metric.name = entry  # logged under the name it was given ("mae"), as Keras does
        return metric

    def update_state(self, y_true, y_pred, sample_weight=None, real_rows=None) -> None:
        """Update every metric; ``real_rows`` (a boolean per row) leaves out the rows where
        it is False (``evaluate``'s padding; see ``padded_evaluation.py``)."""
        outputs = _Outputs(y_pred, self.output_names)
        if self._by_output is not None and outputs.names != self._built_names:
            raise ValueError(
                f"The model's outputs changed since the metrics were built: {self._built_names} "
                f"then {outputs.names}. Call compile() again."
            )
        if self.spec is None:
            if self._by_output is None:
                self._by_output, self._built_names = [[] for _ in range(len(outputs))], list(outputs.names)
            return  # nothing to update, so y need not fit the outputs
        has_loss = None
        if self.loss is not None:  # y may hold targets only for the outputs with a loss
            has_loss = [fn is not None for fn in outputs.spread(self.loss, "loss")]
        targets = outputs.targets(y_true, has_loss)
        if self._by_output is None:
            self._build(outputs, targets)
        weights = (outputs.sample_weights(sample_weight, has_loss) if self.weighted
                   else [None] * len(outputs))
        if real_rows is not None:
            for metric in (m for metrics in self._by_output for m in metrics):
                padded_evaluation.check_metric(metric)
            weights = [padded_evaluation.weights_of_real_rows(w, real_rows) for w in weights]
        for i, metrics in enumerate(self._by_output):
            if metrics and targets[i] is None:
                raise outputs.missing_target(i, "weighted_metrics" if self.weighted else "metrics")
            for metric in metrics:
                metric.update_state(targets[i], outputs.leaves[i], sample_weight=weights[i])

    def _named_metrics(self) -> list:
        return [(label, metric.name) for label, metric in zip(self._labels, self.metrics)]

    def result_names(self) -> list:
        """The keys of ``result()``, in order (known once the metrics are built)."""
        if self.weighted and self.after is not None:
            return _result_names(self.after._named_metrics(), self._named_metrics())[1]
        if self.weighted:
            return _result_names([], self._named_metrics())[1]
        return _result_names(self._named_metrics(), [])[0]

    def result(self) -> dict:
        return {name: metric.result() for name, metric in zip(self.result_names(), self.metrics)}

    def reset_state(self) -> None:
        for metric in self.metrics:
            metric.reset_state()

    @property
    def variables(self) -> list:
        return [v for metric in self.metrics for v in metric.variables]

    def _lm_state_variables(self) -> list:
        return self.variables


def _result_names(plain: list, weighted: list) -> tuple:
    """Log keys of the plain and the weighted metrics, given as ``(output label, metric name)``
    pairs: ``<label>_<name>``; a repeated key gets ``_1``, ``_2``, ..., and a weighted metric
    whose key is taken becomes ``<label>_weighted_<name>`` first (Keras 3's naming)."""
    counters: dict = {}

    def numbered(name):
        if name not in counters:
            counters[name] = 1
            return name
        index = counters[name]
        counters[name] += 1
        return f"{name}_{index}"

    plain_names = [numbered(f"{label}_{name}" if label else name) for label, name in plain]
    weighted_names = []
    for label, name in weighted:
        key = f"{label}_{name}" if label else name
        if key in counters:
            key = numbered(f"{label}_weighted_{name}" if label else f"weighted_{name}")
        else:
            counters[key] = 1
        weighted_names.append(key)
    return plain_names, weighted_names


def _loss_name(loss) -> str:
    return getattr(loss, "name", None) or getattr(loss, "__name__", type(loss).__name__)


def _raise_if_shapes_differ(loss, label, y_true, y_pred, error: TypeError) -> None:
    """Turn the backend's broadcasting ``TypeError`` from a loss into a ``ValueError`` naming the
    loss, the output and both shapes, when the shapes indeed cannot broadcast (a target of
    the wrong shape is a common mistake; JAX's message names neither)."""
    true_shape, pred_shape = tuple(getattr(y_true, "shape", ())), tuple(getattr(y_pred, "shape", ()))
    if len(true_shape) == len(pred_shape) + 1 and true_shape[-1:] == (1,):
        true_shape = true_shape[:-1]  # the losses squeeze a trailing axis of 1 away, as Keras's
    elif len(pred_shape) == len(true_shape) + 1 and pred_shape[-1:] == (1,):
        pred_shape = pred_shape[:-1]
    try:
        jnp.broadcast_shapes(true_shape, pred_shape)
        return
    except ValueError:
        pass
    of_output = "" if label is None else f" of output '{label}'"
    raise ValueError(
        f"The loss '{_loss_name(loss)}'{of_output} got targets of shape {tuple(y_true.shape)} for predictions of shape "
        f"{tuple(y_pred.shape)}: they must match (or broadcast). Check the shape of `y` against the "
        "model's output."
    ) from error


def batch_size_of(x) -> int:
    """Number of samples in a batch (the leading axis of the first leaf)."""
    leaves = jax.tree_util.tree_leaves(x)
    return leaves[0].shape[0] if leaves and getattr(leaves[0], "ndim", 0) else 1
