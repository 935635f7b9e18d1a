"""``RandomGaussianBlur``: some images blurred with a Gaussian kernel of random width in training."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import batch_shape, keras_factor, keys, parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.saving.object_registry import register_builtin


def _kernel_1d(size, sigma, dtype):
    offsets = jnp.arange(size, dtype=dtype) - jnp.asarray((size - 1) / 2, dtype)
    weights = jnp.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / jnp.sum(weights)


def gaussian_blur(images, kernel_size, sigma, data_format="channels_last"):
    """A batch blurred channel by channel (zero-padded, same size). ``kernel_size = (kx, ky)``
    and ``sigma = (sx, sy)`` give the width then the height of the kernel, as Keras's
    ``ops.image.gaussian_blur``."""
    dtype = images.dtype
    sigma = jnp.asarray(sigma, dtype)
    kernel = jnp.outer(_kernel_1d(kernel_size[1], sigma[1], dtype), _kernel_1d(kernel_size[0], sigma[0], dtype))
    if data_format == "channels_last":
        images = jnp.transpose(images, (0, 3, 1, 2))
    channels = images.shape[1]
    kernel = jnp.tile(kernel[None, None], (channels, 1, 1, 1))
    blurred = jax.lax.conv_general_dilated(images, kernel, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                           feature_group_count=channels)
    return jnp.transpose(blurred, (0, 2, 3, 1)) if data_format == "channels_last" else blurred


@register_builtin
class RandomGaussianBlur(ImageAugmentationLayer):
    """Blurs images with a Gaussian kernel in training, as ``keras.layers.RandomGaussianBlur``.

    ``factor``: the probability of blurring an image (a number ``f`` in ``[0, 1]`` means a
    probability drawn per image in ``(0, f)``; ``(1.0, 1.0)`` blurs every image).
    ``kernel_size``: an odd int, or a pair ``(width, height)`` of odd ints. ``sigma``: the
    kernel's standard deviation in pixels, a number ``s`` in ``[0, 1]`` (drawn in ``(0, s)``)
    or a pair; one draw for the width and one for the height, shared by the batch (as Keras).
    The result is clipped to ``value_range``. With ``training=False`` the images pass
    unchanged (cast to the layer's dtype).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> blur = lm.layers.RandomGaussianBlur(factor=(1.0, 1.0), sigma=(1.0, 1.0), seed=0)
        >>> dot = jnp.zeros((3, 3, 1)).at[1, 1, 0].set(100.0)
        >>> [round(v, 2) for v in blur(dot)[1, :, 0].tolist()]
        [12.38, 20.42, 12.38]
    """

    def __init__(self, factor=1.0, kernel_size=3, sigma=1.0, value_range=(0, 255), data_format=None, seed=None,
                 **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = keras_factor(factor, "factor", self._owner(), 0, 1)
        self.kernel_size = _kernel_size(kernel_size, self._owner())
        self.sigma = keras_factor(sigma, "sigma", self._owner(), 0, 1)
        self.value_range = parse_value_range(value_range, self._owner(), keep=True)

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"should_apply_blur": bool[batch], "blur_factor": (2,)}`` (the two sigmas)."""
        if not training:
            return None
        probability_key, threshold_key, sigma_key = keys(self._seed(seed), 3)
        probability = random.uniform(batch_shape(images), *self.factor, seed=probability_key)
        apply = random.uniform(batch_shape(images), seed=threshold_key) < probability
        # + 1e-6, as Keras: a sigma of 0 would divide by zero.
        sigma = random.uniform((2,), *self.sigma, dtype=self.compute_dtype, seed=sigma_key) + 1e-6
        return {"should_apply_blur": apply, "blur_factor": sigma}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images).astype(self.compute_dtype)
        if not training or transformation is None:
            return images
        apply = jnp.reshape(jnp.asarray(transformation["should_apply_blur"]), (-1, 1, 1, 1))

        def blur(batch):
            blurred = gaussian_blur(batch, self.kernel_size, transformation["blur_factor"], self.data_format)
            return jnp.clip(jnp.where(apply, blurred, batch), *self.value_range).astype(self.compute_dtype)

        return self._on_batch(images, blur)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "kernel_size": self.kernel_size, "sigma": self.sigma,
                "value_range": self.value_range}


def _kernel_size(kernel_size, owner):
    sizes = list(kernel_size) if isinstance(kernel_size, (list, tuple)) else [kernel_size, kernel_size]
    if len(sizes) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 and s % 2 == 1
                                  for s in sizes):
        raise ValueError(f"{owner}: `kernel_size` must be an odd positive int or a pair of them (width, height), "
                         f"got {kernel_size!r}.")
    return tuple(sizes)


__all__ = ["RandomGaussianBlur", "gaussian_blur"]
