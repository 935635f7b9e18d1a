"""``ELU``: the exponential linear unit as a layer."""

from __future__ import annotations

from lamina import activations
from lamina.layers.activations._elementwise import ElementwiseActivation
from lamina.saving.object_registry import register_builtin


@register_builtin
class ELU(ElementwiseActivation):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise, as ``keras.layers.ELU``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.ELU(alpha=2.0)(jnp.array([0.0, 3.0])).tolist()
        [0.0, 3.0]
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def call(self, inputs):
        return activations.elu(inputs, alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


__all__ = ["ELU"]
