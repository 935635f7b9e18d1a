"""Keras's functional forms of the merging layers: ``add(inputs)`` is ``Add()(inputs)``.

Each builds a new layer with the keyword arguments given (``name=``, ``dtype=``, ...) and calls
it on the list of inputs, so it works on arrays and on symbolic tensors from ``lm.Input``
(where the layer becomes a node of the functional model).
"""

from __future__ import annotations

from lamina.layers.merging.concatenate import Concatenate
from lamina.layers.merging.dot import Dot
from lamina.layers.merging.elementwise import Add, Average, Maximum, Minimum, Multiply, Subtract


def add(inputs, **kwargs):
    """``Add(**kwargs)(inputs)``: the elementwise sum of a list of inputs.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.add([jnp.ones((1, 2)), jnp.ones((1, 2))]).tolist()
        [[2.0, 2.0]]
    """
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """``Subtract(**kwargs)(inputs)``: ``inputs[0] - inputs[1]``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.subtract([jnp.array([[3.0]]), jnp.array([[1.0]])]).tolist()
        [[2.0]]
    """
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """``Multiply(**kwargs)(inputs)``: the elementwise product of a list of inputs.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.multiply([jnp.array([[3.0]]), jnp.array([[2.0]])]).tolist()
        [[6.0]]
    """
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """``Average(**kwargs)(inputs)``: the elementwise mean of a list of inputs.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.average([jnp.array([[3.0]]), jnp.array([[1.0]])]).tolist()
        [[2.0]]
    """
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """``Maximum(**kwargs)(inputs)``: the elementwise maximum of a list of inputs.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.maximum([jnp.array([[3.0, 0.0]]), jnp.array([[1.0, 2.0]])]).tolist()
        [[3.0, 2.0]]
    """
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """``Minimum(**kwargs)(inputs)``: the elementwise minimum of a list of inputs.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.minimum([jnp.array([[3.0, 0.0]]), jnp.array([[1.0, 2.0]])]).tolist()
        [[1.0, 0.0]]
    """
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """``Concatenate(axis=axis, **kwargs)(inputs)``: the inputs joined along ``axis``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.concatenate([jnp.ones((2, 3)), jnp.zeros((2, 1))]).shape
        (2, 4)
    """
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """``Dot(axes=axes, normalize=normalize, **kwargs)(inputs)``: per-sample dot products of
    two inputs along ``axes`` (cosine similarities with ``normalize=True``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.dot([jnp.array([[1.0, 2.0]]), jnp.array([[3.0, 4.0]])], axes=1).tolist()
        [[11.0]]
    """
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)


__all__ = ["add", "average", "concatenate", "dot", "maximum", "minimum", "multiply", "subtract"]
