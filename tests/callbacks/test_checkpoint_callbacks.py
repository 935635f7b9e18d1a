"""ModelCheckpoint and BackupAndRestore in real ``fit`` runs (small models, CPU).

The resume tests ask for bit-identical results: a run interrupted (by an exception, or by
SIGKILL in a subprocess) and resumed from its backup must end with exactly the variables of a
run that was never interrupted — weights, Dropout's seed state and Adam's slots.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import safetensors.numpy
from script_runner import assert_same_tensors, kill_when_marked

import lamina as lm
from lamina import callbacks as lcb

HERE = os.path.dirname(os.path.abspath(__file__))


# -- helpers ---------------------------------------------------------------------------------
def make_model(seed=0, dropout=0.25):
    lm.random.set_seed(seed)
    model = lm.Sequential([
        lm.Input((5,)),
        lm.layers.Dense(8, activation="relu"),
        lm.layers.Dropout(dropout),
        lm.layers.Dense(1),
    ])
    model.compile(optimizer=lm.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    return model


def make_data(n=40, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.normal(size=(n, 5)).astype("float32")
    y = (x.sum(axis=1, keepdims=True) + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def all_state(model):
    """The model's variables (weights, Dropout's seed state) and the optimizer's, as NumPy
    arrays; metric state left out (the compiled metrics exist only once a step ran)."""
    metric_ids = {id(v) for metric in model.metrics for v in metric.variables}
    variables = [v for v in model.variables if id(v) not in metric_ids]
    return [np.asarray(v.value) for v in [*variables, *model.optimizer.variables]]


def assert_bit_identical(a, b):
    assert len(a) == len(b)
    for left, right in zip(a, b):
        assert left.dtype == right.dtype and np.array_equal(left, right)


class SetLog(lcb.Callback):
    """Writes ``values[epoch]`` into the epoch logs as ``name`` (seen by later callbacks)."""

    def __init__(self, name, values):
        super().__init__()
        self.name, self.values = name, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.name] = self.values[epoch]


class RecordWeights(lcb.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


class Interrupt(lcb.Callback):
    """Raises after training batch ``batch`` of epoch ``epoch`` (batch None: at the epoch's
    beginning). Overrides a batch hook, so every run with it executes one step per call."""

    def __init__(self, epoch=-1, batch=None):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch
        if epoch == self.epoch and self.batch is None:
            raise RuntimeError("interrupted")

    def on_train_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            raise RuntimeError("interrupted")


# -- ModelCheckpoint ------------------------------------------------------------------------
def test_model_checkpoint_names_files_with_epoch_and_logs(tmp_path):
    model = make_model()
    x, y = make_data()
    pattern = str(tmp_path / "ckpt" / "w-{epoch:02d}-{val_loss:.2f}.safetensors")
    checkpoint = lcb.ModelCheckpoint(pattern, save_weights_only=True)
    history = model.fit(x, y, batch_size=8, epochs=3, validation_split=0.25, verbose=0,
                        callbacks=[checkpoint])
    expected = {f"w-{epoch + 1:02d}-{loss:.2f}.safetensors"
                for epoch, loss in enumerate(history.history["val_loss"])}
    assert set(os.listdir(tmp_path / "ckpt")) == expected


def test_save_best_only_keeps_only_improvements(tmp_path):
    model = make_model()
    x, y = make_data()
    scores = [3.0, 1.0, 2.0, 0.5, 0.7]  # improvements at epochs 1, 2 and 4 (1-based)
    recorder = RecordWeights()
    checkpoint = lcb.ModelCheckpoint(str(tmp_path / "best-{epoch}.safetensors"), monitor="score",
                                     mode="min", save_best_only=True, save_weights_only=True)
    model.fit(x, y, batch_size=8, epochs=5, verbose=0,
              callbacks=[SetLog("score", scores), recorder, checkpoint])
    assert sorted(os.listdir(tmp_path)) == ["best-1.safetensors", "best-2.safetensors",
                                           "best-4.safetensors"]
    assert checkpoint.best == 0.5
    for epoch in (1, 2, 4):
        fresh = make_model(seed=99)
        fresh.load_weights(str(tmp_path / f"best-{epoch}.safetensors"))
        assert_bit_identical(fresh.get_weights(), recorder.weights[epoch - 1])

    # initial_value_threshold: only values below 1.5 count; mode="auto" would refuse "score".
    threshold = lcb.ModelCheckpoint(str(tmp_path / "t-{epoch}.safetensors"), monitor="score",
                                    mode="min", save_best_only=True, save_weights_only=True,
                                    initial_value_threshold=0.6)
    model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[SetLog("score", scores), threshold])
    assert [f for f in os.listdir(tmp_path) if f.startswith("t-")] == ["t-4.safetensors"]


def test_save_best_only_warns_and_saves_without_the_monitor(tmp_path):
    model = make_model()
    x, y = make_data()
    checkpoint = lcb.ModelCheckpoint(str(tmp_path / "m.safetensors"), monitor="val_loss",
                                     save_best_only=True, save_weights_only=True)
    with pytest.warns(UserWarning, match="Can save best model only with val_loss available"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[checkpoint])
    assert os.path.exists(tmp_path / "m.safetensors")


def test_full_model_and_weights_only_load_back(tmp_path):
    model = make_model()
    x, y = make_data()
    full = lcb.ModelCheckpoint(str(tmp_path / "model.lamina"))
    weights = lcb.ModelCheckpoint(str(tmp_path / "model.safetensors"), save_weights_only=True)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[full, weights])

    loaded = lm.load_model(str(tmp_path / "model.lamina"))
    assert_bit_identical(all_state(loaded), all_state(model))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))

    fresh = make_model(seed=7)
    fresh.load_weights(str(tmp_path / "model.safetensors"))
    assert_bit_identical(all_state(fresh), all_state(model))
    keys = safetensors.numpy.load_file(str(tmp_path / "model.safetensors"))
    assert any(k.startswith("optimizer/") for k in keys)
    assert any(k.endswith("seed_generator_state") for k in keys)


def test_integer_save_freq_counts_batches(tmp_path):
    model = make_model()
    x, y = make_data(n=20)  # 5 batches of 4 per epoch
    checkpoint = lcb.ModelCheckpoint(str(tmp_path / "b-{epoch}-{batch}.safetensors"),
                                     save_weights_only=True, save_freq=4)
    assert lcb.CallbackList([checkpoint]).needs_batch_hooks("train")
    model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[checkpoint])
    # Batches 4, 8 and 12 of 15, counted across epochs; epoch and batch are 1-based.
    assert sorted(os.listdir(tmp_path)) == ["b-1-4.safetensors", "b-2-3.safetensors",
                                           "b-3-2.safetensors"]


def test_epoch_save_freq_keeps_blocks_of_steps(tmp_path):
    for callback in (lcb.ModelCheckpoint(str(tmp_path / "m.lamina")),
                     lcb.BackupAndRestore(str(tmp_path / "backup"))):
        assert not lcb.CallbackList([callback]).needs_batch_hooks()
    assert lcb.CallbackList([lcb.BackupAndRestore(str(tmp_path / "b"), save_freq=2)]).needs_batch_hooks("train")


@pytest.mark.parametrize("kwargs, match", [
    (dict(filepath="m.h5"), r"must end in `\.lamina`"),
    (dict(filepath="m.safetensors"), r"must end in `\.lamina`"),
    (dict(filepath="m.weights.h5"), r"must end in `\.lamina`"),
    (dict(filepath="w.keras", save_weights_only=True), r"must end in `\.safetensors`"),
    (dict(filepath="w.lamina", save_weights_only=True), r"must end in `\.safetensors`"),
    (dict(filepath="m.lamina", save_freq="batch"), "Unrecognized save_freq"),
    (dict(filepath="m.lamina", save_freq=0), "Unrecognized save_freq"),
])
def test_model_checkpoint_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lcb.ModelCheckpoint(**kwargs)


def test_model_checkpoint_writes_keras_files(tmp_path):
    """Keras's own endings, as in the "Getting started" guide: ``.keras`` and ``.weights.h5``."""
    model = make_model()
    x, y = make_data()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[
        lcb.ModelCheckpoint(str(tmp_path / "m_{epoch}.keras")),
        lcb.ModelCheckpoint(str(tmp_path / "w_{epoch}.weights.h5"), save_weights_only=True),
    ])
    assert sorted(os.listdir(tmp_path)) == ["m_1.keras", "m_2.keras", "w_1.weights.h5", "w_2.weights.h5"]
    expected = model.predict(x, verbose=0)
    np.testing.assert_array_equal(lm.load_model(str(tmp_path / "m_2.keras")).predict(x, verbose=0), expected)
    fresh = make_model(seed=1)
    fresh.load_weights(str(tmp_path / "w_2.weights.h5"))
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), expected)


