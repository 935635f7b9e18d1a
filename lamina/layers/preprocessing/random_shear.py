"""``RandomShear``: images sheared along x and/or y by a random amount during training."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.affine_augmentation import AffineAugmentationLayer
from lamina.layers.preprocessing.augmentation_arguments import batch_shape, keys
from lamina.saving.object_registry import register_builtin


@register_builtin
class RandomShear(AffineAugmentationLayer):
    """Shears each image in training, as ``keras.layers.RandomShear``: the output pixel
    ``(x, y)`` samples the input at ``(x + sx * y, sy * x + y)`` (about the top-left corner,
    as Keras does), with ``sx`` drawn uniformly in ``x_factor`` and ``sy`` in ``y_factor``, then
    both negated for a random half of the images.

    ``x_factor``, ``y_factor``: a number ``f`` in ``[0, 1]`` (meaning ``(-f, f)``) or a pair
    (values in ``[-1, 1]``; the value drawn in it then gets the random sign). ``fill_mode``
    (``"reflect"``, ``"wrap"``, ``"constant"``, ``"nearest"``), ``fill_value`` and
    ``interpolation`` (``"bilinear"``, ``"nearest"``) as for ``RandomRotation``. With
    ``training=False`` the images pass unchanged (cast to the layer's dtype).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> shear = lm.layers.RandomShear(x_factor=1.0, fill_mode="constant")
        >>> image = jnp.arange(4.0).reshape(2, 2, 1)
        >>> shear.transform_images(image, {"shear_factor": jnp.array([[1.0, 0.0]])})[..., 0].tolist()
        [[0.0, 1.0], [3.0, 0.0]]
    """

    def __init__(self, x_factor=0.0, y_factor=0.0, interpolation="bilinear", fill_mode="reflect", fill_value=0.0,
                 data_format=None, seed=None, **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed, fill_value=fill_value,
                         data_format=data_format, **kwargs)
        self.x_factor = _shear_factor(x_factor, "x_factor", self._owner())
        self.y_factor = _shear_factor(y_factor, "y_factor", self._owner())

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"shear_factor": (batch, 2)}``: ``(sx, sy)`` per image."""
        if not training:
            return None
        sign_key, y_key, x_key = keys(self._seed(seed), 3)
        shape = batch_shape(images, 1)
        sign = jnp.where(random.uniform(shape, seed=sign_key) > 0.5, -1.0, 1.0)
        shear_y = random.uniform(shape, *self.y_factor, seed=y_key)
        shear_x = random.uniform(shape, *self.x_factor, seed=x_key)
        return {"shear_factor": (jnp.concatenate([shear_x, shear_y], axis=1) * sign).astype(self.compute_dtype)}

    def _transforms(self, transformation, height, width):
        shear = jnp.asarray(transformation["shear_factor"], jnp.float32)
        ones, zeros = jnp.ones_like(shear[:, 0]), jnp.zeros_like(shear[:, 0])
        return jnp.stack([ones, shear[:, 0], zeros, shear[:, 1], ones, zeros, zeros, zeros], axis=1)

    def get_config(self):
        return {**super().get_config(), "x_factor": self.x_factor, "y_factor": self.y_factor}


def _shear_factor(factor, name, owner):
    """Keras's reading: a number ``f`` in ``[0, 1]`` means ``(-f, f)``; a pair is sorted. A pair
    may hold negative values (down to -1), so that the config's ``(-f, f)`` reads back (Keras
    3.15 refuses its own config there)."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if isinstance(factor, (list, tuple)):
        if len(factor) == 2 and all(number(v) and -1 <= v <= 1 for v in factor):
            return tuple(sorted(factor))
    elif number(factor) and 0 <= factor <= 1:
        return (-factor, factor)
    raise ValueError(f"{owner}: `{name}` must be a number in [0, 1] or a pair of numbers in [-1, 1], "
                     f"got {factor!r}.")


__all__ = ["RandomShear"]
