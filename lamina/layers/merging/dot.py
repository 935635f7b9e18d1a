"""``Dot``: per-sample dot product of two inputs along given axes."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina.layers.merging.base_merge import Merge
from lamina.saving.object_registry import register_builtin

_NORMALIZE_EPSILON = 1e-7  # Keras's backend.epsilon(), the cap of its L2 normalization


@register_builtin
class Dot(Merge):
    """Dot product of two inputs per sample, along ``axes`` (an int, or one axis per input;
    never the batch axis), as ``keras.layers.Dot``. ``normalize=True`` L2-normalizes both
    inputs along those axes first (the cosine similarity).

    The output has the first input's remaining axes, then the second's (without its batch
    axis); a rank-1 result becomes ``(batch, 1)``. The output has no mask.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> x, y = jnp.ones((2, 3, 5)), jnp.ones((2, 4, 5))
        >>> lm.layers.Dot(axes=(2, 2))([x, y]).shape
        (2, 3, 4)
        >>> lm.layers.Dot(axes=1)([jnp.array([[1.0, 2.0]]), jnp.array([[3.0, 4.0]])]).tolist()
        [[11.0]]
    """

    _expand_ranks = False

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axes, int):
            if not isinstance(axes, (list, tuple)):
                raise TypeError(f"Dot '{self.name}': axes must be an int or a list of two ints, got {axes!r}.")
            if len(axes) != 2 or not all(isinstance(a, int) for a in axes):
                raise ValueError(f"Dot '{self.name}': axes must contain two integers, got {axes!r}.")
            axes = list(axes)
        self.axes = axes
        self.normalize = normalize

    def _resolved_axes(self, shape1, shape2):
        if isinstance(self.axes, int):
            if self.axes < 0:
                return [self.axes % len(shape1), self.axes % len(shape2)]
            return [self.axes, self.axes]
        return [a % len(s) if a < 0 else a for a, s in zip(self.axes, (shape1, shape2))]

    def _merged_shape(self, shapes):
        self._check_list(shapes)
        if len(shapes) != 2:
            self._fail(f"expected a list of 2 inputs, got {len(shapes)} (input shapes {list(shapes)}).")
        shape1, shape2 = list(shapes[0]), list(shapes[1])
        if len(shape1) < 2 or len(shape2) < 2:
            self._fail(f"inputs must have rank >= 2; got input shapes {tuple(shape1)} and {tuple(shape2)}.")
        a1, a2 = self._resolved_axes(shape1, shape2)
        if not (0 < a1 < len(shape1) and 0 < a2 < len(shape2)):
            self._fail(f"axes {self.axes} are out of range (or the batch axis) for input shapes "
                       f"{tuple(shape1)} and {tuple(shape2)}.")
        if shape1[a1] is not None and shape2[a2] is not None and shape1[a1] != shape2[a2]:
            self._fail(
                f"incompatible input shapes: axis values {shape1[a1]} (at axis {a1}) != {shape2[a2]} "
                f"(at axis {a2}). Full input shapes: {tuple(shape1)}, {tuple(shape2)}."
            )
        if shape1[0] is not None and shape2[0] is not None and shape1[0] != shape2[0]:
            self._fail(f"cannot merge inputs with different batch sizes; got shapes {tuple(shape1)}, {tuple(shape2)}.")
        shape1.pop(a1)
        shape2.pop(a2)
        shape2.pop(0)
        out = shape1 + shape2
        return tuple(out + [1] if len(out) == 1 else out)

    def _merge_function(self, inputs, masks):
        if len(inputs) != 2:
            self._fail(f"expected exactly 2 inputs, got {len(inputs)}.")
        x1, x2 = inputs
        a1, a2 = self._resolved_axes(x1.shape, x2.shape)
        if self.normalize:
            x1, x2 = _l2_normalize(x1, a1), _l2_normalize(x2, a2)
        out = jax.lax.dot_general(x1, x2, (((a1,), (a2,)), ((0,), (0,))))
        return out[:, None] if out.ndim == 1 else out

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def _l2_normalize(x, axis):
    square_sum = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x * jnp.minimum(jax.lax.rsqrt(square_sum), 1.0 / _NORMALIZE_EPSILON)


__all__ = ["Dot"]
