"""``AutoContrast``: each image's channels stretched to the full value range (always applied)."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.preprocessing.augmentation_arguments import parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.color_space import rescale
from lamina.layers.preprocessing.image_resize import spatial_axes
from lamina.saving.object_registry import register_builtin


@register_builtin
class AutoContrast(ImageAugmentationLayer):
    """Stretches each channel of each image so that its darkest pixel becomes ``low`` and its
    brightest ``high`` (``value_range = (low, high)``), as ``keras.layers.AutoContrast``. It is
    deterministic and applies in training and at inference alike; a channel with a single
    value is left as it is. The output is floating point.

    ``data_format`` (a keyword argument, as in Keras) picks the channel axis; Keras 3.15 takes
    the extremes over axes 1 and 2 whatever the format, which for ``channels_first`` mixes
    channels: here they are always over height and width.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> stretch = lm.layers.AutoContrast(value_range=(0, 1))
        >>> stretch(jnp.array([[[0.25], [0.5], [0.75]]]))[0, :, 0].tolist()
        [0.0, 0.5, 1.0]
    """

    def __init__(self, value_range=(0, 255), **kwargs):
        super().__init__(seed=0, **kwargs)
        self.seed, self.seed_generator = None, None  # deterministic: no random state
        self.value_range = parse_value_range(value_range, self._owner())

    def get_random_transformation(self, images, training=True, seed=None):
        return None

    def transform_images(self, images, transformation=None, training=True):
        original = jnp.asarray(images)
        dtype = self.compute_dtype
        images = rescale(original, self.value_range, (0, 255), dtype).astype(dtype)
        axes = tuple(axis % images.ndim for axis in spatial_axes(self.data_format))
        low = jnp.min(images, axis=axes, keepdims=True)
        high = jnp.max(images, axis=axes, keepdims=True)
        scale = 255.0 / (high - low)
        # (x - low) * scale, not Keras's x * scale - low * scale: compiled, XLA fuses the latter
        # into a multiply-add, and the darkest pixel came out 1e-6 instead of 0.
        results = jnp.clip((images - low) * scale, 0.0, 255.0)
        results = rescale(results, (0, 255), self.value_range, dtype)
        # A flat channel gives 0 / 0: it keeps its values.
        return jnp.where(jnp.isnan(results), original, results).astype(dtype)

    def get_config(self):
        config = super().get_config()
        del config["seed"]  # deterministic: Keras's config has no seed
        return {**config, "value_range": self.value_range}


__all__ = ["AutoContrast"]
