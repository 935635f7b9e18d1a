"""``Cropping1D/2D/3D``: elements removed from the start and end of each spatial axis."""

from __future__ import annotations

from lamina.layers.convolutional import _arguments as args
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin


class BaseCropping(Layer):
    """Crops the ``rank`` spatial axes; ``self.pairs`` holds ``(start, end)`` per axis."""

    rank: int = None

    def __init__(self, cropping, data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} '{self.name}'"
        self.data_format = args.normalize_data_format(data_format, owner)
        if self.rank == 1:
            self.cropping = args.normalize_tuple(cropping, 2, "cropping", owner, allow_zero=True)
            self.pairs = (self.cropping,)
        else:
            self.cropping = self.pairs = args.normalize_pairs(cropping, self.rank, "cropping", owner)
        self.input_spec = InputSpec(ndim=self.rank + 2)
        self.built = True

    def call(self, inputs):
        self.compute_output_shape(inputs.shape)  # refuses crops that leave nothing
        index = [slice(None)] * inputs.ndim
        for axis, (start, end) in zip(args.spatial_axes(self.rank, self.data_format), self.pairs):
            index[axis] = slice(start, inputs.shape[axis] - end)
        return inputs[tuple(index)]

    def compute_output_shape(self, input_shape):
        output = list(input_shape)
        for axis, (start, end) in zip(args.spatial_axes(self.rank, self.data_format), self.pairs):
            if output[axis] is not None:
                output[axis] -= start + end
                if output[axis] <= 0:
                    raise ValueError(
                        f"{type(self).__name__} '{self.path}': cropping={self.cropping} removes the whole "
                        f"axis {axis} of the input of shape {tuple(input_shape)}."
                    )
        return tuple(output)

    def get_config(self):
        config = {**super().get_config(), "cropping": self.cropping}
        if self.rank > 1:
            config["data_format"] = self.data_format
        return config


@register_builtin
class Cropping1D(BaseCropping):
    """Crops the steps of ``(batch, steps, features)``, as ``keras.layers.Cropping1D``:
    ``cropping=(1, 1)`` (``(start, end)``, or an int for both).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Cropping1D((1, 2))(jnp.arange(6.0).reshape(1, 6, 1))[0, :, 0].tolist()
        [1.0, 2.0, 3.0]
    """

    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, data_format=None, **kwargs)  # no data_format, as in Keras


@register_builtin
class Cropping2D(BaseCropping):
    """Crops height and width, as ``keras.layers.Cropping2D``.

    ``cropping=((0, 0), (0, 0))``: an int (all sides), a pair ``(symmetric_height,
    symmetric_width)``, or ``((top, bottom), (left, right))``; ``data_format=None``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Cropping2D(((2, 2), (4, 4)))(jnp.ones((2, 28, 28, 3))).shape
        (2, 24, 20, 3)
    """

    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format=data_format, **kwargs)


@register_builtin
class Cropping3D(BaseCropping):
    """Crops the three spatial axes, as ``keras.layers.Cropping3D``
    (``cropping=((1, 1), (1, 1), (1, 1))``, or an int, or three ints).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Cropping3D(1)(jnp.ones((1, 4, 5, 6, 2))).shape
        (1, 2, 3, 4, 2)
    """

    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, data_format=data_format, **kwargs)
