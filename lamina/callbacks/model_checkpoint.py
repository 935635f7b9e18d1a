"""``ModelCheckpoint``: save the model (or its weights) during ``fit`` (Keras 3's rules)."""

from __future__ import annotations

import os
import warnings

import numpy as np

from lamina.callbacks._logs import to_python_logs
from lamina.callbacks.callback import Callback
from lamina.callbacks.monitor import MonitorCallback
from lamina.saving.sharded import wants_folder
from lamina.utils.logging_control import print_msg


def validate_save_freq(save_freq, owner: str):
    """``"epoch"`` or a positive int, else Keras's ``ValueError``."""
    if save_freq == "epoch":
        return save_freq
    if isinstance(save_freq, bool) or not isinstance(save_freq, (int, np.integer)) or save_freq < 1:
        raise ValueError(f"Unrecognized save_freq: {save_freq!r}. Expected save_freq are 'epoch' "
                         f"or positive integer values (a number of batches); got it in {owner}.")
    return int(save_freq)


class BatchCounter:
    """Counts training batches from the indices ``on_train_batch_end`` gets (one call per
    step, or per block of steps with ``steps_per_execution > 1``), as Keras does."""

    def __init__(self, every: int):
        self.every = every
        self.since_last = 0
        self.last_batch = None

    def due(self, batch: int) -> bool:
        """Counts the batches up to ``batch``; True (and restart) once ``every`` are counted."""
        if self.last_batch is None or batch <= self.last_batch:  # a new epoch
            added = batch + 1
        else:
            added = batch - self.last_batch
        self.since_last += added
        self.last_batch = batch
        if self.since_last >= self.every:
            self.since_last = 0
            return True
        return False


def keep_block_execution(callback, cls) -> None:
    """With ``save_freq="epoch"`` the callback has no use for batch hooks: swap in the base
    class's no-op (marked fine with blocks) so that ``fit`` keeps running blocks of steps.
    A subclass that overrides ``on_train_batch_end`` keeps its own."""
    if type(callback).on_train_batch_end is cls.on_train_batch_end:
        callback.on_train_batch_end = Callback.on_train_batch_end.__get__(callback)


class ModelCheckpoint(MonitorCallback):
    """Saves the model or its weights during training, at some frequency.

    ``filepath`` may hold ``str.format`` fields filled at each save: ``{epoch}`` (1-based, as
    in Keras), ``{batch}`` (1-based, with an integer ``save_freq``) and any log entry, e.g.
    ``"ckpt/model-{epoch:02d}-{val_loss:.2f}.lamina"``. Missing folders are created; every
    file is written atomically (a crash leaves the previous file, never half a file).

    Args:
        filepath: Where to save: ends in ``.lamina`` or ``.keras`` (the whole model, in
            lamina's or Keras 3's format, ``model.save``) or, with ``save_weights_only=True``,
            in ``.safetensors`` or ``.weights.h5`` (``model.save_weights``).
        monitor: The log entry ``save_best_only`` compares. Defaults to ``"val_loss"``.
        verbose: 1 prints a line at each save (and each skipped one).
        save_best_only: Save only when ``monitor`` improves on the best value so far (with
            a fixed ``filepath`` the latest file is thus always the best model). Without the
            value in the logs it warns and saves anyway, as Keras does.
        save_weights_only: Save weights (``.safetensors`` / ``.weights.h5``) instead of the
            whole model.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (from the name; see ``MonitorCallback``).
        save_freq: ``"epoch"`` (at every epoch end) or an integer N: after every N training
            batches (counted across epochs), at the end of the batch. An integer makes ``fit``
            run one step per compiled call (unless ``steps_per_execution`` is set: then the
            batches are counted per executed block); ``"epoch"`` does not.
        initial_value_threshold: The best value to beat before the first save
            (``save_best_only``).

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> import lamina as lm
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> folder = tempfile.mkdtemp()
        >>> checkpoint = lm.callbacks.ModelCheckpoint(
        ...     os.path.join(folder, "w-{epoch:02d}.safetensors"),
        ...     monitor="loss", save_weights_only=True)
        >>> x, y = np.ones((8, 3), "float32"), np.zeros((8, 1), "float32")
        >>> _ = model.fit(x, y, epochs=2, verbose=0, callbacks=[checkpoint])
        >>> sorted(os.listdir(folder))
        ['w-01.safetensors', 'w-02.safetensors']
        >>> model.load_weights(os.path.join(folder, "w-02.safetensors"))
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor, mode, baseline=initial_value_threshold)
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = validate_save_freq(save_freq, "ModelCheckpoint")
        self._counter = BatchCounter(self.save_freq) if self.save_freq != "epoch" else None
        self._current_epoch = 0
        # The endings model.save_weights / model.save accept: lamina's own, or Keras 3's.
        if save_weights_only:
            if not self.filepath.endswith((".safetensors", ".weights.h5")):
                raise ValueError(
                    "When using `save_weights_only=True` in `ModelCheckpoint`, the filepath "
                    "provided must end in `.safetensors` (lamina's weights format) or "
                    "`.weights.h5` (Keras 3's), as model.save_weights writes. "
                    f"Received: filepath={self.filepath}")
        elif not self.filepath.endswith((".lamina", ".keras")):
            raise ValueError(
                "The filepath provided must end in `.lamina` (lamina's model format) or "
                "`.keras` (Keras 3's), as model.save writes, or in `.safetensors` / "
                f"`.weights.h5` with `save_weights_only=True`. Received: filepath={self.filepath}")
        if self.save_freq == "epoch":
            keep_block_execution(self, ModelCheckpoint)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._counter is not None and self._counter.due(batch):
            # Batch logs are device arrays: converted only when a file is written.
            self._save_model(self._current_epoch, batch, to_python_logs(logs))

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()  # delayed until the model's metrics are all built
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _should_save(self, epoch, logs, filepath) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=3)
            return True
        if isinstance(current, np.ndarray) and current.ndim > 0:
            warnings.warn("Can save best model only when `monitor` is a scalar value. Received: "
                          f"{current}. Falling back to `save_best_only=False`.", stacklevel=3)
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to "
                          f"{current:.5f}, saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save_model(self, epoch, batch, logs):
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save(epoch, logs, filepath):
            return
        if os.path.isdir(filepath) and not wants_folder(None):  # several processes save a folder
            raise IsADirectoryError("Please specify a non-directory filepath for ModelCheckpoint. "
                                    f"Filepath used is an existing directory: {filepath}")
        folder = os.path.dirname(filepath)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")

    def _get_file_path(self, epoch, batch, logs):
        """``filepath`` with ``{epoch}`` (1-based), ``{batch}`` (1-based) and the logs filled."""
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as error:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". '
                           f"Reason: {error}") from None