def test_model_checkpoint_unknown_log_key_in_filepath(tmp_path):
    model = make_model()
    x, y = make_data()
    checkpoint = lcb.ModelCheckpoint(str(tmp_path / "m-{nope}.lamina"))
    with pytest.raises(KeyError, match="Failed to format this callback filepath"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[checkpoint])


# -- BackupAndRestore in one process ----------------------------------------------------------
FIT_ARGS = dict(batch_size=8, epochs=4, shuffle=True, validation_split=0.2, verbose=0)


@pytest.mark.parametrize("save_freq, interrupt, extra, resumed_epoch", [
    ("epoch", dict(epoch=2), {}, 2),  # raised at the beginning of epoch 2 (0-based)
    (3, dict(epoch=1, batch=2), {}, 1),  # mid-epoch: the last backup is after batch 1 of epoch 1
    # 3 of the 4 batches per epoch, and a pass over the data never spans two epochs: the
    # epochs take 3, 1, 3, 1 batches. Resumed after batch 1 of epoch 2 (6 batches), in the
    # middle of a pass that epoch 3 finishes.
    (3, dict(epoch=3, batch=0), dict(steps_per_epoch=3), 2),
])
@pytest.mark.filterwarnings("ignore:Your input ran out of data")
def test_backup_and_restore_resumes_bit_identically(tmp_path, save_freq, interrupt, extra,
                                                    resumed_epoch):
    x, y = make_data()
    fit_args = dict(FIT_ARGS, **extra)
    reference = make_model()
    expected = reference.fit(x, y, callbacks=[lcb.BackupAndRestore(str(tmp_path / "ref"), save_freq),
                                              Interrupt()], **fit_args)
    assert not os.path.exists(tmp_path / "ref")

    backup_dir = str(tmp_path / "backup")
    model = make_model()
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(x, y, callbacks=[lcb.BackupAndRestore(backup_dir, save_freq), Interrupt(**interrupt)],
                  **fit_args)
    assert os.path.exists(os.path.join(backup_dir, "latest.json"))

    resumed = make_model()  # a fresh model, as after a restart
    history = resumed.fit(x, y, callbacks=[lcb.BackupAndRestore(backup_dir, save_freq), Interrupt()], **fit_args)
    first = resumed_epoch
    assert history.epoch == list(range(first, 4))
    state = all_state(resumed)
    assert any(a.dtype == np.uint32 for a in state)  # Dropout's seed generator is compared too
    assert_bit_identical(state, all_state(reference))
    # The resumed epochs' logs (metrics restored mid-epoch, validation) match too.
    for name, values in history.history.items():
        assert values == expected.history[name][first:], name
    assert not os.path.exists(backup_dir)


