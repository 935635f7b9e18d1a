"""``compile`` / ``fit`` / ``evaluate`` / ``predict``: the Keras training API, compiled by XLA.

How a step runs (the part that decides speed):
- ``train_step`` is ordinary stateful code: call the model, ``lm.value_and_grad``,
  ``optimizer.apply``, update metrics, return a dict. A subclass may override it.
- ``fit`` compiles it with ``lm.jit``: one ``jax.jit`` over the flat list of state the step
  touches (weights, optimizer slots, metrics, seed generators), found by tracing, with the
  written state donated and kept on device between steps. Variables see the new values
  lazily (``Deferred``), so nothing is copied back per step.
- ``steps_per_execution=N`` runs N steps in one compiled call with ``lax.scan`` over a block of
  N batches (``stateful_scan``). ``"auto"`` times single steps and blocks on the first
  training steps and keeps the faster form (``auto_block.py``), unless a callback wants
  every batch.
- Per-step logs stay on the device; the progress bar converts them only when it redraws.
"""

from __future__ import annotations

import inspect
import threading
import warnings

import jax
import numpy as np

from lamina import callbacks as callbacks_module
from lamina import losses as losses_module
from lamina import metrics as metrics_module
from lamina import optimizers as optimizers_module
from lamina.callbacks._logs import flatten_logs
from lamina.core.abstract import abstract_eval
from lamina.core.scan import stateful_scan
from lamina.core.state import functionalize
from lamina.core.transforms import jit, value_and_grad
from lamina.data import ArrayDataAdapter, get_data_adapter, pack_batch, train_validation_split, unpack_batch
from lamina.data.checks import batch_size_or_default
from lamina.data.staging import StagedBatch
from lamina.distribution import consistency, placement
from lamina.distribution import current as current_distribution
from lamina.distribution.data import local_rows, one_call_in_flight
from lamina.metrics.base import Metric, state_values
from lamina.saving.serialization import deserialize_object, serialize
from lamina.trainers.auto_block import CALLS_PER_EPOCH, AutoBlock, divisor_block
from lamina.trainers.compile_utils import CompileLoss, CompileMetrics, batch_size_of
from lamina.trainers.label_checks import check_sparse_targets
from lamina.trainers.padded_evaluation import PaddingNotSupported, padded_test_step


