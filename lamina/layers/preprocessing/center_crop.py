"""``CenterCrop``: the centred ``height x width`` window of each image."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.convolutional._arguments import normalize_data_format
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.preprocessing.image_resize import crop, resize, spatial_axes, with_image_size
from lamina.layers.preprocessing.resizing import check_size
from lamina.saving.object_registry import register_builtin


@register_builtin
class CenterCrop(Layer):
    """Cuts the centred ``height x width`` window, as ``keras.layers.CenterCrop``; an image
    smaller than the target on either axis is instead cropped to the target's aspect ratio and
    resized (bilinear). The output is in the layer's dtype (integer images are cast).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.CenterCrop(2, 2)(jnp.arange(16.0).reshape(4, 4, 1))[..., 0].tolist()
        [[5.0, 6.0], [9.0, 10.0]]
    """

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"CenterCrop '{self.name}'"
        check_size(owner, height, width)
        self.height, self.width = height, width
        self.data_format = normalize_data_format(data_format, owner)
        self.input_spec = InputSpec(min_ndim=3, max_ndim=4)
        self.built = True

    def call(self, inputs):
        inputs = jnp.asarray(inputs).astype(self.compute_dtype)
        h_axis, w_axis = spatial_axes(self.data_format)
        height, width = inputs.shape[h_axis], inputs.shape[w_axis]
        if height >= self.height and width >= self.width:
            return crop(inputs, (height - self.height) // 2, (width - self.width) // 2, self.height, self.width,
                        self.data_format)
        resized = resize(inputs, (self.height, self.width), crop_to_aspect_ratio=True, data_format=self.data_format)
        return resized.astype(self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return with_image_size(input_shape, self.height, self.width, self.data_format)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width, "data_format": self.data_format}


__all__ = ["CenterCrop"]
