"""``Equalization``: histogram equalization of each colour channel (in training, as Keras)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina.layers.preprocessing.augmentation_arguments import parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.color_space import channel_axis
from lamina.saving.object_registry import register_builtin


def _equalize(values, bins):
    """One channel's values (on the [0, 255] scale, any shape) mapped through the lookup table
    that flattens their histogram; returned unchanged when they fill at most one bin."""
    indices = jnp.clip(((values - 0.0) * (bins - 1) / 255.0).astype(jnp.int32), 0, bins - 1)
    histogram = jnp.bincount(indices.reshape(-1), length=bins)
    cdf = jnp.cumsum(histogram)
    cdf_min = cdf[jnp.argmax(cdf > 0)]
    denominator = cdf[-1] - cdf_min
    denominator = jnp.where(denominator == 0, 1, denominator)
    table = jnp.clip(jnp.round((cdf - cdf_min) * 255 / denominator), 0, 255)
    positions = jnp.clip(values / 255.0 * (bins - 1), 0, bins - 1).astype(jnp.int32)
    return jnp.where(jnp.count_nonzero(histogram) <= 1, values, jnp.take(table, positions))


@register_builtin
class Equalization(ImageAugmentationLayer):
    """Equalizes the histogram of each channel in training, as ``keras.layers.Equalization``:
    values (mapped from ``value_range`` to ``[0, 255]``) are counted in ``bins`` bins and
    replaced by their rank in the cumulative histogram, spreading them over the full range.

    As in Keras 3.15: the histogram of a channel is taken over the whole batch given (the
    images of one call share it), and with ``training=False`` the images pass unchanged, so
    ``predict`` does not equalize. The output is floating point.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> equalize = lm.layers.Equalization()
        >>> equalize(jnp.array([[[10.0], [10.0], [20.0], [30.0]]]))[0, :, 0].tolist()
        [0.0, 0.0, 128.0, 255.0]
    """

    def __init__(self, value_range=(0, 255), bins=256, data_format=None, **kwargs):
        super().__init__(seed=0, data_format=data_format, **kwargs)
        self.seed, self.seed_generator = None, None  # deterministic: no random state
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise ValueError(f"{self._owner()}: `bins` must be an int >= 2, got {bins!r}.")
        self.bins = bins
        self.value_range = parse_value_range(value_range, self._owner())

    def get_random_transformation(self, images, training=True, seed=None):
        return None

    def transform_images(self, images, transformation=None, training=True):
        images = jnp.asarray(images)
        if not training:
            return images
        dtype = self.compute_dtype
        low, high = (jnp.asarray(v, dtype) for v in self.value_range)
        scale = (255.0 - 0.0) / (high - low)
        scaled = images.astype(dtype) * scale + (0.0 - low * scale)
        axis = channel_axis(self.data_format) % images.ndim
        per_channel = jax.vmap(lambda values: _equalize(values, self.bins), in_axes=axis, out_axes=axis)
        equalized = per_channel(scaled)
        back = (high - low) / 255.0
        return (equalized * back + (low - 0.0 * back)).astype(dtype)

    def get_config(self):
        config = super().get_config()
        del config["seed"]  # deterministic: Keras's config has no seed
        return {**config, "bins": self.bins, "value_range": self.value_range}


__all__ = ["Equalization"]
