"""``lm.Input`` / ``InputLayer``: where a Functional model's graph starts."""

from __future__ import annotations

from lamina.core.symbolic import Node, SymbolicTensor
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin


@register_builtin
class InputLayer(Layer):
    """The layer behind ``lm.Input``: holds the input's shape and dtype, computes nothing.

    Example:
        >>> import lamina as lm
        >>> layer = lm.layers.InputLayer(shape=(3,), name="features")
        >>> layer.output.shape
        (None, 3)
    """

    def __init__(self, shape=None, batch_size=None, dtype="float32", name=None, sparse=False, **kwargs):
        if shape is None:
            shape = kwargs.pop("batch_shape", None)
            if shape is None:
                raise ValueError("InputLayer needs shape= (without the batch axis).")
            batch_shape = tuple(shape)
        else:
            batch_shape = (batch_size, *tuple(shape))
        super().__init__(name=name, dtype=dtype if dtype in ("float16", "bfloat16", "float32", "float64") else None, **kwargs)
        self.batch_shape = batch_shape
        self.input_dtype = str(dtype)
        self.built = True
        tensor = SymbolicTensor(batch_shape, dtype, name=self.name)
        tensor.node = Node(self, (), {}, tensor)
        self._lm_inbound_nodes.append(tensor.node)

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {"name": self.name, "batch_shape": list(self.batch_shape), "dtype": self.input_dtype}

    @classmethod
    def from_config(cls, config):
        return cls(shape=None, batch_shape=config["batch_shape"], dtype=config.get("dtype", "float32"),
                   name=config.get("name"))


def Input(shape=None, batch_size=None, dtype="float32", name=None, batch_shape=None):
    """A symbolic input for the Functional API: ``x = lm.Input(shape=(784,))``.

    Example:
        >>> import lamina as lm
        >>> inputs = lm.Input(shape=(4,), name="x")
        >>> model = lm.Model(inputs, lm.layers.Dense(2)(inputs))
        >>> model.output_shape
        (None, 2)
    """
    if batch_shape is not None:
        layer = InputLayer(batch_shape=batch_shape, dtype=dtype, name=name)
    else:
        layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name)
    return layer.output