class Trainer:
    """The training half of ``lm.Model`` (mixed in; see ``lamina/models/model.py``)."""

    # Defaults until compile() sets them, so that predict() works on an uncompiled model.
    jit_compile = True
    steps_per_execution = "auto"
    stop_training = False

    # -- configuration ----------------------------------------------------------------------
    def compile(self, optimizer="adam", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, steps_per_execution="auto", jit_compile=True,
                run_eagerly=False, auto_scale_loss=True):
        """Configure training: optimizer, loss (per output), metrics, execution.

        ``metrics`` ignore sample weights; ``weighted_metrics`` use them (Keras's split).
        ``steps_per_execution="auto"`` runs several steps per compiled call when that measures
        faster on the first steps, unless a callback needs every batch (see ``_lm_block_size``).
        ``auto_scale_loss`` (Keras 3's argument): under a ``"mixed_float16"`` policy the
        optimizer is wrapped in ``lm.optimizers.LossScaleOptimizer`` unless this is ``False``.
        """
        if not (steps_per_execution == "auto" or isinstance(steps_per_execution, int) and steps_per_execution >= 1):
            raise ValueError(f"steps_per_execution must be 'auto' or an integer >= 1, got {steps_per_execution!r}.")
        # Names are resolved per output at the first step; check them now, so that a typo
        # (or a name in a loaded file) fails at compile(), not minutes into fit().
        _check_names(loss, losses_module.get)
        for spec in (metrics, weighted_metrics):
            _check_names(spec, lambda name: name.lower() in ("accuracy", "acc") or metrics_module.get(name))
        self._lm_compile_args = dict(
            optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=loss_weights,
            weighted_metrics=weighted_metrics, steps_per_execution=steps_per_execution,
            jit_compile=jit_compile, run_eagerly=run_eagerly, auto_scale_loss=bool(auto_scale_loss),
        )
        self.optimizer = optimizers_module.get(optimizer)
        if (auto_scale_loss and self.dtype_policy.name == "mixed_float16"
                and not isinstance(self.optimizer, optimizers_module.LossScaleOptimizer)):
            # As Keras: float16 gradients underflow without loss scaling.
            self.optimizer = optimizers_module.LossScaleOptimizer(self.optimizer)
        self.loss = loss
        # Dict arguments are matched to outputs by these names (a Functional model's output
        # layers, as in Keras); a subclassed model has none and is matched by position.
        output_names = getattr(self, "output_names", None)
        self.compiled_loss = (CompileLoss(loss, loss_weights, output_names=output_names)
                              if loss is not None else None)
        self.compiled_metrics = CompileMetrics(metrics, loss, output_names=output_names)
        self.compiled_weighted_metrics = CompileMetrics(weighted_metrics, loss, weighted=True,
                                                        name="compile_weighted_metrics",
                                                        output_names=output_names,
                                                        after=self.compiled_metrics)
        # Not a public attribute (Keras's is `_loss_tracker`): a subclass may name its own
        # tracker `loss_tracker`, as the custom train_step guides do.
        self._lm_loss_tracker = metrics_module.Mean(name="loss")
        self.steps_per_execution = steps_per_execution
        self.jit_compile = bool(jit_compile) and not run_eagerly
        self._lm_step_functions = {}  # compiled steps of the previous compile() are stale
        self._lm_auto_blocks = {}  # and so are the block sizes measured with them
        self._lm_predict_tails = {}  # and predict's last-batch programs
        self._lm_padding_refused = None  # and why evaluate's padded step could not be used,
        self._lm_padded_ran = False  # or whether it ran
        self._lm_compiled = True

    def get_compile_config(self) -> dict | None:
        """The ``compile()`` arguments as JSON (the optimizer as its config), or ``None``
        before ``compile``. Saved in model files; ``compile_from_config`` replays it."""
        if not self.__dict__.get("_lm_compiled"):
            return None
        # Functions in Keras's dict form, strings as strings: a metric given as the function
        # ``accuracy`` must not come back as the string "accuracy" (which compile auto-picks).
        args = dict(self._lm_compile_args, optimizer=self.optimizer)
        return {key: _map_nested(serialize, value) for key, value in args.items()}

    def compile_from_config(self, config: dict, custom_objects=None) -> None:
        """``compile()`` with the arguments ``get_compile_config`` gave."""
        def resolve(value):
            if isinstance(value, dict) and "class_name" in value:
                return deserialize_object(value, kind="compile argument", aliases={}, custom_objects=custom_objects)
            return value

        args = {key: _map_nested(resolve, value) for key, value in config.items()}
        self.compile(**args)

    @property
    def compiled(self) -> bool:
        """Whether ``compile()`` has run (Keras's ``model.compiled``; a loaded model that was
        saved compiled is compiled again).

        Example:
            >>> import lamina as lm
            >>> model = lm.Sequential([lm.Input((2,)), lm.layers.Dense(1)])
            >>> before = model.compiled
            >>> model.compile(optimizer="sgd", loss="mse")
            >>> before, model.compiled
            (False, True)
        """
        return bool(self.__dict__.get("_lm_compiled"))

    def _lm_require_compiled(self, what: str) -> None:
        if not self.__dict__.get("_lm_compiled"):
            raise RuntimeError(f"Model '{self.name}' must be compiled before {what}(): call model.compile(...) first.")

    @property
    def metrics(self) -> list:
        """What Keras lists: the loss tracker (``"loss"``), the compiled-metrics containers
        when ``compile`` got metrics (their ``result()`` is a dict), then the metrics held in
        attributes of the model and of its layers (not of nested models). ``fit`` and
        ``evaluate`` reset them; a subclass may override this property to choose them."""
        found = []
        if self.__dict__.get("_lm_compiled"):
            args = self._lm_compile_args
            found.append(self._lm_loss_tracker)
            if args.get("metrics") is not None:
                found.append(self.compiled_metrics)
            if args.get("weighted_metrics") is not None:
                found.append(self.compiled_weighted_metrics)
            if self.compiled_loss is not None:  # per-output losses (several outputs), as Keras
                found.extend(self.compiled_loss.metrics)
        found.extend(self._lm_attribute_metrics())
        unique = {id(metric): metric for metric in found}
        return list(unique.values())

    def _lm_attribute_metrics(self) -> list:
        found = []
        for layer in self._flatten_layers():
            if layer is not self and isinstance(layer, Trainer):
                continue  # a nested model's metrics belong to its own training
            found.extend(h for h in layer._lm_children()[2] if isinstance(h, Metric))
        return found

    @property
    def metrics_variables(self) -> list:
        """The state of every metric in ``metrics``, in that order (Keras's list)."""
        return [v for metric in self.metrics for v in metric.variables]

    @property
    def metrics_names(self) -> list:
        """The log names, in the order of ``evaluate()``'s list (Keras 3's order): ``loss``,
        the compiled metrics whose log name is their own name (one output), the per-output
        losses, then every other name sorted (``<output>_<metric>`` with several outputs)."""
        if not self.__dict__.get("_lm_compiled"):
            return []
        leading, known = [], []
        for metric in self.metrics:
            if isinstance(metric, CompileMetrics):
                leading += [inner.name for inner in metric.metrics]
                known += metric.result_names()
            else:
                leading.append(metric.name)
                known.append(metric.name)
        first = [name for name in dict.fromkeys(leading) if name in known]
        return first + sorted(name for name in dict.fromkeys(known) if name not in first)

    def reset_metrics(self) -> None:
        """Reset every metric of ``model.metrics`` (``fit`` does it at each epoch's start,
        ``evaluate`` before its pass, the ``*_on_batch`` methods before their step)."""
        for metric in self.metrics:
            metric.reset_state()

    @property
    def losses(self) -> list:
        """``Layer.losses``, or the losses ``compute_loss_and_updates`` took from its
        ``stateless_call`` while it computes the loss (Keras's override)."""
        override = self.__dict__.get("_lm_losses_override")
        return list(override) if override is not None else super().losses

    # -- the steps (override these; they are written as eager code) -------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss on ``(y, y_pred)`` plus every loss in ``self.losses``."""
        total = 0.0
        if self.__dict__.get("compiled_loss") is not None:
            total = self.compiled_loss(y, y_pred, sample_weight)
        extra = self.losses
        if extra:
            total = total + sum(extra)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None) -> dict:
        """Update the compiled metrics and return every metric's current result."""
        self.compiled_metrics.update_state(y, y_pred, sample_weight)
        self.compiled_weighted_metrics.update_state(y, y_pred, sample_weight)
        return self.get_metrics_result()

    def get_metrics_result(self) -> dict:
        """The current results of ``model.metrics`` as one flat dict (what a ``train_step``
        returns by default); a metric whose result is a dict contributes its entries."""
        results = {}
        for metric in self.metrics:
            value = metric.result()
            if isinstance(value, dict):
                results.update(value)
            else:
                results[metric.name] = value
        return results

    def _compute_loss(self, x, y, y_pred, sample_weight, training):
        """``compute_loss``, also when an override predates its ``training`` argument."""
        if "training" in inspect.signature(self.compute_loss).parameters:
            return self.compute_loss(x, y, y_pred, sample_weight, training=training)
        return self.compute_loss(x, y, y_pred, sample_weight)

    def train_step(self, data) -> dict:
        """One optimisation step on a batch ``(x, y, sample_weight)``; returns the logs."""
        x, y, sample_weight = unpack_batch(data)

        def loss_fn():
            y_pred = self(x, training=True)
            loss = self._compute_loss(x, y, y_pred, sample_weight, training=True)
            # Differentiate the scaled loss (loss_scale_factor; apply unscales), log the loss.
            return self.optimizer.scale_loss(loss), (loss, y_pred)

        (_, (loss, y_pred)), grads = value_and_grad(loss_fn, self.trainable_weights, has_aux=True)()
        self.optimizer.apply(grads, self.trainable_weights)
        self._lm_loss_tracker.update_state(loss, sample_weight=batch_size_of(x))
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def test_step(self, data) -> dict:
        """Loss and metrics on a batch, without training."""
        x, y, sample_weight = unpack_batch(data)
        y_pred = self(x, training=False)
        loss = self._compute_loss(x, y, y_pred, sample_weight, training=False)
        self._lm_loss_tracker.update_state(loss, sample_weight=batch_size_of(x))
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def predict_step(self, data):
        """One batch of ``predict``: the model called on ``x`` with ``training=False``.
        Override it to return something else per batch; ``predict`` concatenates it."""
        x, _, _ = unpack_batch(data)
        return self(x, training=False)

    # -- the stateless form (Keras on JAX) -------------------------------------------------------
    def stateless_compute_loss(self, trainable_variables, non_trainable_variables, metrics_variables,
                               x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """``compute_loss`` with the given variable values; changes nothing (Keras on JAX).

        Returns ``(loss, (trainable_variables, non_trainable_variables, metrics_variables))``,
        the last two with whatever ``compute_loss`` assigned. The lists follow
        ``trainable_variables``, ``non_trainable_variables`` and ``metrics_variables``.

        Example:
            >>> import numpy as np, lamina as lm
            >>> model = lm.Sequential([lm.layers.Dense(1, kernel_initializer="ones")])
            >>> model.compile("sgd", "mse")
            >>> x, y = np.ones((2, 3), "float32"), np.zeros((2, 1), "float32")
            >>> _ = model(x)
            >>> tv = [v.value for v in model.trainable_variables]
            >>> ntv = [v.value for v in model.non_trainable_variables]
            >>> y_pred, ntv = model.stateless_call(tv, ntv, x)
            >>> mv = [v.value for v in model.metrics_variables]
            >>> loss, _ = model.stateless_compute_loss(tv, ntv, mv, x, y, y_pred)
            >>> float(loss)
            9.0
        """
        groups = {"trainable_variables": (self.trainable_variables, trainable_variables),
                  "non_trainable_variables": (self.non_trainable_variables, non_trainable_variables),
                  "metrics_variables": (self.metrics_variables, metrics_variables)}
        for name, (mine, given) in groups.items():
            if len(given) != len(mine):
                raise ValueError(
                    f"stateless_compute_loss() of model '{self.name}': `{name}` must hold one value "
                    f"per entry of model.{name} ({len(mine)}, in that order); received {len(given)}."
                )
        variables = [v for mine, _ in groups.values() for v in mine]
        values = state_values([a for _, given in groups.values() for a in given])
        pure = functionalize(lambda: self._compute_loss(x, y, y_pred, sample_weight, training), variables)
        loss, new_values, _ = pure(values)
        n_trainable, n_frozen = len(trainable_variables), len(non_trainable_variables)
        return loss, (list(trainable_variables), new_values[n_trainable:n_trainable + n_frozen],
                      new_values[n_trainable + n_frozen:])

    def compute_loss_and_updates(self, trainable_variables, non_trainable_variables, metrics_variables,
                                 x, y, sample_weight, training=False, optimizer_variables=None):
        """Keras-on-JAX's loss function for ``jax.value_and_grad(..., has_aux=True)``.

        ``stateless_call`` (its ``add_loss`` losses count), then ``stateless_compute_loss``;
        returns ``(loss, (unscaled_loss, y_pred, non_trainable_variables, metrics_variables))``
        where ``loss`` is scaled by the optimizer's ``loss_scale_factor`` when training with
        ``optimizer_variables``.
        """
        y_pred, non_trainable_variables, losses = self.stateless_call(
            trainable_variables, non_trainable_variables, x, return_losses=True, training=training)
        self._lm_losses_override = losses  # compute_loss reads self.losses
        try:
            loss, (_, non_trainable_variables, metrics_variables) = self.stateless_compute_loss(
                trainable_variables, non_trainable_variables, metrics_variables, x=x, y=y,
                y_pred=y_pred, sample_weight=sample_weight, training=training)
        finally:
            self._lm_losses_override = None
        unscaled_loss = loss
        scale = getattr(self.optimizer, "scale_loss", None)
        if training and optimizer_variables is not None and scale is not None:
            pure = functionalize(lambda: scale(unscaled_loss), self.optimizer.variables)
            loss = pure(state_values(optimizer_variables))[0]
        return loss, (unscaled_loss, y_pred, non_trainable_variables, metrics_variables)

    def _lm_state_groups(self, kind: str) -> dict:
        """The variables a Keras-on-JAX ``<kind>_step(state, data)`` gets as ``state``."""
        groups = {"trainable_variables": self.trainable_variables,
                  "non_trainable_variables": self.non_trainable_variables}
        if kind == "train":
            groups["optimizer_variables"] = self.optimizer.variables
        if kind != "predict":
            groups["metrics_variables"] = self.metrics_variables
        return groups

    def _lm_keras_jax_step(self, kind: str, step):
        """A ``<kind>_step(state, data)`` written the Keras-on-JAX way, as a stateful step.

        The state is read from the variables and the returned state assigned back, inside
        the compiled step, so ``lm.jit`` threads and donates it like any stateful step. A
        value returned unchanged (the very array given) is not written back.
        """
        method = f"{type(self).__name__}.{kind}_step(state, data)"

        def stateful_step(data):
            groups = self._lm_state_groups(kind)
            given = tuple([v.value for v in variables] for variables in groups.values())
            returned = step(given, data)
            if not (isinstance(returned, (tuple, list)) and len(returned) == 2):
                raise ValueError(f"{method} must return a pair (outputs, state) as in Keras on JAX; "
                                 f"it returned {_describe_state(returned)}.")
            outputs, new_state = returned
            if kind == "predict":  # Keras: (outputs, non_trainable_variables)
                written = {"non_trainable_variables": (groups["non_trainable_variables"], given[1], new_state)}
            else:
                names = list(groups)
                if not isinstance(new_state, (tuple, list)) or len(new_state) != len(names):
                    raise ValueError(
                        f"{method} must return (logs, state) with state = ({', '.join(names)}); "
                        f"the returned state is {_describe_state(new_state)}.")
                written = {name: (groups[name], old, new) for name, old, new in zip(names, given, new_state)}
            for name, (variables, old, new) in written.items():
                if len(new) != len(variables):
                    raise ValueError(f"{method} returned {len(new)} values for `{name}`; model.{name} "
                                     f"has {len(variables)}.")
                for variable, before, after in zip(variables, old, new):
                    if after is not before:
                        variable.assign(after)
            return outputs

        return stateful_step

    def _lm_build_keras_jax_state(self, kind: str, data, stacked: bool) -> None:
        """Create the optimizer and compiled-metric state before a stateless step reads it
        (Keras builds them symbolically before fit)."""
        if kind == "predict":
            return
        self._lm_build_metrics_from_batch(data, stacked)
        if kind == "train" and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    # -- compiled step functions -------------------------------------------------------------
    def _lm_step_function(self, kind: str, stacked: bool):
        """The (cached) callable running ``<kind>_step`` on one batch or a stacked block."""
        key = (kind, stacked)
        functions = self.__dict__.setdefault("_lm_step_functions", {})
        if key not in functions:
            run = self._lm_step_body(kind, stacked)
            if self.jit_compile:
                function = jit(run)
            else:  # eager steps get device arrays, as Keras's do (batches may come as NumPy)
                def function(data, *rows, run=run):
                    return run(jax.device_put(data), *rows)
            functions[key] = _serialized(function, self._lm_state_lock())
        return functions[key]

    def _lm_staged_predict_function(self, batch_size: int):
        """``predict``'s compiled step for a ``StagedBatch``: ``(chunk, start)`` -> outputs,
        the batch's ``batch_size`` rows sliced out of the chunk inside the program
        (``lamina/data/staging.py``). One program per batch size: a chunk's shape follows
        from the batch's."""
        key = ("staged_predict", batch_size)
        functions = self.__dict__.setdefault("_lm_step_functions", {})
        if key not in functions:
            run = self._lm_step_body("predict", stacked=False)

            def staged(chunk, start):
                return run(jax.tree_util.tree_map(
                    lambda leaf: jax.lax.dynamic_slice_in_dim(leaf, start, batch_size), chunk))

            functions[key] = _serialized(jit(staged), self._lm_state_lock())
        return functions[key]

    def _lm_step_body(self, kind: str, stacked: bool):
        """The traced body of ``<kind>_step`` on one batch or a stacked block (not compiled)."""
        if kind == "padded_test":  # evaluate's steps, given the count of real rows
            step, keras_jax = (lambda data, rows: padded_test_step(self, data, rows)), False
        else:
            step = getattr(self, f"{kind}_step")
            keras_jax = _takes_state(step)
        if keras_jax:
            step = self._lm_keras_jax_step(kind, step)

        def run(data, *rows):
            # Build first: a step reads trainable_weights before calling the model.
            self._lm_build_from_batch(data, stacked)
            if keras_jax:
                self._lm_build_keras_jax_state(kind, data, stacked)
            data = pack_batch(*data)  # (x, y) / x, as a Keras train_step expects
            if not stacked:
                outputs = step(data, *rows)
                return outputs if kind == "predict" else flatten_logs(outputs)
            outputs = stateful_scan(step, data)
            if kind == "predict":  # predictions: every step's
                return outputs
            # Logs: the last step's values, nested dicts flattened (as Keras's logs are),
            # and every step's (tiny) for callbacks that record each batch (TensorBoard).
            outputs = flatten_logs(outputs)
            return jax.tree_util.tree_map(lambda a: a[-1], outputs), outputs

        return run

    def _lm_state_lock(self):
        """The model's re-entrant lock, held by every compiled step call and its write-back.

        A step donates the arrays it writes; a step of another thread (``predict`` while
        ``fit`` runs) reading them between two such calls would get a deleted buffer. Calls
        are serialized, not whole loops, so both loops advance step by step.
        """
        lock = self.__dict__.get("_lm_lock")
        if lock is None:  # dict.setdefault is atomic: two threads get the same lock
            lock = self.__dict__.setdefault("_lm_lock", threading.RLock())
        return lock

    def _lm_build_from_batch(self, data, stacked: bool) -> None:
        """Create the model's weights from a batch's shapes, without running anything."""
        if self.built:
            return
        x, _, _ = unpack_batch(data)
        specs = jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(a.shape[1:] if stacked else a.shape, a.dtype), x
        )
        abstract_eval(lambda x: self(x, training=False), specs)  # whatever the call writes is dropped

    def _lm_block_size(self, adapter, callbacks, mode: str):
        """Steps per compiled call: ``steps_per_execution``, or for "auto" an ``AutoBlock``
        (a callable giving the current size) that measures which form is faster (see
        ``lamina/trainers/auto_block.py``); 1 where a callback needs every batch."""
        wanted = self.steps_per_execution
        steps = adapter.steps_per_epoch
        if wanted != "auto":
            return wanted
        if steps is None or callbacks.needs_batch_hooks(mode) or not self.jit_compile:
            return 1
        full = steps - (1 if adapter.has_partial_batch else 0)
        if mode != "train":  # fit's validation: forward steps, always cheap to scan
            return divisor_block(full, max(1, full // CALLS_PER_EPOCH))
        if jax.process_count() > 1:
            # Timings differ between processes, and every process must run the same program
            # (a different choice would leave one waiting for the other): one step per call.
            return 1
        choices = self.__dict__.setdefault("_lm_auto_blocks", {})
        key = (mode, adapter.batch_size, full)
        if key not in choices:
            choices[key] = AutoBlock(full)
        return choices[key]

    def _lm_run_epoch(self, kind, adapter, epoch, block, on_begin, on_end, progress=None):
        """Feed one pass over ``adapter`` to the compiled steps; returns the last logs.

        With a ``progress`` (``fit``), the epoch may start at ``progress.step`` (a resumed
        backup), and ``progress.step`` / ``progress.logs`` follow every executed call."""
        start = progress.step if progress is not None else 0
        logs, step = (progress.logs if start else {}), start
        observe = getattr(block, "observe", None)  # an "auto" block size measures the calls
        padded = kind == "test" and _padded(adapter)  # the last batch runs evaluate's padded step
        wait = one_call_in_flight()
        first_check = consistency.first_step_check(self)
        for steps, data in adapter.epoch(epoch, block=block, start_step=start):
            if progress is not None and progress.pending_metrics is not None:
                self._lm_restore_metrics(progress, data, stacked=steps > 1)
            if progress is not None:
                progress.call_steps = steps
            if first_check is not None:  # several processes, a model its first batch builds
                first_check, _ = None, first_check(data, steps > 1)
            on_begin(step)
            rows = adapter.num_samples - step * adapter.batch_size if padded and steps == 1 else 0
            if 0 < rows < adapter.batch_size:  # the partial batch, padded to a whole one
                logs, block_logs = self._lm_padded_test(data, rows), None
            else:
                logs, block_logs = self._lm_step_function(kind, stacked=steps > 1)(data), None
            if steps > 1:
                logs, block_logs = logs
            if wait:
                jax.block_until_ready(logs)
            if observe is not None:
                observe(steps, logs)
            step += steps
            if progress is not None:
                progress.step, progress.logs, progress.block_logs = step, logs, block_logs
            on_end(step - 1, logs)
            if kind == "train" and self.stop_training:
                break
        if observe is not None:
            block.pause()  # what follows the epoch (validation, callbacks) is not a step's cost
        if step == start and start:
            return logs  # a resumed epoch whose steps had all run: only its end is left
        if step == 0:
            if kind == "train" and getattr(adapter, "exhausted", False):
                self.stop_training = True  # a one-shot generator ran dry: end fit, as Keras does
                return logs
            raise ValueError(f"{kind}: the data produced no batch (is it empty?).")
        return logs

    # -- the public loops ---------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, **kwargs):
        """Train for ``epochs`` epochs; returns the ``History`` (``history.history["loss"]``)."""
        _check_loop_kwargs("fit", kwargs)
        self._lm_require_compiled("fit")
        if validation_split and validation_data is None:
            (x, y, sample_weight), validation_data = train_validation_split(x, y, sample_weight, validation_split)
        batch_size = batch_size_or_default(batch_size, method="fit")
        # Several processes: all must run this same program, or they would wait forever.
        consistency.check_loop(self, "fit", dict(
            batch_size=batch_size, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
            validation=validation_data is not None, validation_steps=validation_steps,
            validation_batch_size=validation_batch_size, validation_freq=validation_freq))
        adapter = self._lm_adapter(x, y, sample_weight, batch_size=batch_size, steps=steps_per_epoch,
                                   shuffle=shuffle, class_weight=class_weight, training=True)
        validation = None
        if validation_data is not None:
            vx, vy, vsw = unpack_batch(tuple(validation_data) if isinstance(validation_data, list) else validation_data)
            validation_batch_size = batch_size_or_default(
                validation_batch_size, label="validation_batch_size", default=batch_size, method="fit"
            )
            validation = self._lm_adapter(vx, vy, vsw, batch_size=validation_batch_size, steps=validation_steps,
                                          name="validation_data")
        callbacks = self._lm_callbacks(callbacks, verbose, adapter, epochs=epochs, history=True)
        block = self._lm_block_size(adapter, callbacks, "train")
        self._lm_distribute_state()
        self.stop_training = False
        # Where fit is (epoch, step, data position): read and set by BackupAndRestore.
        progress = self.__dict__["_lm_fit_progress"] = FitProgress(adapter, initial_epoch)
        try:
            callbacks.on_train_begin()
            first_epoch, first_step = initial_epoch, 0
            if progress.resumed:  # a backup was restored in on_train_begin
                first_epoch, first_step = progress.epoch, progress.step
            logs = {}
            for epoch in range(first_epoch, epochs):
                progress.epoch = epoch
                progress.step = first_step if epoch == first_epoch else 0
                if not progress.step:
                    progress.logs, progress.pending_metrics = {}, None
                self.reset_metrics()
                callbacks.on_epoch_begin(epoch)
                logs = dict(self._lm_run_epoch(
                    "train", adapter, epoch, block, callbacks.on_train_batch_begin,
                    callbacks.on_train_batch_end, progress=progress,
                ))
                if validation is not None and (epoch + 1) % validation_freq == 0:
                    # The fit's callbacks get the test hooks, as in Keras (the progress bar
                    # stays silent during fit and shows the val_ logs on the epoch's line).
                    val_logs = self._lm_evaluate(validation, callbacks)
                    logs.update({f"val_{name}": value for name, value in val_logs.items()})
                progress.epoch, progress.step, progress.logs = epoch + 1, 0, {}  # the epoch is done
                callbacks.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
            # Keras: the moving averages (use_ema) become the weights before on_train_end.
            self.optimizer.finalize_variable_values(self.trainable_weights)
            callbacks.on_train_end(logs)
        finally:
            self.__dict__.pop("_lm_fit_progress", None)  # it holds the data
        return self.history

    def _lm_restore_metrics(self, progress, data, stacked: bool) -> None:
        """Put back the metric state of a resumed epoch (before its first step runs)."""
        values, progress.pending_metrics = progress.pending_metrics, None
        variables = [v for metric in self.metrics for v in metric.variables]
        if len(variables) != len(values):  # compiled metrics are made at the first step
            self._lm_build_metrics_from_batch(data, stacked)
            variables = [v for metric in self.metrics for v in metric.variables]
        shapes = [tuple(v.shape) for v in variables]
        if shapes != [tuple(np.shape(a)) for a in values]:
            warnings.warn("The backup's metric state does not fit this model's metrics; the resumed "
                          "epoch's metrics restart from zero.", stacklevel=2)
            return
        for variable, value in zip(variables, values):
            variable.assign(value)

    def _lm_build_metrics_from_batch(self, data, stacked: bool) -> None:
        """Create the compiled metrics from a batch's shapes, without running anything."""
        x, y, sample_weight = unpack_batch(data)
        specs = jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(a.shape[1:] if stacked else a.shape, a.dtype), (x, y, sample_weight)
        )

        def update(x, y, sample_weight):
            y_pred = self(x, training=False)
            if self.compiled_loss is not None and y is not None:
                self.compiled_loss(y, y_pred, sample_weight)  # makes the per-output loss trackers
            self.compiled_metrics.update_state(y, y_pred, sample_weight)
            self.compiled_weighted_metrics.update_state(y, y_pred, sample_weight)

        abstract_eval(update, *specs)  # the update is dropped, the metrics stay

    def _lm_evaluate(self, adapter, callbacks, block=None) -> dict:
        if block is None:
            block = self._lm_block_size(adapter, callbacks, "test")
        if isinstance(adapter, ArrayDataAdapter) and self._lm_pads_evaluation():
            # The last batch padded to a whole one, its padding rows left out of the loss and
            # metrics: two programs per batch size whatever the number of samples.
            adapter.pad_partial_batch = True
        callbacks.on_test_begin()  # before the reset, as in Keras
        self.reset_metrics()
        logs = dict(self._lm_run_epoch(
            "test", adapter, 0, block, callbacks.on_test_batch_begin, callbacks.on_test_batch_end,
        ))
        callbacks.on_test_end(logs)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False, **kwargs):
        """Loss and metrics over the data: a list ``[loss, *metrics]`` (or a dict)."""
        _check_loop_kwargs("evaluate", kwargs)
        self._lm_require_compiled("evaluate")
        consistency.check_loop(self, "evaluate", {"batch_size": batch_size, "steps": steps})
        adapter = self._lm_adapter(x, y, sample_weight, batch_size=batch_size_or_default(batch_size, method="evaluate"),
                                   steps=steps)
        if isinstance(adapter, ArrayDataAdapter) and adapter is not x:
            adapter.from_host = True  # one pass: NumPy batches go to the device step by step
        callbacks = self._lm_callbacks(callbacks, verbose, adapter)
        self._lm_distribute_state()
        block = self._lm_predict_block_size(adapter, callbacks, "test")
        return self._lm_result(self._lm_evaluate(adapter, callbacks, block), return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, **kwargs):
        """Model outputs for every sample of ``x``, as NumPy arrays (same structure)."""
        _check_loop_kwargs("predict", kwargs)
        consistency.check_loop(self, "predict", {"batch_size": batch_size, "steps": steps})
        adapter = self._lm_adapter(x, batch_size=batch_size_or_default(batch_size, method="predict"), steps=steps,
                                   labels=False)
        callbacks = self._lm_callbacks(callbacks, verbose, adapter)
        block = self._lm_predict_block_size(adapter, callbacks, "predict")
        hooks = callbacks.needs_batch_hooks("predict")
        # The last batch padded (its extra rows dropped below): at most two compiled steps
        # per batch size whatever the number of samples.
        if isinstance(adapter, ArrayDataAdapter) and adapter is not x:
            adapter.pad_partial_batch = True
            adapter.pad_partial_to = self._lm_predict_tail_rows(adapter)
            adapter.from_host = True  # one pass: NumPy batches go to the device step by step
            # On the CPU backend, batches of 1-16 MiB go through reused host buffers the
            # device reads in place (lamina/data/staging.py).
            adapter.stage_batches = (self.jit_compile and block == 1 and jax.default_backend() == "cpu"
                                     and jax.process_count() == 1)
        self._lm_distribute_state()
        callbacks.on_predict_begin()
        chunks = self._lm_predict_batches(adapter, callbacks, block, trim=hooks)
        callbacks.on_predict_end()
        if not chunks:
            raise ValueError("predict: the data produced no batch (is it empty?).")
        # Outputs stay on the device until here: one transfer at the end, not one per batch,
        # and (steps, batch, ...) blocks are flattened on the host, where it costs nothing.
        if jax.process_count() > 1:  # each process gets back the rows it passed
            host = [jax.tree_util.tree_map(lambda a, s=stacked: local_rows(a, s), outputs) for stacked, outputs in chunks]
        else:
            host = jax.device_get([outputs for _, outputs in chunks])
        parts = [jax.tree_util.tree_map(lambda a: a.reshape((-1, *a.shape[2:])), part) if stacked else part
                 for (stacked, _), part in zip(chunks, host)]
        real = _real_rows(adapter, sum(_batch_rows(part, 1) for part in parts)) if _padded(adapter) else None
        return jax.tree_util.tree_map(lambda *leaves: np.concatenate(leaves, axis=0)[:real], *parts)

    def _lm_predict_batches(self, adapter, callbacks, block: int, trim: bool) -> list:
        """Run the predict step over every item ``adapter`` yields; ``[(stacked, outputs)]``
        with the outputs left on the device. ``trim``: a callback reads each batch's outputs,
        so they are handed to it with the padding rows dropped.

        This is the per-batch path that small batches spend their time in, so it does only
        what each step needs: step functions looked up once, callbacks called only when there
        are some, rows counted only for ``trim``."""
        chunks, step, rows = [], 0, 0
        # The lock is held for the whole loop below: the steps skip taking it again.
        one_step = self._lm_step_function("predict", stacked=False).__wrapped__
        notify = bool(callbacks.callbacks)
        # One predict sees one state of the model: another thread's fit steps wait (the
        # steps are only dispatched here; the device runs them after the lock is released).
        wait = one_call_in_flight()
        first_check = consistency.first_step_check(self)
        with self._lm_state_lock():
            for steps_run, data in adapter.epoch(0, block=block):
                if first_check is not None:  # several processes, a model its first batch builds
                    first_check, _ = None, first_check(data, steps_run > 1)
                if notify:
                    callbacks.on_predict_batch_begin(step)
                stacked = steps_run > 1
                if type(data) is StagedBatch:  # rows of a staging buffer, sliced in the step
                    outputs = self._lm_staged_predict_function(data.rows).__wrapped__(data.chunk, data.start)
                    data.used_by(outputs)
                else:
                    outputs = (self._lm_step_function("predict", stacked=True).__wrapped__ if stacked
                               else one_step)(data)
                if wait:
                    jax.block_until_ready(outputs)
                chunks.append((stacked, outputs))
                step += steps_run
                if notify:
                    # Only a callback that reads each batch gets its outputs trimmed (a slice
                    # compiled per size); the progress bar and other block-wise ones ignore them.
                    if trim:
                        rows += _batch_rows(data, steps_run)
                        outputs = _trimmed(outputs, steps_run, adapter, rows)
                    callbacks.on_predict_batch_end(step - 1, {"outputs": outputs})
        return chunks

    def _lm_predict_tail_rows(self, adapter) -> int | None:
        """The rows ``predict`` pads its last, partial batch to; None: a whole batch.

        Each batch size may have one program besides the whole batch's: a tail, sized by the
        first partial batch ``predict`` meets at that batch size. That partial batch, and any
        later one of its size (repeated calls on data of one size, validation-sized data),
        then costs the rows it has, as in a hand-written loop; smaller partial batches are
        padded to the tail, larger ones to a whole batch. Any number of input sizes compiles
        at most two programs per batch size, and a given input size always runs the same
        programs, so repeated calls give bit-equal outputs. Not under a distribution, whose
        batches must split evenly over the devices (every partial batch is padded whole).
        """
        partial, batch = adapter.partial_batch_rows, adapter.batch_size
        reached = adapter.steps_per_epoch * batch >= adapter.num_samples  # not cut short by `steps`
        if not partial or not reached or current_distribution.distribution() is not None or jax.process_count() > 1:
            return None
        tail = self.__dict__.setdefault("_lm_predict_tails", {}).setdefault(batch, partial)
        return tail if partial <= tail else None

    def _lm_pads_evaluation(self) -> bool:
        """Whether ``evaluate`` may pad its last batch (``padded_evaluation.py``): the default
        ``test_step``, ``compute_loss`` and ``compute_metrics``, no metric held in an
        attribute (a layer may update it from any row), compiled steps, one device, and no
        earlier trace that found the padding would count (``_lm_padding_refused``)."""
        cls = type(self)
        return (cls.test_step is Trainer.test_step and cls.compute_loss is Trainer.compute_loss
                and cls.compute_metrics is Trainer.compute_metrics and self.jit_compile
                and not self.__dict__.get("_lm_padding_refused") and not self._lm_attribute_metrics()
                and current_distribution.distribution() is None and jax.process_count() == 1)

    def _lm_padded_test(self, data, rows: int):
        """Evaluate the last batch, whose first ``rows`` rows are real (the rest padding),
        with the padded step; a model whose trace refuses padding gets its exact rows instead.

        Whole batches keep the plain step: with two threads XLA:CPU ran the padded form of a
        784-512-512-10 step 15% slower than the plain one (the same matmuls; one thread: the
        same time), so padding costs one program per batch size, not a slower evaluate.

        A first padded trace that fails also falls back: user code may rely on the batch's
        shape (a loss broadcasting ``(4,)`` targets against ``(4, 4)`` predictions works on
        the exact 4 rows, not on 32); a genuine error then comes from the exact step."""
        if not self.__dict__.get("_lm_padding_refused"):
            try:
                logs = self._lm_step_function("padded_test", stacked=False)(data, np.asarray(rows, np.int32))
                self._lm_padded_ran = True
                return logs
            except PaddingNotSupported as why:
                self._lm_padding_refused = str(why)  # from now on, exact batches (as Keras)
            except Exception as error:
                if self.__dict__.get("_lm_padded_ran"):
                    raise  # not a trace: the padded step has run before
                self._lm_padding_refused = f"the padded trace failed: {type(error).__name__}: {error}"
        if rows < batch_size_of(unpack_batch(data)[0]):
            data = jax.tree_util.tree_map(lambda a: a[:rows], data)
        return self._lm_step_function("test", stacked=False)(data)

    def _lm_predict_block_size(self, adapter, callbacks, mode: str) -> int:
        """Steps per compiled ``predict`` / ``evaluate`` call. ``"auto"`` runs one batch per
        call: the call only dispatches (results stay on the device), so blocks save little
        host work, and a block size chosen from the number of samples would compile a new
        scanned step for nearly every input size."""
        if self.steps_per_execution == "auto":
            return 1
        return self._lm_block_size(adapter, callbacks, mode)

    def _lm_result(self, logs, return_dict):
        """Logs as floats (a metric with several values, e.g. ``F1Score(average=None)``, as a
        NumPy array, as Keras gives it): a dict, or Keras's list in ``metrics_names`` order
        (loss first)."""
        logs = {name: float(value) if np.ndim(value) == 0 else np.asarray(value)
                for name, value in jax.device_get(dict(logs)).items()}
        if return_dict:
            return logs
        order = [name for name in self.metrics_names if name in logs]  # compile order
        values = [logs[name] for name in order] + [v for k, v in logs.items() if k not in order]
        return values[0] if len(values) == 1 else values

    # -- single batches ----------------------------------------------------------------------
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One training step on exactly this batch; returns its logs as floats (metrics are
        reset first, as in Keras 3)."""
        self._lm_require_compiled("train_on_batch")
        logs = self._lm_one_batch("train", x, y, sample_weight, class_weight=class_weight)
        return self._lm_result(logs, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss and metrics on exactly this batch (metrics are reset first, as in Keras 3)."""
        self._lm_require_compiled("test_on_batch")
        return self._lm_result(self._lm_one_batch("test", x, y, sample_weight), return_dict)

    def predict_on_batch(self, x):
        """Outputs for exactly this batch, as NumPy."""
        outputs = self._lm_one_batch("predict", x)
        if jax.process_count() > 1:  # each process gets back the rows it passed (as predict)
            return jax.tree_util.tree_map(local_rows, outputs)
        return jax.device_get(outputs)

    # -- the setup the loops share --------------------------------------------------------------
    def _lm_adapter(self, x, y=None, sample_weight=None, *, batch_size, steps=None, shuffle=False,
                    class_weight=None, training=False, labels=True, name="x"):
        """The checked data of a loop: integer labels checked against the loss (once, for
        in-memory arrays), then the adapter. ``labels=False``: ``x`` only (``predict``)."""
        if labels:
            where = "validation_data[1]" if name == "validation_data" else "y"
            check_sparse_targets(self, x, y, batch_size=batch_size, where=where)
        return get_data_adapter(
            x, y, sample_weight, batch_size=batch_size, steps_per_epoch=steps, shuffle=shuffle if training else False,
            class_weight=class_weight, for_training=training,
            require_y=labels and self.compiled_loss is not None, name=name,
        )

    def _lm_callbacks(self, callbacks, verbose, adapter, *, epochs=1, history=False):
        """The loop's ``CallbackList``: the user's callbacks, a ``History`` (``fit``) and a
        progress bar unless ``verbose=0``."""
        verbose = 1 if verbose == "auto" else verbose
        return callbacks_module.CallbackList(
            callbacks, add_history=history, add_progbar=verbose != 0, model=self, verbose=verbose,
            epochs=epochs, steps=adapter.steps_per_epoch,
        )

    def _lm_one_batch(self, kind, x, y=None, sample_weight=None, class_weight=None):
        """One ``<kind>_step`` on exactly this batch (the ``*_on_batch`` methods); returns its
        device outputs. Train and test reset the metrics first, as in Keras 3."""
        if kind != "predict":
            self.reset_metrics()
        adapter = get_data_adapter(x, y, sample_weight, batch_size=None, steps_per_epoch=1, shuffle=False,
                                   class_weight=class_weight, for_training=kind == "train",
                                   require_y=kind != "predict" and self.compiled_loss is not None)
        _, data = next(iter(adapter.epoch(0, block=1)))
        consistency.check_batch(self, kind, data)  # several processes: all must run this same program
        self._lm_distribute_state()
        return self._lm_step_function(kind, stacked=False)(data)

    def _lm_distribute_state(self) -> None:
        """Under a distribution, move the state made before it (a model built, an optimizer
        or metrics used on one device) to its layouts before a loop's first step; a variable
        that cannot take its layout raises, naming it. Nothing to do without one."""
        distribution = current_distribution.distribution()
        if distribution is None:
            return
        variables, targets = placement.model_state_targets(self, distribution)
        placement.move(variables, targets)