def test_backup_is_kept_without_delete_checkpoint_and_resumes_past_the_end(tmp_path):
    x, y = make_data()
    backup = lcb.BackupAndRestore(str(tmp_path), delete_checkpoint=False)
    model = make_model()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[backup])
    pointer = json.loads((tmp_path / "latest.json").read_text())
    assert sorted(os.listdir(tmp_path)) == sorted(["latest.json", pointer["checkpoint"]])
    again = make_model(seed=5)
    history = again.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[backup])
    assert history.epoch == []  # both epochs were done
    assert_bit_identical(all_state(again), all_state(model))


def test_backup_and_restore_needs_a_built_model(tmp_path):
    x, y = make_data()
    first = lm.Sequential([lm.layers.Dense(1)])
    first.compile(optimizer="sgd", loss="mse")
    first.fit(x, y, epochs=1, verbose=0, callbacks=[lcb.BackupAndRestore(str(tmp_path), delete_checkpoint=False)])
    unbuilt = lm.Sequential([lm.layers.Dense(1)])
    unbuilt.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="must be built"):
        unbuilt.fit(x, y, epochs=1, verbose=0, callbacks=[lcb.BackupAndRestore(str(tmp_path))])


def test_backup_and_restore_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Empty `backup_dir`"):
        lcb.BackupAndRestore("")
    with pytest.raises(ValueError, match="Unrecognized save_freq"):
        lcb.BackupAndRestore("/tmp/x", save_freq="batch")


# -- BackupAndRestore across a SIGKILL ------------------------------------------------------
def _script(*args):
    env = dict(os.environ, JAX_PLATFORMS="cpu")  # same platform and XLA flags for every run
    return subprocess.Popen([sys.executable, os.path.join(HERE, "resume_script.py"), *map(str, args)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process, timeout=120):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output


def test_kill_9_mid_epoch_then_rerun_ends_bit_identical(tmp_path):
    marker = tmp_path / "hanging"
    # The uninterrupted reference runs alongside the run that is killed.
    reference = _script(tmp_path / "ref_backup", tmp_path / "ref.safetensors")
    # Epoch 0 has 8 batches; backups every 3 batches: the last one before the kill is after
    # batch 3 of epoch 1 (12 batches), the kill comes after batch 4, in the middle of epoch 1.
    victim = _script(tmp_path / "backup", tmp_path / "out.safetensors", "--hang-at", 1, 4, marker)
    kill_when_marked(victim, marker)
    assert (tmp_path / "backup" / "latest.json").exists()
    assert not (tmp_path / "out.safetensors").exists()

    _finish(_script(tmp_path / "backup", tmp_path / "out.safetensors"))  # the rerun resumes
    _finish(reference)
    assert not (tmp_path / "backup").exists() and not (tmp_path / "ref_backup").exists()
    want = assert_same_tensors(tmp_path / "out.safetensors", tmp_path / "ref.safetensors")
    assert any(k.startswith("optimizer/") for k in want)
    assert any(k.endswith("seed_generator_state") for k in want)
