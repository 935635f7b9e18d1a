"""``ZeroPadding1D/2D/3D``: zeros added before and after each spatial axis."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.convolutional import _arguments as args
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin


class BaseZeroPadding(Layer):
    """Pads the ``rank`` spatial axes; ``self.pairs`` holds ``(before, after)`` per axis."""

    rank: int = None

    def __init__(self, padding, data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} '{self.name}'"
        self.data_format = args.normalize_data_format(data_format, owner)
        if self.rank == 1:  # Keras: one (left, right) pair, or one int
            self.padding = args.normalize_tuple(padding, 2, "padding", owner, allow_zero=True)
            self.pairs = (self.padding,)
        else:
            self.padding = self.pairs = args.normalize_pairs(padding, self.rank, "padding", owner)
        self.input_spec = InputSpec(ndim=self.rank + 2)
        self.built = True

    def call(self, inputs):
        pads = [(0, 0)] * inputs.ndim
        for axis, pair in zip(args.spatial_axes(self.rank, self.data_format), self.pairs):
            pads[axis] = pair
        return jnp.pad(inputs, pads)

    def compute_output_shape(self, input_shape):
        output = list(input_shape)
        for axis, (before, after) in zip(args.spatial_axes(self.rank, self.data_format), self.pairs):
            if output[axis] is not None:
                output[axis] += before + after
        return tuple(output)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "data_format": self.data_format}


@register_builtin
class ZeroPadding1D(BaseZeroPadding):
    """Zero-pads the steps of ``(batch, steps, features)``, as ``keras.layers.ZeroPadding1D``:
    ``padding=1`` (an int, or a ``(before, after)`` pair), ``data_format=None``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.ZeroPadding1D((1, 2))(jnp.ones((1, 2, 1)))[0, :, 0].tolist()
        [0.0, 1.0, 1.0, 0.0, 0.0]
    """

    rank = 1

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(padding, data_format=data_format, **kwargs)


@register_builtin
class ZeroPadding2D(BaseZeroPadding):
    """Zero-pads height and width, as ``keras.layers.ZeroPadding2D``.

    ``padding=(1, 1)``: an int (all sides), a pair ``(symmetric_height, symmetric_width)``, or
    a pair of pairs ``((top, bottom), (left, right))``; ``data_format=None``
    (``"channels_last"``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.ZeroPadding2D(((1, 0), (2, 3)))(jnp.ones((1, 4, 4, 3))).shape
        (1, 5, 9, 3)
        >>> lm.layers.ZeroPadding2D(1).padding
        ((1, 1), (1, 1))
    """

    rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(padding, data_format=data_format, **kwargs)


@register_builtin
class ZeroPadding3D(BaseZeroPadding):
    """Zero-pads the three spatial axes, as ``keras.layers.ZeroPadding3D``
    (``padding=((1, 1), (1, 1), (1, 1))``, or an int, or three ints).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.ZeroPadding3D((1, 0, 2))(jnp.ones((1, 2, 2, 2, 1))).shape
        (1, 4, 2, 6, 1)
    """

    rank = 3

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(padding, data_format=data_format, **kwargs)
