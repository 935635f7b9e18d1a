"""``RandomHue``: each image's hue rotated by a random amount during training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import batch_shape, keras_factor, keys, parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.color_space import channel_axis, hsv_to_rgb, rescale, rgb_to_hsv
from lamina.saving.object_registry import register_builtin


@register_builtin
class RandomHue(ImageAugmentationLayer):
    """Shifts the hue of RGB images by a random amount in training, as
    ``keras.layers.RandomHue``.

    Per image, ``f`` is drawn uniformly in ``factor`` (a number ``f`` in ``[0, 1]`` means
    ``(0, f)``) and a random sign; the hue (in ``[0, 1)``, a full turn) moves by ``±f / 2``,
    so ``factor=1.0`` reaches the opposite colours. With ``training=False`` the images pass
    unchanged.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> hue = lm.layers.RandomHue(1.0, value_range=(0, 1))
        >>> red = jnp.array([[[1.0, 0.0, 0.0]]])
        >>> hue.transform_images(red, {"factor": jnp.array([0.5])})[0, 0].tolist()   # half a turn: cyan
        [0.0, 1.0, 1.0]
    """

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = keras_factor(factor, "factor", self._owner(), 0, 1)
        self.value_range = parse_value_range(value_range, self._owner(), keep=True)

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"factor": (batch,)}``: the hue shift, a fraction of a turn."""
        if not training:
            return None
        sign_key, factor_key = keys(self._seed(seed), 2)
        sign = jnp.where(random.uniform(batch_shape(images), seed=sign_key) > 0.5, -1.0, 1.0)
        factor = random.uniform(batch_shape(images), *self.factor, seed=factor_key)
        return {"factor": sign * factor * 0.5}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images)
        if not training or transformation is None:
            return images
        dtype = self.compute_dtype
        shifts = jnp.reshape(jnp.asarray(transformation["factor"], dtype), (-1, 1, 1))
        axis = channel_axis(self.data_format)

        def shift_hue(batch):
            batch = rescale(batch.astype(dtype), self.value_range, (0, 1), dtype)
            hsv = rgb_to_hsv(batch, self.data_format)
            hue, saturation, value = (jnp.take(hsv, i, axis=axis) for i in range(3))
            hue = hue + shifts
            hue = jnp.where(hue > 1.0, hue - 1.0, hue)
            hue = jnp.where(hue < 0.0, hue + 1.0, hue)
            rgb = jnp.clip(hsv_to_rgb(jnp.stack([hue, saturation, value], axis=axis), self.data_format), 0, 1)
            return rescale(rgb, (0, 1), self.value_range, dtype).astype(dtype)

        return self._on_batch(images, shift_hue)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}


__all__ = ["RandomHue"]
