"""``Solarization``: pixels above a threshold inverted, after an optional offset."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import batch_shape, keras_factor, keys, parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.color_space import rescale
from lamina.saving.object_registry import register_builtin


@register_builtin
class Solarization(ImageAugmentationLayer):
    """Solarizes images in training, as ``keras.layers.Solarization``: on the ``[0, 255]``
    scale (the images are mapped there from ``value_range`` and back), each pixel ``x``
    becomes ``y = clip(x + addition, 0, 255)``, then ``255 - y`` where ``y >= threshold``.

    ``addition_factor`` and ``threshold_factor`` are numbers ``f`` in ``[0, 1]`` (meaning
    ``(0, f)``) or pairs; per image, ``addition`` and ``threshold`` are drawn uniformly in the
    factor's range times 255 (Keras 3.15 leaves the lower bound unscaled, so its
    ``threshold_factor=(0.5, 0.5)`` draws thresholds in ``[0.5, 127.5]``; here it is 127.5, as
    its documentation says). With ``training=False`` the images pass unchanged (cast to the
    layer's dtype).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> solarize = lm.layers.Solarization(threshold_factor=(0.5, 0.5))
        >>> solarize(jnp.array([[[100.0], [200.0]]]))[0, :, 0].tolist()
        [100.0, 55.0]
    """

    def __init__(self, addition_factor=0.0, threshold_factor=0.0, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.addition_factor = keras_factor(addition_factor, "addition_factor", self._owner(), 0, 1)
        self.threshold_factor = keras_factor(threshold_factor, "threshold_factor", self._owner(), 0, 1)
        self.value_range = parse_value_range(value_range, self._owner())

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"additions", "thresholds"}``, each ``(batch, 1, 1, 1)`` on the ``[0, 255]`` scale."""
        if not training:
            return None
        shape = batch_shape(images, 1, 1, 1)
        addition_key, threshold_key = keys(self._seed(seed), 2)
        low, high = self.addition_factor
        additions = random.uniform(shape, low * 255.0, high * 255.0, dtype=self.compute_dtype, seed=addition_key)
        low, high = self.threshold_factor
        thresholds = random.uniform(shape, low * 255.0, high * 255.0, dtype=self.compute_dtype, seed=threshold_key)
        return {"additions": additions, "thresholds": thresholds}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images).astype(self.compute_dtype)
        if not training or transformation is None:
            return images

        def solarize(batch):
            scaled = rescale(batch, self.value_range, (0, 255), self.compute_dtype)
            results = jnp.clip(scaled + jnp.asarray(transformation["additions"], self.compute_dtype), 0, 255)
            results = jnp.where(results < jnp.asarray(transformation["thresholds"], self.compute_dtype), results,
                                255 - results)
            return rescale(results, (0, 255), self.value_range, self.compute_dtype)

        return self._on_batch(images, solarize)

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range, "addition_factor": self.addition_factor,
                "threshold_factor": self.threshold_factor}


__all__ = ["Solarization"]
