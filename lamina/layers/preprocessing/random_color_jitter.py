"""``RandomColorJitter``: random brightness, contrast, saturation and hue, one after another."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.preprocessing.augmentation_arguments import keys, parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.random_brightness import RandomBrightness
from lamina.layers.preprocessing.random_contrast import RandomContrast
from lamina.layers.preprocessing.random_hue import RandomHue
from lamina.layers.preprocessing.random_saturation import RandomSaturation
from lamina.saving.object_registry import register_builtin

_STEPS = (("brightness", RandomBrightness), ("contrast", RandomContrast), ("saturation", RandomSaturation),
          ("hue", RandomHue))


@register_builtin
class RandomColorJitter(ImageAugmentationLayer):
    """Applies ``RandomBrightness``, ``RandomContrast``, ``RandomSaturation`` and ``RandomHue``
    in this order in training, each with its factor (``brightness_factor``, ...; ``None``
    skips the step) and the shared ``value_range``, as ``keras.layers.RandomColorJitter``.
    With ``training=False`` the images pass unchanged.

    The transformation is a dict with one entry per step (that step's own transformation),
    all drawn from this layer's seed.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> jitter = lm.layers.RandomColorJitter(value_range=(0, 1), brightness_factor=(0.1, 0.1),
        ...                                      saturation_factor=(0.0, 0.0))
        >>> [round(v, 4) for v in jitter(jnp.array([[[0.2, 0.6, 0.4]]]))[0, 0].tolist()]
        [0.7, 0.7, 0.7]
    """

    def __init__(self, value_range=(0, 255), brightness_factor=None, contrast_factor=None, saturation_factor=None,
                 hue_factor=None, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.value_range = parse_value_range(value_range, self._owner(), keep=True)
        self.brightness_factor = brightness_factor
        self.contrast_factor = contrast_factor
        self.saturation_factor = saturation_factor
        self.hue_factor = hue_factor
        factors = {"brightness": brightness_factor, "contrast": contrast_factor, "saturation": saturation_factor,
                   "hue": hue_factor}
        dtype = kwargs.get("dtype")
        self.steps = {step: cls(factors[step], value_range=self.value_range, seed=seed, data_format=self.data_format,
                                dtype=dtype, name=f"{self.name}_{step}")
                      for step, cls in _STEPS if factors[step] is not None}

    def get_random_transformation(self, images, training=True, seed=None):
        """``{step: that step's transformation}`` for the steps configured."""
        if not training or not self.steps:
            return None
        step_keys = keys(self._seed(seed), len(self.steps))
        return {step: layer.get_random_transformation(images, training=True, seed=key)
                for (step, layer), key in zip(self.steps.items(), step_keys)}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images)
        if not training or not self.steps:
            return images
        if transformation is None:
            transformation = self.get_random_transformation(images)
        images = images.astype(self.compute_dtype)
        for step, layer in self.steps.items():
            images = layer.transform_images(images, transformation[step], training=True).astype(self.compute_dtype)
        return images

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range,
                "brightness_factor": _plain(self.brightness_factor), "contrast_factor": _plain(self.contrast_factor),
                "saturation_factor": _plain(self.saturation_factor), "hue_factor": _plain(self.hue_factor)}


def _plain(factor):
    """A factor as the config keeps it: a pair as a tuple (a JSON list read back compares equal)."""
    return tuple(factor) if isinstance(factor, list) else factor


__all__ = ["RandomColorJitter"]
