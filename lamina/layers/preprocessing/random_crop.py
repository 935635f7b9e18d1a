"""``RandomCrop``: a random window of each batch during training, the centred window at inference."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.image_resize import crop, resize, with_image_size
from lamina.saving.object_registry import register_builtin


@register_builtin
class RandomCrop(ImageAugmentationLayer):
    """Crops images to ``height x width``, as ``keras.layers.RandomCrop`` documents it.

    In training, when the images are at least the target size, one random window is cut
    (the same for every image of the batch). At inference, and in training when an image is
    smaller than the target, the largest centred window of the target's aspect ratio is cut
    and resized (bilinear) to the target size, so training and inference give the same shape.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> crop = lm.layers.RandomCrop(2, 2, seed=0)
        >>> image = jnp.arange(16.0).reshape(4, 4, 1)
        >>> crop(image).shape, crop(image, training=False)[..., 0].tolist()
        ((2, 2, 1), [[2.5, 4.5], [10.5, 12.5]])
    """

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        # As Keras: an unseeded layer records the seed it drew, so its config rebuilds it.
        seed = random.draw_seed() if seed is None else seed
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{self._owner()}: `{name}` must be a positive int, got {value!r}.")
        self.height, self.width = height, width

    def _fits(self, images) -> bool:
        _, height, width = self._sizes(images.shape)
        return height >= self.height and width >= self.width

    def get_random_transformation(self, images, training=True, seed=None):
        """``(top, left)`` of the window to cut, or ``None`` for the centred resize."""
        if not training or not self._fits(images):
            return None
        _, height, width = self._sizes(images.shape)
        seed = self._seed(seed)
        top = random.uniform((), 0.0, float(height - self.height + 1), seed=seed).astype(jnp.int32)
        left = random.uniform((), 0.0, float(width - self.width + 1), seed=seed).astype(jnp.int32)
        # uniform() never returns its upper bound, but rounding could; stay inside the image.
        return jnp.minimum(top, height - self.height), jnp.minimum(left, width - self.width)

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images).astype(self.compute_dtype)
        if training and transformation is not None:
            top, left = transformation
            return crop(images, top, left, self.height, self.width, self.data_format)
        return resize(images, (self.height, self.width), crop_to_aspect_ratio=True,
                      data_format=self.data_format).astype(self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return with_image_size(input_shape, self.height, self.width, self.data_format)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


__all__ = ["RandomCrop"]
