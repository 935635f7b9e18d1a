"""``SwapEMAWeights``: evaluate (and optionally save) with the optimizer's moving average of
the weights instead of the weights themselves."""

from __future__ import annotations

from lamina.callbacks.callback import Callback


class SwapEMAWeights(Callback):
    """Puts the optimizer's moving averages of the weights (``use_ema=True``) into the model
    for evaluation and prediction, and the trained weights back afterwards.

    During ``fit``'s validation, ``evaluate`` and ``predict`` the model computes with the
    averages; training always continues from the trained weights. With
    ``swap_on_epoch=True`` the averages are also in the model between ``on_epoch_end`` and
    the next ``on_epoch_begin``, so that callbacks placed after this one (``ModelCheckpoint``)
    see them; when ``fit`` ends the model keeps the averages (as ``fit`` does anyway with
    ``use_ema``).

    The swap exchanges arrays (no copy). The optimizer may be an ``LossScaleOptimizer``
    around one with ``use_ema``; another optimizer raises a ``ValueError``.

    Differences from Keras 3 (where Keras's behaviour is an accident): the trained weights
    come back after ``predict`` too (Keras leaves the averages in), the averages are never
    changed by the swap (so stopping early with ``swap_on_epoch`` still ends with them), and
    before the first training step, when there is no average yet, the weights stay as they
    are (Keras would evaluate with zeros).

    Args:
        swap_on_epoch: Also swap at ``on_epoch_end`` / back at ``on_epoch_begin``.

    Example:
        >>> import numpy as np, lamina as lm
        >>> model = lm.Sequential([lm.Input((2,)), lm.layers.Dense(1)])
        >>> model.compile(lm.optimizers.SGD(0.1, use_ema=True), "mse")
        >>> x, y = np.ones((8, 2), "float32"), np.ones((8, 1), "float32")
        >>> history = model.fit(x, y, epochs=2, validation_data=(x, y), verbose=0,
        ...                     callbacks=[lm.callbacks.SwapEMAWeights()])
        >>> sorted(history.history)
        ['loss', 'val_loss']
    """

    def __init__(self, swap_on_epoch=False):
        super().__init__()
        self.swap_on_epoch = swap_on_epoch
        self._stash = None  # the trained weights' arrays while the averages are in the model
        self._swapped_by = None  # "epoch", "test" or "predict": the hook that swapped

    @property
    def _ema_weights_in_model(self) -> bool:
        return self._stash is not None

    def _optimizers(self) -> list:
        """The optimizers whose averages to swap in (those with ``use_ema``)."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError("SwapEMAWeights needs a compiled model with an optimizer that has `use_ema=True`; "
                             "the model has no optimizer (call model.compile(...) first).")
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        inner = getattr(optimizer, "optimizers", None)
        if inner is not None:
            chosen = [opt for opt in inner if getattr(opt, "use_ema", False)]
            if not chosen:
                raise ValueError("SwapEMAWeights must be used when at least one inner optimizer has "
                                 "`use_ema=True` set. Received an optimizer whose inner optimizers all have "
                                 "`use_ema=False`.")
            return chosen
        if not getattr(optimizer, "use_ema", False):
            raise ValueError("SwapEMAWeights must be used when `use_ema=True` is set on the optimizer. Received: "
                             f"use_ema={getattr(optimizer, 'use_ema', None)} ({type(optimizer).__name__}).")
        return [optimizer]

    @staticmethod
    def _pairs(optimizer) -> list:
        """``(weight, its average)`` pairs; none before the first training step (the averages
        are zeros until then)."""
        if not optimizer.built or int(optimizer.iterations.value) == 0:
            return []
        return list(zip(optimizer._built_variables, optimizer._averages))

    def _swap_in(self, by: str) -> None:
        if self._ema_weights_in_model:
            return
        pairs = [pair for optimizer in self._optimizers() for pair in self._pairs(optimizer)]
        self._stash = [(weight, weight.value) for weight, _ in pairs]
        for weight, average in pairs:
            weight.assign(average.value)
        self._swapped_by = by

    def _swap_out(self, by: str) -> None:
        if not self._ema_weights_in_model or self._swapped_by != by:
            return
        for weight, value in self._stash:
            weight.assign(value)
        self._stash, self._swapped_by = None, None

    def on_epoch_begin(self, epoch, logs=None):
        if self.swap_on_epoch:
            self._swap_out("epoch")

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_on_epoch:
            self._swap_in("epoch")

    def on_train_end(self, logs=None):
        # fit has put the averages into the weights (use_ema): they stay, nothing to restore.
        if self._swapped_by == "epoch":
            self._stash, self._swapped_by = None, None

    def on_test_begin(self, logs=None):
        self._swap_in("test")

    def on_test_end(self, logs=None):
        self._swap_out("test")

    def on_predict_begin(self, logs=None):
        self._swap_in("predict")

    def on_predict_end(self, logs=None):
        self._swap_out("predict")


__all__ = ["SwapEMAWeights"]
