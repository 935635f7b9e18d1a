"""Turning logs (values that may be JAX arrays on the device) into Python floats.

Only epoch-level logs go through here: converting forces the host to wait for the device,
which is fine once per epoch and too costly once per step.
"""

from __future__ import annotations

import jax
import numpy as np


def to_python_logs(logs):
    """A new flat dict with scalar values as Python floats, fetched in one transfer.

    Nested dicts are flattened (as Keras does); values that are not scalars (arrays with more
    than one element, strings, ...) are kept, JAX arrays as NumPy arrays.
    """
    flat = {}
    _flatten(logs or {}, flat)
    on_device = [key for key, value in flat.items() if isinstance(value, jax.Array)]
    if on_device:
        fetched = jax.device_get([flat[key] for key in on_device])
        flat.update(zip(on_device, fetched))
    for key, value in flat.items():
        flat[key] = to_float(value)
    return flat


def flatten_logs(logs):
    """``logs`` with nested dicts flattened into one level (Keras's rule: an inner key
    stands for itself); values untouched, so it is free on the device and inside a trace.
    Anything that is not a dict is returned as is.

    Example:
        >>> flatten_logs({"loss": 1.0, "compile_metrics": {"mae": 0.5}})
        {'loss': 1.0, 'mae': 0.5}
    """
    if not isinstance(logs, dict):
        return logs
    flat = {}
    _flatten(logs, flat)
    return flat


def to_float(value):
    """``float(value)`` for numbers and one-element arrays; anything else unchanged."""
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, np.ndarray) and value.size != 1:
        return value
    try:
        return float(np.asarray(value).reshape(())) if isinstance(value, np.ndarray) else float(value)
    except (TypeError, ValueError):
        return value


def _flatten(logs, out):
    for key, value in logs.items():
        if isinstance(value, dict):
            _flatten(value, out)
        else:
            out[key] = value