_DATA_LOADING_ARGS = ("workers", "use_multiprocessing", "max_queue_size")


def _batch_rows(data, steps: int) -> int:
    """Samples in a yielded item (padding included): its first leaf's leading axes."""
    if type(data) is StagedBatch:
        return data.rows
    shape = np.shape(jax.tree_util.tree_leaves(data)[0])
    return int(shape[0] * shape[1]) if steps > 1 else int(shape[0])


def _padded(adapter) -> bool:
    """Whether ``adapter`` pads its last batch (``predict`` on in-memory arrays)."""
    return getattr(adapter, "pad_partial_batch", False)


def _real_rows(adapter, rows: int) -> int:
    """Of ``rows`` predicted, the samples that are not padding (only the last batch is)."""
    return min(rows, adapter.num_samples) if _padded(adapter) else rows


def _trimmed(outputs, steps: int, adapter, rows: int):
    """A step's outputs for a callback: blocks flattened, padding rows dropped."""
    if steps > 1:
        outputs = jax.tree_util.tree_map(lambda a: a.reshape((-1, *a.shape[2:])), outputs)
    extra = rows - _real_rows(adapter, rows)
    if extra:
        outputs = jax.tree_util.tree_map(lambda a: a[: a.shape[0] - extra], outputs)
    return outputs


