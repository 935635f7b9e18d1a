"""``Concatenate``: join a list of inputs along one axis."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.merging.base_merge import Merge
from lamina.saving.object_registry import register_builtin


@register_builtin
class Concatenate(Merge):
    """Concatenates a list of inputs along ``axis``; all other axes must match, as
    ``keras.layers.Concatenate``.

    The output mask (when any input has one) is Keras's: per position, whether any
    concatenated element is unmasked.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Concatenate()([jnp.zeros((2, 3)), jnp.ones((2, 1))]).shape
        (2, 4)
        >>> lm.layers.Concatenate(axis=1).compute_output_shape([(None, 3, 5), (None, 2, 5)])
        (None, 5, 5)
    """

    _expand_ranks = False

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def _merged_shape(self, shapes):
        self._check_list(shapes)
        shapes = [tuple(s) for s in shapes]
        ranks = {len(s) for s in shapes}
        problem = len(ranks) != 1 or not -min(ranks) <= self.axis < min(ranks)
        if not problem:
            rank = ranks.pop()
            axis = self.axis % rank
            for i in range(rank):
                sizes = {s[i] for s in shapes} - {None}
                if i != axis and len(sizes) > 1:
                    problem = True
        if problem:
            self._fail(
                "requires inputs with matching shapes except for the concatenation axis "
                f"(axis={self.axis}); got input shapes {shapes}."
            )
        out = list(shapes[0])
        out[axis] = None if any(s[axis] is None for s in shapes) else sum(s[axis] for s in shapes)
        for i in range(rank):
            if i != axis:
                out[i] = next((s[i] for s in shapes if s[i] is not None), None)
        return tuple(out)

    def _merge_function(self, inputs, masks):
        return jnp.concatenate(inputs, axis=self.axis)

    def compute_mask(self, inputs, mask=None):
        if not isinstance(inputs, (list, tuple)):
            return None
        masks = self._masks(inputs, mask)
        if len(masks) != len(inputs):
            self._fail(f"got {len(masks)} masks for {len(inputs)} inputs.")
        if all(m is None for m in masks):
            return None
        full = []
        for x, m in zip(inputs, masks):
            if m is None:
                full.append(jnp.ones(x.shape, bool))
            elif m.ndim < x.ndim:
                full.append(jnp.logical_or(jnp.expand_dims(m, -1), jnp.zeros(x.shape, bool)))
            else:
                full.append(m.astype(bool))
        return jnp.any(jnp.concatenate(full, axis=self.axis), axis=-1)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


__all__ = ["Concatenate"]
