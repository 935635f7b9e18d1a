"""``GaussianDropout``: multiplicative one-centred normal noise during training."""

from __future__ import annotations

import math

from lamina import random
from lamina.layers.regularization._training_noise import TrainingNoise, check_rate
from lamina.saving.object_registry import register_builtin


@register_builtin
class GaussianDropout(TrainingNoise):
    """Multiplies the input by normal noise of mean 1 and standard deviation
    ``sqrt(rate / (1 - rate))`` in training (so the mean is kept, and the variance matches
    ``Dropout(rate)``'s); the identity at inference, as ``keras.layers.GaussianDropout``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> drop = lm.layers.GaussianDropout(0.2, seed=0)           # noise stddev 0.5
        >>> noisy = drop(jnp.full((10_000,), 2.0), training=True)
        >>> round(float(noisy.mean()), 1), round(float(noisy.std()), 1)
        (2.0, 1.0)
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = check_rate(self, rate)

    def _active(self) -> bool:
        if self.rate == 1:
            raise ValueError(
                f"GaussianDropout '{self.path}': rate=1 makes the noise's standard deviation "
                "sqrt(rate / (1 - rate)) infinite; use a rate below 1."
            )
        return self.rate > 0

    def _noisy(self, inputs):
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        noise = random.normal(inputs.shape, mean=1.0, stddev=stddev, dtype=self.compute_dtype,
                              seed=self.seed_generator)
        return inputs * noise

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


__all__ = ["GaussianDropout"]
