"""``AdaptiveAveragePooling1D/2D/3D`` and ``AdaptiveMaxPooling1D/2D/3D``: pool to a fixed size.

Output position ``i`` of a spatial axis of length ``L`` pooled to ``O`` covers the inputs
``floor(i * L / O)`` up to (not including) ``ceil((i + 1) * L / O)``, PyTorch's and Keras 3's
windows: they overlap or leave nothing out, and have ``ceil(L / O)`` or one more elements.
Each spatial axis is pooled in turn (average and max are separable), as Keras's JAX backend
does. The windows are known from the static shape, so an average is one contraction with a
constant ``(O, L)`` matrix of ``1 / window size`` entries per axis, and a max gathers each
window (padded with copies of its last element) and takes the first maximum with ``argmax``:
its gradient reaches one input per window, the first of equal maxima, as ``reduce_window``'s
does in Keras.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lamina.layers.convolutional import _arguments as args
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin


def adaptive_windows(length: int, size: int) -> list:
    """``[(start, end), ...]``: the input range each of ``size`` outputs pools over.

    Example:
        >>> adaptive_windows(5, 3)
        [(0, 2), (1, 4), (3, 5)]
        >>> adaptive_windows(2, 4)
        [(0, 1), (0, 1), (1, 2), (1, 2)]
    """
    return [((i * length) // size, -((-(i + 1) * length) // size)) for i in range(size)]


def _average_along(x, axis, size):
    windows = adaptive_windows(x.shape[axis], size)
    weights = np.zeros((size, x.shape[axis]), np.float32)
    for row, (start, end) in enumerate(windows):
        weights[row, start:end] = 1.0 / (end - start)
    pooled = jnp.tensordot(x, jnp.asarray(weights, x.dtype), axes=((axis,), (1,)))
    return jnp.moveaxis(pooled, -1, axis)


def _max_along(x, axis, size):
    windows = adaptive_windows(x.shape[axis], size)
    width = max(end - start for start, end in windows)
    # Short windows repeat their last element: a copy never changes a max, and argmax takes
    # the first of equal values, so a copy never wins over the element it copies.
    index = np.array([[min(start + k, end - 1) for k in range(width)] for start, end in windows])
    gathered = jnp.take(x, jnp.asarray(index.reshape(-1)), axis=axis)
    gathered = gathered.reshape(*x.shape[:axis], size, width, *x.shape[axis + 1:])
    first = jnp.argmax(gathered, axis=axis + 1, keepdims=True)
    return jnp.squeeze(jnp.take_along_axis(gathered, first, axis=axis + 1), axis=axis + 1)


class BaseAdaptivePooling(Layer):
    """Average or max pooling to a fixed spatial ``output_size``; subclasses set ``rank``
    and ``mode``."""

    rank: int = None
    mode: str = None
    _length_error = TypeError  # Keras's type for a tuple of the wrong length (ValueError in 1D)

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} '{self.name}'"
        n = self.rank
        if isinstance(output_size, int) and not isinstance(output_size, bool):
            output_size = (output_size,) * n
        elif isinstance(output_size, (tuple, list)):
            if len(output_size) != n:
                raise self._length_error(
                    f"{owner}: `output_size` must be an integer or a tuple of {n} integers, got {output_size!r}.")
            output_size = tuple(output_size)
        else:
            raise TypeError(f"{owner}: `output_size` must be an integer or a tuple of {n} integers, got "
                            f"{output_size!r} of type {type(output_size).__name__}.")
        if any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in output_size):
            raise ValueError(f"{owner}: every value of `output_size` must be a positive integer, got {output_size!r}.")
        self.output_size = output_size
        self.data_format = args.normalize_data_format(data_format, owner)
        self.input_spec = InputSpec(ndim=n + 2)
        self.built = True

    def call(self, inputs):
        pool_along = _average_along if self.mode == "average" else _max_along
        x = inputs
        for axis, size in zip(args.spatial_axes(self.rank, self.data_format), self.output_size):
            x = pool_along(x, axis, size)
        return x

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        args.check_rank(self, input_shape, self.rank + 2)
        if self.data_format == "channels_last":
            return (input_shape[0], *self.output_size, input_shape[-1])
        return (input_shape[0], input_shape[1], *self.output_size)

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size, "data_format": self.data_format}


@register_builtin
class AdaptiveAveragePooling1D(BaseAdaptivePooling):
    """Average pooling of ``(batch, steps, channels)`` to ``output_size`` steps, whatever the
    input's length, as ``keras.layers.AdaptiveAveragePooling1D``.

    Arguments: ``output_size`` (an integer or a tuple of one), ``data_format=None``
    (``"channels_last"``; or ``"channels_first"``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> x = jnp.array([[[1.0], [2.0], [3.0], [4.0], [8.0]]])
        >>> lm.layers.AdaptiveAveragePooling1D(3)(x)[0, :, 0].tolist()
        [1.5, 3.0, 6.0]
    """

    rank, mode = 1, "average"
    _length_error = ValueError


@register_builtin
class AdaptiveAveragePooling2D(BaseAdaptivePooling):
    """Average pooling of ``(batch, height, width, channels)`` to ``output_size``, as
    ``keras.layers.AdaptiveAveragePooling2D``.

    Arguments: ``output_size`` (an integer or a ``(height, width)`` tuple),
    ``data_format=None`` (``"channels_last"``; or ``"channels_first"``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.AdaptiveAveragePooling2D((2, 3))(jnp.ones((1, 7, 9, 4))).shape
        (1, 2, 3, 4)
    """

    rank, mode = 2, "average"


@register_builtin
class AdaptiveAveragePooling3D(BaseAdaptivePooling):
    """Average pooling of ``(batch, depth, height, width, channels)`` to ``output_size``, as
    ``keras.layers.AdaptiveAveragePooling3D``.

    Arguments: ``output_size`` (an integer or a ``(depth, height, width)`` tuple),
    ``data_format=None`` (``"channels_last"``; or ``"channels_first"``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.AdaptiveAveragePooling3D(2)(jnp.ones((1, 5, 4, 3, 2))).shape
        (1, 2, 2, 2, 2)
    """

    rank, mode = 3, "average"


@register_builtin
class AdaptiveMaxPooling1D(BaseAdaptivePooling):
    """Max pooling of ``(batch, steps, channels)`` to ``output_size`` steps, whatever the
    input's length, as ``keras.layers.AdaptiveMaxPooling1D``.

    Arguments: ``output_size`` (an integer or a tuple of one), ``data_format=None``
    (``"channels_last"``; or ``"channels_first"``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> x = jnp.array([[[1.0], [5.0], [3.0], [4.0], [2.0]]])
        >>> lm.layers.AdaptiveMaxPooling1D(3)(x)[0, :, 0].tolist()
        [5.0, 5.0, 4.0]
    """

    rank, mode = 1, "max"
    _length_error = ValueError


@register_builtin
class AdaptiveMaxPooling2D(BaseAdaptivePooling):
    """Max pooling of ``(batch, height, width, channels)`` to ``output_size``, as
    ``keras.layers.AdaptiveMaxPooling2D``.

    Arguments: ``output_size`` (an integer or a ``(height, width)`` tuple),
    ``data_format=None`` (``"channels_last"``; or ``"channels_first"``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.AdaptiveMaxPooling2D(4)(jnp.ones((2, 3, 10, 8))).shape
        (2, 4, 4, 8)
    """

    rank, mode = 2, "max"


@register_builtin
class AdaptiveMaxPooling3D(BaseAdaptivePooling):
    """Max pooling of ``(batch, depth, height, width, channels)`` to ``output_size``, as
    ``keras.layers.AdaptiveMaxPooling3D``.

    Arguments: ``output_size`` (an integer or a ``(depth, height, width)`` tuple),
    ``data_format=None`` (``"channels_last"``; or ``"channels_first"``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.AdaptiveMaxPooling3D((1, 2, 2), data_format="channels_first")(jnp.ones((1, 2, 3, 4, 5))).shape
        (1, 2, 1, 2, 2)
    """

    rank, mode = 3, "max"
