"""``Wrapper``: the base class of layers that wrap another layer, as ``keras.layers.Wrapper``."""

from __future__ import annotations

from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import deserialize_object, serialize_object


@register_builtin
class Wrapper(Layer):
    """A layer holding another layer as ``self.layer``, which it builds (when unbuilt) from
    its own input shape and saves in its config under ``"layer"``; subclasses say what
    ``call`` does with it (``TimeDistributed``, ``SpectralNormalization``).

    The wrapped layer is tracked, so its weights are the wrapper's (after the wrapper's own).
    ``from_config`` rebuilds the wrapped layer first and passes it as the first argument.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> class Doubled(lm.layers.Wrapper):
        ...     def call(self, inputs):
        ...         return 2 * self.layer(inputs)
        >>> layer = Doubled(lm.layers.Dense(3, kernel_initializer="ones"))
        >>> layer(jnp.ones((1, 2))).tolist()
        [[4.0, 4.0, 4.0]]
        >>> layer.get_config()["layer"]["class_name"]
        'Dense'
    """

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                f"{type(self).__name__}: `layer` must be a lamina Layer (lm.layers.Layer); got {layer!r}."
            )
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build_from_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "layer": serialize_object(self.layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        layer = deserialize_object(config.pop("layer"), kind="layer", aliases={}, custom_objects=custom_objects)
        return cls(layer, **config)


__all__ = ["Wrapper"]
