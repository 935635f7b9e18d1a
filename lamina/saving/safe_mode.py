"""``safe_mode``: while a file is loaded with ``safe_mode=True``, configs that would call code
(Lambda layers) are refused.

lamina never stores code in a file, so even unsafe loading only calls functions the running
program registered; safe mode refuses those too, because a file should not choose which of a
program's functions run.
"""

from __future__ import annotations

import contextlib
import threading

_state = threading.local()
_unsafe_everywhere = {"on": False}  # lm.config.enable_unsafe_deserialization()


def in_safe_mode() -> bool:
    """True inside ``lm.load_model(..., safe_mode=True)`` (and ``safe_mode_scope(True)``),
    unless ``enable_unsafe_deserialization()`` turned safe mode off for the process."""
    return getattr(_state, "safe", False) and not _unsafe_everywhere["on"]


def enable_unsafe_deserialization() -> None:
    """Turn safe mode off for every later load in this process, as
    ``keras.config.enable_unsafe_deserialization()``: ``load_model`` then accepts Lambda
    layers (whose functions the program must still register; a file never carries code)
    without ``safe_mode=False``."""
    _unsafe_everywhere["on"] = True


@contextlib.contextmanager
def safe_mode_scope(safe: bool):
    previous = in_safe_mode()
    _state.safe = bool(safe)
    try:
        yield
    finally:
        _state.safe = previous


def refuse_code(what: str) -> None:
    """Raise if safe mode is on: ``what`` (e.g. "Lambda layer 'square'") would run a function."""
    if in_safe_mode():
        raise ValueError(
            f"Refusing to load {what}: it calls a Python function, and this file is being loaded "
            "with safe_mode=True. If you trust the file, load it with safe_mode=False (its "
            "functions must still be registered in your program; a file never carries code)."
        )
