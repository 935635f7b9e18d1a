"""``Resizing``: images resized to a fixed height and width."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.convolutional._arguments import normalize_data_format
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.preprocessing.image_resize import INTERPOLATIONS, resize, saturate_cast, with_image_size
from lamina.saving.object_registry import register_builtin


def check_size(owner, height, width):
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}: `{name}` must be a positive int, got {value!r}.")


@register_builtin
class Resizing(Layer):
    """Resizes images to ``height x width``, as ``keras.layers.Resizing``.

    ``interpolation``: ``"bilinear"`` (default), ``"nearest"``, ``"bicubic"``, ``"lanczos3"``
    or ``"lanczos5"``. ``crop_to_aspect_ratio=True`` first cuts the largest centred window of
    the target's aspect ratio (no distortion); ``pad_to_aspect_ratio=True`` instead pads the
    short side evenly with ``fill_value`` (``fill_mode`` must be ``"constant"``).
    ``antialias`` filters when downsampling. Inputs: a batch ``(batch, height, width,
    channels)`` or one image; integer images come back in their dtype (rounded, saturated).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> lm.layers.Resizing(2, 2)(jnp.arange(16.0).reshape(1, 4, 4, 1))[0, :, :, 0].tolist()
        [[2.5, 4.5], [10.5, 12.5]]
    """

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False, pad_to_aspect_ratio=False,
                 fill_mode="constant", fill_value=0.0, antialias=False, data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"Resizing '{self.name}'"
        check_size(owner, height, width)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"{owner}: `interpolation` must be one of {INTERPOLATIONS}, got {interpolation!r}.")
        if fill_mode != "constant":
            raise ValueError(f"{owner}: only fill_mode='constant' is supported, got {fill_mode!r}.")
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError(f"{owner}: only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` can be True.")
        self.height, self.width = height, width
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        self.fill_mode = fill_mode
        self.fill_value = fill_value
        self.antialias = bool(antialias)
        self.data_format = normalize_data_format(data_format, owner)
        self.input_spec = InputSpec(min_ndim=3, max_ndim=4)
        self.built = True

    def call(self, inputs):
        inputs = jnp.asarray(inputs)
        resized = resize(inputs, (self.height, self.width), interpolation=self.interpolation,
                         antialias=self.antialias, crop_to_aspect_ratio=self.crop_to_aspect_ratio,
                         pad_to_aspect_ratio=self.pad_to_aspect_ratio, fill_value=self.fill_value,
                         data_format=self.data_format)
        return saturate_cast(resized, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return with_image_size(input_shape, self.height, self.width, self.data_format)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation, "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "antialias": self.antialias, "data_format": self.data_format}


__all__ = ["Resizing"]
