"""``Flatten``, ``Reshape``, ``Permute``, ``RepeatVector``: shape changes of each sample."""

from __future__ import annotations

import math

import jax.numpy as jnp

from lamina.layers.convolutional import _arguments as args
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin


@register_builtin
class Flatten(Layer):
    """Flattens each sample to one axis: ``(batch, ...)`` -> ``(batch, prod(...))``, as
    ``keras.layers.Flatten``.

    With ``data_format="channels_first"`` the channel axis is moved last first, so that a
    following ``Dense`` sees the same order as with channels-last inputs.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Flatten()(jnp.ones((2, 3, 4, 5))).shape
        (2, 60)
        >>> lm.layers.Flatten()(jnp.ones((2,))).shape
        (2, 1)
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = args.normalize_data_format(data_format, f"Flatten '{self.name}'")
        self.input_spec = InputSpec(min_ndim=1)
        self.built = True

    def call(self, inputs):
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = jnp.transpose(inputs, (0, *range(2, inputs.ndim), 1))
        return jnp.reshape(inputs, (inputs.shape[0], math.prod(inputs.shape[1:])))

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape)[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


def _resolve_target(layer, sample_shape, target_shape) -> tuple:
    """``target_shape`` with its ``-1`` filled in (``None`` when ``sample_shape`` has unknowns)."""
    if None in sample_shape:
        return tuple(None if d == -1 else d for d in target_shape)
    size, known = math.prod(sample_shape), math.prod(d for d in target_shape if d != -1)
    if -1 in target_shape:
        if known == 0 or size % known:
            raise ValueError(f"Reshape '{layer.path}': cannot reshape samples of shape {tuple(sample_shape)} "
                             f"({size} values) to target_shape={target_shape}.")
        return tuple(size // known if d == -1 else d for d in target_shape)
    if size != known:
        raise ValueError(f"Reshape '{layer.path}': cannot reshape samples of shape {tuple(sample_shape)} "
                         f"({size} values) to target_shape={target_shape} ({known} values).")
    return tuple(target_shape)


@register_builtin
class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (the batch axis is kept), as
    ``keras.layers.Reshape``; one entry may be ``-1`` (inferred).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Reshape((3, -1))(jnp.ones((2, 12))).shape
        (2, 3, 4)
        >>> lm.layers.Reshape((3, -1)).compute_output_shape((None, 12))
        (None, 3, 4)
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        try:
            target_shape = tuple(int(d) for d in target_shape)
        except TypeError:
            raise ValueError(f"Reshape '{self.name}': `target_shape` must be a tuple of ints, "
                             f"got {target_shape!r}.") from None
        if target_shape.count(-1) > 1 or any(d < -1 or d == 0 for d in target_shape):
            raise ValueError(f"Reshape '{self.name}': `target_shape` must hold positive sizes and at most one "
                             f"-1, got {target_shape}.")
        self.target_shape = target_shape
        self.built = True

    def call(self, inputs):
        return jnp.reshape(inputs, (inputs.shape[0], *_resolve_target(self, inputs.shape[1:], self.target_shape)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *_resolve_target(self, tuple(input_shape)[1:], self.target_shape))

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}


@register_builtin
class Permute(Layer):
    """Permutes the non-batch axes, as ``keras.layers.Permute``: ``dims`` is a permutation of
    ``1..rank-1`` (``(2, 1)`` swaps the two axes of each sample).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Permute((2, 1))(jnp.ones((4, 10, 64))).shape
        (4, 64, 10)
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(dims)
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute '{self.name}': `dims` must be a permutation of 1..{len(dims)} "
                             f"(the batch axis 0 stays in place), got {dims}.")
        self.dims = dims
        self.input_spec = InputSpec(ndim=len(dims) + 1)
        self.built = True

    def call(self, inputs):
        return jnp.transpose(inputs, (0, *self.dims))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def get_config(self):
        return {**super().get_config(), "dims": self.dims}


@register_builtin
class RepeatVector(Layer):
    """Repeats a ``(batch, features)`` input ``n`` times: ``(batch, n, features)``, as
    ``keras.layers.RepeatVector``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.RepeatVector(3)(jnp.ones((2, 5))).shape
        (2, 3, 5)
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"RepeatVector '{self.name}': `n` must be an integer, got {n!r}.")
        if n <= 0:
            raise ValueError(f"RepeatVector '{self.name}': `n` must be positive, got {n}.")
        self.n = n
        self.input_spec = InputSpec(ndim=2)
        self.built = True

    def call(self, inputs):
        return jnp.repeat(inputs[:, None, :], self.n, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        return {**super().get_config(), "n": self.n}
