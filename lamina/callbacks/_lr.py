"""Reading an optimizer's learning rate as a float (for the learning-rate callbacks)."""

from __future__ import annotations

import numpy as np


def get_learning_rate(optimizer):
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError('The model needs a compiled optimizer with a "learning_rate" attribute.')
    value = optimizer.learning_rate
    try:
        return float(np.asarray(value))
    except (TypeError, ValueError):
        raise TypeError(
            f"The optimizer's learning rate must be a float to be changed by a callback, got "
            f"{value!r} (a schedule already decides the rate itself).") from None


def optimizers_of(model):
    """The model's optimizer, or the optimizers inside a multi-optimizer (as Keras allows)."""
    optimizer = getattr(model, "optimizer", None)
    inner = getattr(optimizer, "optimizers", None)
    return list(inner) if isinstance(inner, (list, tuple)) else [optimizer]
