"""``AlphaDropout``: dropout that keeps a self-normalizing network's mean and variance."""

from __future__ import annotations

from lamina import random
from lamina.layers.regularization._training_noise import TrainingNoise, check_rate
from lamina.saving.object_registry import register_builtin

# SELU's constants: a dropped unit takes SELU's negative saturation value -scale * alpha.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SATURATION = -_SELU_ALPHA * _SELU_SCALE


@register_builtin
class AlphaDropout(TrainingNoise):
    """In training, sets each unit with probability ``rate`` to SELU's negative saturation
    value ``alpha' = -1.7581`` and then applies the affine map ``a * x + b`` with
    ``a = ((1 - rate) * (1 + rate * alpha'**2)) ** -0.5`` and ``b = -a * alpha' * rate``, so a
    zero-mean, unit-variance input keeps its mean and variance; the identity at inference, as
    ``keras.layers.AlphaDropout``. ``noise_shape`` (``None`` entries take the input's size)
    shares one draw along its axes of size 1.

    Example:
        >>> import lamina as lm
        >>> drop = lm.layers.AlphaDropout(0.2, seed=0)
        >>> x = lm.random.normal((20_000,), seed=1)
        >>> y = drop(x, training=True)
        >>> abs(float(y.mean())) < 0.05, round(float(y.std()), 1)
        (True, 1.0)
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = check_rate(self, rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)

    def _active(self) -> bool:
        if self.rate == 1:
            raise ValueError(
                f"AlphaDropout '{self.path}': rate=1 drops every unit, which leaves no variance to "
                "rescale (the factor ((1 - rate) * (1 + rate * alpha**2)) ** -0.5 is infinite); use a rate below 1."
            )
        return self.rate > 0

    def _concrete_noise_shape(self, shape) -> tuple:
        if self.noise_shape is None:
            return tuple(shape)
        if len(self.noise_shape) != len(shape):
            raise ValueError(
                f"AlphaDropout '{self.path}': noise_shape {self.noise_shape} must have one entry per input "
                f"axis; the input has shape {tuple(shape)}."
            )
        return tuple(size if given is None else given for given, size in zip(self.noise_shape, shape))

    def _noisy(self, inputs):
        shape = self._concrete_noise_shape(inputs.shape)
        kept = (random.uniform(shape, seed=self.seed_generator) >= self.rate).astype(inputs.dtype)
        a = ((1 - self.rate) * (1 + self.rate * _SATURATION**2)) ** -0.5
        b = -a * _SATURATION * self.rate
        x = inputs * kept + _SATURATION * (1 - kept)
        return a * x + b

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed, "noise_shape": self.noise_shape}


__all__ = ["AlphaDropout"]
