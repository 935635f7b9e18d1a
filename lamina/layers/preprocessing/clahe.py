"""``ContrastLimitedAdaptiveHistogramEqualization`` (CLAHE): histogram equalization per tile,
with clipped histograms and bilinear blending between tiles (always applied)."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.preprocessing.augmentation_arguments import parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.color_space import rescale
from lamina.saving.object_registry import register_builtin

_LEVELS = 256


def _tile_tables(padded, grid_h, grid_w, tile_h, tile_w, clip_limit):
    """``(batch, grid_h + 2, grid_w + 2, channels, 256)``: each tile's equalizing lookup table
    (its clipped histogram's normalized cumulative sum), the border tiles repeated once."""
    batch, _, _, channels = padded.shape
    levels = jnp.clip(padded.astype(jnp.int32), 0, _LEVELS - 1)
    tiles = levels.reshape(batch, grid_h, tile_h, grid_w, tile_w, channels).transpose(0, 1, 3, 5, 2, 4)
    tiles = tiles.reshape(batch * grid_h * grid_w * channels, tile_h * tile_w)
    owners = jnp.arange(tiles.shape[0], dtype=jnp.int32)[:, None] * _LEVELS
    counts = jnp.bincount((owners + tiles).reshape(-1), length=tiles.shape[0] * _LEVELS)
    histograms = counts.reshape(batch, grid_h, grid_w, channels, _LEVELS).astype(jnp.float32)
    size = float(tile_h * tile_w)
    if clip_limit > 0:
        clipped = jnp.minimum(histograms, clip_limit * size / _LEVELS)
        # What the clip removed is spread evenly over all levels.
        histograms = clipped + jnp.sum(histograms - clipped, axis=-1, keepdims=True) / _LEVELS
    cdf = jnp.cumsum(histograms, axis=-1)
    lowest = jnp.min(cdf, axis=-1, keepdims=True)
    spread = size - lowest
    tables = jnp.clip((cdf - lowest) * 255.0 / jnp.where(spread == 0, 1.0, spread), 0, 255)
    return jnp.pad(tables, ((0, 0), (1, 1), (1, 1), (0, 0), (0, 0)), mode="edge")


def _neighbours(length, tile, grid):
    """Per pixel along one axis: the two tile rows (of the border-padded grid) whose centres
    surround it, and the weight of the second."""
    position = (jnp.arange(length, dtype=jnp.float32) - tile / 2.0) / tile + 1.0
    first = jnp.floor(position)
    weight = position - first
    return (jnp.clip(first, 0, grid + 1).astype(jnp.int32), jnp.clip(first + 1, 0, grid + 1).astype(jnp.int32),
            weight)


def clahe(images, clip_limit, grid):
    """CLAHE of a channels-last batch on the ``[0, 255]`` scale (``grid = (rows, columns)``)."""
    batch, height, width, channels = images.shape
    grid_h, grid_w = grid
    tile_h, tile_w = -(-height // grid_h), -(-width // grid_w)
    padded = jnp.pad(images, ((0, 0), (0, tile_h * grid_h - height), (0, tile_w * grid_w - width), (0, 0)),
                     mode="symmetric")
    tables = _tile_tables(padded, grid_h, grid_w, tile_h, tile_w, clip_limit)
    y0, y1, wy = _neighbours(tile_h * grid_h, tile_h, grid_h)
    x0, x1, wx = _neighbours(tile_w * grid_w, tile_w, grid_w)
    levels = jnp.clip(padded, 0, 255).astype(jnp.int32)
    b = jnp.arange(batch)[:, None, None, None]
    c = jnp.arange(channels)[None, None, None, :]
    rows0, rows1 = y0[None, :, None, None], y1[None, :, None, None]
    cols0, cols1 = x0[None, None, :, None], x1[None, None, :, None]
    wy, wx = wy[None, :, None, None], wx[None, None, :, None]
    top = tables[b, rows0, cols0, c, levels] * (1.0 - wx) + tables[b, rows0, cols1, c, levels] * wx
    bottom = tables[b, rows1, cols0, c, levels] * (1.0 - wx) + tables[b, rows1, cols1, c, levels] * wx
    return (top * (1.0 - wy) + bottom * wy)[:, :height, :width, :]


@register_builtin
class ContrastLimitedAdaptiveHistogramEqualization(ImageAugmentationLayer):
    """Contrast-limited adaptive histogram equalization, as
    ``keras.layers.ContrastLimitedAdaptiveHistogramEqualization``: the image (mapped from
    ``value_range`` to ``[0, 255]``) is cut into a ``tile_grid_size = (rows, columns)`` grid
    (padded symmetrically to whole tiles); each tile's histogram of integer levels is clipped
    at ``clip_limit`` times its mean count (the excess spread over all levels), and each pixel
    takes the bilinear blend of the four nearest tiles' equalized values. Deterministic: it
    applies in training and at inference, and keeps the input's dtype.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> clahe = lm.layers.ContrastLimitedAdaptiveHistogramEqualization(clip_limit=0, tile_grid_size=(1, 1))
        >>> clahe(jnp.array([[[10.0], [20.0]], [[20.0], [30.0]]]))[..., 0].tolist()   # the cumulative share
        [[63.75, 191.25], [191.25, 255.0]]
    """

    def __init__(self, value_range=(0, 255), clip_limit=4.0, tile_grid_size=(8, 8), data_format=None, **kwargs):
        super().__init__(seed=0, data_format=data_format, **kwargs)
        self.seed, self.seed_generator = None, None  # deterministic: no random state
        self.value_range = parse_value_range(value_range, self._owner(), keep=True)
        if isinstance(clip_limit, bool) or not isinstance(clip_limit, (int, float)):
            raise ValueError(f"{self._owner()}: `clip_limit` must be a number, got {clip_limit!r}.")
        self.clip_limit = clip_limit
        if (not isinstance(tile_grid_size, (list, tuple)) or len(tile_grid_size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in tile_grid_size)):
            raise ValueError(f"{self._owner()}: `tile_grid_size` must be a pair of positive ints (rows, columns), "
                             f"got {tile_grid_size!r}.")
        self.tile_grid_size = tuple(tile_grid_size)

    def get_random_transformation(self, images, training=True, seed=None):
        return None

    def transform_images(self, images, transformation=None, training=True):
        images = jnp.asarray(images)
        dtype = images.dtype
        channels_last = jnp.moveaxis(images, -3, -1) if self.data_format == "channels_first" else images
        scaled = rescale(channels_last.astype(jnp.float32), self.value_range, (0, 255), "float32")
        equalized = self._on_batch(scaled, lambda batch: clahe(batch, self.clip_limit, self.tile_grid_size))
        result = rescale(equalized, (0, 255), self.value_range, "float32").astype(dtype)
        return jnp.moveaxis(result, -1, -3) if self.data_format == "channels_first" else result

    def get_config(self):
        config = super().get_config()
        del config["seed"]  # deterministic: Keras's config has no seed
        return {**config, "value_range": self.value_range, "clip_limit": self.clip_limit,
                "tile_grid_size": self.tile_grid_size}


__all__ = ["ContrastLimitedAdaptiveHistogramEqualization", "clahe"]
