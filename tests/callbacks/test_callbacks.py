"""Callbacks driven the way the trainer drives them, with a small stand-in model.

EarlyStopping and ReduceLROnPlateau are checked against Keras 3's own callbacks on the same
sequences of logs (Keras's callbacks only need ``stop_training``, ``get_weights``/
``set_weights`` and ``optimizer.learning_rate`` from the model, so the stand-in serves both).
"""

import csv
import math

import jax.numpy as jnp
import numpy as np
import pytest

from lamina import callbacks as lcb


# -- a model stand-in and a loop that drives callbacks like fit() -------------------------
class FakeOptimizer:
    def __init__(self, learning_rate=0.1):
        self._lr = learning_rate

    @property
    def learning_rate(self):
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value):
        self._lr = float(value)


class FakeModel:
    """What callbacks may use: stop_training, get/set_weights, optimizer.learning_rate, history."""

    def __init__(self, learning_rate=0.1):
        self.stop_training = False
        self.optimizer = FakeOptimizer(learning_rate)
        self.history = None
        self.weights = [np.zeros(2, "float32"), np.zeros((), "float32")]

    def get_weights(self):
        return [np.array(w) for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]


def fit(model, callbacks, epoch_logs, steps=4, steps_per_execution=1, verbose=0,
        batch_loss=lambda epoch, step: 1.0 / (step + 1)):
    """Runs the callback protocol of ``fit``; the weights after epoch e are all e."""
    callbacks = lcb.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                                 model=model, verbose=verbose, epochs=len(epoch_logs), steps=steps)
    model.stop_training = False
    callbacks.on_train_begin()
    logs = {}
    for epoch, epoch_log in enumerate(epoch_logs):
        callbacks.on_epoch_begin(epoch)
        model.weights = [np.full_like(w, epoch) for w in model.weights]
        for first in range(0, steps, steps_per_execution):
            last = min(first + steps_per_execution, steps) - 1
            callbacks.on_train_batch_begin(first)
            step_logs = {"loss": jnp.asarray(batch_loss(epoch, last), "float32")}
            callbacks.on_train_batch_end(last, step_logs)
            if model.stop_training:
                break
        logs = {key: jnp.asarray(value, "float32") if isinstance(value, float) else value
                for key, value in epoch_log.items()}
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end(logs)
    return callbacks


