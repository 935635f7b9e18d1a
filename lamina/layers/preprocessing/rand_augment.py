"""``RandAugment``: ``num_ops`` augmentations picked at random from a fixed list, in training."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import keras_factor, keys, parse_value_range
from lamina.layers.preprocessing.auto_contrast import AutoContrast
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.equalization import Equalization
from lamina.layers.preprocessing.image_transform import INTERPOLATIONS
from lamina.layers.preprocessing.random_brightness import RandomBrightness
from lamina.layers.preprocessing.random_color_degeneration import RandomColorDegeneration
from lamina.layers.preprocessing.random_contrast import RandomContrast
from lamina.layers.preprocessing.random_posterization import RandomPosterization
from lamina.layers.preprocessing.random_rotation import RandomRotation
from lamina.layers.preprocessing.random_sharpness import RandomSharpness
from lamina.layers.preprocessing.random_shear import RandomShear
from lamina.layers.preprocessing.random_translation import RandomTranslation
from lamina.layers.preprocessing.solarization import Solarization
from lamina.saving.object_registry import register_builtin

# Keras's list and order: a drawn index names the same operation in both libraries.
OPERATIONS = ("random_shear", "random_translation", "random_rotation", "random_brightness",
              "random_color_degeneration", "random_contrast", "random_sharpness", "random_posterization",
              "solarization", "auto_contrast", "equalization")


def augmentation_operations(factor, value_range, interpolation, data_format, dtype, names=OPERATIONS):
    """The operations RandAugment and AugMix pick from, each at strength ``factor = (0, f)``
    (posterization keeps ``max(1, int(8 f))`` bits at most), as Keras builds them. Their own
    seed generators stay unused (seed 0, so building them draws nothing from the global
    stream): the owner draws every transformation from its generator."""
    common = {"data_format": data_format, "dtype": dtype, "seed": 0}
    makers = {
        "random_shear": lambda: RandomShear(factor, factor, interpolation=interpolation, **common),
        "random_translation": lambda: RandomTranslation(factor, factor, interpolation=interpolation, **common),
        "random_rotation": lambda: RandomRotation(factor, interpolation=interpolation, **common),
        "random_brightness": lambda: RandomBrightness(factor, value_range=value_range, **common),
        "random_color_degeneration": lambda: RandomColorDegeneration(factor, value_range=value_range, **common),
        "random_contrast": lambda: RandomContrast(factor, value_range=value_range, **common),
        "random_sharpness": lambda: RandomSharpness(factor, value_range=value_range, **common),
        "random_posterization": lambda: RandomPosterization(max(1, int(8 * factor[1])), value_range=value_range,
                                                            **common),
        "solarization": lambda: Solarization(factor, factor, value_range=value_range, **common),
        "auto_contrast": lambda: AutoContrast(value_range=value_range, data_format=data_format, dtype=dtype),
        "equalization": lambda: Equalization(value_range=value_range, data_format=data_format, dtype=dtype),
    }
    return {name: makers[name]() for name in names}


@register_builtin
class RandAugment(ImageAugmentationLayer):
    """RandAugment (Cubuk et al., 2019) in training, as ``keras.layers.RandAugment``: ``num_ops``
    times in a row, one of eleven operations (shear, translation, rotation, brightness, colour
    degeneration, contrast, sharpness, posterization, solarization, auto-contrast,
    equalization) is drawn uniformly (the same one for the whole batch) and applied.

    Every operation draws its own parameters at strength ``factor`` (a number ``f`` in
    ``[0, 1]`` means ``(0, f)``), once per call; ``value_range`` is the images' range and
    ``interpolation`` is used by the geometric operations. Only the drawn operations run
    (``jax.lax.switch``); with ``training=False`` the images pass unchanged (cast to the
    layer's dtype).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> augment = lm.layers.RandAugment(value_range=(0, 1), num_ops=2, seed=0)
        >>> images = jnp.linspace(0, 1, 2 * 8 * 8 * 3).reshape(2, 8, 8, 3)
        >>> augment(images).shape, bool(jnp.all(augment(images, training=False) == images))
        ((2, 8, 8, 3), True)
    """

    def __init__(self, value_range=(0, 255), num_ops=2, factor=0.5, interpolation="bilinear", seed=None,
                 data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.value_range = parse_value_range(value_range, self._owner(), keep=True)
        if isinstance(num_ops, bool) or not isinstance(num_ops, int) or num_ops < 0:
            raise ValueError(f"{self._owner()}: `num_ops` must be an int >= 0, got {num_ops!r}.")
        self.num_ops = num_ops
        self.factor = keras_factor(factor, "factor", self._owner(), 0, 1)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"{self._owner()}: `interpolation` must be one of {tuple(INTERPOLATIONS)}, "
                             f"got {interpolation!r}.")
        self.interpolation = interpolation
        self.operations = augmentation_operations(self.factor, self.value_range, interpolation,
                                                  self.data_format, kwargs.get("dtype"))

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"transforms": {operation: its transformation}, "layer_idxes": int (num_ops,)}``,
        as Keras's (indices into ``OPERATIONS``)."""
        if not training:
            return None
        index_key, *operation_keys = keys(self._seed(seed), 1 + len(self.operations))
        indices = random.randint((self.num_ops,), 0, len(self.operations), seed=index_key)
        transforms = {name: layer.get_random_transformation(images, training=True, seed=key)
                      for (name, layer), key in zip(self.operations.items(), operation_keys)}
        return {"transforms": transforms, "layer_idxes": indices}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images).astype(self.compute_dtype)
        if not training or transformation is None:
            return images
        transforms = transformation["transforms"]
        branches = [self._branch(layer, transforms[name]) for name, layer in self.operations.items()]

        def apply(x, index):
            return jax.lax.switch(index, branches, x), None

        # One scan over the picks: each operation is traced (and compiled) once, not num_ops times.
        return jax.lax.scan(apply, images, jnp.asarray(transformation["layer_idxes"]))[0]

    def _branch(self, layer, transformation):
        dtype = self.compute_dtype
        return lambda images: layer.transform_images(images, transformation, training=True).astype(dtype)

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range, "num_ops": self.num_ops,
                "factor": self.factor, "interpolation": self.interpolation}


__all__ = ["OPERATIONS", "RandAugment", "augmentation_operations"]
