"""``MixingAugmentationLayer``: what ``MixUp`` and ``CutMix`` share. They mix each image with
another image of the batch, so they need the labels too: besides an image batch, they take
Keras's dict ``{"images": ..., "labels": ...}`` and return one with both mixed alike."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.layer import Layer
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer

_KEYS = ("images", "labels")


class MixingAugmentationLayer(ImageAugmentationLayer):
    """Subclasses implement ``get_random_transformation``, ``transform_images`` and
    ``transform_labels(labels, transformation, training)``."""

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.input_spec = None  # a dict or an array: checked in call, naming the layer

    def __call__(self, *args, **kwargs):
        if args and isinstance(args[0], dict):
            unknown = sorted(set(args[0]) - set(_KEYS))
            if unknown or "images" not in args[0]:
                raise ValueError(f"{type(self).__name__} '{self.path}' takes images or a dict with the keys "
                                 f"'images' and (optionally) 'labels', got a dict with keys {sorted(args[0])}; "
                                 "lamina's image layers do not transform bounding boxes or segmentation masks.")
        return Layer.__call__(self, *args, **kwargs)

    def call(self, data, training=True):
        images = data["images"] if isinstance(data, dict) else data
        if jnp.ndim(images) not in (3, 4):
            raise ValueError(f"{type(self).__name__} '{self.path}': expected one image (rank 3) or a batch "
                             f"(rank 4), got images of shape {tuple(jnp.shape(images))}.")
        transformation = self.get_random_transformation(images, training=training)
        mixed = self.transform_images(images, transformation, training=training)
        if not isinstance(data, dict):
            return mixed
        outputs = {"images": mixed}
        if "labels" in data:
            outputs["labels"] = self.transform_labels(jnp.asarray(data["labels"]), transformation, training=training)
        return outputs

    def transform_labels(self, labels, transformation, training=True):
        raise NotImplementedError

    @staticmethod
    def _mix_labels(labels, transformation):
        """``w * labels + (1 - w) * labels[permutation]``, one weight per row."""
        order, weight = transformation["permutation_order"], transformation["mix_weight"]
        weight = jnp.reshape(weight, (-1,) + (1,) * (labels.ndim - 1))
        return weight * labels + (1.0 - weight) * jnp.take(labels, order, axis=0)

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, dict):
            return dict(input_shape)
        return tuple(input_shape)


__all__ = ["MixingAugmentationLayer"]
