"""The categorical and text layers inside a ``tf.data`` pipeline (``dataset.map(layer)``).

``tf.data`` traces the mapped function into a TensorFlow graph, so a layer there receives
symbolic ``tf.Tensor``\\ s with no values. Keras (on any backend) then computes with
TensorFlow ops; lamina instead runs the layer's own eager computation on the host through
``tf.numpy_function`` (the values arrive as NumPy arrays, the result goes back as a tensor of
the layer's output dtype, with the static shape ``compute_output_shape`` gives). TensorFlow
is never imported here: a graph tensor exists only when the caller has imported it.

Example:
    >>> from lamina.layers.preprocessing.tf_graph import is_tf_graph_tensor
    >>> import numpy as np
    >>> is_tf_graph_tensor(np.zeros(3))
    False
"""

from __future__ import annotations

import sys

import numpy as np


def is_tf_graph_tensor(value) -> bool:
    """True for a symbolic TensorFlow tensor (or a list/tuple holding one): a ``tf.function``
    or ``dataset.map`` trace, where values are not available."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return False
    if isinstance(value, (list, tuple)):
        return any(is_tf_graph_tensor(v) for v in value)
    return isinstance(value, tf.Tensor) and tf.is_symbolic_tensor(value)


def call_in_tf_graph(layer, inputs, output_dtype: str):
    """``layer(inputs)`` as a ``tf.numpy_function`` node returning ``output_dtype``."""
    tf = sys.modules["tensorflow"]
    several = isinstance(inputs, (list, tuple))
    tensors = list(inputs) if several else [inputs]

    def on_host(*arrays):
        result = layer(list(arrays) if several else arrays[0])
        result = np.asarray(result)
        if output_dtype == "string":
            return np.char.encode(result.astype(str), "utf-8") if result.size else result.astype(bytes)
        return result.astype(output_dtype)

    output = tf.numpy_function(on_host, tensors, Tout=tf.as_dtype(output_dtype), stateful=False,
                               name=f"{layer.name}_on_host")
    try:
        shapes = [tuple(t.shape) for t in tensors]
        output.set_shape(layer.compute_output_shape(shapes if several else shapes[0]))
    except (TypeError, ValueError, IndexError):
        pass  # a rank the layer cannot state in advance: the tensor keeps an unknown shape
    return output


class TFGraphCallable:
    """Mixed into a layer (before ``Layer``): a call on symbolic TensorFlow tensors goes
    through ``call_in_tf_graph``; the layer's ``tf_output_dtype()`` names the output dtype."""

    def __call__(self, inputs, *args, **kwargs):
        if not args and not kwargs.keys() - {"training"} and is_tf_graph_tensor(inputs):
            return call_in_tf_graph(self, inputs, self.tf_output_dtype())
        return super().__call__(inputs, *args, **kwargs)


__all__ = ["TFGraphCallable", "call_in_tf_graph", "is_tf_graph_tensor"]