def _serialized(step, lock):
    """``step`` called with ``lock`` held (see ``Trainer._lm_state_lock``)."""

    def locked(*args):
        with lock:
            return step(*args)

    locked.__wrapped__ = step  # for a loop that holds the lock throughout (predict)
    return locked


def _check_loop_kwargs(method: str, kwargs: dict) -> None:
    """Refuse Keras 2's data-loading arguments with a pointer to where Keras 3 moved them."""
    moved = [name for name in _DATA_LOADING_ARGS if name in kwargs]
    if moved:
        given = ", ".join(f"{name}={kwargs[name]!r}" for name in moved)
        raise ValueError(
            f"{method}() does not take {', '.join(f'`{name}`' for name in moved)}: as in Keras 3, "
            "they belong to the data. Subclass lm.data.PyDataset and pass them to its "
            f"constructor (super().__init__({given}) in your __init__), then give that dataset "
            f"to {method}()."
        )
    if kwargs:
        raise TypeError(f"{method}() got unexpected keyword arguments: {', '.join(sorted(kwargs))}.")


def _takes_state(step) -> bool:
    """Whether ``step`` is written the Keras-on-JAX way: ``step(state, data)``."""
    try:
        params = inspect.signature(step).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) == 2 and not any(p.kind == p.VAR_POSITIONAL for p in params)


