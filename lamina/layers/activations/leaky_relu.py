"""``LeakyReLU``: a ReLU with a small slope for negative inputs."""

from __future__ import annotations

import warnings

from lamina import activations
from lamina.layers.activations._elementwise import ElementwiseActivation
from lamina.saving.object_registry import register_builtin


@register_builtin
class LeakyReLU(ElementwiseActivation):
    """``x`` for ``x >= 0``, ``negative_slope * x`` otherwise, as ``keras.layers.LeakyReLU``
    (the deprecated ``alpha=`` is still accepted, with a warning, as in Keras).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.LeakyReLU(negative_slope=0.5)(jnp.array([-2.0, 3.0])).tolist()
        [-1.0, 3.0]
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn("LeakyReLU: argument `alpha` is deprecated; use `negative_slope` instead.", stacklevel=2)
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0:
            raise ValueError(
                f"LeakyReLU '{self.name}': negative_slope must be a non-negative number, got negative_slope="
                f"{negative_slope!r}."
            )
        self.negative_slope = negative_slope

    def call(self, inputs):
        return activations.leaky_relu(inputs, negative_slope=self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


__all__ = ["LeakyReLU"]
