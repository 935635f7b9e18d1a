"""``BackupAndRestore``: survive an interrupted ``fit`` (Keras 3's callback, made exact).

A backup is one folder ``<backup_dir>/ckpt-*`` named by ``<backup_dir>/latest.json``:

- ``weights.safetensors``: ``model.save_weights`` (weights, layer state such as Dropout's
  seed generators, the optimizer's state and iteration count);
- ``state.json`` / ``state.safetensors``: the epoch and the steps of it already run, the
  last step's logs and the metric state (mid-epoch backups), the data position (the shuffled
  order of the current pass and the batches taken from it), and the global random states
  (NumPy's, which draws the shuffles, Python's, and lamina's seed stream).

With several processes, ``weights.safetensors`` is a sharded checkpoint folder (each
process writes its own shards: ``lamina/saving/sharded.py``) and process 0 writes the rest.

A backup is written into a new folder first and only then named in ``latest.json`` (an
atomic rename), so a process killed at any moment leaves the previous backup or the new one,
whole. Restored, ``fit`` continues at the saved epoch *and step* with the saved order of the
data, so the rest of the run computes exactly what the uninterrupted run would have: the
final weights are bit-identical (same device, same program). Keras restores the epoch only.
"""

from __future__ import annotations

import json
import os
import random as _py_random
import shutil
import tempfile

import jax
import numpy as np
import safetensors.numpy

from lamina import random as lamina_random
from lamina.callbacks._logs import to_python_logs
from lamina.callbacks.callback import Callback
from lamina.callbacks.model_checkpoint import BatchCounter, keep_block_execution, validate_save_freq
from lamina.distribution.consistency import same_outcome
from lamina.saving import sharded as _sharded_io
from lamina.saving.atomic import atomic_write

_FORMAT = "lamina-backup"
_FORMAT_VERSION = 1
_POINTER = "latest.json"
_WEIGHTS = "weights.safetensors"
_STATE_JSON = "state.json"
_STATE_ARRAYS = "state.safetensors"


