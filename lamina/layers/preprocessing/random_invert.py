"""``RandomInvert``: image colours inverted at random during training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import batch_shape, keras_factor, keys, parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.saving.object_registry import register_builtin


@register_builtin
class RandomInvert(ImageAugmentationLayer):
    """Inverts the colours of some images in training, as ``keras.layers.RandomInvert``: an
    inverted pixel ``x`` becomes ``high - x`` (``value_range = (low, high)``).

    Each image draws a probability ``p`` uniformly in ``factor`` (a number ``f`` in ``[0, 1]``
    means ``(0, f)``) and is inverted with probability ``p``; the default ``factor=1.0``
    inverts half the images on average. With ``training=False`` the images pass unchanged.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> invert = lm.layers.RandomInvert(factor=(1.0, 1.0), value_range=(0, 1))
        >>> invert(jnp.array([[[0.25], [1.0]]]))[0, :, 0].tolist()
        [0.75, 0.0]
    """

    def __init__(self, factor=1.0, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = keras_factor(factor, "factor", self._owner(), 0, 1)
        self.value_range = parse_value_range(value_range, self._owner(), keep=True)

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"apply_inversion": bool[batch]}``, as Keras's."""
        if not training:
            return None
        probability_key, threshold_key = keys(self._seed(seed), 2)
        probability = random.uniform(batch_shape(images), *self.factor, seed=probability_key)
        return {"apply_inversion": random.uniform(batch_shape(images), seed=threshold_key) < probability}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images)
        if not training or transformation is None:
            return images
        images = images.astype(self.compute_dtype)
        apply = jnp.reshape(jnp.asarray(transformation["apply_inversion"]), (-1, 1, 1, 1))
        if images.ndim == 3:
            apply = apply[0]
        return jnp.where(apply, self.value_range[1] - images, images)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}


__all__ = ["RandomInvert"]
