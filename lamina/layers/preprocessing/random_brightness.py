"""``RandomBrightness``: a random offset added to each image during training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import batch_shape, keras_factor, parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.saving.object_registry import register_builtin


@register_builtin
class RandomBrightness(ImageAugmentationLayer):
    """Shifts the brightness of each image by a random amount in training, as
    ``keras.layers.RandomBrightness``: every pixel of an image gets the same
    ``delta * (high - low)`` added, ``delta`` drawn uniformly in ``factor``, and the result is
    clipped to ``value_range = (low, high)``. ``delta = -1`` makes the image black, ``1`` white.

    ``factor``: a number ``f`` in ``[-1, 1]`` (``delta`` in ``(-f, f)``) or a pair
    ``(lower, upper)``. With ``training=False`` the images pass unchanged.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> brighter = lm.layers.RandomBrightness((0.1, 0.1), value_range=(0, 1))
        >>> brighter(jnp.array([[[0.2], [0.95]]]))[0, :, 0].tolist()
        [0.30000001192092896, 1.0]
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = keras_factor(factor, "factor", self._owner(), -1, 1)
        self.value_range = parse_value_range(value_range, self._owner())

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        low, high = self.factor
        delta = random.uniform(batch_shape(images, 1, 1, 1), low, high, seed=self._seed(seed))
        return {"rgb_delta": delta * (self.value_range[1] - self.value_range[0])}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images)
        if not training or transformation is None:
            return images
        images = images.astype(self.compute_dtype)
        delta = jnp.asarray(transformation["rgb_delta"]).astype(images.dtype)
        if images.ndim == 3:
            delta = jnp.reshape(delta, (1, 1, 1))
        return jnp.clip(images + delta, self.value_range[0], self.value_range[1])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}


__all__ = ["RandomBrightness"]
