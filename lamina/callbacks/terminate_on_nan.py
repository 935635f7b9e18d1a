"""``TerminateOnNaN``: stop training at the first NaN or infinite loss."""

from __future__ import annotations

import math

from lamina.callbacks.callback import Callback
from lamina.utils.logging_control import print_msg


class TerminateOnNaN(Callback):
    """Stops training when a batch's loss is NaN or infinite.

    It checks ``logs["loss"]`` after every step, so it reads a value from the device at every
    step (a host sync) and makes ``fit`` run one step per compiled call: use it while
    debugging rather than for long runs.

    Args:
        raise_error: Raise ``RuntimeError`` at once instead of setting
            ``model.stop_training`` (which lets ``fit`` end normally, calling
            ``on_train_end`` on every callback).

    Example:
        >>> class Model: stop_training = False
        >>> callback = TerminateOnNaN()
        >>> callback.set_model(Model())
        >>> callback.on_train_batch_end(3, {"loss": float("nan")})
        Batch 3: Invalid loss, terminating training
        >>> callback.model.stop_training
        True

    In training: ``model.fit(..., callbacks=[TerminateOnNaN()])``.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)  # the per-step host sync this callback exists for
        if math.isnan(loss) or math.isinf(loss):
            if self.raise_error:
                raise RuntimeError(
                    f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                    "Terminating training immediately.")
            print_msg(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
