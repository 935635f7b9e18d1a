"""Affine image transforms shared by ``RandomRotation``, ``RandomZoom`` and ``RandomTranslation``.

A transform is Keras's (and TensorFlow's) 8-vector ``[a0, a1, a2, b0, b1, b2, c0, c1]`` that
maps each *output* pixel ``(x, y)`` to the *input* point it samples::

    k = c0 * x + c1 * y + 1
    x_in = (a0 * x + a1 * y + a2) / k,   y_in = (b0 * x + b1 * y + b2) / k

The three layers only differ in how they build these vectors; ``affine_transform`` then samples
every channel with ``jax.scipy.ndimage.map_coordinates`` (``order`` 0 or 1), filling points that
fall outside the image by ``fill_mode``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = {"nearest": 0, "bilinear": 1}  # the spline order map_coordinates uses


def _column(values):
    return jnp.reshape(jnp.asarray(values, jnp.float32), (-1, 1))


def _transforms(a0, a1, a2, b0, b1, b2):
    zeros = jnp.zeros_like(a0)
    return jnp.concatenate([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def rotation_transforms(angles, height: int, width: int):
    """Transforms rotating each image by ``angles`` degrees (counter-clockwise for positive
    angles) about its centre; ``angles`` has one value per image."""
    # The operation order is Keras's (_compute_affine_matrix), so that "nearest" sampling
    # picks the same pixel when a coordinate lands near a half-pixel.
    radians = _column(angles) * jnp.float32(math.pi / 180.0)
    cx = jnp.float32(0.5) * (jnp.float32(width) - 1)
    cy = jnp.float32(0.5) * (jnp.float32(height) - 1)
    cos, sin = jnp.cos(radians), jnp.sin(radians)
    a0, a1, b0, b1 = cos, -sin, sin, cos
    return _transforms(a0, a1, cx - cx * a0 - cy * a1, b0, b1, cy - cx * b0 - cy * b1)


def zoom_transforms(height_zoom, width_zoom, height: int, width: int):
    """Transforms scaling the sampled area about the image centre: a zoom above 1 samples a
    larger area (the picture shrinks, "zoom out"), below 1 a smaller one ("zoom in")."""
    zx, zy = _column(width_zoom), _column(height_zoom)
    x_offset = (jnp.float32(width) - 1.0) / 2.0 * (1.0 - zx)
    y_offset = (jnp.float32(height) - 1.0) / 2.0 * (1.0 - zy)
    zeros = jnp.zeros_like(zx)
    return _transforms(zx, zeros, x_offset, zeros, zy, y_offset)


def translation_transforms(translations):
    """Transforms shifting each image by ``translations[i] = (dx, dy)`` pixels (right, down)."""
    translations = jnp.asarray(translations, jnp.float32)
    dx, dy = translations[:, 0:1], translations[:, 1:2]
    ones, zeros = jnp.ones_like(dx), jnp.zeros_like(dx)
    return _transforms(ones, zeros, -dx, zeros, ones, -dy)


def affine_transform(images, transforms, *, interpolation="bilinear", fill_mode="reflect", fill_value=0.0,
                     data_format="channels_last"):
    """Apply one transform per image of the batch ``images`` (rank 4).

    ``fill_mode`` is one of ``FILL_MODES`` (``map_coordinates``'s modes of the same names:
    "reflect" mirrors about the edge of the last pixel, "wrap" tiles, "nearest" repeats the
    edge pixel, "constant" uses ``fill_value``).

    Example:
        >>> import jax.numpy as jnp
        >>> from lamina.layers.preprocessing.image_transform import affine_transform, translation_transforms
        >>> row = jnp.array([[[[1.0], [2.0], [3.0]]]])                   # one 1 x 3 image
        >>> moved = affine_transform(row, translation_transforms([[1.0, 0.0]]), fill_mode="constant")
        >>> moved[0, 0, :, 0].tolist()
        [0.0, 1.0, 2.0]
    """
    if data_format == "channels_first":
        images = jnp.moveaxis(images, 1, -1)
    height, width = images.shape[1], images.shape[2]
    y, x = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32), jnp.arange(width, dtype=jnp.float32),
                        indexing="ij")
    a0, a1, a2, b0, b1, b2, c0, c1 = (transforms[:, i, None, None].astype(jnp.float32) for i in range(8))
    k = c0 * x + c1 * y + 1.0
    # y-term first, as Keras's einsum over (row, column) indices sums them.
    x_in = (y * a1 + x * a0 + a2) / k
    y_in = (y * b1 + x * b0 + b2) / k

    def sample(channel, rows, columns):
        return jax.scipy.ndimage.map_coordinates(channel, [rows, columns], order=INTERPOLATIONS[interpolation],
                                                 mode=fill_mode, cval=fill_value)

    per_channel = jax.vmap(sample, in_axes=(-1, None, None), out_axes=-1)
    outputs = jax.vmap(per_channel)(images, y_in, x_in).astype(images.dtype)
    if data_format == "channels_first":
        outputs = jnp.moveaxis(outputs, -1, 1)
    return outputs


__all__ = ["FILL_MODES", "INTERPOLATIONS", "affine_transform", "rotation_transforms", "translation_transforms",
           "zoom_transforms"]
