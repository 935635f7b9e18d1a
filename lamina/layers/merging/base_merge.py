"""``Merge``: the base of layers that combine a list of inputs elementwise.

Masks: ``Layer.__call__`` passes ``mask=[mask of each input]`` (``None`` entries for unmasked
inputs) when any input has one, as Keras does. As in Keras, the output mask is the OR of the
input masks when every input has one, else none; ``Maximum``, ``Minimum`` and ``Multiply``
also let masked positions not influence the result.
"""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.layer import Layer


class Merge(Layer):
    """Base class: subclasses implement ``_merge_function(inputs)`` on a list of arrays of
    compatible shapes (equal, or broadcastable where an axis is 1; a lower-rank input gets
    axes inserted after the batch axis, as in Keras)."""

    _expand_ranks = True  # insert axes after the batch axis into lower-rank inputs

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    # -- shapes -------------------------------------------------------------------------------
    def _fail(self, message):
        raise ValueError(f"{type(self).__name__} layer '{self.path}': {message}")

    def _check_list(self, shapes):
        if not isinstance(shapes, (list, tuple)) or not shapes or not isinstance(shapes[0], (list, tuple)):
            self._fail(f"expected a list of inputs, got input shape {shapes!r}.")

    def _elementwise_shape(self, shape1, shape2):
        """The broadcast shape of two per-sample shapes (Keras's rule), or a ValueError."""
        if shape1 is None or shape2 is None:
            return None
        if len(shape1) < len(shape2):
            return self._elementwise_shape(shape2, shape1)
        if not shape2:
            return tuple(shape1)
        out = list(shape1[: -len(shape2)])
        for i, j in zip(shape1[-len(shape2):], shape2):
            if i is None or j is None:
                out.append(None)
            elif i == 1:
                out.append(j)
            elif j == 1 or i == j:
                out.append(i)
            else:
                raise ValueError(f"inputs have incompatible shapes {tuple(shape1)} and {tuple(shape2)}")
        return tuple(out)

    def _merged_shape(self, shapes):
        """The output shape for a list of input shapes; checks batch sizes and broadcasting."""
        self._check_list(shapes)
        batch_sizes = {s[0] for s in shapes if s} - {None}
        if len(batch_sizes) > 1:
            self._fail(f"cannot merge inputs with different batch sizes; got shapes {[tuple(s) for s in shapes]}.")
        out = tuple(shapes[0][1:])
        try:
            for shape in shapes[1:]:
                out = self._elementwise_shape(out, tuple(shape[1:]))
        except ValueError as error:
            self._fail(f"{error} (input shapes {[tuple(s) for s in shapes]}).")
        return (batch_sizes.pop() if batch_sizes else None, *out)

    def build(self, input_shape):
        self._merged_shape(input_shape)

    def compute_output_shape(self, input_shape):
        return self._merged_shape(input_shape)

    # -- computation --------------------------------------------------------------------------
    def _masks(self, inputs, mask):
        return list(mask) if mask is not None else [None] * len(inputs)

    def call(self, inputs, mask=None):
        if not isinstance(inputs, (list, tuple)):
            self._fail(f"expected a list of inputs, got a single input of shape {getattr(inputs, 'shape', None)}.")
        self._merged_shape([tuple(x.shape) for x in inputs])  # shapes are static: checked every call
        masks = self._masks(inputs, mask)
        ranks = [x.ndim for x in inputs]
        if self._expand_ranks and len(set(ranks)) > 1:
            top = max(ranks)
            expanded = []
            for x in inputs:
                for _ in range(top - x.ndim):
                    x = jnp.expand_dims(x, 1)
                expanded.append(x)
            inputs = expanded
        return self._merge_function(list(inputs), masks)

    def _merge_function(self, inputs, masks):
        raise NotImplementedError

    def compute_mask(self, inputs, mask=None):
        if not isinstance(inputs, (list, tuple)):
            return None
        masks = self._masks(inputs, mask)
        if len(masks) != len(inputs):
            self._fail(f"got {len(masks)} masks for {len(inputs)} inputs.")
        if any(m is None for m in masks):
            return None
        output = masks[0]
        for m in masks[1:]:
            output = jnp.logical_or(output, m)
        return output


def _broadcast_mask(mask, x):
    return jnp.broadcast_to(jnp.expand_dims(mask, -1), x.shape).astype(bool)


def _masked_reduce(op, inputs, masks):
    """Keras's ``_apply_merge_op_and_or_mask``: a masked position takes the other operand."""
    output, output_mask = None, None
    for x, mask in zip(inputs, masks):
        mask = None if mask is None else _broadcast_mask(mask, x)
        if output is None:
            output, output_mask = x, mask
            continue
        if mask is not None:
            x = jnp.where(mask, x, output)
        if output_mask is not None:
            output = jnp.where(output_mask, output, x)
        output_mask = jnp.logical_or(output_mask, mask) if mask is not None and output_mask is not None else None
        output = op(output, x)
    return output


__all__ = ["Merge"]
