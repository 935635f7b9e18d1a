"""``Pipeline``: preprocessing layers applied one after the other (Keras's ``layers.Pipeline``)."""

from __future__ import annotations

import inspect

from lamina.layers.layer import Layer
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.mixing_augmentation import MixingAugmentationLayer
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import deserialize_object, serialize_object


def _takes(layer, argument) -> bool:
    return argument in inspect.signature(layer.call).parameters


@register_builtin
class Pipeline(Layer):
    """Applies ``layers`` in order, as ``keras.layers.Pipeline``; ``training`` (``True`` by
    default, as for the image layers) reaches each layer that takes it. Unlike a
    ``Sequential``, it is not a model: it builds no graph, and its input may be Keras's dict
    ``{"images": ..., "labels": ...}``, which ``MixUp`` and ``CutMix`` mix as a whole while the
    other image layers transform its images and pass the labels on.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> pipeline = lm.layers.Pipeline([lm.layers.AutoContrast(value_range=(0, 1)),
        ...                                lm.layers.RandomBrightness((-0.5, -0.5), value_range=(0, 1))])
        >>> pipeline(jnp.array([[[0.2], [0.4]]]))[0, :, 0].tolist()
        [0.0, 0.5]
    """

    def __init__(self, layers, name=None):
        super().__init__(name=name)
        if not isinstance(layers, (list, tuple)) or not all(isinstance(layer, Layer) for layer in layers):
            raise ValueError(f"Pipeline '{self.name}': `layers` must be a list of layers, got {layers!r}.")
        self._pipeline_layers = list(layers)

    @property
    def layers(self):
        return self._pipeline_layers

    def call(self, inputs, training=True, mask=None):
        for i, layer in enumerate(self._pipeline_layers):
            kwargs = {}
            if training is not None and _takes(layer, "training"):
                kwargs["training"] = training
            if i == 0 and mask is not None and _takes(layer, "mask"):
                kwargs["mask"] = mask
            if (isinstance(inputs, dict) and isinstance(layer, ImageAugmentationLayer)
                    and not isinstance(layer, MixingAugmentationLayer)):
                inputs = {**inputs, "images": layer(inputs["images"], **kwargs)}
            else:
                inputs = layer(inputs, **kwargs)
        return inputs

    def compute_output_shape(self, input_shape):
        for layer in self._pipeline_layers:
            if isinstance(input_shape, dict) and not isinstance(layer, MixingAugmentationLayer):
                input_shape = {**input_shape, "images": layer.compute_output_shape(input_shape["images"])}
            else:
                input_shape = layer.compute_output_shape(input_shape)
        return input_shape

    def get_config(self):
        # Keras's Pipeline config holds only these two keys (its constructor takes no others).
        return {"layers": [serialize_object(layer) for layer in self._pipeline_layers], "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        layers = config.get("layers")
        if not isinstance(layers, (list, tuple)):
            raise ValueError(f"Pipeline: the config must map `layers` to a list of serialized layers, got {layers!r}.")
        layers = [deserialize_object(layer, kind="layer", aliases={}, custom_objects=custom_objects)
                  for layer in layers]
        return cls(layers, name=config.get("name"))


__all__ = ["Pipeline"]
