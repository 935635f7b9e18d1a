"""Keras's image helpers: ``array_to_img``, ``img_to_array``, ``load_img``, ``save_img``.

They convert between NumPy arrays and Pillow images, with Keras 3's arguments and values.
Pillow is the ``image`` extra (``pip install "lamina[image]"``); it is imported when one of
these functions (or ``image_dataset_from_directory``) needs it, never by ``import lamina``.
"""

from __future__ import annotations

import io
import os
import pathlib
import warnings

import numpy as np

from lamina.layers.convolutional._arguments import normalize_data_format

__all__ = ["array_to_img", "img_to_array", "load_img", "save_img"]

_RESAMPLING = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")


def pil_image():
    """``PIL.Image``, or an ImportError naming the ``image`` extra."""
    from lamina.export._extras import require  # the shared "missing extra" message

    return require("PIL.Image", "image", "Reading and writing images")


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """A Pillow image from a ``(height, width, channels)`` array with 1, 3 or 4 channels.

    With ``scale=True`` the values are shifted and scaled to span 0..255 (Keras's rule); a
    one-channel image above 255 becomes a 32-bit (``"I"``) image.

    Example:
        >>> import numpy as np, lamina as lm
        >>> img = lm.utils.array_to_img(np.linspace(0, 1, 12).reshape(2, 2, 3))
        >>> img.mode, img.size
        ('RGB', (2, 2))
    """
    image = pil_image()
    data_format = normalize_data_format(data_format, "array_to_img")
    x = np.asarray(x, dtype=dtype or "float32")
    if x.ndim != 3:
        raise ValueError(f"array_to_img expects an image array of rank 3 (a single image); received shape {x.shape}.")
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        peak = np.max(x)
        if peak != 0:
            x /= peak
        x *= 255
    channels = x.shape[2]
    if channels in (3, 4):
        return image.fromarray(x.astype("uint8"), "RGB" if channels == 3 else "RGBA")
    if channels == 1:
        if np.max(x) > 255:
            return image.fromarray(x[:, :, 0].astype("int32"), "I")
        return image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"array_to_img: an image needs 1, 3 or 4 channels; received {channels} (shape {x.shape}).")


def img_to_array(img, data_format=None, dtype=None):
    """A Pillow image as a ``(height, width, channels)`` float32 array (``channels_first``:
    channels first).

    Example:
        >>> import numpy as np, lamina as lm
        >>> lm.utils.img_to_array(lm.utils.array_to_img(np.zeros((2, 3, 1)), scale=False)).shape
        (2, 3, 1)
    """
    data_format = normalize_data_format(data_format, "img_to_array")
    x = np.asarray(img, dtype=dtype or "float32")
    if x.ndim == 3:
        return x.transpose(2, 0, 1) if data_format == "channels_first" else x
    if x.ndim == 2:
        return x[None] if data_format == "channels_first" else x[:, :, None]
    raise ValueError(f"img_to_array: unsupported image shape {x.shape}; expected (height, width[, channels]).")


def _convert(img, color_mode):
    if color_mode == "grayscale":
        return img if img.mode in ("L", "I;16", "I") else img.convert("L")
    if color_mode == "rgba":
        return img if img.mode == "RGBA" else img.convert("RGBA")
    if color_mode == "rgb":
        return img if img.mode == "RGB" else img.convert("RGB")
    raise ValueError(f'`color_mode` must be "grayscale", "rgb" or "rgba"; received {color_mode!r}.')


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest", keep_aspect_ratio=False):
    """Read an image file (a path or an ``io.BytesIO``) into a Pillow image, as Keras does.

    Args:
        color_mode: ``"rgb"``, ``"rgba"`` or ``"grayscale"``.
        target_size: ``None`` or ``(height, width)``: resized with Pillow's ``interpolation``
            (``"nearest"``, ``"bilinear"``, ``"bicubic"``, ``"hamming"``, ``"box"``,
            ``"lanczos"``).
        keep_aspect_ratio: resize the largest centred crop of the target's aspect ratio.

    Example:
        >>> import io, numpy as np, lamina as lm
        >>> buffer = io.BytesIO()
        >>> lm.utils.save_img(buffer, np.zeros((4, 6, 3)), file_format="png")
        >>> lm.utils.load_img(buffer, target_size=(2, 3)).size
        (3, 2)
    """
    image = pil_image()
    if isinstance(path, io.BytesIO):
        img = image.open(path)
    elif isinstance(path, (pathlib.Path, bytes, str)):
        with open(os.fspath(path), "rb") as f:
            img = image.open(io.BytesIO(f.read()))
    else:
        raise TypeError(f"load_img: `path` should be path-like or io.BytesIO, not {type(path).__name__}.")
    img = _convert(img, color_mode)
    if target_size is None:
        return img
    size = (int(target_size[1]), int(target_size[0]))
    if img.size == size:
        return img
    if interpolation not in _RESAMPLING:
        raise ValueError(f"load_img: invalid interpolation {interpolation!r}; supported: {', '.join(_RESAMPLING)}.")
    resample = getattr(image.Resampling, interpolation.upper())
    if not keep_aspect_ratio:
        return img.resize(size, resample)
    width, height = img.size
    crop_height = min(height, (width * size[1]) // size[0])
    crop_width = min(width, (height * size[0]) // size[1])
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    return img.resize(size, resample, box=[left, top, left + crop_width, top + crop_height])


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Write an image array to ``path`` (or a file object; then give ``file_format``).

    The format comes from the file's extension unless ``file_format`` says; RGBA arrays
    saved as JPEG lose their alpha channel (with a warning). A path is written to a
    temporary file first and renamed, so an interrupted save keeps the old file.

    Example:
        >>> import io, numpy as np, lamina as lm
        >>> buffer = io.BytesIO()
        >>> lm.utils.save_img(buffer, np.ones((2, 2, 3)), file_format="png")
        >>> buffer.getvalue()[:4]
        b'\\x89PNG'
    """
    data_format = normalize_data_format(data_format, "save_img")
    if file_format is None and isinstance(path, (str, pathlib.Path)):
        file_format = pathlib.Path(path).suffix[1:].lower()
    if file_format and file_format.lower() == "jpg":
        file_format = "jpeg"
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format == "jpeg":
        warnings.warn("The JPEG format does not support RGBA images, converting to RGB.", stacklevel=2)
        img = img.convert("RGB")
    if not isinstance(path, (str, pathlib.Path)):
        img.save(path, format=file_format or None, **kwargs)
        return
    from lamina.saving.atomic import atomic_write

    if not file_format:
        raise ValueError(f"save_img: cannot tell the image format of {os.fspath(path)!r}; give the "
                         "file an extension (.png, .jpg, ...) or pass `file_format`.")
    with atomic_write(os.fspath(path)) as tmp:  # the temporary name has no image extension
        img.save(tmp, format=file_format, **kwargs)
