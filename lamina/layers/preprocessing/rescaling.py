"""``Rescaling``: ``inputs * scale + offset``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin


def _json_number_or_list(value):
    """Scalars stay numbers; arrays (NumPy, JAX) become nested lists in the config."""
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        value = np.asarray(value)
        return value.item() if value.ndim == 0 else value.tolist()
    return value


@register_builtin
class Rescaling(Layer):
    """Multiplies inputs by ``scale`` and adds ``offset``, as ``keras.layers.Rescaling``
    (``scale`` and ``offset`` may be numbers or arrays that broadcast against the inputs,
    e.g. one value per channel). Integer inputs (images as ``uint8``) are cast to the
    layer's dtype first.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Rescaling(1 / 127.5, offset=-1)(jnp.array([0, 255], jnp.uint8)).tolist()
        [-1.0, 1.0]
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        dtype = self.dtype
        scale = jnp.asarray(self.scale, dtype)
        offset = jnp.asarray(self.offset, dtype)
        return inputs.astype(dtype) * scale + offset

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "scale": _json_number_or_list(self.scale),
                "offset": _json_number_or_list(self.offset)}


__all__ = ["Rescaling"]
