"""``RandomPosterization``: each image's colours reduced to a random number of bits in training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import batch_shape, keras_factor, parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.color_space import rescale
from lamina.saving.object_registry import register_builtin

_BITS = 8


@register_builtin
class RandomPosterization(ImageAugmentationLayer):
    """Keeps only the ``b`` highest bits of each 8-bit colour value in training, as
    ``keras.layers.RandomPosterization`` (images are mapped from ``value_range`` to
    ``[0, 255]``, truncated to integers, posterized and mapped back).

    ``factor``: the bits to keep, an int ``b`` in ``[1, 8]`` (meaning ``(1, b)``) or a pair
    ``(lower, upper)``; each image draws ``b`` uniformly among ``lower, ..., upper``. (Keras
    3.15 never draws ``upper`` itself, an exclusive bound it does not document.) With
    ``training=False`` the images pass unchanged.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> two_bits = lm.layers.RandomPosterization((2, 2))
        >>> two_bits(jnp.array([[[30.0], [100.0], [250.0]]]))[0, :, 0].tolist()
        [0.0, 64.0, 192.0]
    """

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = keras_factor(factor, "factor", self._owner(), 1, _BITS)
        self.value_range = parse_value_range(value_range, self._owner())

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"shift_factor": uint8 (batch,)}``: the low bits each image drops (8 - b)."""
        if not training:
            return None
        lower, upper = (int(v) for v in self.factor)
        if lower == upper:
            bits = jnp.full(batch_shape(images), lower, jnp.uint8)
        else:
            bits = random.randint(batch_shape(images), lower, upper + 1, dtype="uint8", seed=self._seed(seed))
        return {"shift_factor": (_BITS - bits).astype(jnp.uint8)}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images)
        if not training or transformation is None:
            return images
        dtype = self.compute_dtype
        shift = jnp.reshape(jnp.asarray(transformation["shift_factor"], jnp.uint8), (-1, 1, 1, 1))
        if images.ndim == 3:
            shift = shift[0]
        values = rescale(images, self.value_range, (0, 255), dtype).astype(jnp.uint8)
        values = jnp.left_shift(jnp.right_shift(values, shift), shift)
        return rescale(values.astype(dtype), (0, 255), self.value_range, dtype)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}


__all__ = ["RandomPosterization"]
