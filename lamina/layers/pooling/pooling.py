"""``MaxPooling1D/2D/3D`` and ``AveragePooling1D/2D/3D``."""

from __future__ import annotations

from lamina.layers.convolutional import _arguments as args
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.pooling.pool_ops import pool, pooling_output_shape
from lamina.saving.object_registry import register_builtin


class BasePooling(Layer):
    """Windowed max or average over the spatial axes; subclasses set ``rank`` and ``mode``.

    ``strides=None`` means ``pool_size``: non-overlapping windows, which max pooling computes
    by reshape-and-reduce for a fast gradient (see ``lamina.layers.pooling.pool_ops``). ``padding="same"`` pads so that the output has
    ``ceil(size / stride)`` positions; padded elements never win a max and are not counted in
    an average (as in Keras).
    """

    rank: int = None
    mode: str = None

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} '{self.name}'"
        self.pool_size = args.normalize_tuple(pool_size, self.rank, "pool_size", owner)
        self.strides = args.normalize_tuple(pool_size if strides is None else strides, self.rank, "strides", owner)
        self.padding = args.normalize_padding(padding, owner)
        self.data_format = args.normalize_data_format(data_format, owner)
        self.input_spec = InputSpec(ndim=self.rank + 2)
        self.built = True

    def call(self, inputs):
        self.compute_output_shape(inputs.shape)  # a clear error for windows larger than the input
        return pool(inputs, self.mode, self.pool_size, self.strides, self.padding, self.data_format)

    def compute_output_shape(self, input_shape):
        args.check_rank(self, tuple(input_shape), self.rank + 2)
        return pooling_output_shape(self, tuple(input_shape))

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "padding": self.padding,
            "strides": self.strides,
            "data_format": self.data_format,
        }


@register_builtin
class MaxPooling1D(BasePooling):
    """Maximum pooling over ``(batch, steps, channels)``,
    as ``keras.layers.MaxPooling1D``.

    Arguments (Keras's names and defaults): ``pool_size=2``, ``strides=None`` (the pool size),
    ``padding="valid"`` (or ``"same"``), ``data_format=None`` (``"channels_last"``; or
    ``"channels_first"``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> x = jnp.array([[[1.0], [3.0], [2.0], [5.0], [4.0]]])
        >>> lm.layers.MaxPooling1D(2)(x)[0, :, 0].tolist()
        [3.0, 5.0]
        >>> lm.layers.MaxPooling1D(2, padding="same")(x)[0, :, 0].tolist()
        [3.0, 5.0, 4.0]
    """

    rank, mode = 1, "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)


@register_builtin
class MaxPooling2D(BasePooling):
    """Maximum pooling over ``(batch, height, width, channels)``,
    as ``keras.layers.MaxPooling2D``.

    Arguments (Keras's names and defaults): ``pool_size=(2, 2)``, ``strides=None`` (the pool size),
    ``padding="valid"`` (or ``"same"``), ``data_format=None`` (``"channels_last"``; or
    ``"channels_first"``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> pool = lm.layers.MaxPooling2D()
        >>> pool(jnp.ones((8, 28, 28, 16))).shape
        (8, 14, 14, 16)
        >>> lm.layers.MaxPooling2D(3, strides=2, padding="same").compute_output_shape((None, 7, 7, 4))
        (None, 4, 4, 4)
    """

    rank, mode = 2, "max"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)


@register_builtin
class MaxPooling3D(BasePooling):
    """Maximum pooling over ``(batch, depth, height, width, channels)``,
    as ``keras.layers.MaxPooling3D``.

    Arguments (Keras's names and defaults): ``pool_size=(2, 2, 2)``, ``strides=None`` (the pool size),
    ``padding="valid"`` (or ``"same"``), ``data_format=None`` (``"channels_last"``; or
    ``"channels_first"``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.MaxPooling3D()(jnp.ones((1, 4, 6, 5, 2))).shape
        (1, 2, 3, 2, 2)
    """

    rank, mode = 3, "max"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)


@register_builtin
class AveragePooling1D(BasePooling):
    """Average pooling over ``(batch, steps, channels)``,
    as ``keras.layers.AveragePooling1D``.

    Arguments (Keras's names and defaults): ``pool_size`` (required, as in Keras 3),
    ``strides=None`` (the pool size), ``padding="valid"`` (or ``"same"``),
    ``data_format=None`` (``"channels_last"``; or ``"channels_first"``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> x = jnp.array([[[1.0], [3.0], [2.0], [5.0], [4.0]]])
        >>> lm.layers.AveragePooling1D(2)(x)[0, :, 0].tolist()
        [2.0, 3.5]
        >>> lm.layers.AveragePooling1D(2, padding="same")(x)[0, :, 0].tolist()
        [2.0, 3.5, 4.0]
    """

    rank, mode = 1, "average"

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)


@register_builtin
class AveragePooling2D(BasePooling):
    """Average pooling over ``(batch, height, width, channels)``,
    as ``keras.layers.AveragePooling2D``.

    Arguments (Keras's names and defaults): ``pool_size`` (required, as in Keras 3),
    ``strides=None`` (the pool size), ``padding="valid"`` (or ``"same"``),
    ``data_format=None`` (``"channels_last"``; or ``"channels_first"``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.AveragePooling2D(2)(jnp.ones((8, 28, 28, 16))).shape
        (8, 14, 14, 16)
    """

    rank, mode = 2, "average"

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)


@register_builtin
class AveragePooling3D(BasePooling):
    """Average pooling over ``(batch, depth, height, width, channels)``,
    as ``keras.layers.AveragePooling3D``.

    Arguments (Keras's names and defaults): ``pool_size`` (required, as in Keras 3),
    ``strides=None`` (the pool size), ``padding="valid"`` (or ``"same"``),
    ``data_format=None`` (``"channels_last"``; or ``"channels_first"``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.AveragePooling3D(2)(jnp.ones((1, 4, 6, 5, 2))).shape
        (1, 2, 3, 2, 2)
    """

    rank, mode = 3, "average"

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)
