"""``EarlyStopping``: stop ``fit`` when the monitored value stops improving (Keras 3's rules)."""

from __future__ import annotations

import warnings

from lamina.callbacks.monitor import MonitorCallback
from lamina.utils.logging_control import print_msg


class EarlyStopping(MonitorCallback):
    """Stops training when a monitored value has stopped improving.

    At the end of every epoch the value ``logs[monitor]`` is compared with the best so far;
    after ``patience`` epochs without an improvement larger than ``min_delta``,
    ``model.stop_training`` is set and ``fit`` ends after that epoch. The decisions are
    Keras 3's, step for step.

    Args:
        monitor: Name of the value to watch. Defaults to ``"val_loss"``.
        min_delta: Minimum change that counts as an improvement. Defaults to 0.
        patience: Number of epochs without improvement after which training stops.
        verbose: 1 prints a message when it stops and when it restores weights.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (from the name; see ``MonitorCallback``).
        baseline: If set, training stops unless the value improves on the baseline within
            ``patience`` epochs (the wait is only reset by a value that beats it).
        restore_best_weights: At the end of training (stopped early or not), restore the
            weights from the epoch with the best value (even if it did not beat ``baseline``).
        start_from_epoch: Number of warm-up epochs before monitoring starts.

    Example:
        >>> stop = EarlyStopping(monitor="loss", patience=1)
        >>> class Model: stop_training = False
        >>> stop.set_model(Model())
        >>> stop.on_train_begin()
        >>> for epoch, loss in enumerate([1.0, 0.5, 0.6, 0.7]):
        ...     stop.on_epoch_end(epoch, {"loss": loss})
        ...     if stop.model.stop_training:
        ...         break
        >>> epoch, stop.best, stop.best_epoch
        (2, 0.5, 1)

    In training: ``model.fit(x, y, epochs=100, validation_split=0.2,
    callbacks=[EarlyStopping(patience=3, restore_best_weights=True)])``.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.wait = 0
        self.stopped_epoch = 0
        self.restore_best_weights = restore_best_weights
        self.best_weights = None
        self.best_epoch = 0
        self.start_from_epoch = start_from_epoch

    def on_train_begin(self, logs=None):
        # Allow instances to be reused across fit() calls.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return  # no value, or still warming up
        if self.restore_best_weights and self.best_weights is None:
            # Until something improves, the current weights are the best ones.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch

        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # Only restart the wait when the value beats the baseline as well.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return

        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        """``logs[monitor]``, warning (and returning ``None``) when it is missing."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(logs)}", stacklevel=2)
        return value
