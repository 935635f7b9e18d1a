"""``AffineAugmentationLayer``: the part ``RandomRotation``, ``RandomZoom`` and
``RandomTranslation`` share (fill and interpolation arguments, and applying the transforms)."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.image_transform import FILL_MODES, INTERPOLATIONS, affine_transform


class AffineAugmentationLayer(ImageAugmentationLayer):
    """A random layer whose transformation is an affine map per image; subclasses say how to
    build the transforms from a transformation (``_transforms(transformation, height, width)``)."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if fill_mode not in FILL_MODES:
            raise ValueError(f"{self._owner()}: `fill_mode` must be one of {FILL_MODES}, got {fill_mode!r}.")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"{self._owner()}: `interpolation` must be one of {tuple(INTERPOLATIONS)}, got {interpolation!r}."
            )
        self.fill_mode = fill_mode
        self.interpolation = interpolation
        self.fill_value = fill_value

    def _transforms(self, transformation, height, width):
        raise NotImplementedError

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images).astype(self.compute_dtype)
        if not training or transformation is None:
            return images
        _, height, width = self._sizes(images.shape)
        transforms = self._transforms(transformation, height, width)
        return self._on_batch(images, lambda batch: affine_transform(
            batch, transforms, interpolation=self.interpolation, fill_mode=self.fill_mode,
            fill_value=self.fill_value, data_format=self.data_format))

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "fill_value": self.fill_value}


__all__ = ["AffineAugmentationLayer"]
