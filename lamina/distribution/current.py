"""Which distribution is active: the innermost ``scope()`` of this thread, else the global one.

The bottom of lamina.distribution: it stores whatever it is given, and ``distributions.py``
(``set_distribution``, ``Distribution.scope``) checks what goes in.
"""

from __future__ import annotations

import threading

_global = None
_scopes = threading.local()
_scope_count = 0  # scopes open on all threads
_count_lock = threading.Lock()
# False while no distribution is set and no scope is open anywhere: Layer.__call__ reads this
# one module attribute instead of calling distribution() at every eager call.
in_use = False


def set_global(value) -> None:
    """Make ``value`` the global distribution (``set_distribution`` checks it first)."""
    global _global, in_use
    _global = value
    in_use = _global is not None or _scope_count > 0


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
    global _scope_count, in_use
    stack = getattr(_scopes, "stack", None)
    if stack is None:
        stack = _scopes.stack = []
    stack.append(value)
    with _count_lock:
        _scope_count += 1
        in_use = True


def pop(value) -> None:
    stack = _scopes.stack
    if not stack or stack[-1] is not value:
        raise RuntimeError("distribution scopes were exited out of order")
    stack.pop()
    global _scope_count, in_use
    with _count_lock:
        _scope_count -= 1
        in_use = _global is not None or _scope_count > 0
