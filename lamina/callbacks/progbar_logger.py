"""``ProgbarLogger``: the progress bar of ``fit``/``evaluate``/``predict``."""

from __future__ import annotations

from lamina.callbacks.callback import Callback, runs_per_block
from lamina.utils.progbar import Progbar


class ProgbarLogger(Callback):
    """Prints ``Epoch 3/10`` and a progress bar per epoch (``lamina.utils.Progbar``).

    Added by ``fit``/``evaluate``/``predict`` when ``verbose`` is not 0: ``verbose=1`` draws
    a bar (redrawn live on a terminal, at most ten times a second; a single line per epoch
    elsewhere), ``verbose=2`` prints one line per epoch. The final line has the epoch's logs,
    ``val_*`` included. The logs are running means already, so they are shown as given.

    Per-batch logs are only stored (still on the device) and read when the bar is redrawn,
    so the bar adds no host sync per step and is fine with one call per block of steps.

    Example:
        >>> logger = ProgbarLogger()
        >>> logger.set_params({"epochs": 2, "steps": 4, "verbose": 2})
        >>> logger.on_train_begin()
        >>> logger.on_epoch_begin(0)
        Epoch 1/2
        >>> logger.on_epoch_end(0, {"loss": 0.25, "val_loss": 0.5})
        4/4 - 0s - ...s/step - loss: 0.2500 - val_loss: 0.5000
    """

    def __init__(self):
        super().__init__()
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def on_train_begin(self, logs=None):
        # Inside fit, validation stays silent: its results appear on the epoch's line.
        self._called_in_fit = True

    def on_train_end(self, logs=None):
        self._called_in_fit = False

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._reset_progbar()
            self._maybe_init_progbar()

    def on_predict_begin(self, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose and self.epochs > 1:
            self.progbar.console.print(f"Epoch {epoch + 1}/{self.epochs}", soft_wrap=True)

    @runs_per_block
    def on_train_batch_end(self, batch, logs=None):
        self._update_progbar(batch, logs)

    @runs_per_block
    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update_progbar(batch, logs)

    @runs_per_block
    def on_predict_batch_end(self, batch, logs=None):
        self._update_progbar(batch, None)  # the outputs are not for display

    def on_epoch_end(self, epoch, logs=None):
        self._finalize_progbar(logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize_progbar(logs)

    def on_predict_end(self, logs=None):
        self._finalize_progbar(logs)

    def _reset_progbar(self):
        self.seen = 0
        self.progbar = None

    def _maybe_init_progbar(self):
        if self.progbar is None:
            # Logs are running means already: show every value as given.
            self.progbar = Progbar(target=self.target, verbose=self.verbose, unit_name="step",
                                   stateless_metrics=())

    def _update_progbar(self, batch, logs=None):
        self._maybe_init_progbar()
        self.seen = batch + 1  # one-based
        if self.verbose == 1:
            self.progbar.update(self.seen, list(logs.items()) if logs else None, finalize=False)

    def _finalize_progbar(self, logs):
        self._maybe_init_progbar()
        if self.target is None:
            self.target = self.seen
            self.progbar.target = self.target
        self.progbar.update(self.target, list((logs or {}).items()), finalize=True)
