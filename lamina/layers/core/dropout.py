"""``Dropout``: random zeroing during training, drawn from the layer's own seed generator."""

from __future__ import annotations

from lamina import random
from lamina.layers.call_context import context
from lamina.layers.layer import Layer
from lamina.layers.output_specs import OutputSpec, input_dtype_in_call
from lamina.saving.object_registry import register_builtin


@register_builtin
class Dropout(Layer):
    """Zeroes inputs with probability ``rate`` in training and scales the rest by
    ``1 / (1 - rate)``; the identity at inference, as ``keras.layers.Dropout``.

    Its ``SeedGenerator`` is layer state, so every compiled training step draws a new mask.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> drop = lm.layers.Dropout(0.5, seed=1)
        >>> bool((drop(jnp.ones((4,)), training=False) == 1).all())
        True
        >>> sorted(set(drop(jnp.ones((1000,)), training=True).tolist()))
        [0.0, 2.0]
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate <= 1:
            raise ValueError(f"Dropout '{self.name}': rate must be in [0, 1], got {rate!r}.")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self.seed_generator = random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if self.rate == 1:
            return inputs * 0
        return random.dropout(inputs, self.rate, noise_shape=self.noise_shape, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _lm_output_spec(self, shape, dtype):
        # lamina/layers/output_specs.py: outside training (a graph being built), call()
        # returns its input itself; inside an outer call in training mode it is traced.
        dtype = input_dtype_in_call(self, dtype)
        if dtype is None or context.training is not None:
            return None
        return OutputSpec(tuple(shape), dtype, returns_input=True)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}
