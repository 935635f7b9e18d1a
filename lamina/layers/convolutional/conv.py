"""``Conv1D``, ``Conv2D``, ``Conv3D``: Keras's convolution layers (arguments in ``BaseConv``)."""

from __future__ import annotations

from lamina.layers.convolutional.base_conv import BaseConv
from lamina.saving.object_registry import register_builtin


@register_builtin
class Conv1D(BaseConv):
    """1-D convolution over ``(batch, steps, channels)``, as ``keras.layers.Conv1D``.

    Arguments (Keras's names and defaults): ``filters``, ``kernel_size``, ``strides=1``,
    ``padding="valid"`` (or ``"same"``, or ``"causal"``: left padding only, so output ``t``
    depends on inputs ``<= t``), ``data_format=None`` (``"channels_last"``; or
    ``"channels_first"``), ``dilation_rate=1``, ``groups=1``, ``activation=None``,
    ``use_bias=True``, ``kernel_initializer="glorot_uniform"``, ``bias_initializer="zeros"``,
    ``kernel_regularizer``, ``bias_regularizer``, ``activity_regularizer``,
    ``kernel_constraint``, ``bias_constraint``. The kernel has shape
    ``(kernel_size, in_channels // groups, filters)``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> conv = lm.layers.Conv1D(4, 3, padding="causal")
        >>> conv(jnp.ones((2, 10, 3))).shape
        (2, 10, 4)
        >>> [tuple(w.shape) for w in conv.weights]
        [(3, 3, 4), (4,)]
    """

    rank = 1


@register_builtin
class Conv2D(BaseConv):
    """2-D convolution over ``(batch, height, width, channels)``, as ``keras.layers.Conv2D``.

    Arguments (Keras's names and defaults): ``filters``, ``kernel_size``, ``strides=1``,
    ``padding="valid"`` (or ``"same"``), ``data_format=None`` (``"channels_last"``; or
    ``"channels_first"``), ``dilation_rate=1``, ``groups=1``, ``activation=None``,
    ``use_bias=True``, ``kernel_initializer="glorot_uniform"``, ``bias_initializer="zeros"``,
    ``kernel_regularizer``, ``bias_regularizer``, ``activity_regularizer``,
    ``kernel_constraint``, ``bias_constraint``. The kernel has shape
    ``kernel_size + (in_channels // groups, filters)``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> conv = lm.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")
        >>> conv(jnp.ones((2, 28, 28, 3))).shape
        (2, 14, 14, 8)
        >>> conv.compute_output_shape((None, 28, 28, 3))
        (None, 14, 14, 8)
    """

    rank = 2


@register_builtin
class Conv3D(BaseConv):
    """3-D convolution over ``(batch, depth, height, width, channels)``, as
    ``keras.layers.Conv3D`` (same arguments as ``Conv2D``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Conv3D(2, (1, 3, 3))(jnp.ones((1, 4, 6, 6, 3))).shape
        (1, 4, 4, 4, 2)
    """

    rank = 3
