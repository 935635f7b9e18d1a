"""``RandomZoom``: images zoomed in or out by a random amount during training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.affine_augmentation import AffineAugmentationLayer
from lamina.layers.preprocessing.base_image_augmentation import json_factor, parse_factor
from lamina.layers.preprocessing.image_transform import zoom_transforms
from lamina.saving.object_registry import register_builtin


@register_builtin
class RandomZoom(AffineAugmentationLayer):
    """Zooms each image by a random amount in training, as ``keras.layers.RandomZoom``.

    ``height_factor`` (a number ``f`` for ``(-f, f)``, or a pair ``(lower, upper)``, each in
    ``(-1, 1]``) draws the vertical zoom ``1 + u``, ``u`` uniform in ``[lower, upper]``:
    positive values zoom out (the picture shrinks), negative ones zoom in. ``width_factor``
    does the same horizontally; ``None`` (the default) reuses the vertical zoom, keeping the
    aspect ratio. ``fill_mode``, ``interpolation`` and ``fill_value`` as in ``RandomRotation``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> zoom = lm.layers.RandomZoom((-0.5, -0.5), fill_mode="constant", interpolation="nearest")
        >>> image = jnp.arange(16.0).reshape(4, 4, 1)
        >>> zoom(image)[..., 0].tolist()          # the centre, twice as large
        [[5.0, 5.0, 6.0, 6.0], [5.0, 5.0, 6.0, 6.0], [9.0, 9.0, 10.0, 10.0], [9.0, 9.0, 10.0, 10.0]]
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed, fill_value=fill_value,
                         data_format=data_format, **kwargs)
        owner = self._owner()
        self.height_factor = json_factor(height_factor)
        self.height_lower, self.height_upper = parse_factor(height_factor, "height_factor", owner, -1.0, 1.0,
                                                            low_open=True)
        self.width_factor = json_factor(width_factor)
        if width_factor is not None:
            self.width_lower, self.width_upper = parse_factor(width_factor, "width_factor", owner, -1.0, 1.0,
                                                              low_open=True)

    def get_random_transformation(self, images, training=True, seed=None):
        if not training:
            return None
        batch, _, _ = self._sizes(images.shape)
        seed = self._seed(seed)
        height_zoom = random.uniform((batch, 1), 1.0 + self.height_lower, 1.0 + self.height_upper, seed=seed)
        if self.width_factor is None:
            width_zoom = height_zoom
        else:
            width_zoom = random.uniform((batch, 1), 1.0 + self.width_lower, 1.0 + self.width_upper, seed=seed)
        return {"height_zoom": height_zoom, "width_zoom": width_zoom}

    def _transforms(self, transformation, height, width):
        return zoom_transforms(jnp.asarray(transformation["height_zoom"]), jnp.asarray(transformation["width_zoom"]),
                               height, width)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


__all__ = ["RandomZoom"]
