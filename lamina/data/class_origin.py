"""Whether an object comes from another library, asked without importing that library.

The tf.data / PyTorch / Grain adapters and ``ecosystem.py`` (which picks among them) share this
test; it lives apart so that the adapters need nothing from ``ecosystem.py``.
"""

from __future__ import annotations

import sys


def defined_in(obj, package: str, names: tuple[str, ...]) -> bool:
    """True when a class of ``obj``'s type (its MRO) named one of ``names`` comes from
    ``package`` (e.g. ``"torch"``), which must already be imported.

    Example:
        >>> defined_in([1], "torch", ("DataLoader",))
        False
    """
    if package not in sys.modules:
        return False
    return any(
        cls.__name__ in names and (cls.__module__ or "").split(".")[0] == package
        for cls in type(obj).__mro__
    )