class Recorder(lcb.Callback):
    """Records every hook it sees (it overrides batch hooks, so it wants every step)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_") and name not in ("on_batch_begin", "on_batch_end"):
            calls = object.__getattribute__(self, "calls")

            def hook(*args, **kwargs):
                calls.append((name, *[a for a in args[:1] if isinstance(a, int)]))
            return hook
        return object.__getattribute__(self, name)


# -- protocol -----------------------------------------------------------------------------
def test_hook_order_follows_fit():
    recorder = Recorder()
    fit(FakeModel(), [recorder], [{"loss": 1.0}, {"loss": 0.5}], steps=2)
    assert recorder.calls == [
        ("on_train_begin",),
        ("on_epoch_begin", 0),
        ("on_train_batch_begin", 0), ("on_train_batch_end", 0),
        ("on_train_batch_begin", 1), ("on_train_batch_end", 1),
        ("on_epoch_end", 0),
        ("on_epoch_begin", 1),
        ("on_train_batch_begin", 0), ("on_train_batch_end", 0),
        ("on_train_batch_begin", 1), ("on_train_batch_end", 1),
        ("on_epoch_end", 1),
        ("on_train_end",),
    ]


def test_blocks_report_the_index_of_their_last_step():
    seen = []
    callback = lcb.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))
    fit(FakeModel(), [callback], [{"loss": 1.0}], steps=10, steps_per_execution=4)
    assert seen == [3, 7, 9]


def test_params_and_model_reach_every_callback():
    model, callback = FakeModel(), lcb.Callback()
    lcb.CallbackList([callback], model=model, epochs=3, steps=7, verbose=0)
    assert callback.model is model
    assert callback.params == {"epochs": 3, "steps": 7, "verbose": 0}


def test_default_callbacks_are_added_once_and_last():
    history, progbar = lcb.History(), lcb.ProgbarLogger()
    callbacks = lcb.CallbackList([history], add_history=True, add_progbar=True, model=FakeModel(),
                                 epochs=1, steps=1, verbose=1)
    assert callbacks.callbacks[0] is history and isinstance(callbacks.callbacks[1], lcb.ProgbarLogger)
    assert len(lcb.CallbackList([[progbar], []], add_progbar=True).callbacks) == 1
    with pytest.raises(TypeError, match="Callback"):
        lcb.CallbackList([object()])


def test_batch_logs_pass_through_unconverted_and_epoch_logs_become_floats():
    class Counting:
        conversions = 0

        def __init__(self, value):
            self.value = value

        def __float__(self):
            Counting.conversions += 1
            return float(self.value)

    seen = {}
    callback = lcb.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.update(batch=logs),
                                  on_epoch_end=lambda epoch, logs: seen.update(epoch=logs))
    callbacks = lcb.CallbackList([callback], add_history=True, add_progbar=True, model=FakeModel(),
                                 epochs=1, steps=100, verbose=1)
    callbacks.on_train_begin()
    callbacks.on_epoch_begin(0)
    for step in range(100):
        callbacks.on_train_batch_begin(step)
        callbacks.on_train_batch_end(step, {"loss": Counting(1.0)})
    assert Counting.conversions == 0 and isinstance(seen["batch"]["loss"], Counting)
    callbacks.on_epoch_end(0, {"loss": jnp.float32(0.25), "val": {"val_loss": Counting(0.5)}})
    assert seen["epoch"] == {"loss": 0.25, "val_loss": 0.5}  # nested dicts are flattened
    assert all(type(v) is float for v in seen["epoch"].values())


# -- needs_batch_hooks ----------------------------------------------------------------------
def _needs(*callbacks, mode=None):
    return lcb.CallbackList(list(callbacks), add_history=True, add_progbar=True,
                            epochs=1, steps=1, verbose=1).needs_batch_hooks(mode)


def test_epoch_level_callbacks_do_not_need_batch_hooks(tmp_path):
    assert not _needs()
    assert not _needs(lcb.EarlyStopping(), lcb.ReduceLROnPlateau(), lcb.History(),
                      lcb.LearningRateScheduler(lambda e, lr: lr), lcb.CSVLogger(tmp_path / "l.csv"),
                      lcb.LambdaCallback(on_epoch_end=print), lcb.ProgbarLogger(), lcb.Callback())


def test_overriding_a_batch_hook_needs_batch_hooks():
    class OnBatchBegin(lcb.Callback):
        def on_batch_begin(self, batch, logs=None):
            pass

    class OnTestBatchEnd(lcb.Callback):
        def on_test_batch_end(self, batch, logs=None):
            pass

    class CustomBar(lcb.ProgbarLogger):
        def on_train_batch_end(self, batch, logs=None):
            pass

    assert _needs(lcb.TerminateOnNaN())
    assert _needs(lcb.LambdaCallback(on_train_batch_begin=print))
    assert _needs(lcb.LambdaCallback(on_predict_batch_end=print), mode="predict")
    assert _needs(OnBatchBegin(), mode="train")
    assert _needs(CustomBar(), mode="train")
    assert _needs(OnTestBatchEnd()) and _needs(OnTestBatchEnd(), mode="test")
    assert not _needs(OnTestBatchEnd(), mode="train")
    assert not _needs(lcb.TerminateOnNaN(), mode="test")
    with pytest.raises(ValueError, match="mode"):
        _needs(mode="eval")


# -- History -----------------------------------------------------------------------------
def test_history_records_epoch_logs_as_floats_and_is_model_history():
    model = FakeModel()
    callbacks = fit(model, [], [{"loss": 1.0, "val_loss": 2.0}, {"loss": 0.5, "val_loss": 1.5}])
    history = callbacks.history
    assert model.history is history
    assert history.history == {"loss": [1.0, 0.5], "val_loss": [2.0, 1.5]}
    assert all(type(v) is float for values in history.history.values() for v in values)
    assert history.epoch == [0, 1]
    assert history.params == {"epochs": 2, "steps": 4, "verbose": 0}


# -- EarlyStopping: the same decisions as Keras 3 --------------------------------------------
SEQUENCES = [
    [1.0, 0.9, 0.95, 0.92, 0.91, 0.93, 0.94, 0.96, 0.97, 0.98],
    [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
    [1.0, 0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93],
    [0.3, 0.5, 0.2, 0.6, 0.7, 0.8, 0.1, 0.9, 0.95, 0.99],
    [0.8, 0.7, 0.65, 0.6, 0.62, 0.61, 0.63, 0.64],
]
CONFIGS = [
    dict(),
    dict(patience=2),
    dict(patience=3, restore_best_weights=True),
    dict(patience=1, min_delta=0.05, restore_best_weights=True),
    dict(patience=2, baseline=0.5, restore_best_weights=True),
    dict(patience=2, baseline=0.95),
    dict(patience=1, start_from_epoch=3, restore_best_weights=True),
    dict(patience=2, mode="max", restore_best_weights=True),
    dict(patience=0, min_delta=-0.02),
]


def _run_early_stopping(callback, sequence, monitor):
    model = FakeModel()
    callback.set_model(model)
    callback.on_train_begin()
    epochs = 0
    for epoch, value in enumerate(sequence):
        model.weights = [np.full_like(w, epoch) for w in model.weights]
        epochs += 1
        callback.on_epoch_end(epoch, {monitor: value, "other": 0.0})
        if model.stop_training:
            break
    callback.on_train_end()
    return dict(epochs=epochs, weights=float(model.weights[0][0]), stopped=callback.stopped_epoch,
                best_epoch=callback.best_epoch, wait=callback.wait,
                best=None if callback.best is None else float(callback.best))


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_early_stopping_matches_keras(keras, config):
    for sequence in SEQUENCES:
        ours = _run_early_stopping(lcb.EarlyStopping(**config), sequence, "val_loss")
        theirs = _run_early_stopping(keras.callbacks.EarlyStopping(**config), sequence, "val_loss")
        assert ours == theirs, (sequence, ours, theirs)


def test_early_stopping_auto_mode_maximises_accuracy_like_keras(keras):
    sequence = [0.5, 0.6, 0.55, 0.58, 0.59, 0.61]
    ours = _run_early_stopping(lcb.EarlyStopping("val_accuracy", patience=2, restore_best_weights=True),
                               sequence, "val_accuracy")
    theirs = _run_early_stopping(
        keras.callbacks.EarlyStopping("val_accuracy", patience=2, mode="max", restore_best_weights=True),
        sequence, "val_accuracy")
    assert ours == theirs and ours["epochs"] == 4 and ours["weights"] == 1.0


def test_early_stopping_auto_mode_from_the_model_metrics_or_raises():
    class Metric:
        name, _direction = "score", "up"

    class Compiled:
        metrics = [Metric()]

    callback = lcb.EarlyStopping("val_score")
    model = FakeModel()
    model.metrics = [Compiled()]
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_end(0, {"val_score": 1.0})
    assert callback._is_improvement(2.0, 1.0)

    unknown = lcb.EarlyStopping("val_something")
    unknown.set_model(FakeModel())
    with pytest.raises(ValueError, match="mode='max'"):
        unknown.on_epoch_end(0, {"val_something": 1.0})


def test_early_stopping_restores_best_weights_when_training_runs_to_the_end():
    model = FakeModel()
    stop = lcb.EarlyStopping(patience=10, restore_best_weights=True)
    fit(model, [stop], [{"loss": 1.0, "val_loss": v} for v in (0.9, 0.4, 0.7, 0.8)])
    assert stop.stopped_epoch == 0 and stop.best_epoch == 1
    assert float(model.weights[0][0]) == 1.0


def test_early_stopping_stops_fit_after_patience():
    model = FakeModel()
    callbacks = fit(model, [lcb.EarlyStopping(patience=1)],
                    [{"loss": 1.0, "val_loss": v} for v in (0.5, 0.6, 0.7, 0.4, 0.3)])
    assert callbacks.history.epoch == [0, 1]


def test_early_stopping_warns_when_the_monitor_is_missing():
    stop = lcb.EarlyStopping()
    stop.set_model(FakeModel())
    with pytest.warns(UserWarning, match="val_loss"):
        stop.on_epoch_end(0, {"loss": 1.0})


# -- learning-rate callbacks -----------------------------------------------------------------
def _run_reduce_lr(callback, sequence):
    model = FakeModel(learning_rate=1.0)
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, value in enumerate(sequence):
        callback.on_epoch_end(epoch, {"val_loss": value})
        rates.append(float(model.optimizer.learning_rate))
    return rates


@pytest.mark.parametrize("config", [
    dict(), dict(patience=1, factor=0.5), dict(patience=2, factor=0.5, cooldown=2),
    dict(patience=1, factor=0.1, min_lr=0.05), dict(patience=1, factor=0.5, min_delta=0.05),
], ids=str)
def test_reduce_lr_on_plateau_matches_keras(keras, config):
    for sequence in SEQUENCES + [[1.0] * 15]:
        assert _run_reduce_lr(lcb.ReduceLROnPlateau(**config), sequence) == \
            _run_reduce_lr(keras.callbacks.ReduceLROnPlateau(**config), sequence), sequence


def test_reduce_lr_on_plateau_changes_the_optimizer_and_logs_the_rate():
    model = FakeModel(learning_rate=0.1)
    callbacks = fit(model, [lcb.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1)],
                    [{"loss": 1.0}] * 4)
    assert model.optimizer.learning_rate == pytest.approx(0.1 * 0.5 ** 3)
    assert callbacks.history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.05, 0.025])
    with pytest.raises(ValueError, match="factor"):
        lcb.ReduceLROnPlateau(factor=1.0)


def test_learning_rate_scheduler_sets_the_rate_each_epoch():
    model = FakeModel(learning_rate=0.1)
    scheduler = lcb.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** epoch)
    callbacks = fit(model, [scheduler], [{"loss": 1.0}] * 3)
    assert model.optimizer.learning_rate == pytest.approx(0.025)
    assert callbacks.history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])

    one_argument = lcb.LearningRateScheduler(lambda epoch: 0.5)
    one_argument.set_model(model)
    one_argument.on_epoch_begin(0)
    assert model.optimizer.learning_rate == 0.5
    jax_scalar = lcb.LearningRateScheduler(lambda epoch, lr: jnp.float32(0.25))
    jax_scalar.set_model(model)
    jax_scalar.on_epoch_begin(0)
    assert model.optimizer.learning_rate == 0.25 and type(model.optimizer.learning_rate) is float
    bad = lcb.LearningRateScheduler(lambda epoch, lr: "fast")
    bad.set_model(model)
    with pytest.raises(ValueError, match="should be a float"):
        bad.on_epoch_begin(0)


# -- CSVLogger ---------------------------------------------------------------------------------
def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _csv_run(callback, epoch_logs):
    callback.set_model(FakeModel())
    callback.on_train_begin()
    for epoch, logs in enumerate(epoch_logs):
        callback.on_epoch_end(epoch, dict(logs))
    callback.on_train_end()


def test_csv_logger_writes_what_keras_writes(keras, tmp_path):
    logs = [{"loss": 0.5, "val_loss": 0.75, "accuracy": 0.25}, {"loss": 0.25, "val_loss": 0.5, "accuracy": 0.5}]
    _csv_run(lcb.CSVLogger(tmp_path / "ours.csv"), logs)
    _csv_run(keras.callbacks.CSVLogger(str(tmp_path / "keras.csv")), logs)
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "keras.csv").read_bytes()
    assert _read_csv(tmp_path / "ours.csv") == [
        ["epoch", "accuracy", "loss", "val_loss"], ["0", "0.25", "0.5", "0.75"], ["1", "0.5", "0.25", "0.5"]]


def test_csv_logger_adds_columns_for_keys_that_appear_later(tmp_path):
    path = tmp_path / "log.csv"
    logger = lcb.CSVLogger(path, separator=";")
    logger.set_model(FakeModel())
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.0})
    assert _read_csv(path) == [["epoch;loss"], ["0;1.0"]]  # flushed at the end of the epoch
    logger.on_epoch_end(1, {"loss": 0.5, "val_loss": 0.75})
    logger.on_epoch_end(2, {"val_loss": 0.5})
    logger.on_train_end()
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert rows == [["epoch", "loss", "val_loss"], ["0", "1.0", "NA"], ["1", "0.5", "0.75"], ["2", "NA", "0.5"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]  # no temporary file left


def test_csv_logger_append_continues_the_file(tmp_path):
    path = tmp_path / "log.csv"
    _csv_run(lcb.CSVLogger(path), [{"loss": 1.0}])
    _csv_run(lcb.CSVLogger(path, append=True), [{"loss": 0.5}])
    assert _read_csv(path) == [["epoch", "loss"], ["0", "1.0"], ["0", "0.5"]]
    _csv_run(lcb.CSVLogger(path), [{"loss": 0.25}])  # append=False starts over
    assert _read_csv(path) == [["epoch", "loss"], ["0", "0.25"]]


# -- TerminateOnNaN ----------------------------------------------------------------------------
def test_terminate_on_nan_stops_training(capsys):
    model = FakeModel()
    seen = []
    counter = lcb.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))
    callbacks = fit(model, [lcb.TerminateOnNaN(), counter], [{"loss": 1.0}] * 3, steps=5,
                    batch_loss=lambda epoch, step: math.nan if (epoch, step) == (1, 2) else 1.0)
    assert model.stop_training
    assert callbacks.history.epoch == [0, 1]
    assert seen == [0, 1, 2, 3, 4, 0, 1, 2]
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out


def test_terminate_on_nan_can_raise():
    callback = lcb.TerminateOnNaN(raise_error=True)
    callback.set_model(FakeModel())
    callback.on_train_batch_end(0, {"loss": jnp.float32(1.0)})
    with pytest.raises(RuntimeError, match="batch 1"):
        callback.on_train_batch_end(1, {"loss": jnp.float32(math.inf)})


# -- LambdaCallback ----------------------------------------------------------------------------
def test_lambda_callback_calls_the_functions_given():
    calls = []
    callback = lcb.LambdaCallback(
        on_train_begin=lambda logs: calls.append("train_begin"),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, logs["loss"])),
        on_train_end=lambda logs: calls.append("train_end"))
    fit(FakeModel(), [callback], [{"loss": 0.5}] * 2)
    assert calls == ["train_begin", ("epoch_end", 0, 0.5), ("epoch_end", 1, 0.5), "train_end"]
    with pytest.raises(ValueError, match="on_epoch_ends"):
        lcb.LambdaCallback(on_epoch_ends=print)


# -- ProgbarLogger -------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _not_a_terminal(monkeypatch):
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)


def test_progbar_logger_prints_epoch_headers_and_one_line_per_epoch(capsys):
    fit(FakeModel(), [], [{"loss": 0.5, "val_loss": 0.75}, {"loss": 0.25, "val_loss": 0.5}], verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert lines[1].startswith("4/4 ━") and lines[1].endswith("- loss: 0.5000 - val_loss: 0.7500")
    assert "/step" in lines[3] and "\r" not in "".join(lines) and "\x1b" not in "".join(lines)


def test_progbar_logger_verbose_2_and_evaluate_and_predict(capsys):
    fit(FakeModel(), [], [{"loss": 0.5}], verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("4/4 - ") and lines[0].endswith("- loss: 0.5000")

    callbacks = lcb.CallbackList([], add_progbar=True, model=FakeModel(), verbose=1, epochs=1, steps=3)
    callbacks.on_test_begin()
    for step in range(3):
        callbacks.on_test_batch_begin(step)
        callbacks.on_test_batch_end(step, {"loss": jnp.float32(1.0)})
    callbacks.on_test_end({"loss": jnp.float32(0.125)})
    callbacks.on_predict_begin()
    callbacks.on_predict_batch_end(2, {"outputs": jnp.ones((4, 2))})
    callbacks.on_predict_end()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("3/3 ") and lines[0].endswith("loss: 0.1250")
    assert lines[1].startswith("3/3 ") and "loss" not in lines[1]


def test_validation_inside_fit_stays_silent(capsys):
    callbacks = lcb.CallbackList([], add_progbar=True, model=FakeModel(), verbose=1, epochs=1, steps=2)
    callbacks.on_train_begin()
    callbacks.on_epoch_begin(0)
    callbacks.on_test_begin()
    callbacks.on_test_batch_end(0, {"loss": jnp.float32(1.0)})
    callbacks.on_test_end({"loss": 1.0})
    callbacks.on_epoch_end(0, {"loss": 0.5, "val_loss": 1.0})
    callbacks.on_train_end()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].endswith("val_loss: 1.0000")


def test_progbar_logger_with_unknown_steps_learns_them_in_the_first_epoch(capsys):
    callbacks = lcb.CallbackList([], add_progbar=True, model=FakeModel(), verbose=1, epochs=2, steps=None)
    callbacks.on_train_begin()
    for epoch in range(2):
        callbacks.on_epoch_begin(epoch)
        for step in range(5):
            callbacks.on_train_batch_end(step, {"loss": jnp.float32(1.0)})
        callbacks.on_epoch_end(epoch, {"loss": 1.0})
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("5/5 ") and lines[3].startswith("5/5 ")


def test_all_public_callbacks_have_docstring_examples():
    for name in set(lcb.__all__) - {"MonitorCallback"}:  # a base class, not used directly
        doc = getattr(lcb, name).__doc__ or ""
        assert "Example" in doc or "example" in doc, name
