"""``TensorBoard``: scalars, weight histograms, the model summary and profiles for TensorBoard.

Event files are written with tensorboardX (the ``lamina[tensorboard]`` extra), imported only
when the callback is created.
"""

from __future__ import annotations

import numbers
import os
import time
import warnings

import jax
import numpy as np

from lamina.callbacks.callback import Callback, runs_per_block


class TensorBoard(Callback):
    """Writes event files for TensorBoard (``tensorboard --logdir logs``), as Keras's callback.

    What is written, in ``<log_dir>/train`` and ``<log_dir>/validation`` (the runs TensorBoard
    shows):

    - at every epoch end, ``epoch_<name>`` for each log with the epoch as step (validation logs
      without their ``val_`` prefix in ``validation/``), ``epoch_learning_rate`` (one
      ``epoch_learning_rate_<name>`` per inner optimizer of a multi-optimizer) and, with
      ``write_steps_per_second``, ``epoch_steps_per_second``;
    - with ``update_freq="batch"`` or an integer ``N``, ``batch_<name>`` every ``N``-th
      training batch with the batch number counted from the start of ``fit`` (1, 2, ...) as
      step. Every batch's values are recorded also when ``fit`` runs several steps per compiled
      call (``steps_per_execution``): the call hands over each of its steps' logs, so logging
      per batch never forces one step per call;
    - after validation (and ``evaluate``), ``evaluation_<name>_vs_iterations`` in
      ``validation/`` with ``optimizer.iterations`` as step;
    - every ``histogram_freq`` epochs, a histogram ``<variable path>/histogram`` of every
      weight (and with ``write_images`` an image ``<variable path>/image`` of 1-3-D weights);
    - with ``write_graph``, the model summary (``model.summary()``) as text, tag
      ``model_summary``, once the model is built by the first training step;
    - every ``embeddings_freq`` epochs, the table of every ``Embedding`` layer for the
      embedding projector (``<log_dir>/train/projector_config.pbtxt``), with its labels;
    - with ``profile_batch``, a ``jax.profiler`` trace of those training batches into
      ``<log_dir>/train/plugins/profile`` (TensorBoard's profile tab, with the
      ``tensorboard-plugin-profile`` package). With several steps per compiled call, the trace
      covers the calls that run those batches.

    Args:
        log_dir: Directory of the event files; not to be shared with other callbacks.
        histogram_freq: Epochs between weight histograms (0: none). Epoch 0 is included.
        write_graph: Write the model summary as text.
        write_images: With ``histogram_freq``, also write the weights as images (each weight
            scaled from its minimum to its maximum; needs Pillow).
        write_steps_per_second: Also log the training steps per second.
        update_freq: ``"epoch"``, ``"batch"`` (every batch) or an integer ``N`` (every ``N``
            batches).
        profile_batch: ``0`` (no profiling), a batch number or a pair ``(start, stop)`` of
            batch numbers (counted from 1 from the start of ``fit``, as Keras).
        embeddings_freq: Epochs between embedding snapshots (0: none). Epoch 0 is included.
        embeddings_metadata: The labels of the embedding rows: the path of a TSV file for
            every ``Embedding`` layer, or a dict from layer name to path. A file has one label
            per line (one line per index), or a header line and one tab-separated row per
            index (TensorBoard's format).

    Raises:
        ImportError: tensorboardX is not installed (``pip install "lamina[tensorboard]"``).
        ValueError: An argument has a value the callback cannot use.

    Example:
        >>> import os, tempfile, numpy as np, lamina as lm
        >>> model = lm.Sequential([lm.layers.Dense(1)])
        >>> model.compile("sgd", "mse")
        >>> log_dir = tempfile.mkdtemp()
        >>> history = model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=2, verbose=0,
        ...                     callbacks=[lm.callbacks.TensorBoard(log_dir)])
        >>> sorted(os.listdir(log_dir))
        ['train']
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0,
                 embeddings_freq=0, embeddings_metadata=None):
        super().__init__()
        self._writer_class = _summary_writer_class()
        for name, value in (("histogram_freq", histogram_freq), ("embeddings_freq", embeddings_freq)):
            if not _is_count(value):
                raise ValueError(f"TensorBoard: {name} must be an integer >= 0 (epochs between "
                                 f"writes; 0: never), got {value!r}.")
        if not (embeddings_metadata is None or isinstance(embeddings_metadata, (str, os.PathLike))
                or isinstance(embeddings_metadata, dict)):
            raise ValueError("TensorBoard: embeddings_metadata must be a file path or a dict from "
                             f"Embedding layer name to file path, got {embeddings_metadata!r}.")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = bool(write_graph)
        self.write_images = bool(write_images)
        self.write_steps_per_second = bool(write_steps_per_second)
        self.update_freq = _update_freq(update_freq)
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self._start_batch, self._stop_batch = _profile_range(profile_batch)
        self._train_dir = os.path.join(self.log_dir, "train")
        self._val_dir = os.path.join(self.log_dir, "validation")
        self._writers = {}
        self._in_fit = False
        self._reset_run_state()

    def _reset_run_state(self):
        self._global_train_batch = 0  # training batches run since on_train_begin
        self._graph_pending = self.write_graph
        self._profiled = False  # a trace was taken in this fit (Keras traces once per fit)
        self._tracing = False
        self._annotation = None
        self._call_start = None
        self._epoch_start = None
        self._epoch_first_batch = 0

    # -- writers ---------------------------------------------------------------------------
    def _writer(self, which):
        if which not in self._writers:  # created lazily: no empty event files
            logdir = self._train_dir if which == "train" else self._val_dir
            self._writers[which] = self._writer_class(logdir=logdir)
        return self._writers[which]

    def _close_writers(self):
        # Only close() waits for tensorboardX's writer thread to write out its queue.
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    # -- fit -------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._reset_run_state()
        self._in_fit = True

    def on_train_end(self, logs=None):
        self._in_fit = False
        if self._tracing:
            self._stop_trace()
        self._close_writers()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._epoch_first_batch = self._global_train_batch

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        validation = {k[len("val_"):]: v for k, v in logs.items() if k.startswith("val_")}
        train.update(self._learning_rates())
        if self.write_steps_per_second and self._epoch_start is not None:
            steps = self._global_train_batch - self._epoch_first_batch
            train["steps_per_second"] = steps / max(time.perf_counter() - self._epoch_start, 1e-9)
        self._write_scalars("train", "epoch_", train, epoch)
        if validation:
            self._write_scalars("validation", "epoch_", validation, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_weights(epoch)
        if self.embeddings_freq and epoch % self.embeddings_freq == 0:
            self._write_embeddings(epoch)
        for writer in self._writers.values():
            writer.flush()  # to disk now rather than within 120 s, so TensorBoard shows the epoch

    @runs_per_block
    def on_train_batch_begin(self, batch, logs=None):
        steps = self._call_steps()
        first = self._global_train_batch + 1
        if self.write_steps_per_second:
            self._call_start = time.perf_counter()
        if self._start_batch and not self._profiled and not self._tracing:
            if first + steps - 1 >= self._start_batch and first <= self._stop_batch:
                self._start_trace()
        if self._tracing:
            label = f"{batch}" if steps == 1 else f"{batch}-{batch + steps - 1}"
            self._annotation = jax.profiler.TraceAnnotation(f"Profiled batch {label}")
            self._annotation.__enter__()

    # Marked: every step's logs of a block come in FitProgress.block_logs, so a block of
    # steps_per_execution steps loses no batch and "auto" need not fall back to one step.
    @runs_per_block
    def on_train_batch_end(self, batch, logs=None):
        steps = self._call_steps()
        first = self._global_train_batch + 1
        self._global_train_batch += steps
        if self._annotation is not None:
            self._annotation.__exit__(None, None, None)
            self._annotation = None
        if self._graph_pending:
            self._graph_pending = False
            self._write_model_summary()
        if self.update_freq != "epoch":
            self._write_batch_logs(first, steps, logs or {})
        if self._tracing and self._global_train_batch >= self._stop_batch:
            self._stop_trace()

    # -- validation and evaluate -----------------------------------------------------------
    def on_test_end(self, logs=None):
        iterations = getattr(getattr(self.model, "optimizer", None), "iterations", None)
        if iterations is None or not logs:
            return
        step = int(np.asarray(iterations))
        self._write_scalars("validation", "evaluation_", logs, step, suffix="_vs_iterations")
        if not self._in_fit:  # evaluate(): nothing closes the writers later
            self._close_writers()

    # -- what is written -------------------------------------------------------------------
    def _call_steps(self):
        """Steps of the compiled call running (one outside ``fit``, e.g. hooks called by hand)."""
        progress = self._fit_progress()
        return progress.call_steps if progress is not None else 1

    def _fit_progress(self):
        model = self.model
        return None if model is None else model.__dict__.get("_lm_fit_progress")

    def _write_batch_logs(self, first, steps, logs):
        last = first + steps - 1
        wanted = [g for g in range(first, last + 1) if g % self.update_freq == 0]
        if not wanted:
            return
        progress = self._fit_progress()
        block = progress.block_logs if progress is not None and steps > 1 else None
        if block is not None:
            host = jax.device_get(dict(block))  # one transfer for the whole block
            rows = {g: {k: _row(v, g - first) for k, v in host.items()} for g in wanted}
        else:  # one step per call: ``logs`` are that step's
            rows = {last: jax.device_get(dict(logs))} if last in wanted else {}
        rate = None
        if self.write_steps_per_second and self._call_start is not None:
            # Measured after the transfer above, which waited for the call to finish.
            rate = steps / max(time.perf_counter() - self._call_start, 1e-9)
        for g, values in rows.items():
            if rate is not None:
                values = dict(values, steps_per_second=rate)
            self._write_scalars("train", "batch_", values, g)

    def _write_scalars(self, which, prefix, values, step, suffix=""):
        writer = None
        for name, value in values.items():
            number = _scalar(value)
            if number is None:
                continue  # arrays and strings are not TensorBoard scalars
            writer = writer or self._writer(which)
            writer.add_scalar(f"{prefix}{name}{suffix}", number, global_step=step)

    def _learning_rates(self):
        optimizer = getattr(self.model, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # a loss-scale wrapper
        inner = getattr(optimizer, "optimizers", None)
        if isinstance(inner, (list, tuple)):
            pairs = [(f"learning_rate_{opt.name}", opt) for opt in inner]
        else:
            pairs = [("learning_rate", optimizer)]
        rates = {}
        for name, opt in pairs:
            # A Variable, or a schedule's value now; None when a wrapped optax optimizer keeps
            # its rate inside the transformation.
            value = getattr(opt, "learning_rate", None)
            number = None if value is None else _scalar(value)
            if number is not None:
                rates[name] = number
        return rates

    def _write_weights(self, epoch):
        weights = list(self.model.weights)
        values = jax.device_get([w.value for w in weights])  # one transfer
        writer = self._writer("train")
        for weight, value in zip(weights, values):
            name = weight.path.replace(":", "_")
            value = np.asarray(value, dtype=np.float64)
            finite = value[np.isfinite(value)]
            # A histogram of NaN or inf has no range; a diverged weight shows as missing.
            if finite.size:
                writer.add_histogram(f"{name}/histogram", finite, global_step=epoch, bins="tensorflow")
            if self.write_images:
                image = _weight_image(value)
                if image is not None:
                    writer.add_images(f"{name}/image", image, global_step=epoch, dataformats="NHWC")

    def _write_embeddings(self, epoch):
        from lamina.layers.core.embedding import Embedding

        layers = [layer for layer in self.model._flatten_layers() if isinstance(layer, Embedding)]
        metadata = self.embeddings_metadata
        if isinstance(metadata, dict):
            unknown = sorted(set(metadata) - {layer.name for layer in layers})
            if unknown:
                raise ValueError(
                    f"TensorBoard: embeddings_metadata names {unknown}, which are not Embedding "
                    f"layers of model '{self.model.name}'; its Embedding layers are "
                    f"{[layer.name for layer in layers]}.")
        writer = self._writer("train")
        for layer in layers:
            table = np.asarray(jax.device_get(layer.embeddings.value))
            path = metadata.get(layer.name) if isinstance(metadata, dict) else metadata
            labels, header = (None, None) if path is None else _read_labels(path, layer, len(table))
            writer.add_embedding(table, metadata=labels, metadata_header=header,
                                 global_step=epoch, tag=layer.embeddings.path)

    def _write_model_summary(self):
        lines = []
        try:
            self.model.summary(print_fn=lines.append)
        except Exception as error:  # a summary must never stop training (Keras warns too)
            warnings.warn(f"TensorBoard: the model summary could not be written: {error}", stacklevel=2)
            return
        # Indented four spaces: TensorBoard renders text as Markdown, and a code block keeps
        # the table's columns aligned.
        self._writer("train").add_text("model_summary", "\n".join("    " + line for line in lines), 0)

    # -- profiling -------------------------------------------------------------------------
    def _start_trace(self):
        self._profiled = True
        try:
            jax.profiler.start_trace(self._train_dir)
        except Exception as error:  # e.g. another trace is running; profiling is not fatal
            warnings.warn(f"TensorBoard: the profiler did not start: {error}", stacklevel=2)
            return
        self._tracing = True

    def _stop_trace(self):
        if self._annotation is not None:
            self._annotation.__exit__(None, None, None)
            self._annotation = None
        self._tracing = False
        try:
            jax.profiler.stop_trace()
        except Exception as error:
            warnings.warn(f"TensorBoard: the profiler did not stop cleanly: {error}", stacklevel=2)


def _summary_writer_class():
    try:
        from tensorboardX import SummaryWriter
    except ImportError as error:
        raise ImportError(
            "lm.callbacks.TensorBoard writes event files with tensorboardX, which is not "
            'installed: pip install "lamina[tensorboard]".') from error
    return SummaryWriter


def _is_count(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def _update_freq(update_freq):
    if update_freq == "batch":
        return 1
    if update_freq == "epoch":
        return "epoch"
    if _is_count(update_freq) and update_freq > 0:
        return int(update_freq)
    raise ValueError(f'TensorBoard: update_freq must be "epoch", "batch" or an integer >= 1 '
                     f"(batches between writes), got {update_freq!r}.")


def _profile_range(profile_batch):
    """``(start, stop)`` batch numbers (``(0, 0)``: no profiling), checked as Keras does."""
    given = profile_batch
    if isinstance(profile_batch, str):  # Keras's legacy "start,stop"
        try:
            parts = [int(part) for part in profile_batch.split(",")]
            profile_batch = parts[0] if len(parts) == 1 else parts
        except ValueError:
            profile_batch = None
    if _is_count(profile_batch):
        start = stop = int(profile_batch)
    elif (isinstance(profile_batch, (tuple, list)) and len(profile_batch) == 2
          and all(_is_count(b) for b in profile_batch)):
        start, stop = (int(b) for b in profile_batch)
    else:
        start, stop = -1, -1
    if start < 0 or stop < start or (start == 0) != (stop == 0):
        raise ValueError(
            "TensorBoard: profile_batch must be 0 (no profiling), a batch number >= 1 or a pair "
            f"(start, stop) of batch numbers with 1 <= start <= stop; got {given!r}.")
    return start, stop


def _scalar(value):
    """``value`` as a float if it is one number (Python, NumPy or one-element array)."""
    if isinstance(value, (str, bytes)):
        return None
    if isinstance(value, numbers.Number):
        return float(value)
    try:
        array = np.asarray(value)
    except Exception:
        return None
    if array.size != 1 or not np.issubdtype(array.dtype, np.number):
        return None
    return float(array.reshape(()))


def _row(value, index):
    array = np.asarray(value)
    return array[index] if array.ndim else array


def _read_labels(path, layer, rows):
    """The labels of a TSV metadata file: ``(labels, None)`` for one label per line, or
    ``(rows, header)`` for a header line and tab-separated rows."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if len(lines) == rows and not (lines and "\t" in lines[0]):
        return lines, None
    if len(lines) == rows + 1 and "\t" in lines[0]:
        return [line.split("\t") for line in lines[1:]], lines[0].split("\t")
    raise ValueError(
        f"TensorBoard: the embeddings metadata file {os.fspath(path)!r} of layer "
        f"'{layer.name}' has {len(lines)} lines; the layer has {rows} rows (expected one label "
        "per line, or a tab-separated header line and one row per index).")


def _weight_image(value):
    """A weight as a (k, height, width, 1) uint8 image batch, with Keras's layout rules
    (a bias a row, a kernel wider than tall, a channels-last conv kernel one image per
    input channel); ``None`` for shapes that make no image."""
    w = np.squeeze(value)
    if w.ndim == 1:
        w = w.reshape(1, 1, -1, 1)
    elif w.ndim == 2:
        if w.shape[0] > w.shape[1]:
            w = w.T
        w = w.reshape(1, *w.shape, 1)
    elif w.ndim == 3:
        w = np.transpose(w, (2, 0, 1))[..., None]
    else:
        return None
    finite = w[np.isfinite(w)]
    if not finite.size:
        return None
    low, high = finite.min(), finite.max()
    # Keras clips the raw values to [0, 1]; scaling each weight to its own range shows
    # negative weights too.
    scaled = (np.nan_to_num(w, nan=low, posinf=high, neginf=low) - low) / (high - low or 1.0)
    return (scaled * 255).round().astype(np.uint8)
