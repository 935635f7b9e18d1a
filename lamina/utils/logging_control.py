"""Keras's interactive-logging switch: ``enable_interactive_logging``,
``disable_interactive_logging``, ``is_interactive_logging_enabled`` and ``print_msg``.

Interactive logging (the default) writes progress bars, ``summary()`` and the dataset
utilities' messages to standard output. Disabled, each message goes to the ``"lamina"``
logger at INFO level instead, one record per finished line (no live redraws), as Keras
sends them to ``absl.logging``: the choice for jobs whose output is a log file.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["disable_interactive_logging", "enable_interactive_logging",
           "is_interactive_logging_enabled", "print_msg"]

_state = {"interactive": True}
logger = logging.getLogger("lamina")


def enable_interactive_logging() -> None:
    """Write lamina's messages and progress bars to standard output (the default).

    Example:
        >>> import lamina as lm
        >>> lm.utils.enable_interactive_logging()
        >>> lm.utils.is_interactive_logging_enabled()
        True
    """
    _state["interactive"] = True


def disable_interactive_logging() -> None:
    """Send lamina's messages and progress lines to the ``"lamina"`` logger (INFO) instead.

    Example:
        >>> import lamina as lm
        >>> lm.utils.disable_interactive_logging()
        >>> lm.utils.is_interactive_logging_enabled()
        False
        >>> lm.utils.enable_interactive_logging()
    """
    _state["interactive"] = False


def is_interactive_logging_enabled() -> bool:
    """Whether messages go to standard output (True) or to the ``"lamina"`` logger."""
    return _state["interactive"]


def print_msg(message, line_break=True) -> None:
    """Print ``message`` to standard output, or log it when interactive logging is off.

    Example:
        >>> print_msg("Found 3 files.")
        Found 3 files.
    """
    message = str(message)
    if not _state["interactive"]:
        logger.info(message)
        return
    sys.stdout.write(f"{message}\n" if line_break else message)
    sys.stdout.flush()
