"""``CallbackList``: calls every callback's hook, as the training loops need them."""

from __future__ import annotations

from lamina.callbacks._logs import flatten_logs, to_python_logs
from lamina.callbacks.callback import Callback
from lamina.callbacks.history import History
from lamina.callbacks.progbar_logger import ProgbarLogger

_BATCH_HOOKS = {
    "train": ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end"),
    "test": ("on_test_batch_begin", "on_test_batch_end"),
    "predict": ("on_predict_batch_begin", "on_predict_batch_end"),
}


class CallbackList(Callback):
    """Calls the hooks of several callbacks at once, adding ``History`` and the progress bar.

    Args:
        callbacks: A callback or a (nested) list of them, or ``None``.
        add_history: Append a ``History`` unless one is in ``callbacks``.
        add_progbar: Append a ``ProgbarLogger`` unless one is in ``callbacks``.
        model: The model the callbacks act on (``set_model``; a ``History`` also becomes
            ``model.history``).
        **params: Passed to every callback's ``set_params``: ``epochs``, ``steps``, ``verbose``.

    Batch hooks pass ``logs`` on flattened (nested dicts merged, as Keras does) but otherwise
    as they are (device arrays, no host sync). The other hooks
    convert ``logs`` to Python floats once (one transfer) and hand the same dict to every
    callback in turn, so a key one adds (``learning_rate``) is seen by the next ones,
    ``History`` included, which is appended last.

    Example:
        >>> callbacks = CallbackList([], add_history=True, epochs=2, steps=10, verbose=0)
        >>> callbacks.on_train_begin()
        >>> for epoch in range(2):
        ...     callbacks.on_epoch_begin(epoch)
        ...     callbacks.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
        >>> callbacks.on_train_end()
        >>> callbacks.history.history
        {'loss': [1.0, 0.5]}
        >>> callbacks.needs_batch_hooks()
        False
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None,
                 **params):
        super().__init__()
        self.callbacks = _flatten(callbacks)
        self.history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        self.progbar = next((cb for cb in self.callbacks if isinstance(cb, ProgbarLogger)), None)
        if self.history is None and add_history:
            self.history = History()
            self.callbacks.append(self.history)
        if self.progbar is None and add_progbar:
            self.progbar = ProgbarLogger()
            self.callbacks.append(self.progbar)
        self.set_model(model)
        self.set_params(params)

    def append(self, callback):
        """Adds a callback (after those already in the list)."""
        self.callbacks.append(callback)
        if self._model is not None:
            callback.set_model(self._model)
        if self.params:
            callback.set_params(self.params)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def set_params(self, params):
        self.params = params
        if params:
            for callback in self.callbacks:
                callback.set_params(params)

    def set_model(self, model):
        if model is None:
            return
        super().set_model(model)
        if self.history is not None:
            model.history = self.history
        for callback in self.callbacks:
            callback.set_model(model)

    def needs_batch_hooks(self, mode=None):
        """Whether a callback wants to be called after every single step.

        True when a callback overrides a batch-level hook (``on_batch_*``,
        ``on_{train,test,predict}_batch_*``), ``History`` and the progress bar excepted: they
        are content with one call per executed block. The trainer runs one step per compiled
        call when this is true and blocks of ``steps_per_execution`` steps otherwise.

        Args:
            mode: ``"train"``, ``"test"`` or ``"predict"`` to ask about that loop's hooks
                only; ``None`` (the default) asks about all of them.
        """
        if mode is None:
            names = tuple(name for hooks in _BATCH_HOOKS.values() for name in hooks)
        elif mode in _BATCH_HOOKS:
            names = _BATCH_HOOKS[mode]
        else:
            raise ValueError(f"mode must be 'train', 'test', 'predict' or None, got {mode!r}.")
        return any(_wants_every_batch(callback, names, mode) for callback in self.callbacks)

    # -- batch level: no conversion ------------------------------------------------------
    def on_batch_begin(self, batch, logs=None):
        logs = flatten_logs(dict(logs)) if logs else {}
        for callback in self.callbacks:
            callback.on_batch_begin(batch, logs=logs)

    def on_batch_end(self, batch, logs=None):
        logs = flatten_logs(dict(logs)) if logs else {}
        for callback in self.callbacks:
            callback.on_batch_end(batch, logs=logs)

    def on_train_batch_begin(self, batch, logs=None):
        logs = flatten_logs(dict(logs)) if logs else {}
        for callback in self.callbacks:
            callback.on_train_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        logs = flatten_logs(dict(logs)) if logs else {}
        for callback in self.callbacks:
            callback.on_train_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        logs = flatten_logs(dict(logs)) if logs else {}
        for callback in self.callbacks:
            callback.on_test_batch_begin(batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        logs = flatten_logs(dict(logs)) if logs else {}
        for callback in self.callbacks:
            callback.on_test_batch_end(batch, logs=logs)

    def on_predict_batch_begin(self, batch, logs=None):
        logs = dict(logs) if logs else {}  # "outputs" keeps the model's output structure
        for callback in self.callbacks:
            callback.on_predict_batch_begin(batch, logs=logs)

    def on_predict_batch_end(self, batch, logs=None):
        logs = dict(logs) if logs else {}  # "outputs" keeps the model's output structure
        for callback in self.callbacks:
            callback.on_predict_batch_end(batch, logs=logs)

    # -- epoch and run level: logs as Python floats --------------------------------------
    def on_epoch_begin(self, epoch, logs=None):
        logs = to_python_logs(logs)
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        logs = to_python_logs(logs)
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)

    def on_train_begin(self, logs=None):
        logs = to_python_logs(logs)
        for callback in self.callbacks:
            callback.on_train_begin(logs)

    def on_train_end(self, logs=None):
        logs = to_python_logs(logs)
        for callback in self.callbacks:
            callback.on_train_end(logs)

    def on_test_begin(self, logs=None):
        logs = to_python_logs(logs)
        for callback in self.callbacks:
            callback.on_test_begin(logs)

    def on_test_end(self, logs=None):
        logs = to_python_logs(logs)
        for callback in self.callbacks:
            callback.on_test_end(logs)

    def on_predict_begin(self, logs=None):
        logs = to_python_logs(logs)
        for callback in self.callbacks:
            callback.on_predict_begin(logs)

    def on_predict_end(self, logs=None):
        logs = to_python_logs(logs)
        for callback in self.callbacks:
            callback.on_predict_end(logs)


def _flatten(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, (list, tuple)):
        return [cb for item in callbacks for cb in _flatten(item)]
    if not isinstance(callbacks, Callback):
        raise TypeError(f"Expected a lamina Callback, got {callbacks!r}.")
    return [callbacks]


def _wants_every_batch(callback, names, mode):
    if isinstance(callback, CallbackList):
        return callback.needs_batch_hooks(mode)
    for name in names:
        hook = getattr(callback, name, None)
        if hook is not None and not getattr(getattr(hook, "__func__", hook), "_lm_runs_per_block", False):
            return True
    return False
