"""``RandomFlip``: images mirrored left-right and/or upside down at random during training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.image_resize import spatial_axes
from lamina.saving.object_registry import register_builtin

HORIZONTAL, VERTICAL, HORIZONTAL_AND_VERTICAL = "horizontal", "vertical", "horizontal_and_vertical"
MODES = (HORIZONTAL, VERTICAL, HORIZONTAL_AND_VERTICAL)


@register_builtin
class RandomFlip(ImageAugmentationLayer):
    """Flips each image with probability 1/2 in training, as ``keras.layers.RandomFlip``.

    ``mode`` is ``"horizontal"`` (left-right), ``"vertical"`` (upside down) or
    ``"horizontal_and_vertical"`` (the default; as in Keras, one draw per image flips it both
    ways or not at all). With ``training=False`` the images pass unchanged (cast to the layer's
    dtype). Inputs: ``(batch, height, width, channels)`` or one image ``(height, width,
    channels)`` (``data_format="channels_first"``: channels before height).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> flip = lm.layers.RandomFlip("horizontal", seed=0)
        >>> image = jnp.array([[[1.0], [2.0], [3.0]]])             # 1 x 3 pixels
        >>> flip(image, training=False)[0, :, 0].tolist()
        [1.0, 2.0, 3.0]
        >>> sorted({tuple(flip(image)[0, :, 0].tolist()) for _ in range(20)})
        [(1.0, 2.0, 3.0), (3.0, 2.0, 1.0)]
    """

    def __init__(self, mode=HORIZONTAL_AND_VERTICAL, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if mode not in MODES:
            raise ValueError(f"{self._owner()}: `mode` must be one of {MODES}, got {mode!r}.")
        self.mode = mode

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        batch, _, _ = self._sizes(images.shape)
        shape = (batch, 1, 1, 1) if images.ndim == 4 else (1, 1, 1)
        return {"flips": random.uniform(shape, seed=self._seed(seed)) <= 0.5}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images).astype(self.compute_dtype)
        if not training or transformation is None:
            return images
        flips = transformation["flips"]
        h_axis, w_axis = spatial_axes(self.data_format)
        if self.mode in (HORIZONTAL, HORIZONTAL_AND_VERTICAL):
            images = jnp.where(flips, jnp.flip(images, axis=w_axis), images)
        if self.mode in (VERTICAL, HORIZONTAL_AND_VERTICAL):
            images = jnp.where(flips, jnp.flip(images, axis=h_axis), images)
        return images

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


__all__ = ["RandomFlip"]
