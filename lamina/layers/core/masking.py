"""``Masking``: marks the timesteps whose features all equal ``mask_value`` as padding."""

from __future__ import annotations

import math
import numbers

import jax.numpy as jnp

from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin


@register_builtin
class Masking(Layer):
    """Masks each timestep whose features all equal ``mask_value``, as ``keras.layers.Masking``.

    For an input ``(batch, timesteps, features)`` the output mask is
    ``any(inputs != mask_value, axis=-1)``: a step is skipped by the next layers that take
    ``mask`` (an ``LSTM``, ``GlobalAveragePooling1D``, ...) when all its features equal
    ``mask_value``. The output equals the input with the masked steps set to zero. A mask the
    input already had is replaced, as in Keras.

    Example:
        >>> import numpy as np, lamina as lm
        >>> x = np.array([[[1.0, 2.0], [0.0, 0.0], [3.0, 0.0]]])
        >>> layer = lm.layers.Masking(mask_value=0.0)
        >>> layer.compute_mask(x).tolist()
        [[True, False, True]]
        >>> lm.layers.LSTM(4)(layer(x)).shape
        (1, 4)
    """

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, numbers.Real) or math.isnan(mask_value):
            raise ValueError(f"Masking '{self.name}': mask_value must be a number (not NaN, which equals "
                             f"nothing); got mask_value={mask_value!r}.")
        # A plain Python number, so that the config is JSON (NumPy scalars are accepted too).
        self.mask_value = int(mask_value) if isinstance(mask_value, numbers.Integral) else float(mask_value)
        self.supports_masking = True
        self.built = True

    def _keep(self, inputs, keepdims):
        return jnp.any(jnp.not_equal(inputs, self.mask_value), axis=-1, keepdims=keepdims)

    def call(self, inputs):
        return inputs * self._keep(inputs, keepdims=True).astype(inputs.dtype)

    def compute_mask(self, inputs, mask=None):
        return self._keep(jnp.asarray(inputs), keepdims=False)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}


__all__ = ["Masking"]
