"""``RandomContrast``: each image's contrast scaled by a random factor during training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer, json_factor
from lamina.layers.preprocessing.image_resize import spatial_axes
from lamina.saving.object_registry import register_builtin


def _contrast_factor(factor, owner):
    """``(lower, upper)``: a number ``f`` in [0, 1] means ``(f, f)``, a pair is sorted."""
    message = f"{owner}: `factor` must be a number or a pair of numbers in [0, 1], got {factor!r}."
    values = list(factor) if isinstance(factor, (list, tuple)) else [factor, factor]
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1
                               for v in values):
        raise ValueError(message)
    lower, upper = sorted(float(v) for v in values)
    return lower, upper


@register_builtin
class RandomContrast(ImageAugmentationLayer):
    """Adjusts the contrast of each image by a random factor in training, as
    ``keras.layers.RandomContrast``: every pixel ``x`` of a channel becomes
    ``(x - mean) * c + mean`` (``mean`` over the image's height and width), with ``c`` drawn
    per image uniformly in ``[1 - lower, 1 + upper]``, then clipped to ``value_range``.

    ``factor``: a number ``f`` in ``[0, 1]`` (``lower = upper = f``) or a pair ``(lower,
    upper)``. ``value_range``: the range the images use, ``(0, 255)`` by default. With
    ``training=False`` the images pass unchanged.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> contrast = lm.layers.RandomContrast(0.5, value_range=(0, 1), seed=0)
        >>> image = jnp.array([[[0.25], [0.75]]])
        >>> out = contrast(image)
        >>> mean, spread = float(out.mean()), float(out[0, 1, 0] - out[0, 0, 0])
        >>> round(mean, 6), 0.25 <= spread <= 0.75
        (0.5, True)
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = _contrast_factor(factor, self._owner())
        if not isinstance(value_range, (list, tuple)) or len(value_range) != 2 or value_range[0] >= value_range[1]:
            raise ValueError(f"{self._owner()}: `value_range` must be a pair (low, high) with low < high, "
                             f"got {value_range!r}.")
        self.value_range = json_factor(value_range)

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        batch, _, _ = self._sizes(images.shape)
        shape = (batch, 1, 1, 1) if images.ndim == 4 else (1, 1, 1)
        lower, upper = self.factor
        factor = random.uniform(shape, 1.0 - lower, 1.0 + upper, dtype=self.compute_dtype, seed=self._seed(seed))
        return {"contrast_factor": factor}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images)
        if not training or transformation is None:
            return images
        images = images.astype(self.compute_dtype)
        h_axis, w_axis = spatial_axes(self.data_format)
        mean = jnp.mean(jnp.mean(images, axis=h_axis, keepdims=True), axis=w_axis, keepdims=True)
        outputs = (images - mean) * transformation["contrast_factor"] + mean
        return jnp.clip(outputs, self.value_range[0], self.value_range[1])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}


__all__ = ["RandomContrast"]
