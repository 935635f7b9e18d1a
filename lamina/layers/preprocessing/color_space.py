"""Colour arithmetic shared by the colour augmentation layers: grayscale, HSV and value ranges.

The formulas are the ones Keras 3 uses on JAX (``keras.ops.image.rgb_to_grayscale`` with
ITU-R 601 weights, ``rgb_to_hsv`` / ``hsv_to_rgb`` as in dm_pix), so that the layers built on
them give Keras's pixels.

Example:
    >>> import jax.numpy as jnp
    >>> from lamina.layers.preprocessing.color_space import hsv_to_rgb, rgb_to_hsv
    >>> pixel = jnp.array([[[0.2, 0.6, 0.4]]])
    >>> [round(v, 4) for v in rgb_to_hsv(pixel)[0, 0].tolist()]
    [0.4167, 0.6667, 0.6]
    >>> bool(jnp.allclose(hsv_to_rgb(rgb_to_hsv(pixel)), pixel))
    True
"""

from __future__ import annotations

import jax.numpy as jnp

GRAYSCALE_WEIGHTS = (0.2989, 0.5870, 0.1140)


def channel_axis(data_format: str) -> int:
    return -3 if data_format == "channels_first" else -1


def rgb_to_grayscale(images, data_format: str = "channels_last", owner: str = "rgb_to_grayscale"):
    """The luminance of RGB ``images`` as one channel (kept in the images' dtype); a
    one-channel image is returned as it is."""
    axis = channel_axis(data_format)
    channels = images.shape[axis]
    if channels == 1:
        return images
    if channels != 3:
        raise ValueError(f"{owner}: expected RGB images (3 channels) or grayscale ones (1 channel) on axis "
                         f"{axis} ({data_format}), got images of shape {tuple(images.shape)}.")
    dtype = images.dtype
    floating = images.astype(jnp.result_type(dtype, jnp.float32))
    weights = jnp.asarray(GRAYSCALE_WEIGHTS, floating.dtype)
    gray = jnp.tensordot(floating, weights, axes=((axis % images.ndim,), (0,)))
    return jnp.expand_dims(gray, axis).astype(dtype)


def _planes(images, axis):
    return [jnp.take(images, i, axis=axis) for i in range(3)]


def rgb_to_hsv(images, data_format: str = "channels_last"):
    """Floating RGB ``images`` as hue, saturation, value; hue in ``[0, 1)``."""
    axis = channel_axis(data_format)
    eps = jnp.finfo(images.dtype).eps
    images = jnp.where(jnp.abs(images) < eps, 0.0, images)
    red, green, blue = _planes(images, axis)
    value = jnp.maximum(jnp.maximum(red, green), blue)
    spread = value - jnp.minimum(jnp.minimum(red, green), blue)
    saturation = jnp.where(value > 0, spread / jnp.where(value > 0, value, 1.0), 0.0)
    norm = 1.0 / (6.0 * jnp.where(spread > 0, spread, 1.0))
    hue = jnp.where(value == green, norm * (blue - red) + 2.0 / 6.0, norm * (red - green) + 4.0 / 6.0)
    hue = jnp.where(value == red, norm * (green - blue), hue)
    hue = jnp.where(spread > 0, hue, 0.0) + (hue < 0.0).astype(hue.dtype)
    return jnp.stack([hue, saturation, value], axis=axis)


def hsv_to_rgb(images, data_format: str = "channels_last"):
    """The inverse of ``rgb_to_hsv``."""
    axis = channel_axis(data_format)
    hue, saturation, value = _planes(images, axis)
    sextant = jnp.mod(hue, 1.0) * 6.0
    red = jnp.clip(jnp.abs(sextant - 3.0) - 1.0, 0.0, 1.0)
    green = jnp.clip(2.0 - jnp.abs(sextant - 2.0), 0.0, 1.0)
    blue = jnp.clip(2.0 - jnp.abs(sextant - 4.0), 0.0, 1.0)
    grey = 1.0 - saturation
    return jnp.stack([value * (grey + saturation * c) for c in (red, green, blue)], axis=axis)


def rescale(images, source, target, dtype="float32"):
    """``images`` mapped linearly from the range ``source = (low, high)`` to ``target``
    (returned as given when the two ranges are equal)."""
    if source[0] == target[0] and source[1] == target[1]:
        return images
    images = images.astype(dtype)
    low, high = (jnp.asarray(v, dtype) for v in source)
    new_low, new_high = (jnp.asarray(v, dtype) for v in target)
    return (images - low) / (high - low) * (new_high - new_low) + new_low


__all__ = ["GRAYSCALE_WEIGHTS", "channel_axis", "hsv_to_rgb", "rescale", "rgb_to_grayscale", "rgb_to_hsv"]
