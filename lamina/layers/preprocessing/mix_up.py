"""``MixUp``: each image (and its label) blended with another of the batch during training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import batch_shape, keys
from lamina.layers.preprocessing.mixing_augmentation import MixingAugmentationLayer
from lamina.saving.object_registry import register_builtin


@register_builtin
class MixUp(MixingAugmentationLayer):
    """MixUp (Zhang et al., 2017) in training, as ``keras.layers.MixUp``: each image ``x_i``
    becomes ``w_i * x_i + (1 - w_i) * x_j``, ``j`` a random permutation of the batch and
    ``w_i`` drawn from ``Beta(alpha, alpha)``; called on ``{"images": x, "labels": y}`` (one-hot
    or soft labels), the labels are mixed with the same weights. With ``training=False`` the
    inputs pass unchanged.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> mixup = lm.layers.MixUp(alpha=0.5, seed=0)
        >>> images, labels = jnp.stack([jnp.zeros((2, 2, 1)), jnp.ones((2, 2, 1))]), jnp.eye(2)
        >>> out = mixup({"images": images, "labels": labels})
        >>> bool(jnp.allclose(out["images"][:, 0, 0, 0], out["labels"][:, 1]))   # pixel = share of image 1
        True
    """

    def __init__(self, alpha=0.2, data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
            raise ValueError(f"{self._owner()}: `alpha` must be a positive number, got {alpha!r}.")
        self.alpha = alpha

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"mix_weight": (batch,), "permutation_order": int (batch,)}``, as Keras's."""
        if not training:
            return None
        (batch,) = batch_shape(images)
        order_key, weight_key = keys(self._seed(seed), 2)
        order = random.shuffle(jnp.arange(batch, dtype=jnp.int32), seed=order_key)
        weight = random.beta((batch,), self.alpha, self.alpha, seed=weight_key)
        return {"mix_weight": weight, "permutation_order": order}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images)
        if not training or transformation is None:
            return images
        images = images.astype(self.compute_dtype)
        weight = jnp.reshape(jnp.asarray(transformation["mix_weight"], self.compute_dtype), (-1, 1, 1, 1))

        def mix(batch):
            return weight * batch + (1.0 - weight) * jnp.take(batch, transformation["permutation_order"], axis=0)

        return self._on_batch(images, mix)

    def transform_labels(self, labels, transformation, training=True):
        if not training or transformation is None:
            return labels
        return self._mix_labels(labels, transformation)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


__all__ = ["MixUp"]