class BackupAndRestore(Callback):
    """Backs up the training state during ``fit`` and restores it when ``fit`` starts again.

    When ``fit`` starts and ``backup_dir`` holds a backup, the model's weights, the optimizer
    state, the random states, the position in the training data and the epoch and step
    counters are restored, and training goes on from there: after a crash (even ``kill -9``)
    rerunning the same script ends with the same weights, bit for bit, as a run that was never
    interrupted. When ``fit`` ends normally the backup is deleted (``delete_checkpoint``).

    The model must be built before ``fit`` (e.g. start it with ``lm.Input``), and the script
    must make the same model, compile and fit calls as the interrupted run (seeded with
    ``lm.random.set_seed``). Exactness holds for in-memory arrays and ``lm.data.Dataset``;
    a generator's position cannot be saved (the counters are restored, the generator starts
    over). Other callbacks' own state (e.g. ``EarlyStopping``'s patience) is not saved, as
    in Keras.

    Args:
        backup_dir: The folder for the backup; used by this callback only (it is deleted
            at the end of training when ``delete_checkpoint``).
        save_freq: ``"epoch"`` (a backup at every epoch end) or an integer N: a backup after
            every N training batches (``fit`` then runs one step per compiled call), so a
            rerun resumes in the middle of an epoch.
        delete_checkpoint: Delete ``backup_dir`` when ``fit`` completes. Defaults to True.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> import lamina as lm
        >>> class Interrupt(lm.callbacks.Callback):
        ...     def on_epoch_begin(self, epoch, logs=None):
        ...         if epoch == 2:
        ...             raise RuntimeError("Interrupting!")
        >>> backup = lm.callbacks.BackupAndRestore(tempfile.mkdtemp())
        >>> model = lm.Sequential([lm.Input((4,)), lm.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x, y = np.ones((8, 4), "float32"), np.zeros((8, 1), "float32")
        >>> try:
        ...     model.fit(x, y, epochs=5, verbose=0, callbacks=[backup, Interrupt()])
        ... except RuntimeError:
        ...     pass
        >>> history = model.fit(x, y, epochs=5, verbose=0, callbacks=[backup])
        >>> history.epoch  # epochs 0 and 1 ran before the interruption
        [2, 3, 4]
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = validate_save_freq(save_freq, "BackupAndRestore")
        self.delete_checkpoint = delete_checkpoint
        self._counter = BatchCounter(self.save_freq) if self.save_freq != "epoch" else None
        if self.save_freq == "epoch":
            keep_block_execution(self, BackupAndRestore)

    # -- the hooks ----------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self._counter is not None:
            self._counter = BatchCounter(self.save_freq)
        # Several processes decide together whether to restore, and from which backup: one
        # restoring (or failing to read its backup) alone would leave the others waiting.
        found = same_outcome(f"BackupAndRestore({self.backup_dir!r}) restoring", self._read_latest,
                             describe=lambda found: {"the latest backup": found and os.path.basename(found[0])})
        if found is not None:
            self._restore(*found)

    def on_train_batch_end(self, batch, logs=None):
        if self._counter is not None and self._counter.due(batch):
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save()

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            processes = jax.process_count()
            _sharded_io._barrier("lamina_backup_end", processes)  # nobody reads it any more
            if jax.process_index() == 0 and os.path.exists(self.backup_dir):
                shutil.rmtree(self.backup_dir)
            _sharded_io._barrier("lamina_backup_deleted", processes)  # gone for every process

    # -- saving -------------------------------------------------------------------------------
    def _progress(self):
        progress = self.model.__dict__.get("_lm_fit_progress")
        if progress is None:
            raise RuntimeError("BackupAndRestore works inside model.fit() only.")
        return progress

    def _save(self):
        """Writes a new backup folder, points ``latest.json`` at it, then removes the old."""
        progress = self._progress()
        state, arrays = _training_state(self.model, progress)
        processes = jax.process_count()
        if processes > 1:
            self._save_from_processes(state, arrays, processes)
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        folder = tempfile.mkdtemp(prefix="ckpt-", dir=self.backup_dir)
        self.model.save_weights(os.path.join(folder, _WEIGHTS))
        self._commit(folder, state, arrays)

    def _save_from_processes(self, state, arrays, processes):
        """Several processes: one folder name for all, each writes its shards of the weights
        (a sharded checkpoint folder), process 0 the rest and the pointer."""
        folder = os.path.join(self.backup_dir, f"ckpt-{_sharded_io._agreed_save_id(processes)}")
        if jax.process_index() == 0:
            os.makedirs(folder)
        _sharded_io._barrier("lamina_backup_folder", processes)
        self.model.save_weights(os.path.join(folder, _WEIGHTS))  # ends with all processes done
        if jax.process_index() == 0:
            self._commit(folder, state, arrays)
        _sharded_io._barrier("lamina_backup_done", processes)

    def _commit(self, folder, state, arrays):
        with atomic_write(os.path.join(folder, _STATE_ARRAYS)) as tmp:
            safetensors.numpy.save_file(arrays, tmp)
        with atomic_write(os.path.join(folder, _STATE_JSON)) as tmp, open(tmp, "w") as f:
            json.dump(state, f)
        pointer = {"format": _FORMAT, "format_version": _FORMAT_VERSION,
                   "checkpoint": os.path.basename(folder)}
        with atomic_write(os.path.join(self.backup_dir, _POINTER)) as tmp, open(tmp, "w") as f:
            json.dump(pointer, f)
        self._remove_stale(keep=os.path.basename(folder))

    def _remove_stale(self, keep):
        for name in os.listdir(self.backup_dir):
            if name.startswith("ckpt-") and name != keep:
                shutil.rmtree(os.path.join(self.backup_dir, name), ignore_errors=True)

    # -- restoring ----------------------------------------------------------------------------
    def _latest(self):
        """The folder of the latest complete backup, or None."""
        try:
            with open(os.path.join(self.backup_dir, _POINTER)) as f:
                pointer = json.load(f)
        except FileNotFoundError:
            return None
        if pointer.get("format") != _FORMAT or pointer.get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"{self.backup_dir!r} does not hold a lamina backup this version reads "
                             f"({pointer.get('format')!r} version {pointer.get('format_version')!r}).")
        return os.path.join(self.backup_dir, pointer["checkpoint"])

    def _read_latest(self):
        """``(folder, state, arrays)`` of the latest backup, read and checked (nothing changed
        yet), or None."""
        folder = self._latest()
        if folder is None:
            return None
        model = self.model
        if not model.built:
            raise ValueError(
                "To use the BackupAndRestore callback, your model must be built before you call "
                f"`fit()`. Model {model.name} is unbuilt. You can build it beforehand by starting "
                "it with an lm.Input, calling model.build(input_shape), or calling it on a batch.")
        with open(os.path.join(folder, _STATE_JSON)) as f:
            state = json.load(f)
        arrays = safetensors.numpy.load_file(os.path.join(folder, _STATE_ARRAYS))
        return folder, state, arrays

    def _restore(self, folder, state, arrays):
        model = self.model
        progress = self._progress()
        model.load_weights(os.path.join(folder, _WEIGHTS))
        _restore_training_state(model, progress, state, arrays)


def _training_state(model, progress):
    """``(json_state, arrays)``: everything besides the variables that ``fit`` goes on from."""
    arrays = {}
    data = progress.adapter.get_state()
    if data.get("order") is not None:
        arrays["data/order"] = _contiguous(data["order"])
    np_state = np.random.get_state(legacy=True)
    arrays["numpy_random/key"] = _contiguous(np_state[1])
    stream = _lamina_stream()
    state = {
        "epoch": int(progress.epoch),
        "step": int(progress.step),
        "logs": {},
        "data": {key: value for key, value in data.items() if key != "order"},
        "numpy_random": {"algorithm": np_state[0], "pos": int(np_state[2]),
                         "has_gauss": int(np_state[3]), "cached_gauss": float(np_state[4])},
        "python_random": _to_json(_py_random.getstate()),
        "lamina_random": None if stream is None else {"seed": int(stream.seed), "counter": int(stream.counter)},
        "metrics": 0,
    }
    if progress.step:  # mid-epoch: the running metrics and the last step's logs go on
        for name, value in to_python_logs(progress.logs).items():
            if isinstance(value, np.ndarray):
                arrays[f"logs/{name}"] = _contiguous(value)
            elif isinstance(value, (int, float, str)):
                state["logs"][name] = value
        variables = [v for metric in model.metrics for v in metric.variables]
        for i, variable in enumerate(variables):
            arrays[f"metrics/{i}"] = _contiguous(variable.value)
        state["metrics"] = len(variables)
    return state, arrays


def _restore_training_state(model, progress, state, arrays):
    data = dict(state["data"])
    if "data/order" in arrays:
        data["order"] = arrays["data/order"]
    progress.adapter.set_state(data)
    rng = state["numpy_random"]
    np.random.set_state((rng["algorithm"], arrays["numpy_random/key"], rng["pos"], rng["has_gauss"],
                         rng["cached_gauss"]))
    _py_random.setstate(_from_json(state["python_random"]))
    stream = _lamina_stream()
    if stream is not None and state.get("lamina_random") is not None:
        stream.seed, stream.counter = state["lamina_random"]["seed"], state["lamina_random"]["counter"]
    logs = dict(state["logs"])
    logs.update({key[len("logs/"):]: value for key, value in arrays.items() if key.startswith("logs/")})
    progress.epoch, progress.step, progress.logs = state["epoch"], state["step"], logs
    count = state.get("metrics", 0)
    progress.pending_metrics = [arrays[f"metrics/{i}"] for i in range(count)] if state["step"] else None
    progress.resumed = True


def _contiguous(array) -> np.ndarray:
    # Not np.ascontiguousarray: it turns 0-d arrays (scalar metric state) into shape (1,).
    array = np.asarray(array)
    return array if array.flags.c_contiguous else array.copy(order="C")


def _lamina_stream():
    stream = getattr(lamina_random, "_stream", None)
    return stream if hasattr(stream, "seed") and hasattr(stream, "counter") else None


def _to_json(value):
    return [_to_json(v) for v in value] if isinstance(value, tuple) else value


def _from_json(value):
    return tuple(_from_json(v) for v in value) if isinstance(value, list) else value
