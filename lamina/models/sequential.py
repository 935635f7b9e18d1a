"""``lm.Sequential``: a plain stack of layers, each feeding the next."""

from __future__ import annotations

from lamina.core import state
from lamina.core.symbolic import SymbolicTensor
from lamina.layers.core.input_layer import InputLayer
from lamina.layers.layer import Layer, _adopt
from lamina.models.model import Model
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import deserialize_object, serialize_object


@register_builtin
class Sequential(Model):
    """Layers applied one after the other; ``add`` appends one.

    Example:
        >>> import numpy as np, lamina as lm
        >>> model = lm.Sequential([lm.layers.Dense(4, activation="relu"), lm.layers.Dense(1)])
        >>> model.predict(np.ones((3, 2)), verbose=0).shape
        (3, 1)
        >>> [w.name for w in model.weights]
        ['kernel', 'bias', 'kernel', 'bias']
    """

    def __init__(self, layers=None, name=None, trainable=True, **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)
        self._layers = []
        for layer in layers or ():
            self.add(layer)

    @property
    def layers(self) -> list:
        return list(self._layers)

    @property
    def output_names(self) -> list:
        """``[name of the last layer]`` (``[]`` while empty): a Sequential has one output.

        Keras 3's Sequential has no ``output_names``; here ``compile(loss={name: ...})``
        keyed by the last layer works as on the same Functional model.

        Example:
            >>> import lamina as lm
            >>> lm.Sequential([lm.layers.Dense(4), lm.layers.Dense(1, name="score")]).output_names
            ['score']
        """
        return [self._layers[-1].name] if self._layers else []

    def add(self, layer) -> None:
        """Append ``layer``; ``lm.Input(...)`` first, or a first layer declaring
        ``input_shape``, builds the model at once."""
        if isinstance(layer, SymbolicTensor):
            layer = layer.node.layer
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError(f"Sequential '{self.name}': an Input can only come first.")
            self._lm_declared_input_shape = layer.batch_shape
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add() takes a lamina Layer, got {type(layer).__name__}.")
        names = {existing.name for existing in self._layers}
        if layer.name in names:
            raise ValueError(f"Sequential '{self.name}' already has a layer named {layer.name!r}; names must be unique.")
        _adopt(self, layer, layer.name)  # paths read 'sequential/dense/kernel'
        self._layers.append(layer)
        state.bump_structure_version()  # a list append does not pass through __setattr__
        self.built = False
        declared = self.__dict__.get("_lm_declared_input_shape") or self._layers[0].__dict__.get("_lm_declared_input_shape")
        if declared is not None:
            self.build(declared)

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._layers:
            raise ValueError(f"Sequential '{self.name}' has no layer to pop.")
        layer = self._layers.pop()
        state.bump_structure_version()
        return layer

    def call(self, inputs, training=None):
        x = inputs
        for layer in self._layers:
            x = layer(x)
        return x

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable, "layers": [serialize_object(layer) for layer in self._layers]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        layers = [deserialize_object(spec, kind="layer", aliases={}, custom_objects=custom_objects) for spec in config.get("layers", [])]
        return cls(layers=layers, name=config.get("name"), trainable=config.get("trainable", True))
