"""``CutMix``: a random box of each image pasted from another image of the batch in training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import keras_factor, keys
from lamina.layers.preprocessing.color_space import channel_axis
from lamina.layers.preprocessing.mixing_augmentation import MixingAugmentationLayer
from lamina.saving.object_registry import register_builtin


@register_builtin
class CutMix(MixingAugmentationLayer):
    """CutMix (Yun et al., 2019) in training, as ``keras.layers.CutMix``: for each image a box
    is replaced by the same box of another image of the batch (a random permutation), and the
    labels of ``{"images": ..., "labels": ...}`` are mixed in proportion to the areas.

    The box covers a share ``1 - w`` of the image, ``w`` drawn from ``Beta(a, a)`` with ``a``
    drawn once per batch in ``factor`` (a number ``f`` in ``[0, 1]`` means ``(0, f)``); its
    sides are ``sqrt(1 - w)`` times the image's, at a uniform position. One image alone, and
    ``training=False``, pass unchanged (cast to the layer's dtype).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> cutmix = lm.layers.CutMix(seed=0)
        >>> images, labels = jnp.stack([jnp.zeros((4, 4, 1)), jnp.ones((4, 4, 1))]), jnp.eye(2)
        >>> out = cutmix({"images": images, "labels": labels})
        >>> out["images"].shape, [round(float(v), 4) for v in out["labels"].sum(axis=1)]
        ((2, 4, 4, 1), [1.0, 1.0])
    """

    def __init__(self, factor=1.0, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = keras_factor(factor, "factor", self._owner(), 0, 1)

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"permutation_order", "batch_masks", "mix_weight"}``, as Keras's (``None`` for one
        image)."""
        if not training or images.ndim != 4:
            return None
        dtype = self.compute_dtype
        batch, height, width = self._sizes(images.shape)
        alpha_key, weight_key, x_key, y_key, order_key = keys(self._seed(seed), 5)
        alpha = random.uniform((), *self.factor, dtype=dtype, seed=alpha_key) + 1e-6
        weight = random.beta((batch,), alpha, alpha, dtype=dtype, seed=weight_key)
        ratio = jnp.sqrt(1.0 - weight)
        x0, x1 = _span(width, ratio, x_key, dtype, batch)
        y0, y1 = _span(height, ratio, y_key, dtype, batch)
        first = self.data_format == "channels_first"
        rows = jnp.reshape(jnp.arange(height, dtype=dtype), (1, 1, height, 1) if first else (1, height, 1, 1))
        columns = jnp.reshape(jnp.arange(width, dtype=dtype), (1, 1, 1, width) if first else (1, 1, width, 1))
        x0, x1, y0, y1 = (jnp.reshape(v, (-1, 1, 1, 1)) for v in (x0, x1, y0, y1))
        masks = (columns >= x0) & (columns < x1) & (rows >= y0) & (rows < y1)
        masks = jnp.repeat(masks, images.shape[channel_axis(self.data_format)], axis=channel_axis(self.data_format))
        # The labels' weight is the share the image keeps (Keras's continuous box area).
        kept = 1.0 - (x1 - x0) * (y1 - y0) / (width * height)
        order = random.shuffle(jnp.arange(batch, dtype=jnp.int32), seed=order_key)
        return {"permutation_order": order, "batch_masks": masks, "mix_weight": jnp.reshape(kept, (-1,))}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images).astype(self.compute_dtype)
        if not training or transformation is None:
            return images
        pasted = jnp.take(images, transformation["permutation_order"], axis=0)
        return jnp.where(transformation["batch_masks"], pasted, images)

    def transform_labels(self, labels, transformation, training=True):
        if not training or transformation is None:
            return labels
        return self._mix_labels(labels, transformation)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _span(length, side, key, dtype, batch):
    extent = (side * length).astype(dtype)
    start = random.uniform((batch,), dtype=dtype, seed=key) * (length - extent)
    return start, start + extent


__all__ = ["CutMix"]
