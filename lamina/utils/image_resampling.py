"""Image resizing on the host, in NumPy, with TensorFlow's ``tf.image.resize`` numerics.

``image_dataset_from_directory`` resizes every decoded file here. Keras does it with
``tf.image.resize`` (``antialias=False``); doing it with ``jax.image.resize`` instead would
compile one XLA program per distinct file size (photos come in hundreds of sizes) and
antialias when shrinking, which TensorFlow does not. So each axis gets a small weight matrix
built the way TensorFlow's kernels place their samples (half-pixel centres):

- ``bilinear``, ``bicubic`` (Keys, a = -0.5), ``area`` and ``nearest`` follow the dedicated
  kernels ``ResizeBilinear`` / ``ResizeBicubic`` / ``ResizeArea`` / ``ResizeNearestNeighbor``;
- ``lanczos3``, ``lanczos5``, ``gaussian`` and ``mitchellcubic`` follow ``ScaleAndTranslate``
  (samples outside the image dropped, the remaining weights renormalised).
"""

from __future__ import annotations

import functools

import numpy as np

INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic")

__all__ = ["INTERPOLATIONS", "resize_image", "resize_with_pad"]


def _keys_cubic(x, a=-0.5):
    x = np.abs(x)
    return np.where(x <= 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, ((a * x - 5 * a) * x + 8 * a) * x - 4 * a, 0.0))


def _lanczos(radius):
    def kernel(x):
        x = np.asarray(x, np.float64)
        return np.where(np.abs(x) < radius, np.sinc(x) * np.sinc(x / radius), 0.0)
    return kernel


def _gaussian(x):
    x = np.abs(x)
    return np.where(x < 1.5, np.exp(-x * x / (2 * 0.5 ** 2)), 0.0)


def _mitchell(x, b=1 / 3, c=1 / 3):
    x = np.abs(x)
    near = ((12 - 9 * b - 6 * c) * x ** 3 + (-18 + 12 * b + 6 * c) * x ** 2 + (6 - 2 * b)) / 6
    far = ((-b - 6 * c) * x ** 3 + (6 * b + 30 * c) * x ** 2 + (-12 * b - 48 * c) * x + (8 * b + 24 * c)) / 6
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


_SCALE_AND_TRANSLATE = {"lanczos3": (_lanczos(3), 3.0), "lanczos5": (_lanczos(5), 5.0),
                        "gaussian": (_gaussian, 1.5), "mitchellcubic": (_mitchell, 2.0)}


def _axis_weights(in_size: int, out_size: int, method: str) -> np.ndarray:
    """The ``(out_size, in_size)`` matrix that resamples one axis."""
    weights = np.zeros((out_size, in_size), np.float64)
    rows = np.arange(out_size)
    # TensorFlow computes sample positions in float32; so do we, so that floors agree.
    scale = np.float32(in_size) / np.float32(out_size)
    centres = (rows.astype(np.float32) + np.float32(0.5)) * scale
    if method == "nearest":
        index = np.minimum(np.floor(centres).astype(np.int64), in_size - 1)
        weights[rows, np.maximum(index, 0)] = 1.0
    elif method == "bilinear":
        position = centres - np.float32(0.5)
        floor = np.floor(position)
        lerp = (position - floor).astype(np.float64)
        lower = np.maximum(floor, 0).astype(np.int64)
        upper = np.minimum(np.ceil(position), in_size - 1).astype(np.int64)
        np.add.at(weights, (rows, lower), 1.0 - lerp)
        np.add.at(weights, (rows, upper), lerp)
    elif method == "bicubic":
        position = centres - np.float32(0.5)
        floor = np.floor(position).astype(np.int64)
        # ResizeBicubic reads its weights from a table of 1024 steps per pixel.
        delta = np.rint((position - floor) * np.float32(1024)).astype(np.float64) / 1024
        for tap in (-1, 0, 1, 2):
            index = floor + tap
            inside = (index >= 0) & (index < in_size)
            np.add.at(weights, (rows[inside], index[inside]), _keys_cubic(delta - tap)[inside])
        weights /= weights.sum(axis=1, keepdims=True)
    elif method == "area":
        start, stop = rows * float(scale), (rows + 1) * float(scale)
        for row in rows:
            first, last = int(np.floor(start[row])), int(np.ceil(stop[row]))
            for i in range(first, last):
                overlap = min(i + 1, stop[row]) - max(i, start[row])
                weights[row, min(i, in_size - 1)] += overlap / float(scale)
    else:
        kernel, radius = _SCALE_AND_TRANSLATE[method]
        sample = centres.astype(np.float64)
        first = np.maximum(np.ceil(sample - radius - 0.5).astype(np.int64), 0)
        last = np.minimum(np.floor(sample + radius - 0.5).astype(np.int64), in_size - 1)
        for row in rows:
            taps = np.arange(first[row], last[row] + 1)
            values = kernel(taps + 0.5 - sample[row])
            total = values.sum()
            weights[row, taps] = values / total if abs(total) > 1e-30 else 0.0
    return weights


