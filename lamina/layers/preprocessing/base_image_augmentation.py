"""``ImageAugmentationLayer``: what the random image layers share.

Each layer splits its work as Keras 3's image layers do: ``get_random_transformation`` draws
the parameters (from the layer's ``SeedGenerator``, which is layer state, so a compiled training
step draws new ones every time it runs) and ``transform_images`` applies given parameters. Users
porting Keras code can call the two directly with a transformation of their own.

``training`` defaults to ``True`` in ``call``, as in Keras 3: a direct call
``layer(images)`` augments, ``fit`` augments, and ``predict``/``evaluate`` (which pass
``training=False``) see the inference behaviour.
"""

from __future__ import annotations

from lamina import random
from lamina.layers.convolutional._arguments import normalize_data_format
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.preprocessing.image_resize import spatial_axes


def parse_factor(factor, name, owner, low, high, *, low_open=False):
    """``factor`` (a number ``f`` meaning ``(-f, f)``, or a pair ``(lower, upper)``) as a sorted
    pair of floats, each in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    interval = f"{'(' if low_open else '['}{low}, {high}]"
    message = f"{owner}: `{name}` must be a number or a pair of numbers in {interval}, got {factor!r}."
    if isinstance(factor, (list, tuple)):
        if len(factor) != 2:
            raise ValueError(message)
        values = list(factor)
    elif isinstance(factor, (int, float)) and not isinstance(factor, bool):
        values = [-abs(factor), abs(factor)]
    else:
        raise ValueError(message)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(message)
        if value > high or value < low or (low_open and value == low):
            raise ValueError(message)
    lower, upper = sorted(float(v) for v in values)
    return lower, upper


def json_factor(factor):
    """A factor as the config keeps it: numbers as given, pairs as tuples (a list read back
    from JSON compares equal after the round trip)."""
    return tuple(factor) if isinstance(factor, (list, tuple)) else factor


class ImageAugmentationLayer(Layer):
    """Base class of the random image layers (``RandomFlip``, ``RandomRotation``, ...).

    Inputs are one image (rank 3) or a batch (rank 4), ``channels_last`` (default) or
    ``channels_first``. Subclasses implement ``get_random_transformation(images, training,
    seed)`` and ``transform_images(images, transformation, training)``.

    Example (a random brightness shift, one draw per image):
        >>> import jax.numpy as jnp, lamina as lm
        >>> from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
        >>> class RandomShift(ImageAugmentationLayer):
        ...     def get_random_transformation(self, images, training=True, seed=None):
        ...         if not training:
        ...             return None
        ...         batch, _, _ = self._sizes(images.shape)
        ...         return {"shift": lm.random.uniform((batch, 1, 1, 1), -1.0, 1.0, seed=self._seed(seed))}
        ...     def transform_images(self, images, transformation, training=True):
        ...         return images if transformation is None else images + transformation["shift"]
        >>> layer = RandomShift(seed=0)
        >>> images = jnp.zeros((2, 3, 3, 1))
        >>> bool((layer(images, training=False) == 0).all()), bool((layer(images) != 0).all())
        (True, True)
    """

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format, self._owner())
        self.seed = seed
        self.seed_generator = random.SeedGenerator(seed)
        self.input_spec = InputSpec(min_ndim=3, max_ndim=4)
        self.built = True

    def _owner(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

    def __call__(self, *args, **kwargs):
        # Keras also takes {"images", "labels", "bounding_boxes", ...}; without this check the
        # input spec would report a dict as an input of shape ().
        if args and isinstance(args[0], dict):
            raise ValueError(
                f"{type(self).__name__} '{self.path}' takes images (one image or a batch) as an array, "
                f"got a dict with keys {sorted(args[0])}; lamina's image layers do not transform labels, "
                "bounding boxes or segmentation masks: call the layer on the images."
            )
        return super().__call__(*args, **kwargs)

    def call(self, inputs, training=True):
        transformation = self.get_random_transformation(inputs, training=training)
        return self.transform_images(inputs, transformation, training=training)

    def get_random_transformation(self, images, training=True, seed=None):
        """The random parameters for ``images`` (``None`` when ``training`` is false);
        ``seed`` (an int, a key or a ``SeedGenerator``) defaults to the layer's generator."""
        raise NotImplementedError

    def transform_images(self, images, transformation, training=True):
        """``images`` transformed with the given parameters (as Keras's method of this name)."""
        raise NotImplementedError

    def _seed(self, seed):
        return self.seed_generator if seed is None else seed

    def _sizes(self, shape) -> tuple[int, int, int]:
        """``(batch, height, width)`` of a batch or of one image (batch 1)."""
        h_axis, w_axis = spatial_axes(self.data_format)
        return (shape[0] if len(shape) == 4 else 1), shape[h_axis], shape[w_axis]

    @staticmethod
    def _on_batch(images, transform):
        """``transform`` (written for a batch) applied to a batch or to one image."""
        if images.ndim == 3:
            return transform(images[None])[0]
        return transform(images)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "data_format": self.data_format}


__all__ = ["ImageAugmentationLayer", "json_factor", "parse_factor"]
