"""``UpSampling1D/2D/3D``: each spatial position repeated (or, in 2-D, interpolated)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina.layers.convolutional import _arguments as args
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5")


class BaseUpSampling(Layer):
    """Repeats along the ``rank`` spatial axes; ``self.factors`` holds one factor per axis."""

    rank: int = None

    def __init__(self, size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} '{self.name}'"
        self.data_format = args.normalize_data_format(data_format, owner)
        self.factors = args.normalize_tuple(size, self.rank, "size", owner)
        self.input_spec = InputSpec(ndim=self.rank + 2)
        self.built = True

    def call(self, inputs):
        for axis, factor in zip(args.spatial_axes(self.rank, self.data_format), self.factors):
            inputs = jnp.repeat(inputs, factor, axis=axis)
        return inputs

    def compute_output_shape(self, input_shape):
        output = list(input_shape)
        for axis, factor in zip(args.spatial_axes(self.rank, self.data_format), self.factors):
            if output[axis] is not None:
                output[axis] *= factor
        return tuple(output)


@register_builtin
class UpSampling1D(BaseUpSampling):
    """Repeats each step ``size`` times, as ``keras.layers.UpSampling1D`` (``size=2``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.UpSampling1D(2)(jnp.array([[[1.0], [2.0]]]))[0, :, 0].tolist()
        [1.0, 1.0, 2.0, 2.0]
    """

    rank = 1

    def __init__(self, size=2, **kwargs):
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"UpSampling1D: `size` must be an integer, got {size!r}.")
        super().__init__(size, data_format=None, **kwargs)  # no data_format, as in Keras
        self.size = size

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@register_builtin
class UpSampling2D(BaseUpSampling):
    """Upsamples height and width by ``size``, as ``keras.layers.UpSampling2D``.

    ``size=(2, 2)``, ``data_format=None``, ``interpolation="nearest"`` (rows and columns
    repeated), or ``"bilinear"``, ``"bicubic"``, ``"lanczos3"``, ``"lanczos5"``: computed by
    ``jax.image.resize`` without antialiasing, as Keras's JAX backend does.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> x = jnp.array([[[[0.0], [1.0]]]])  # 1 x 2 image
        >>> lm.layers.UpSampling2D((1, 2))(x)[0, 0, :, 0].tolist()
        [0.0, 0.0, 1.0, 1.0]
        >>> lm.layers.UpSampling2D((1, 2), interpolation="bilinear")(x)[0, 0, :, 0].tolist()
        [0.0, 0.25, 0.75, 1.0]
    """

    rank = 2

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(size, data_format=data_format, **kwargs)
        self.size = self.factors
        self.interpolation = str(interpolation).lower()
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"UpSampling2D '{self.name}': `interpolation` must be one of {INTERPOLATIONS}, "
                             f"got {interpolation!r}.")

    def call(self, inputs):
        if self.interpolation == "nearest":
            return super().call(inputs)
        shape = list(inputs.shape)
        for axis, factor in zip(args.spatial_axes(2, self.data_format), self.factors):
            shape[axis] *= factor
        return jax.image.resize(inputs, shape, method=self.interpolation, antialias=False)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "data_format": self.data_format,
                "interpolation": self.interpolation}


@register_builtin
class UpSampling3D(BaseUpSampling):
    """Repeats along the three spatial axes, as ``keras.layers.UpSampling3D``
    (``size=(2, 2, 2)``, ``data_format=None``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.UpSampling3D((1, 2, 3))(jnp.ones((1, 2, 2, 2, 4))).shape
        (1, 2, 4, 6, 4)
    """

    rank = 3

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(size, data_format=data_format, **kwargs)
        self.size = self.factors

    def get_config(self):
        return {**super().get_config(), "size": self.size, "data_format": self.data_format}
