"""``RandomPerspective``: images warped by a random perspective (projective) transform in training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import batch_shape, keras_factor, keys
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.image_transform import INTERPOLATIONS, affine_transform
from lamina.saving.object_registry import register_builtin


def homographies(start_points, end_points):
    """The transforms (Keras's 8-vectors, see ``image_transform``) mapping each output point of
    ``end_points`` back to the input point of ``start_points`` at the same index; both
    ``(batch, 4, 2)`` arrays of ``(x, y)`` corners."""
    start = jnp.asarray(start_points, jnp.float32)
    end = jnp.asarray(end_points, jnp.float32)
    sx, sy, ex, ey = start[..., 0], start[..., 1], end[..., 0], end[..., 1]
    zeros, ones = jnp.zeros_like(ex), jnp.ones_like(ex)
    x_rows = jnp.stack([ex, ey, ones, zeros, zeros, zeros, -sx * ex, -sx * ey], axis=-1)
    y_rows = jnp.stack([zeros, zeros, zeros, ex, ey, ones, -sy * ex, -sy * ey], axis=-1)
    system = jnp.concatenate([x_rows, y_rows], axis=1)
    target = jnp.concatenate([sx, sy], axis=-1)[..., None]
    return jnp.linalg.solve(system, target)[..., 0]


@register_builtin
class RandomPerspective(ImageAugmentationLayer):
    """Warps images by a random perspective transform in training, as
    ``keras.layers.RandomPerspective``: each corner ``c`` of the image moves to
    ``c + c * d``, with ``d`` drawn per coordinate uniformly in ``[-scale / 2, scale / 2]``,
    and the image follows (points falling outside take ``fill_value``).

    ``factor``: the probability of warping an image, a number ``f`` in ``[0, 1]`` (meaning a
    probability drawn per image in ``(0, f)``) or a pair. ``scale`` in ``[0, 1]``;
    ``interpolation`` ``"bilinear"`` or ``"nearest"``. With ``training=False`` the images pass
    unchanged (cast to the layer's dtype).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> warp = lm.layers.RandomPerspective(factor=(1.0, 1.0), scale=0.5, seed=0)
        >>> image = jnp.ones((8, 8, 1))
        >>> out = warp(image)
        >>> out.shape, bool(jnp.all(warp(image, training=False) == image)), bool((out == 0).any())
        ((8, 8, 1), True, True)
    """

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_value=0.0, seed=None, data_format=None,
                 **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = keras_factor(factor, "factor", self._owner(), 0, 1)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale <= 1:
            raise ValueError(f"{self._owner()}: `scale` must be a number in [0, 1], got {scale!r}.")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"{self._owner()}: `interpolation` must be one of {tuple(INTERPOLATIONS)}, "
                             f"got {interpolation!r}.")
        self.scale, self.interpolation, self.fill_value = scale, interpolation, fill_value

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"apply_perspective": bool[batch], "start_points", "end_points": (batch, 4, 2)}``."""
        if not training:
            return None
        _, height, width = self._sizes(images.shape)
        probability_key, threshold_key, corner_key = keys(self._seed(seed), 3)
        probability = random.uniform(batch_shape(images), *self.factor, seed=probability_key)
        apply = random.uniform(batch_shape(images), seed=threshold_key) < probability
        moves = random.uniform(batch_shape(images, 4, 2), -0.5 * self.scale, 0.5 * self.scale,
                               dtype=self.compute_dtype, seed=corner_key)
        corners = jnp.asarray([[0.0, 0.0], [width - 1, 0.0], [0.0, height - 1], [width - 1, height - 1]],
                              self.compute_dtype)
        start = jnp.broadcast_to(corners, moves.shape)
        return {"apply_perspective": apply, "start_points": start, "end_points": start + start * moves}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images).astype(self.compute_dtype)
        if not training or transformation is None:
            return images
        transforms = homographies(transformation["start_points"], transformation["end_points"])
        apply = jnp.reshape(jnp.asarray(transformation["apply_perspective"]), (-1, 1, 1, 1))

        def warp(batch):
            warped = affine_transform(batch, transforms, interpolation=self.interpolation, fill_mode="constant",
                                      fill_value=self.fill_value, data_format=self.data_format)
            return jnp.where(apply, warped, batch)

        return self._on_batch(images, warp)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "scale": self.scale,
                "interpolation": self.interpolation, "fill_value": self.fill_value}


__all__ = ["RandomPerspective", "homographies"]
