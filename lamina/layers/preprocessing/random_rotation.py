"""``RandomRotation``: images rotated by a random angle about their centre during training."""

from __future__ import annotations

from lamina import random
from lamina.layers.preprocessing.affine_augmentation import AffineAugmentationLayer
from lamina.layers.preprocessing.base_image_augmentation import json_factor, parse_factor
from lamina.layers.preprocessing.image_transform import rotation_transforms
from lamina.saving.object_registry import register_builtin


@register_builtin
class RandomRotation(AffineAugmentationLayer):
    """Rotates each image by a random angle in training, as ``keras.layers.RandomRotation``.

    ``factor`` is a fraction of a full turn: ``0.1`` draws angles in ``[-36, 36]`` degrees,
    ``(-0.1, 0.2)`` in ``[-36, 72]`` (positive: counter-clockwise). Points that fall outside the
    image are filled by ``fill_mode`` (``"reflect"``, the default, ``"wrap"``, ``"nearest"``
    or ``"constant"`` with ``fill_value``); ``interpolation`` is ``"bilinear"`` or
    ``"nearest"``. With ``training=False`` the images pass unchanged (cast to the layer's dtype).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> rotate = lm.layers.RandomRotation((0.25, 0.25), interpolation="nearest")  # always 90 degrees
        >>> image = jnp.arange(4.0).reshape(2, 2, 1)
        >>> rotate(image)[..., 0].tolist()
        [[1.0, 3.0], [0.0, 2.0]]
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed, fill_value=fill_value,
                         data_format=data_format, **kwargs)
        self.factor = parse_factor(factor, "factor", self._owner(), -1.0, 1.0)

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        batch, _, _ = self._sizes(images.shape)
        lower, upper = self.factor
        return {"angle": random.uniform((batch,), lower * 360.0, upper * 360.0, seed=self._seed(seed))}

    def _transforms(self, transformation, height, width):
        return rotation_transforms(transformation["angle"], height, width)

    def get_config(self):
        return {**super().get_config(), "factor": json_factor(self.factor)}


__all__ = ["RandomRotation"]
