"""``GlobalAveragePooling1D/2D/3D`` and ``GlobalMaxPooling1D/2D/3D``: reduce every spatial axis."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.convolutional import _arguments as args
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin


class BaseGlobalPooling(Layer):
    """Mean or max over the spatial axes; ``keepdims=True`` keeps them with size 1."""

    rank: int = None

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = args.normalize_data_format(data_format, f"{type(self).__name__} '{self.name}'")
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=self.rank + 2)
        self.built = True

    @property
    def _axes(self):
        return args.spatial_axes(self.rank, self.data_format)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        args.check_rank(self, input_shape, self.rank + 2)
        if self.keepdims:
            return tuple(1 if axis in self._axes else n for axis, n in enumerate(input_shape))
        return tuple(n for axis, n in enumerate(input_shape) if axis not in self._axes)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class _GlobalAverage(BaseGlobalPooling):
    def call(self, inputs):
        return jnp.mean(inputs, axis=self._axes, keepdims=self.keepdims)


class _GlobalMax(BaseGlobalPooling):
    def call(self, inputs):
        return jnp.max(inputs, axis=self._axes, keepdims=self.keepdims)


@register_builtin
class GlobalAveragePooling1D(BaseGlobalPooling):
    """Mean over the steps of ``(batch, steps, features)``, as
    ``keras.layers.GlobalAveragePooling1D`` (``data_format=None``, ``keepdims=False``).

    With a mask (from ``Embedding(mask_zero=True)``, or ``mask=`` of shape ``(batch, steps)``)
    the masked steps are left out of the mean; the output carries no mask.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> x = jnp.array([[[1.0], [2.0], [6.0]]])
        >>> lm.layers.GlobalAveragePooling1D()(x).tolist()
        [[3.0]]
        >>> lm.layers.GlobalAveragePooling1D()(x, mask=jnp.array([[True, True, False]])).tolist()
        [[1.5]]
    """

    rank = 1

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(data_format=data_format, keepdims=keepdims, **kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        (steps_axis,) = self._axes
        if mask is None:
            return jnp.mean(inputs, axis=steps_axis, keepdims=self.keepdims)
        mask = jnp.expand_dims(jnp.asarray(mask).astype(bool), 2 if self.data_format == "channels_last" else 1)
        total = jnp.sum(jnp.where(mask, inputs, 0), axis=steps_axis, keepdims=self.keepdims)
        return total / jnp.sum(mask.astype(inputs.dtype), axis=steps_axis, keepdims=self.keepdims)

    def compute_mask(self, inputs, mask=None):
        return None


@register_builtin
class GlobalAveragePooling2D(_GlobalAverage):
    """Mean over height and width, as ``keras.layers.GlobalAveragePooling2D``
    (``data_format=None``, ``keepdims=False``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.GlobalAveragePooling2D()(jnp.ones((2, 5, 5, 8))).shape
        (2, 8)
        >>> lm.layers.GlobalAveragePooling2D(keepdims=True)(jnp.ones((2, 5, 5, 8))).shape
        (2, 1, 1, 8)
    """

    rank = 2


@register_builtin
class GlobalAveragePooling3D(_GlobalAverage):
    """Mean over the three spatial axes, as ``keras.layers.GlobalAveragePooling3D``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.GlobalAveragePooling3D()(jnp.ones((2, 3, 4, 5, 6))).shape
        (2, 6)
    """

    rank = 3


@register_builtin
class GlobalMaxPooling1D(_GlobalMax):
    """Max over the steps of ``(batch, steps, features)``, as ``keras.layers.GlobalMaxPooling1D``
    (``data_format=None``, ``keepdims=False``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.GlobalMaxPooling1D()(jnp.array([[[1.0], [7.0], [6.0]]])).tolist()
        [[7.0]]
    """

    rank = 1


@register_builtin
class GlobalMaxPooling2D(_GlobalMax):
    """Max over height and width, as ``keras.layers.GlobalMaxPooling2D``
    (``data_format=None``, ``keepdims=False``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.GlobalMaxPooling2D()(jnp.ones((2, 5, 5, 8))).shape
        (2, 8)
    """

    rank = 2


@register_builtin
class GlobalMaxPooling3D(_GlobalMax):
    """Max over the three spatial axes, as ``keras.layers.GlobalMaxPooling3D``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.GlobalMaxPooling3D(keepdims=True)(jnp.ones((2, 3, 4, 5, 6))).shape
        (2, 1, 1, 1, 6)
    """

    rank = 3
