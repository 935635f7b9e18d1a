"""``RandomColorDegeneration``: images blended towards their grayscale form at random in training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import batch_shape, keras_factor, parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.color_space import channel_axis, rgb_to_grayscale
from lamina.saving.object_registry import register_builtin


@register_builtin
class RandomColorDegeneration(ImageAugmentationLayer):
    """Blends RGB images towards their grayscale version in training, as
    ``keras.layers.RandomColorDegeneration``: ``x + f * (gray - x)``, clipped to
    ``value_range``, with ``f`` drawn per image uniformly in ``factor`` (``f = 1``: fully gray;
    negative ``f`` pushes colours away from gray). ``factor``: a number ``f`` in ``[-1, 1]``
    (meaning ``(-f, f)``, as Keras reads it) or a pair. With ``training=False`` the images
    pass unchanged.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> fade = lm.layers.RandomColorDegeneration((1.0, 1.0))
        >>> [round(v, 2) for v in fade(jnp.array([[[10.0, 20.0, 30.0]]]))[0, 0].tolist()]
        [18.15, 18.15, 18.15]
    """

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = keras_factor(factor, "factor", self._owner(), -1, 1)
        self.value_range = parse_value_range(value_range, self._owner())

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"factor": (batch, 1, 1, 1)}``: how far each image moves towards gray."""
        if not training:
            return None
        return {"factor": random.uniform(batch_shape(images, 1, 1, 1), *self.factor, seed=self._seed(seed))}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images)
        if not training or transformation is None:
            return images
        images = images.astype(self.compute_dtype)
        factor = jnp.asarray(transformation["factor"], self.compute_dtype)
        if images.ndim == 3:
            factor = jnp.reshape(factor, (1, 1, 1))
        gray = rgb_to_grayscale(images, self.data_format, owner=f"{type(self).__name__} '{self.path}'")
        return jnp.clip(images + factor * (gray - images), self.value_range[0], self.value_range[1])

    def compute_output_shape(self, input_shape):
        channels = input_shape[channel_axis(self.data_format)]
        if channels is not None and channels != 3:
            raise ValueError(f"{type(self).__name__} '{self.path}': expected RGB images (3 channels, "
                             f"{self.data_format}), got input shape {tuple(input_shape)}.")
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}


__all__ = ["RandomColorDegeneration"]
