"""``RandomSharpness``: images sharpened or blurred by a random amount during training."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import batch_shape, keras_factor, parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.saving.object_registry import register_builtin

# The smoothing filter of PIL's ImageEnhance.Sharpness (and Keras's): centre 5/13, others 1/13.
_EDGE, _CENTRE = 1.0 / 13.0, 5.0 / 13.0


def smooth(images):
    """``images`` (a channels-last batch) through the 3 x 3 smoothing filter, zero-padded."""
    channels = images.shape[-1]
    kernel = jnp.full((3, 3), _EDGE, images.dtype).at[1, 1].set(_CENTRE)
    kernel = jnp.tile(kernel[:, :, None, None], (1, 1, 1, channels))
    return jax.lax.conv_general_dilated(images, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        feature_group_count=channels)


@register_builtin
class RandomSharpness(ImageAugmentationLayer):
    """Changes the sharpness of images by a random amount in training, as
    ``keras.layers.RandomSharpness``: ``x + (1 - 2f) * (smooth(x) - x)``, clipped to
    ``value_range``, with ``f`` drawn per image uniformly in ``factor`` (a number ``f`` in
    ``[0, 1]`` means ``(0, f)``): ``f = 0`` gives the smoothed image, ``0.5`` the original,
    ``1`` a sharpened one. With ``training=False`` the images pass unchanged (cast to the
    layer's dtype).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> same = lm.layers.RandomSharpness((0.5, 0.5))
        >>> image = jnp.arange(9.0).reshape(3, 3, 1)
        >>> bool(jnp.allclose(same(image), image))
        True
    """

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = keras_factor(factor, "factor", self._owner(), 0, 1)
        self.value_range = parse_value_range(value_range, self._owner())

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"factor": (batch,)}``."""
        if not training:
            return None
        return {"factor": random.uniform(batch_shape(images), *self.factor, seed=self._seed(seed))}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images).astype(self.compute_dtype)
        if not training or transformation is None:
            return images
        sharpness = jnp.reshape(jnp.asarray(transformation["factor"], self.compute_dtype) * 2, (-1, 1, 1, 1))

        def sharpen(batch):
            if self.data_format == "channels_first":
                batch = jnp.swapaxes(batch, -3, -1)
            batch = jnp.clip(batch + (1.0 - sharpness) * (smooth(batch) - batch), *self.value_range)
            return jnp.swapaxes(batch, -3, -1) if self.data_format == "channels_first" else batch

        return self._on_batch(images, sharpen)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}


__all__ = ["RandomSharpness"]
