"""``RandomErasing``: a random rectangle of some images replaced by noise or a fill value in training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import batch_shape, keras_factor, keys, parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.color_space import channel_axis
from lamina.saving.object_registry import register_builtin


@register_builtin
class RandomErasing(ImageAugmentationLayer):
    """Erases a random rectangle of some images in training, as ``keras.layers.RandomErasing``
    (Zhong et al., 2017).

    Per image: it is erased with a probability drawn in ``factor`` (a number ``f`` in
    ``[0, 1]`` means ``(0, f)``); the rectangle's width and height are ``sqrt(s)`` times the
    image's, with ``s`` drawn in ``scale`` (a number or a pair in ``[0, 1]``) for each side,
    at a random position inside the image. The rectangle takes ``fill_value`` (a number, or
    three numbers, one per channel) or, with ``fill_value=None``, Gaussian noise of standard
    deviation ``high``, both clipped to ``value_range = (low, high)``. With ``training=False``
    the images pass unchanged (cast to the layer's dtype).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> erase = lm.layers.RandomErasing(factor=(1.0, 1.0), scale=(0.25, 0.25), fill_value=0.0, seed=0)
        >>> out = erase(jnp.ones((4, 4, 1)))
        >>> int((out == 0).sum())                   # a 2 x 2 rectangle
        4
    """

    def __init__(self, factor=1.0, scale=(0.02, 0.33), fill_value=None, value_range=(0, 255), seed=None,
                 data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = keras_factor(factor, "factor", self._owner(), 0, 1)
        self.scale = keras_factor(scale, "scale", self._owner(), 0, 1)
        if fill_value is not None and not (
                isinstance(fill_value, (int, float)) and not isinstance(fill_value, bool)
                or isinstance(fill_value, (list, tuple)) and len(fill_value) == 3):
            raise ValueError(f"{self._owner()}: `fill_value` must be None, a number or three numbers (one per "
                             f"channel), got {fill_value!r}.")
        self.fill_value = tuple(fill_value) if isinstance(fill_value, list) else fill_value
        self.value_range = parse_value_range(value_range, self._owner(), keep=True)

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"apply_erasing": bool[batch], "batch_masks": bool (batch, ...image), "fill_value"}``,
        as Keras's."""
        if not training:
            return None
        dtype = self.compute_dtype
        _, height, width = self._sizes(images.shape)
        size_key, x_key, y_key, probability_key, threshold_key, noise_key = keys(self._seed(seed), 6)
        sides = jnp.sqrt(random.uniform(batch_shape(images, 2), *self.scale, dtype=dtype, seed=size_key))
        x0, x1 = _span(width, sides[:, 0], x_key, dtype, batch_shape(images))
        y0, y1 = _span(height, sides[:, 1], y_key, dtype, batch_shape(images))
        first = self.data_format == "channels_first"
        rows = jnp.reshape(jnp.arange(height, dtype=dtype), (1, 1, height, 1) if first else (1, height, 1, 1))
        columns = jnp.reshape(jnp.arange(width, dtype=dtype), (1, 1, 1, width) if first else (1, 1, width, 1))
        x0, x1, y0, y1 = (jnp.reshape(v, (-1, 1, 1, 1)) for v in (x0, x1, y0, y1))
        masks = (columns >= x0) & (columns < x1) & (rows >= y0) & (rows < y1)
        axis = channel_axis(self.data_format)
        masks = jnp.repeat(masks, images.shape[axis], axis=axis)
        probability = random.uniform(batch_shape(images), *self.factor, seed=probability_key)
        apply = random.uniform(batch_shape(images), seed=threshold_key) < probability
        return {"apply_erasing": apply, "batch_masks": masks, "fill_value": self._fill(images, noise_key)}

    def _fill(self, images, key):
        dtype = self.compute_dtype
        if self.fill_value is None:
            fill = random.normal(images.shape, dtype=dtype, seed=key) * self.value_range[1]
        else:
            fill = jnp.asarray(self.fill_value, dtype)
            if fill.ndim and self.data_format == "channels_first":
                fill = jnp.reshape(fill, (-1, 1, 1))
            fill = jnp.broadcast_to(fill, images.shape)
        return jnp.clip(fill, self.value_range[0], self.value_range[1])

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images).astype(self.compute_dtype)
        if not training or transformation is None:
            return images
        masks, fill = transformation["batch_masks"], jnp.asarray(transformation["fill_value"], self.compute_dtype)
        apply = jnp.reshape(jnp.asarray(transformation["apply_erasing"]), (-1, 1, 1, 1))
        return self._on_batch(images, lambda batch: jnp.where(apply, jnp.where(masks, fill, batch), batch))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "scale": self.scale, "fill_value": self.fill_value,
                "value_range": self.value_range}


def _span(length, side, key, dtype, shape):
    """``(start, end)`` of a window ``side * length`` long at a uniform position inside ``length``."""
    extent = (side * length).astype(dtype)
    start = random.uniform(shape, dtype=dtype, seed=key) * (length - extent)
    return start, start + extent


__all__ = ["RandomErasing"]
