"""Optional dependencies of the exporters, imported only when a format needs them."""

from __future__ import annotations

import importlib


def require(module: str, extra: str, feature: str):
    """Import ``module``, or raise an ``ImportError`` naming the extra that installs it.

    Example:
        >>> require("json", "none", "reading JSON").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f'{feature} needs {module.split(".")[0]}, which is not installed: pip install "lamina[{extra}]".'
        ) from error
