"""``GaussianNoise``: additive zero-mean normal noise during training."""

from __future__ import annotations

from lamina import random
from lamina.layers.regularization._training_noise import TrainingNoise
from lamina.saving.object_registry import register_builtin


@register_builtin
class GaussianNoise(TrainingNoise):
    """Adds normal noise of standard deviation ``stddev`` (in ``[0, 1]``, as Keras requires) in
    training; the identity at inference, as ``keras.layers.GaussianNoise``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> noise = lm.layers.GaussianNoise(0.1, seed=0)
        >>> bool((noise(jnp.ones((3,))) == 1).all())                  # inference
        True
        >>> noisy = noise(jnp.ones((10_000,)), training=True)
        >>> round(float(noisy.mean()), 1), round(float(noisy.std()), 1)
        (1.0, 0.1)
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float)) or not 0 <= stddev <= 1:
            raise ValueError(
                f"GaussianNoise '{self.name}': stddev must be a number in [0, 1], got stddev={stddev!r}."
            )
        self.stddev = stddev

    def _active(self) -> bool:
        return self.stddev > 0

    def _noisy(self, inputs):
        noise = random.normal(inputs.shape, mean=0.0, stddev=self.stddev, dtype=self.compute_dtype,
                              seed=self.seed_generator)
        return inputs + noise

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


__all__ = ["GaussianNoise"]
