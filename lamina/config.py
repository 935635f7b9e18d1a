"""``lm.config``: Keras 3's global settings (``keras.config``), for code ported from Keras.

Example:
    >>> import lamina as lm
    >>> lm.config.backend(), lm.config.floatx(), lm.config.image_data_format()
    ('jax', 'float32', 'channels_last')
    >>> lm.config.set_epsilon(1e-6)
    >>> lm.config.epsilon()
    1e-06
    >>> lm.config.set_epsilon(1e-7)

``max_epochs``, traceback filtering, flash attention and NNX switches of ``keras.config`` are
not here: lamina has no such switches (it does not filter tracebacks, and attention is
``jax.nn`` / XLA's choice).
"""

from __future__ import annotations

from lamina.core.settings import (
    epsilon,
    floatx,
    image_data_format,
    set_epsilon,
    set_floatx,
    set_image_data_format,
)
from lamina.mixed_precision.policy import dtype_policy, set_dtype_policy
from lamina.saving.safe_mode import enable_unsafe_deserialization
from lamina.utils.logging_control import (
    disable_interactive_logging,
    enable_interactive_logging,
    is_interactive_logging_enabled,
)


def backend() -> str:
    """The name of the backend: always ``"jax"``."""
    return "jax"


__all__ = [
    "backend",
    "disable_interactive_logging",
    "dtype_policy",
    "enable_interactive_logging",
    "enable_unsafe_deserialization",
    "epsilon",
    "floatx",
    "image_data_format",
    "is_interactive_logging_enabled",
    "set_dtype_policy",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
]
