"""``RandomTranslation``: images shifted by a random offset during training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.affine_augmentation import AffineAugmentationLayer
from lamina.layers.preprocessing.base_image_augmentation import json_factor, parse_factor
from lamina.layers.preprocessing.image_transform import translation_transforms
from lamina.saving.object_registry import register_builtin


@register_builtin
class RandomTranslation(AffineAugmentationLayer):
    """Shifts each image by a random offset in training, as ``keras.layers.RandomTranslation``.

    ``height_factor`` and ``width_factor`` are fractions of the image's height and width (a
    number ``f`` for ``(-f, f)``, or a pair ``(lower, upper)``, each in ``[-1, 1]``): the
    vertical shift is ``u * height`` pixels with ``u`` uniform in ``[lower, upper]`` (positive:
    down), the horizontal one likewise (positive: right). ``fill_mode``, ``interpolation`` and
    ``fill_value`` as in ``RandomRotation``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> shift = lm.layers.RandomTranslation(0.0, (0.25, 0.25), fill_mode="constant")  # 1 pixel right
        >>> shift(jnp.array([[[1.0], [2.0], [3.0], [4.0]]]))[0, :, 0].tolist()
        [0.0, 1.0, 2.0, 3.0]
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed, fill_value=fill_value,
                         data_format=data_format, **kwargs)
        owner = self._owner()
        self.height_factor = json_factor(height_factor)
        self.height_lower, self.height_upper = parse_factor(height_factor, "height_factor", owner, -1.0, 1.0)
        self.width_factor = json_factor(width_factor)
        self.width_lower, self.width_upper = parse_factor(width_factor, "width_factor", owner, -1.0, 1.0)

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        batch, height, width = self._sizes(images.shape)
        seed = self._seed(seed)
        dy = random.uniform((batch, 1), self.height_lower, self.height_upper, seed=seed) * height
        dx = random.uniform((batch, 1), self.width_lower, self.width_upper, seed=seed) * width
        return {"translations": jnp.concatenate([dx, dy], axis=1)}

    def _transforms(self, transformation, height, width):
        return translation_transforms(transformation["translations"])

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


__all__ = ["RandomTranslation"]
