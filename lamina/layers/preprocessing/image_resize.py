"""Resizing arithmetic shared by ``Resizing``, ``CenterCrop`` and ``RandomCrop``.

The crop and pad boxes follow Keras 3 (``keras.src.backend.jax.image.resize`` and
``keras.src.utils.image_utils.smart_resize``) to the pixel, so that outputs agree with Keras's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5")


def spatial_axes(data_format: str) -> tuple[int, int]:
    """The (height, width) axes of a batched or unbatched image, counted from the end."""
    return (-2, -1) if data_format == "channels_first" else (-3, -2)


def with_image_size(input_shape, height: int, width: int, data_format: str) -> tuple:
    """``input_shape`` with its spatial axes set to ``height`` and ``width`` (the output shape
    of every layer that resizes or crops to a fixed size)."""
    shape = list(input_shape)
    h_axis, w_axis = spatial_axes(data_format)
    shape[h_axis], shape[w_axis] = height, width
    return tuple(shape)


def aspect_crop_box(height: int, width: int, target_height: int, target_width: int) -> tuple[int, int, int, int]:
    """``(top, left, crop_height, crop_width)``: the largest centred window of the target's
    aspect ratio (Keras's ``smart_resize`` arithmetic, truncations included)."""
    crop_height = max(min(height, int(float(width * target_height) / target_width)), 1)
    crop_width = max(min(width, int(float(height * target_width) / target_height)), 1)
    return int(float(height - crop_height) / 2), int(float(width - crop_width) / 2), crop_height, crop_width


def aspect_pad(height: int, width: int, target_height: int, target_width: int) -> tuple[int, int]:
    """``(rows, columns)`` added on *each* side so the image takes the target's aspect ratio;
    Keras pads only one of the two axes (height first)."""
    pad_height = max(height, int(float(width * target_height) / target_width))
    pad_width = max(width, int(float(height * target_width) / target_height))
    rows, columns = int(float(pad_height - height) / 2), int(float(pad_width - width) / 2)
    return (rows, 0) if rows > 0 else (0, columns)


def crop(images, top, left, height: int, width: int, data_format: str):
    """The ``height x width`` window at ``(top, left)``; the corner may be a traced integer."""
    h_axis, w_axis = spatial_axes(data_format)
    starts = [0] * images.ndim
    sizes = list(images.shape)
    starts[h_axis], starts[w_axis] = top, left
    sizes[h_axis], sizes[w_axis] = height, width
    return jax.lax.dynamic_slice(images, starts, sizes)


def resize(images, size, *, interpolation="bilinear", antialias=False, crop_to_aspect_ratio=False,
           pad_to_aspect_ratio=False, fill_value=0.0, data_format="channels_last"):
    """Resize batched or unbatched ``images`` to ``size = (height, width)`` with
    ``jax.image.resize``, first cropping (or padding with ``fill_value``) to the target aspect
    ratio when asked. The result is floating (``jax.image.resize``'s dtype).

    Example:
        >>> import jax.numpy as jnp
        >>> from lamina.layers.preprocessing.image_resize import resize
        >>> resize(jnp.ones((1, 4, 8, 3)), (2, 2), crop_to_aspect_ratio=True).shape
        (1, 2, 2, 3)
    """
    target_height, target_width = size
    h_axis, w_axis = spatial_axes(data_format)
    height, width = images.shape[h_axis], images.shape[w_axis]
    if crop_to_aspect_ratio:
        top, left, crop_height, crop_width = aspect_crop_box(height, width, target_height, target_width)
        images = crop(images, top, left, crop_height, crop_width, data_format)
    elif pad_to_aspect_ratio:
        rows, columns = aspect_pad(height, width, target_height, target_width)
        padding = [(0, 0)] * images.ndim
        padding[h_axis], padding[w_axis] = (rows, rows), (columns, columns)
        images = jnp.pad(images, padding, constant_values=jnp.asarray(fill_value, images.dtype))
    shape = list(images.shape)
    shape[h_axis], shape[w_axis] = target_height, target_width
    return jax.image.resize(images, tuple(shape), method=interpolation, antialias=antialias)


def saturate_cast(values, dtype):
    """``values`` in ``dtype``, rounded for integer types and clipped to its range, so that
    256.0 becomes 255 in uint8 instead of wrapping around (Keras's ``_saturate_cast``)."""
    dtype = jnp.dtype(dtype)
    if values.dtype == dtype:
        return values
    if jnp.issubdtype(dtype, jnp.integer):
        values = jnp.round(values)
        out = jnp.iinfo(dtype)
    else:
        out = jnp.finfo(dtype)
    source = jnp.finfo(values.dtype)
    # A limit that is not representable in the source type rounds outwards (2**32 - 1 becomes
    # 2**32 in float32); step it back inside the target's range.
    low = np.asarray(max(float(source.min), float(out.min)), values.dtype)
    if low < out.min:
        low = np.nextafter(low, np.zeros((), values.dtype))
    high = np.asarray(min(float(source.max), float(out.max)), values.dtype)
    if high > out.max:
        high = np.nextafter(high, np.zeros((), values.dtype))
    return jnp.clip(values, low, high).astype(dtype)


__all__ = ["INTERPOLATIONS", "aspect_crop_box", "aspect_pad", "crop", "resize", "saturate_cast", "spatial_axes"]
