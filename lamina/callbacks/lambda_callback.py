"""``LambdaCallback``: a callback made of plain functions."""

from __future__ import annotations

from lamina.callbacks.callback import Callback

_HOOKS = frozenset(name for name in vars(Callback) if name.startswith("on_"))


class LambdaCallback(Callback):
    """A callback whose hooks are the functions given (the others stay no-ops).

    Functions take the hook's arguments: ``on_epoch_begin(epoch, logs)``,
    ``on_train_begin(logs)``, ``on_train_batch_end(batch, logs)``, ...; any hook of
    ``Callback`` can be given by name as a keyword (``on_test_end=...``). Giving a batch hook
    makes ``fit`` run one step per compiled call, so that the function sees every step.

    Example:
        >>> seen = []
        >>> callback = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(logs["loss"]))
        >>> callback.on_epoch_end(0, {"loss": 0.5})
        >>> seen
        [0.5]

    In training: ``model.fit(..., callbacks=[LambdaCallback(on_train_end=lambda logs: ...)])``.
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        unknown = sorted(set(kwargs) - _HOOKS)
        if unknown:
            raise ValueError(f"LambdaCallback: unknown hook(s) {unknown}; hooks are {sorted(_HOOKS)}.")
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, function in hooks.items():
            if function is not None:
                setattr(self, name, function)
