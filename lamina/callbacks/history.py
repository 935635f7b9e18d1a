"""``History``: the per-epoch record that ``fit`` returns."""

from __future__ import annotations

from lamina.callbacks._logs import to_float
from lamina.callbacks.callback import Callback


class History(Callback):
    """Records the epoch logs: ``history[name]`` is a list with one float per epoch.

    ``fit`` adds one and returns it; it is also ``model.history``. Only epoch-level logs are
    recorded (and converted to floats), so it costs nothing per step.

    Attributes:
        history: Dict from log name (``"loss"``, ``"val_loss"``, ...) to a list of floats.
        epoch: The epoch indices recorded by the last ``fit``.

    Example:
        >>> history = History()
        >>> history.on_train_begin()
        >>> history.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.75})
        >>> history.history, history.epoch
        ({'loss': [0.5], 'val_loss': [0.75]}, [0])

    After ``history = model.fit(...)``: ``history.history["loss"]``.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(to_float(value))
        if self._model is not None:
            # Set again after each epoch so the model refers to the latest record.
            self._model.history = self
