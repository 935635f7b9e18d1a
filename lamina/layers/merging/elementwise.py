"""Elementwise merges: ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``, ``Minimum``."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.merging.base_merge import Merge, _broadcast_mask, _masked_reduce
from lamina.saving.object_registry import register_builtin


@register_builtin
class Add(Merge):
    """Sum of a list of inputs of the same shape, as ``keras.layers.Add``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Add()([jnp.ones((2, 3)), 2 * jnp.ones((2, 3))]).tolist()
        [[3.0, 3.0, 3.0], [3.0, 3.0, 3.0]]
    """

    def _merge_function(self, inputs, masks):
        output = inputs[0]
        for x in inputs[1:]:
            output = output + x
        return output


@register_builtin
class Subtract(Merge):
    """``inputs[0] - inputs[1]`` for exactly two inputs, as ``keras.layers.Subtract``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Subtract()([jnp.array([[5.0, 1.0]]), jnp.array([[2.0, 2.0]])]).tolist()
        [[3.0, -1.0]]
    """

    def build(self, input_shape):
        super().build(input_shape)
        if len(input_shape) != 2:
            self._fail(f"expected exactly 2 inputs, got {len(input_shape)} (input shapes {list(input_shape)}).")

    def _merge_function(self, inputs, masks):
        if len(inputs) != 2:
            self._fail(f"expected exactly 2 inputs, got {len(inputs)}.")
        return inputs[0] - inputs[1]


@register_builtin
class Multiply(Merge):
    """Elementwise product of a list of inputs, as ``keras.layers.Multiply``.

    Masked positions count as 1 in the product; where every input is masked the output is 0.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Multiply()([jnp.array([[2.0, 3.0]]), jnp.array([[4.0, 5.0]])]).tolist()
        [[8.0, 15.0]]
    """

    def _merge_function(self, inputs, masks):
        all_masked = all(m is not None for m in masks)
        output, output_mask = None, None
        for x, mask in zip(inputs, masks):
            if mask is not None:
                mask = _broadcast_mask(mask, x)
                x = jnp.where(mask, x, jnp.ones((), x.dtype))
                if all_masked:
                    output_mask = mask if output_mask is None else jnp.logical_or(output_mask, mask)
            output = x if output is None else output * x
        if all_masked:
            output = jnp.where(output_mask, output, jnp.zeros((), output.dtype))
        return output


@register_builtin
class Average(Merge):
    """Elementwise mean of a list of inputs, as ``keras.layers.Average``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Average()([jnp.array([[1.0, 2.0]]), jnp.array([[3.0, 6.0]])]).tolist()
        [[2.0, 4.0]]
    """

    def _merge_function(self, inputs, masks):
        output = inputs[0]
        for x in inputs[1:]:
            output = output + x
        return output / len(inputs)


@register_builtin
class Maximum(Merge):
    """Elementwise maximum of a list of inputs, as ``keras.layers.Maximum``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Maximum()([jnp.array([[1.0, 7.0]]), jnp.array([[3.0, 2.0]])]).tolist()
        [[3.0, 7.0]]
    """

    def _merge_function(self, inputs, masks):
        return _masked_reduce(jnp.maximum, inputs, masks)


@register_builtin
class Minimum(Merge):
    """Elementwise minimum of a list of inputs, as ``keras.layers.Minimum``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Minimum()([jnp.array([[1.0, 7.0]]), jnp.array([[3.0, 2.0]])]).tolist()
        [[1.0, 2.0]]
    """

    def _merge_function(self, inputs, masks):
        return _masked_reduce(jnp.minimum, inputs, masks)


__all__ = ["Add", "Average", "Maximum", "Minimum", "Multiply", "Subtract"]
