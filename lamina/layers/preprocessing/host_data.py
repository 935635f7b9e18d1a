"""Host-side data for the preprocessing layers that work on strings (or hash values).

JAX arrays cannot hold strings, so ``StringLookup``, ``TextVectorization``, ``Hashing`` and
``HashedCrossing`` compute with NumPy on the host, on concrete values: NumPy arrays (unicode,
bytes or object), Python lists and scalars, TensorFlow eager tensors, or JAX arrays of
numbers. Inside ``lm.jit``, ``fit`` or a Functional model's symbolic build the input is a
tracer with no values, and ``refuse_traced`` says to apply the layer in the data pipeline
instead (Keras on JAX has the same restriction).

``HostLayer`` is the base of those layers: its ``__call__`` skips the numeric input casting
of ``Layer.__call__`` (which refuses strings), marks the layer built and names the layer in
any error; on symbolic TensorFlow tensors (``tf.data``'s ``dataset.map``) it runs the same
computation through ``tf.numpy_function`` (tf_graph.py). ``batches(data)`` walks what ``adapt`` receives: an array or a list (one batch), or
an iterable of batches (a generator, ``tf.data.Dataset``, ``lm.data.Dataset``; ``(x, y)``
batches use ``x``).
"""

from __future__ import annotations

import jax
import numpy as np

from lamina.layers.layer import Layer, _name_layer_in_error
from lamina.layers.preprocessing.tf_graph import call_in_tf_graph, is_tf_graph_tensor


def is_traced(value) -> bool:
    """True when ``value`` (or an item of a list/tuple) is a JAX tracer (no concrete values)."""
    if isinstance(value, (list, tuple)):
        return any(is_traced(v) for v in value)
    return isinstance(value, jax.core.Tracer)


def refuse_traced(layer, value) -> None:
    """Raise when ``layer`` is called inside traced code (``lm.jit``, ``fit``, a Functional build)."""
    from lamina.core.symbolic import contains_symbolic  # noqa: PLC0415 - lamina.core imports layers

    if is_traced(value) or contains_symbolic(value):
        raise TypeError(
            f"{type(layer).__name__} '{layer.path}' computes on the host with NumPy (JAX arrays "
            "cannot hold strings and its lookups/hashes are not JAX operations), so it cannot run "
            "inside traced code (lm.jit, fit/evaluate/predict steps, or a Functional model's "
            "symbolic inputs). Apply it in the data pipeline instead: on the NumPy arrays before "
            "fit, or in dataset.map(...)."
        )


def to_numpy(value, encoding="utf-8") -> np.ndarray:
    """``value`` as a NumPy array; bytes become ``str`` (decoded with ``encoding``), Python
    objects that are all strings become a unicode array."""
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray) and not isinstance(value, jax.Array):
        value = value.numpy()  # a TensorFlow eager tensor
    array = np.asarray(value)
    if array.dtype.kind == "S":
        return np.char.decode(array, encoding) if array.size else array.astype(str)
    if array.dtype.kind == "O":
        flat = [v.decode(encoding) if isinstance(v, bytes) else v for v in array.reshape(-1).tolist()]
        if all(isinstance(v, str) for v in flat):
            return np.asarray(flat, dtype=str).reshape(array.shape) if flat else array.astype(str)
    return array


def first_of_batch(batch):
    """``x`` from an ``(x, y)`` or ``(x, y, sample_weight)`` batch."""
    return batch[0] if isinstance(batch, tuple) else batch


def batches(data, steps=None):
    """The batches ``adapt(data)`` learns from: an array, tensor, list or tuple is one batch;
    any other iterable yields batches (``steps`` of them at most)."""
    if isinstance(data, (np.ndarray, jax.Array, list, tuple, str, bytes)) or hasattr(data, "numpy"):
        yield data
        return
    if not hasattr(data, "__iter__"):
        raise TypeError(
            f"adapt() accepts an array, a list, or an iterable of batches (a generator, tf.data or "
            f"lm.data Dataset); got {type(data).__name__}."
        )
    for i, batch in enumerate(data):
        if steps is not None and i >= steps:
            break
        yield first_of_batch(batch)


class HostLayer(Layer):
    """Base of the preprocessing layers that compute with NumPy on the host (see the module)."""

    def __call__(self, inputs, *args, **kwargs):
        if is_tf_graph_tensor(inputs):  # dataset.map(layer): see tf_graph.py
            return call_in_tf_graph(self, inputs, self.tf_output_dtype())
        refuse_traced(self, inputs)
        kwargs.pop("training", None)  # accepted as Keras does; nothing here depends on it
        if not self.built:
            self.built = True
        try:
            return self.call(inputs, *args, **kwargs)
        except Exception as error:
            _name_layer_in_error(error, self, inputs)
            raise


__all__ = ["HostLayer", "batches", "first_of_batch", "is_traced", "refuse_traced", "to_numpy"]
