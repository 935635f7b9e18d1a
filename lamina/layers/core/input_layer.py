"""``lm.Input`` / ``InputLayer``: where a Functional model's graph starts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

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
        if dtype in ("string", "str", str, object):  # np.dtype would only say "not understood"
            raise TypeError(
                f"Input{f' {name!r}' if name else ''}: dtype {dtype!r}: JAX arrays cannot hold strings, so a model's inputs "
                "are numbers. Turn text into integers before the model (StringLookup, TextVectorization "
                "or Hashing on the NumPy data, or in dataset.map) and declare an integer Input."
            )
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


def conform_to_input(value, shape, dtype):
    """``value`` as a model's input declared ``shape`` (with the batch axis) and ``dtype``
    takes it, with Keras's leniency at a model's entry: a missing trailing axis of size 1 is
    added (``(n, 28, 28)`` images into ``Input((28, 28, 1))``), an extra one is dropped, and
    integer or bool data (raw ``uint8`` pixels) is cast to a floating input's dtype. Anything
    else passes unchanged, for the layers to check.

    Example:
        >>> import numpy as np
        >>> conform_to_input(np.zeros((2, 3), "uint8"), (None, 3, 1), "float32").dtype
        dtype('float32')
    """
    if not isinstance(value, (jax.Array, np.ndarray)):
        return value  # symbolic tensors and structures: the layers see them as given
    rank = len(shape)
    if value.ndim == rank + 1 and value.shape[-1] == 1:
        value = jnp.squeeze(value, axis=-1)
    elif value.ndim == rank - 1 and rank > 1 and shape[-1] == 1:
        value = jnp.expand_dims(value, axis=-1)
    if np.dtype(value.dtype).kind in "biu" and jnp.issubdtype(np.dtype(dtype), jnp.floating):
        value = jnp.asarray(value, dtype=dtype)
    return value


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
