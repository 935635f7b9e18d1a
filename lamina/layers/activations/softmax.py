"""``Softmax``: the softmax as a layer, over one or several axes, with an optional mask."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina import activations
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin


def _large_negative(dtype) -> float:
    # -1e9 overflows float16 (max 65504): Keras uses -3e4 there, so exp() still gives 0.
    return -3e4 if jnp.dtype(dtype) == jnp.float16 else -1e9


@register_builtin
class Softmax(Layer):
    """``exp(x) / sum(exp(x))`` along ``axis`` (an int, or a list of ints to normalize over
    several axes together), as ``keras.layers.Softmax``.

    ``mask`` (given, or carried by the input from an earlier layer) is broadcastable to the
    input, ``True``/1 to keep: masked positions get probability 0 and the kept ones sum to 1
    (a row masked entirely gives zeros). In half precision the sum is taken in float32.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> softmax = lm.layers.Softmax()
        >>> softmax(jnp.array([[0.0, 0.0, 5.0]]), mask=jnp.array([[True, True, False]])).tolist()
        [[0.5, 0.5, 0.0]]
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            axis = list(axis)  # the form a saved config gives back
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in (axis if isinstance(axis, list) else [axis])):
            raise TypeError(f"Softmax '{self.name}': axis must be an int or a list of ints, got {axis!r}.")
        self.axis = axis
        self.supports_masking = True
        self.built = True

    def call(self, inputs, mask=None):
        if mask is not None:
            mask = self._broadcastable_mask(inputs, jnp.asarray(mask))
            inputs = jnp.where(mask, inputs, jnp.asarray(_large_negative(inputs.dtype), inputs.dtype))
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        outputs = activations.softmax(inputs, axis=axis)
        if mask is not None:
            outputs = jnp.where(mask, outputs, jnp.zeros((), outputs.dtype))
        return outputs

    def _broadcastable_mask(self, inputs, mask) -> jax.Array:
        """``mask`` as booleans (a number keeps where it is above 0.5, as in Keras), after
        checking that it broadcasts to ``inputs`` without growing them."""
        fits = mask.ndim <= inputs.ndim and all(
            m in (1, i) for m, i in zip(mask.shape[::-1], inputs.shape[::-1]))
        if not fits:
            raise ValueError(
                f"Softmax '{self.path}': the mask must broadcast to the inputs, each of its axes of size 1 or "
                f"the input's (counted from the last), with no more axes than the inputs; got inputs of shape "
                f"{tuple(inputs.shape)} and a mask of shape {tuple(mask.shape)}."
            )
        return mask if mask.dtype == jnp.bool_ else mask > 0.5

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


__all__ = ["Softmax"]
