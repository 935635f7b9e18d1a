"""``Callback``: the base class whose hooks ``fit``/``evaluate``/``predict`` call."""

from __future__ import annotations


def runs_per_block(method):
    """Marks a batch hook as fine with one call per block of steps.

    With ``steps_per_execution > 1`` the trainer calls batch hooks once per executed block;
    ``CallbackList.needs_batch_hooks`` asks for per-step execution only when some callback
    has a batch hook without this mark (the base class's no-ops and the progress bar have it).
    """
    method._lm_runs_per_block = True
    return method


class Callback:
    """Base class of callbacks: override the hooks you need; every hook is a no-op here.

    Attributes:
        model: The model being trained (set by ``set_model``).
        params: Dict of training parameters: ``{"epochs": ..., "steps": ..., "verbose": ...}``.

    Order of calls in ``fit``: ``on_train_begin``, then per epoch ``on_epoch_begin``,
    ``on_train_batch_begin`` / ``on_train_batch_end`` per executed step (or block of steps
    with ``steps_per_execution > 1``; ``batch`` is then the index of the block's last step),
    ``on_epoch_end`` (with ``val_*`` entries when validating), and finally ``on_train_end``.
    ``evaluate`` and ``predict`` call the ``on_test_*`` and ``on_predict_*`` hooks alike.

    Per-batch ``logs`` hold JAX arrays on the device: ``float(logs["loss"])`` makes the host
    wait for the device, so a callback that overrides a batch hook slows training down (and
    ``fit`` then runs one step per call). Epoch-level ``logs`` hold Python floats.

    Example:
        >>> class PrintLoss(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(f"epoch {epoch}: loss {logs['loss']:.2f}")
        >>> PrintLoss().on_epoch_end(0, {"loss": 0.5})
        epoch 0: loss 0.50

    Pass instances to ``model.fit(x, y, callbacks=[PrintLoss()])``.
    """

    def __init__(self):
        self.params = None
        self._model = None

    def set_params(self, params):
        self.params = params

    def set_model(self, model):
        self._model = model

    @property
    def model(self):
        return self._model

    # -- batch level: logs hold device arrays --------------------------------------------
    @runs_per_block
    def on_batch_begin(self, batch, logs=None):
        """A backwards-compatible alias of ``on_train_batch_begin``."""

    @runs_per_block
    def on_batch_end(self, batch, logs=None):
        """A backwards-compatible alias of ``on_train_batch_end``."""

    @runs_per_block
    def on_train_batch_begin(self, batch, logs=None):
        """Called before a training step (or block of steps); calls ``on_batch_begin``."""
        self.on_batch_begin(batch, logs=logs)

    @runs_per_block
    def on_train_batch_end(self, batch, logs=None):
        """Called after a training step (or block); ``logs`` holds the running metrics."""
        self.on_batch_end(batch, logs=logs)

    @runs_per_block
    def on_test_batch_begin(self, batch, logs=None):
        """Called before an evaluation step (or block of steps)."""

    @runs_per_block
    def on_test_batch_end(self, batch, logs=None):
        """Called after an evaluation step (or block); ``logs`` holds the running metrics."""

    @runs_per_block
    def on_predict_batch_begin(self, batch, logs=None):
        """Called before a prediction step (or block of steps)."""

    @runs_per_block
    def on_predict_batch_end(self, batch, logs=None):
        """Called after a prediction step (or block); ``logs["outputs"]`` holds the outputs."""

    # -- epoch and run level: logs hold Python floats -------------------------------------
    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of an epoch of ``fit``."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of an epoch of ``fit``; ``logs`` has the metrics and ``val_*``."""

    def on_train_begin(self, logs=None):
        """Called at the start of ``fit``."""

    def on_train_end(self, logs=None):
        """Called at the end of ``fit``, with the last epoch's logs."""

    def on_test_begin(self, logs=None):
        """Called at the start of ``evaluate``."""

    def on_test_end(self, logs=None):
        """Called at the end of ``evaluate``, with its results."""

    def on_predict_begin(self, logs=None):
        """Called at the start of ``predict``."""

    def on_predict_end(self, logs=None):
        """Called at the end of ``predict``."""
