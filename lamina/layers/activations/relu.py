"""``ReLU``: the rectified linear unit as a layer, with Keras's threshold, cap and slope."""

from __future__ import annotations

from lamina import activations
from lamina.layers.activations._elementwise import ElementwiseActivation
from lamina.saving.object_registry import register_builtin


@register_builtin
class ReLU(ElementwiseActivation):
    """``max_value`` where ``x >= max_value``, ``x`` from ``threshold`` up,
    ``negative_slope * (x - threshold)`` below it, as ``keras.layers.ReLU``.

    ``max_value=None`` leaves the output uncapped; all three arguments must be non-negative.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.ReLU(max_value=6.0)(jnp.array([-1.0, 3.0, 9.0])).tolist()
        [0.0, 3.0, 6.0]
        >>> lm.layers.ReLU(negative_slope=0.5, threshold=1.0)(jnp.array([-1.0, 2.0])).tolist()
        [-1.0, 2.0]
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0.0:
            raise ValueError(f"ReLU '{self.name}': max_value cannot be negative, got max_value={max_value!r}.")
        if negative_slope is None or negative_slope < 0.0:
            raise ValueError(
                f"ReLU '{self.name}': negative_slope must be a non-negative number, got negative_slope="
                f"{negative_slope!r}."
            )
        if threshold is None or threshold < 0.0:
            raise ValueError(
                f"ReLU '{self.name}': threshold must be a non-negative number, got threshold={threshold!r}."
            )
        self.max_value = max_value
        self.negative_slope = negative_slope
        self.threshold = threshold

    def call(self, inputs):
        return activations.relu(inputs, negative_slope=self.negative_slope, max_value=self.max_value,
                                threshold=self.threshold)

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


__all__ = ["ReLU"]
