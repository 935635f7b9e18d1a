"""Process-wide numeric settings that Keras 3 keeps in ``keras.config`` / ``keras.backend``:
the default float dtype, the fuzz factor ``epsilon`` and the default image data format.

This module holds the values only (it imports nothing from lamina), so that the low-level
modules that read them (dtype policies, losses, metrics, constraints, convolution arguments)
import no higher-level code; ``lm.config`` and ``lm.backend`` are the public faces. As in
Keras, the settings are read when a layer is made (``floatx``, ``image_data_format``) or when a
loss or metric is traced (``epsilon``): a compiled step keeps the value it was traced with.

Example:
    >>> from lamina.core import settings
    >>> settings.floatx(), settings.epsilon(), settings.image_data_format()
    ('float32', 1e-07, 'channels_last')
"""

from __future__ import annotations

import numbers

FLOATX_VALUES = ("bfloat16", "float16", "float32", "float64")
DATA_FORMATS = ("channels_last", "channels_first")

_values = {"floatx": "float32", "epsilon": 1e-7, "image_data_format": "channels_last"}


def floatx() -> str:
    """The default float dtype of new layers and variables (``"float32"``)."""
    return _values["floatx"]


def set_floatx(value) -> None:
    """Set the default float dtype: one of ``"bfloat16"``, ``"float16"``, ``"float32"``,
    ``"float64"`` (the last needs ``jax.config.update("jax_enable_x64", True)`` first).

    Layers made afterwards take it while no dtype policy was set
    (``lm.mixed_precision.set_dtype_policy``); Keras instead fixes its default policy at its
    first use, after which ``set_floatx`` no longer reaches new layers."""
    name = getattr(value, "name", None) or str(value)
    if name not in FLOATX_VALUES:
        raise ValueError(f"Unknown `floatx` value: {value!r}. Expected one of {list(FLOATX_VALUES)}.")
    if name == "float64":
        import jax  # noqa: PLC0415 - only this branch needs JAX's configuration

        if not jax.config.jax_enable_x64:
            raise ValueError(
                "set_floatx('float64'): JAX computes in 32 bits unless 64-bit mode is on, so the "
                "variables would silently be float32. Call jax.config.update('jax_enable_x64', True) "
                "first (before creating any arrays)."
            )
    _values["floatx"] = name


def epsilon() -> float:
    """The fuzz factor of losses and metrics (``1e-7``): probabilities are clipped to
    ``[epsilon, 1 - epsilon]`` and denominators get ``+ epsilon``."""
    return _values["epsilon"]


def set_epsilon(value) -> None:
    """Set the fuzz factor returned by ``epsilon()`` (a positive number)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"epsilon must be a positive number; got {value!r}.")
    _values["epsilon"] = float(value)


def image_data_format() -> str:
    """The data format image layers use when ``data_format=None``: ``"channels_last"``."""
    return _values["image_data_format"]


def set_image_data_format(data_format) -> None:
    """Set the default image data format: ``"channels_last"`` or ``"channels_first"``."""
    value = str(data_format).lower()
    if value not in DATA_FORMATS:
        raise ValueError(f"The `data_format` argument must be one of {set(DATA_FORMATS)}. Received: {data_format!r}")
    _values["image_data_format"] = value
