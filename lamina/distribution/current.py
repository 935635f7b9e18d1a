"""Which distribution is active: the innermost ``scope()`` of this thread, else the global one.

The bottom of lamina.distribution: it stores whatever it is given, and ``distributions.py``
(``set_distribution``, ``Distribution.scope``) checks what goes in.
"""

from __future__ import annotations

import threading

_global = None
_scopes = threading.local()


def set_global(value) -> None:
    """Make ``value`` the global distribution (``set_distribution`` checks it first)."""
    global _global
    _global = value


def distribution():
    """The active distribution: the innermost ``scope()`` on this thread, else the global one.

    Example:
        >>> import lamina as lm
        >>> dp = lm.distribution.DataParallel()
        >>> with dp.scope():
        ...     lm.distribution.distribution() is dp
        True
        >>> lm.distribution.distribution() is None
        True
    """
    stack = getattr(_scopes, "stack", None)
    if stack:
        return stack[-1]
    return _global


def push(value) -> None:
    stack = getattr(_scopes, "stack", None)
    if stack is None:
        stack = _scopes.stack = []
    stack.append(value)


def pop(value) -> None:
    stack = _scopes.stack
    if not stack or stack[-1] is not value:
        raise RuntimeError("distribution scopes were exited out of order")
    stack.pop()
