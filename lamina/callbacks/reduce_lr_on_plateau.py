"""``ReduceLROnPlateau``: lower the learning rate when the monitored value stops improving."""

from __future__ import annotations

import warnings

import numpy as np

from lamina.callbacks._lr import get_learning_rate, optimizers_of
from lamina.callbacks.monitor import MonitorCallback
from lamina.utils.logging_control import print_msg


class ReduceLROnPlateau(MonitorCallback):
    """Multiplies the learning rate by ``factor`` after ``patience`` epochs without improvement.

    Sets ``model.optimizer.learning_rate`` (never below ``min_lr``) and records the current
    rate as ``logs["learning_rate"]`` at every epoch end (so it appears in ``History``).
    Keras 3's rules, step for step.

    Args:
        monitor: Name of the value to watch. Defaults to ``"val_loss"``.
        factor: New rate = rate * factor; must be below 1.
        patience: Number of epochs without improvement after which the rate is reduced.
        verbose: 1 prints a message at each reduction.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (from the name; see ``MonitorCallback``).
        min_delta: Minimum change that counts as an improvement.
        cooldown: Number of epochs to wait after a reduction before counting again.
        min_lr: Lower bound of the rate.

    Example:
        >>> from types import SimpleNamespace
        >>> model = SimpleNamespace(optimizer=SimpleNamespace(learning_rate=0.1))
        >>> reduce = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1)
        >>> reduce.set_model(model)
        >>> reduce.on_train_begin()
        >>> for epoch, loss in enumerate([1.0, 1.0, 1.0]):
        ...     reduce.on_epoch_end(epoch, {"loss": loss})
        >>> model.optimizer.learning_rate
        0.025

    In training: ``model.fit(..., callbacks=[ReduceLROnPlateau(factor=0.2, patience=5)])``.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}")
        self.factor = factor
        self.min_lr = min_lr
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        optimizers = optimizers_of(self.model)
        if len(optimizers) > 1:
            for optimizer in optimizers:
                logs[f"learning_rate_{optimizer.name}"] = get_learning_rate(optimizer)
        else:
            logs["learning_rate"] = get_learning_rate(optimizers[0])
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(logs)}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                reduced = False
                for optimizer in optimizers:
                    name = getattr(optimizer, "name", "") if len(optimizers) > 1 else ""
                    reduced = self._reduce(optimizer, epoch, name) or reduced
                if reduced:
                    self.cooldown_counter = self.cooldown
                    self.wait = 0

    def _reduce(self, optimizer, epoch, name):
        old_lr = get_learning_rate(optimizer)
        if old_lr <= np.float32(self.min_lr):
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        optimizer.learning_rate = new_lr
        if self.verbose > 0:
            name = f" {name}" if name else ""
            print_msg(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing{name} learning rate to {new_lr}.")
        return True

    def in_cooldown(self):
        return self.cooldown_counter > 0
