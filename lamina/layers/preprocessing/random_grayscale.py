"""``RandomGrayscale``: images turned to grayscale (kept as RGB) with some probability in training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import batch_shape
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.color_space import rgb_to_grayscale
from lamina.saving.object_registry import register_builtin


@register_builtin
class RandomGrayscale(ImageAugmentationLayer):
    """Converts each image to grayscale with probability ``factor`` in training, as
    ``keras.layers.RandomGrayscale``: a converted image keeps its channels, each set to the
    luminance ``0.2989 R + 0.5870 G + 0.1140 B``. With ``training=False`` the images pass
    unchanged.

    The config also keeps ``seed`` (Keras 3.15 leaves it out, so a reloaded Keras layer
    forgets its seed).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> gray = lm.layers.RandomGrayscale(factor=1.0)
        >>> [round(v, 3) for v in gray(jnp.array([[[10.0, 20.0, 30.0]]]))[0, 0].tolist()]
        [18.149, 18.149, 18.149]
    """

    def __init__(self, factor=0.5, data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 <= factor <= 1:
            raise ValueError(f"{self._owner()}: `factor` must be a number in [0, 1] (the probability of "
                             f"converting an image), got {factor!r}.")
        self.factor = factor

    def get_random_transformation(self, images, training=True, seed=None):
        """A boolean per image, ``(batch, 1, 1, 1)``: convert it or not (as Keras's)."""
        if not training:
            return None
        return random.uniform(batch_shape(images, 1, 1, 1), seed=self._seed(seed)) < self.factor

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images)
        if not training:
            return images
        if transformation is None:
            transformation = self.get_random_transformation(images)
        apply = jnp.asarray(transformation)
        if images.ndim == 3:
            apply = jnp.reshape(apply, (1, 1, 1))
        gray = rgb_to_grayscale(images, self.data_format, owner=f"{type(self).__name__} '{self.path}'")
        return jnp.where(apply, gray, images)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


__all__ = ["RandomGrayscale"]
