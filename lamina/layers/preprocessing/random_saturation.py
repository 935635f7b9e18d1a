"""``RandomSaturation``: each image's colour saturation scaled at random during training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import batch_shape, keras_factor, parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.color_space import channel_axis, hsv_to_rgb, rgb_to_hsv
from lamina.saving.object_registry import register_builtin

EPSILON = 1e-7  # Keras's backend epsilon, in the factor's denominator


@register_builtin
class RandomSaturation(ImageAugmentationLayer):
    """Scales the saturation of RGB images by a random amount in training, as
    ``keras.layers.RandomSaturation``.

    Per image, ``f`` is drawn uniformly in ``factor`` and the saturation (of the HSV form) is
    multiplied by ``f / (1 - f)``: ``f = 0.5`` leaves the image as it is, ``f = 0`` (or below)
    makes it gray, ``f`` near 1 fully saturated. ``factor``: a number ``f`` in ``[-1, 1]``
    (meaning ``(-f, f)``, as Keras reads it) or a pair. The scaled saturation is clipped to
    ``value_range``, as Keras does. With ``training=False`` the images pass unchanged.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> gray = lm.layers.RandomSaturation((0.0, 0.0))
        >>> gray(jnp.array([[[0.2, 0.6, 0.4]]]))[0, 0].tolist()
        [0.6000000238418579, 0.6000000238418579, 0.6000000238418579]
    """

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = keras_factor(factor, "factor", self._owner(), -1, 1)
        self.value_range = parse_value_range(value_range, self._owner())

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"factor": (batch,)}``: the multiplier of the saturation."""
        if not training:
            return None
        factor = random.uniform(batch_shape(images), *self.factor, seed=self._seed(seed))
        return {"factor": factor / (1 - factor + EPSILON)}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images)
        if not training or transformation is None:
            return images
        factors = jnp.reshape(jnp.asarray(transformation["factor"], self.compute_dtype), (-1, 1, 1))
        axis = channel_axis(self.data_format)

        def saturate(batch):
            hsv = rgb_to_hsv(batch.astype(self.compute_dtype), self.data_format)
            hue, saturation, value = (jnp.take(hsv, i, axis=axis) for i in range(3))
            saturation = jnp.clip(saturation * factors, self.value_range[0], self.value_range[1])
            return hsv_to_rgb(jnp.stack([hue, saturation, value], axis=axis), self.data_format)

        return self._on_batch(images, saturate)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}


__all__ = ["RandomSaturation"]
