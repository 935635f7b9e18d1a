"""Which distribution is active: the innermost ``scope()`` of this thread, else the global one."""

from __future__ import annotations

import threading

_global = None
_scopes = threading.local()


def set_distribution(value) -> None:
    """Make ``value`` (a distribution, or ``None`` for none) the global distribution.

    Variables created afterwards are placed by it; ``with d.scope():`` overrides it inside.

    Example:
        >>> import lamina as lm
        >>> lm.distribution.set_distribution(lm.distribution.DataParallel())
        >>> type(lm.distribution.distribution()).__name__
        'DataParallel'
        >>> lm.distribution.set_distribution(None)
        >>> lm.distribution.distribution() is None
        True
    """
    from lamina.distribution.distributions import Distribution

    if value is not None and not isinstance(value, Distribution):
        raise TypeError(
            "set_distribution takes a DataParallel, ModelParallel or FSDP (or None); "
            f"got {value!r}."
        )
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