def resize_image(image, size, interpolation="bilinear") -> np.ndarray:
    """Resize a ``(height, width, channels)`` image to ``size = (height, width)``, as
    ``tf.image.resize(image, size, method=interpolation)`` does; returns float32.

    Example:
        >>> import numpy as np
        >>> resize_image(np.arange(4.0).reshape(2, 2, 1), (4, 4))[..., 0][0].tolist()
        [0.0, 0.25, 0.75, 1.0]
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"`interpolation` must be one of {INTERPOLATIONS}; received {interpolation!r}.")
    image = np.asarray(image, np.float32)
    height, width = int(size[0]), int(size[1])
    if image.shape[:2] == (height, width) and interpolation in ("bilinear", "nearest", "area", "bicubic"):
        return image.copy()
    out = _resample(image, *_taps(image.shape[0], height, interpolation), axis=0)
    return _resample(out, *_taps(image.shape[1], width, interpolation), axis=1)


@functools.lru_cache(maxsize=512)
def _taps(in_size: int, out_size: int, method: str):
    """``(columns, weights)``, each ``(out_size, taps)``: the non-zero entries of each output
    row's weights (zero-weight padding where a row has fewer). Cached: the files of a
    dataset often share a few sizes."""
    weights = _axis_weights(in_size, out_size, method)
    rows, columns = np.nonzero(weights)
    counts = np.bincount(rows, minlength=out_size)
    taps = max(int(counts.max()), 1)
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    padded_columns = np.zeros((out_size, taps), np.int64)
    padded_weights = np.zeros((out_size, taps), np.float32)
    padded_columns[rows, slot] = columns
    padded_weights[rows, slot] = weights[rows, columns]
    padded_columns.flags.writeable = padded_weights.flags.writeable = False
    return padded_columns, padded_weights


def _resample(image, columns, tap_weights, axis):
    """Resample one axis with the few non-zero taps of each output row: a large photo
    shrunk to a small size reads two to a few dozen input rows per output row, where a
    dense product would read them all."""
    taps = columns.shape[1]
    moved = np.moveaxis(image, axis, 0)
    out = np.zeros((columns.shape[0],) + moved.shape[1:], np.float32)
    broadcast = (-1,) + (1,) * (moved.ndim - 1)
    for tap in range(taps):
        out += tap_weights[:, tap].reshape(broadcast) * moved[columns[:, tap]]
    return np.moveaxis(out, 0, axis)


def resize_with_pad(image, size, interpolation="bilinear") -> np.ndarray:
    """Resize keeping the aspect ratio, then pad with zeros to ``size`` (centred), as
    ``tf.image.resize_with_pad`` does.

    Example:
        >>> import numpy as np
        >>> resize_with_pad(np.ones((2, 4, 1)), (4, 4))[..., 0].tolist()[0]
        [0.0, 0.0, 0.0, 0.0]
    """
    height, width = image.shape[0], image.shape[1]
    target_height, target_width = int(size[0]), int(size[1])
    f32 = np.float32
    ratio = max(f32(width) / f32(target_width), f32(height) / f32(target_height))
    resized_height_f, resized_width_f = f32(height) / ratio, f32(width) / ratio
    resized_height, resized_width = int(np.floor(resized_height_f)), int(np.floor(resized_width_f))
    top = max(0, int(np.floor((f32(target_height) - resized_height_f) / f32(2))))
    left = max(0, int(np.floor((f32(target_width) - resized_width_f) / f32(2))))
    resized = resize_image(image, (resized_height, resized_width), interpolation)
    out = np.zeros((target_height, target_width, image.shape[2]), np.float32)
    out[top:top + resized_height, left:left + resized_width] = resized
    return out
