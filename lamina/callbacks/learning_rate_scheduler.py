"""``LearningRateScheduler``: set the learning rate from a function of the epoch."""

from __future__ import annotations

import numpy as np

from lamina.callbacks._lr import get_learning_rate, optimizers_of
from lamina.callbacks.callback import Callback
from lamina.utils.logging_control import print_msg


class LearningRateScheduler(Callback):
    """At the start of every epoch, sets the rate to ``schedule(epoch, current_rate)``.

    Also records the rate as ``logs["learning_rate"]`` at every epoch end (so it appears in
    ``History``).

    Args:
        schedule: A function ``(epoch, lr) -> new lr`` (epoch counted from 0, rates as
            floats); a function of ``epoch`` alone is accepted too.
        verbose: 1 prints the rate it sets.

    Example:
        >>> from types import SimpleNamespace
        >>> model = SimpleNamespace(optimizer=SimpleNamespace(learning_rate=0.1))
        >>> scheduler = LearningRateScheduler(lambda epoch, lr: lr if epoch < 1 else lr / 2)
        >>> scheduler.set_model(model)
        >>> for epoch in range(3):
        ...     scheduler.on_epoch_begin(epoch)
        >>> model.optimizer.learning_rate
        0.025

    In training: ``model.fit(..., callbacks=[LearningRateScheduler(schedule)])``.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def _update(self, optimizer, epoch):
        lr = get_learning_rate(optimizer)
        try:
            lr = self.schedule(epoch, lr)
        except TypeError:  # the older one-argument form, schedule(epoch)
            lr = self.schedule(epoch)
        try:
            if isinstance(lr, (str, bytes, bool)):
                raise TypeError
            lr = float(np.asarray(lr).reshape(()))  # floats, NumPy or JAX scalars
        except (TypeError, ValueError):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {lr!r}") from None
        optimizer.learning_rate = lr
        return lr

    def on_epoch_begin(self, epoch, logs=None):
        optimizers = optimizers_of(self.model)
        for optimizer in optimizers:
            lr = self._update(optimizer, epoch)
            if self.verbose > 0:
                name = f"{optimizer.name} " if len(optimizers) > 1 else ""
                print_msg(f"\nEpoch {epoch + 1}: LearningRateScheduler setting {name}learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        optimizers = optimizers_of(self.model)
        if len(optimizers) > 1:
            for optimizer in optimizers:
                logs[f"learning_rate_{optimizer.name}"] = get_learning_rate(optimizer)
        else:
            logs["learning_rate"] = get_learning_rate(optimizers[0])
