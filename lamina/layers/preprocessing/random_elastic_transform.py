"""``RandomElasticTransform``: images distorted by a smooth random displacement field in training."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import batch_shape, keras_factor, keys, parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.image_transform import INTERPOLATIONS
from lamina.layers.preprocessing.random_gaussian_blur import gaussian_blur
from lamina.saving.object_registry import register_builtin

FILL_MODES = ("reflect", "mirror", "wrap", "constant", "nearest")


@register_builtin
class RandomElasticTransform(ImageAugmentationLayer):
    """Elastic distortion (Simard et al., 2003) in training, as
    ``keras.layers.RandomElasticTransform``: each pixel samples the input at
    ``(x + alpha * dx, y + alpha * dy)``, with ``dx``, ``dy`` Gaussian noise of standard
    deviation ``sigma`` blurred by a Gaussian of width ``sigma``. With a distortion ``d``
    drawn per call in ``scale`` (a number ``s`` in ``[0, 1]`` means ``(0, s)``),
    ``alpha = 0.1 d max(height, width)`` and ``sigma = 0.05 d min(height, width)``. Each image
    is distorted with a probability drawn in ``factor``; the result is clipped to
    ``value_range``. ``fill_mode``: ``"reflect"``, ``"mirror"``, ``"wrap"``, ``"constant"``
    (``fill_value``) or ``"nearest"``. With ``training=False`` the images pass unchanged
    (cast to the layer's dtype).

    Two differences from Keras 3.15, both so that it compiles and distorts as documented:
    the blur kernel spans ``6 sigma`` for the largest ``sigma`` ``scale`` allows (Keras sizes
    it from the drawn value, a shape that cannot change inside a compiled step), and ``dx``
    and ``dy`` are independent (Keras draws both from one seed, so they are equal).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> elastic = lm.layers.RandomElasticTransform(factor=(1.0, 1.0), scale=(1.0, 1.0), seed=0)
        >>> image = jnp.arange(400.0).reshape(20, 20, 1)
        >>> out = elastic(image)
        >>> out.shape, bool(jnp.any(out != image)), bool(jnp.all(elastic(image, training=False) == image))
        ((20, 20, 1), True, True)
    """

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_mode="reflect", fill_value=0.0,
                 value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = keras_factor(factor, "factor", self._owner(), 0, 1)
        self.scale = keras_factor(scale, "scale", self._owner(), 0, 1)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"{self._owner()}: `interpolation` must be one of {tuple(INTERPOLATIONS)}, "
                             f"got {interpolation!r}.")
        if fill_mode not in FILL_MODES:
            raise ValueError(f"{self._owner()}: `fill_mode` must be one of {FILL_MODES}, got {fill_mode!r}.")
        self.interpolation, self.fill_mode, self.fill_value = interpolation, fill_mode, fill_value
        self.value_range = parse_value_range(value_range, self._owner(), keep=True)

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"apply_transform": bool[batch], "distortion_factor": (), "noise": (batch, 2,
        height, width)}`` (the unblurred standard normal ``dx``, ``dy``)."""
        if not training or self.scale[1] == 0 or self.factor[1] == 0:
            return None
        _, height, width = self._sizes(images.shape)
        probability_key, threshold_key, scale_key, noise_key = keys(self._seed(seed), 4)
        probability = random.uniform(batch_shape(images), *self.factor, seed=probability_key)
        return {"apply_transform": random.uniform(batch_shape(images), seed=threshold_key) < probability,
                "distortion_factor": random.uniform((), *self.scale, dtype=self.compute_dtype, seed=scale_key),
                "noise": random.normal(batch_shape(images, 2, height, width), dtype=self.compute_dtype,
                                       seed=noise_key)}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images).astype(self.compute_dtype)
        if not training or transformation is None:
            return images
        return self._on_batch(images, lambda batch: self._distort(batch, transformation))

    def _distort(self, images, transformation):
        dtype = self.compute_dtype
        _, height, width = self._sizes(images.shape)
        distortion = jnp.asarray(transformation["distortion_factor"], dtype)
        alpha = max(height, width) * 0.1 * distortion
        sigma = jnp.maximum(min(height, width) * 0.05 * distortion, 1e-6)
        size = int(6 * min(height, width) * 0.05 * self.scale[1]) | 1
        noise = jnp.asarray(transformation["noise"], dtype) * sigma  # (batch, 2, height, width)
        fields = gaussian_blur(noise, (size, size), jnp.stack([sigma, sigma]), "channels_first")
        rows, columns = jnp.meshgrid(jnp.arange(height, dtype=dtype), jnp.arange(width, dtype=dtype), indexing="ij")
        y_in, x_in = rows + alpha * fields[:, 1], columns + alpha * fields[:, 0]
        channels_last = jnp.moveaxis(images, 1, -1) if self.data_format == "channels_first" else images

        def sample(channel, ys, xs):
            return jax.scipy.ndimage.map_coordinates(channel, [ys, xs], order=INTERPOLATIONS[self.interpolation],
                                                     mode=self.fill_mode, cval=self.fill_value)

        per_channel = jax.vmap(sample, in_axes=(-1, None, None), out_axes=-1)
        distorted = jax.vmap(per_channel)(channels_last, y_in, x_in)
        if self.data_format == "channels_first":
            distorted = jnp.moveaxis(distorted, -1, 1)
        apply = jnp.reshape(jnp.asarray(transformation["apply_transform"]), (-1, 1, 1, 1))
        return jnp.clip(jnp.where(apply, distorted, images), *self.value_range).astype(dtype)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "scale": self.scale,
                "interpolation": self.interpolation, "fill_mode": self.fill_mode, "fill_value": self.fill_value,
                "value_range": self.value_range}


__all__ = ["RandomElasticTransform"]
