"""``SpatialDropout1D/2D/3D``: dropout of whole feature maps (channels) during training."""

from __future__ import annotations

from lamina import random
from lamina.layers.call_context import context
from lamina.layers.convolutional import _arguments as arguments
from lamina.layers.core.dropout import Dropout
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.output_specs import OutputSpec, input_dtype_in_call
from lamina.layers.regularization._training_noise import check_rate
from lamina.saving.object_registry import register_builtin


class BaseSpatialDropout(Dropout):
    """A ``Dropout`` (as in Keras, ``isinstance`` holds) that draws one keep/drop decision per
    sample and channel and applies it to the whole feature map; subclasses fix the rank."""

    rank: int = None

    def __init__(self, rate, seed=None, name=None, dtype=None, data_format=None):
        # A bad rate is reported by check_rate, which names this class (Dropout's message says
        # "Dropout"); the layer needs its name first.
        valid = not isinstance(rate, bool) and isinstance(rate, (int, float)) and 0 <= rate <= 1
        super().__init__(rate if valid else 0.0, seed=seed, name=name, dtype=dtype)
        self.rate = float(check_rate(self, rate))
        self.data_format = arguments.normalize_data_format(data_format, f"{type(self).__name__} '{self.name}'")
        self.supports_masking = True
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _noise_shape_of(self, shape) -> tuple:
        channels = 1 if self.data_format == "channels_first" else len(shape) - 1
        return tuple(size if axis in (0, channels) else 1 for axis, size in enumerate(shape))

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if self.rate == 1:
            return inputs * 0
        return random.dropout(inputs, self.rate, noise_shape=self._noise_shape_of(inputs.shape),
                              seed=self.seed_generator)

    def _lm_output_spec(self, shape, dtype):
        # As Dropout's (lamina/layers/output_specs.py): the input itself outside training.
        dtype = input_dtype_in_call(self, dtype)
        if dtype is None or context.training is not None:
            return None
        return OutputSpec(tuple(shape), dtype, returns_input=True)

    def get_config(self):
        # Keras's keys (no "trainable": its constructor takes only these).
        base = Layer.get_config(self)
        return {"rate": self.rate, "seed": self.seed, "name": base["name"], "dtype": base["dtype"]}


@register_builtin
class SpatialDropout1D(BaseSpatialDropout):
    """Drops whole channels of ``(batch, steps, channels)`` inputs in training: each sample's
    channel is zeroed with probability ``rate`` at every step, the kept ones scaled by
    ``1 / (1 - rate)``; the identity at inference, as ``keras.layers.SpatialDropout1D``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> out = lm.layers.SpatialDropout1D(0.5, seed=0)(jnp.ones((2, 3, 4)), training=True)
        >>> bool(((out == 0).all(axis=1) | (out == 2).all(axis=1)).all())   # whole channels
        True
    """

    rank = 1

    def __init__(self, rate, seed=None, name=None, dtype=None):
        super().__init__(rate, seed=seed, name=name, dtype=dtype)


@register_builtin
class SpatialDropout2D(BaseSpatialDropout):
    """Drops whole 2-D feature maps of ``(batch, rows, cols, channels)`` inputs in training
    (``data_format="channels_first"``: ``(batch, channels, rows, cols)``), the kept ones scaled
    by ``1 / (1 - rate)``; the identity at inference, as ``keras.layers.SpatialDropout2D``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> out = lm.layers.SpatialDropout2D(0.5, seed=0)(jnp.ones((2, 3, 3, 4)), training=True)
        >>> bool(((out == 0).all(axis=(1, 2)) | (out == 2).all(axis=(1, 2))).all())
        True
    """

    rank = 2

    def __init__(self, rate, data_format=None, seed=None, name=None, dtype=None):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, data_format=data_format)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


@register_builtin
class SpatialDropout3D(BaseSpatialDropout):
    """Drops whole 3-D feature maps of ``(batch, dim1, dim2, dim3, channels)`` inputs in
    training (``data_format="channels_first"``: channels second), the kept ones scaled by
    ``1 / (1 - rate)``; the identity at inference, as ``keras.layers.SpatialDropout3D``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> out = lm.layers.SpatialDropout3D(0.5, seed=0)(jnp.ones((2, 2, 2, 2, 4)), training=True)
        >>> bool(((out == 0).all(axis=(1, 2, 3)) | (out == 2).all(axis=(1, 2, 3))).all())
        True
    """

    rank = 3

    def __init__(self, rate, data_format=None, seed=None, name=None, dtype=None):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, data_format=data_format)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


__all__ = ["SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"]