def _describe_state(state) -> str:
    if isinstance(state, (tuple, list)):
        return f"a {type(state).__name__} of {len(state)} entries"
    return f"a {type(state).__name__}"


class FitProgress:
    """Where a running ``fit`` is, as ``model._lm_fit_progress`` (for ``BackupAndRestore``).

    ``epoch``: the epoch running (after its end: the next one); ``step``: the training steps
    of that epoch already run; ``logs``: the last step's logs; ``adapter``: the training data
    (``get_state``/``set_state``). A callback's ``on_train_begin`` may set ``epoch``, ``step``,
    ``logs`` and ``pending_metrics`` (the metric variables' values, in ``model.metrics``
    order) and ``resumed = True``: ``fit`` then starts there instead of at ``initial_epoch``.

    For callbacks that record every batch (``TensorBoard``): ``call_steps`` is the number of
    steps of the compiled call running (set before ``on_train_batch_begin``), and after it
    ``block_logs`` holds each of its steps' logs stacked on a leading axis (``None`` when the
    call ran one step: ``logs`` is then that step's).
    """

    def __init__(self, adapter, epoch: int):
        self.adapter = adapter
        self.epoch = epoch
        self.step = 0
        self.logs = {}
        self.pending_metrics = None
        self.resumed = False
        self.call_steps = 1
        self.block_logs = None


def _check_names(spec, resolve) -> None:
    """``resolve`` every string in a loss or metrics spec (lists and dicts of them)."""
    _map_nested(lambda leaf: resolve(leaf) if isinstance(leaf, str) else None, spec)


def _map_nested(fn, value):
    """``fn`` on each leaf of nested lists and plain dicts (a ``class_name`` dict is a leaf)."""
    if isinstance(value, (list, tuple)):
        return [_map_nested(fn, v) for v in value]
    if isinstance(value, dict) and "class_name" not in value:
        return {k: _map_nested(fn, v) for k, v in value.items()}
    return fn(value)
