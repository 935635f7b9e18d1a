"""``AugMix``: images mixed with several chains of random augmentations, during training."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina import random
from lamina.layers.preprocessing.augmentation_arguments import keras_factor, keys, parse_value_range
from lamina.layers.preprocessing.base_image_augmentation import ImageAugmentationLayer
from lamina.layers.preprocessing.image_transform import INTERPOLATIONS
from lamina.layers.preprocessing.rand_augment import OPERATIONS, augmentation_operations
from lamina.saving.object_registry import register_builtin

# Keras's lists and order (``all_ops=False`` leaves out the operations that touch colours).
ALL_OPERATIONS = ("random_shear", "random_translation", "random_rotation", "random_posterization", "solarization",
                  "auto_contrast", "equalization", "random_brightness", "random_color_degeneration",
                  "random_contrast", "random_sharpness")
BASIC_OPERATIONS = ALL_OPERATIONS[:7]
assert set(ALL_OPERATIONS) == set(OPERATIONS)


@register_builtin
class AugMix(ImageAugmentationLayer):
    """AugMix (Hendrycks et al., 2020) in training, as ``keras.layers.AugMix``: ``num_chains``
    copies of the batch each go through ``chain_depth`` steps, each step an operation drawn
    uniformly among the operations and "none" (shear, translation, rotation, posterization,
    solarization, auto-contrast, equalization, and with ``all_ops`` brightness, colour
    degeneration, contrast, sharpness); the chains are averaged with Dirichlet(``alpha``)
    weights and blended with the original images with a Beta(``alpha``, ``alpha``) weight,
    then clipped to ``value_range``.

    ``factor``: the operations' strength (a number ``f`` in ``[0, 1]`` means ``(0, f)``).
    Operations are drawn inside the compiled step (``jax.lax.switch``), so each training step
    draws new ones; Keras 3.15 draws them with Python's ``random`` when tracing, which freezes
    them under ``jit``. With ``training=False`` the images pass unchanged (cast to the
    layer's dtype).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> augmix = lm.layers.AugMix(value_range=(0, 1), num_chains=2, chain_depth=1, seed=0)
        >>> images = jnp.linspace(0, 1, 2 * 8 * 8 * 3).reshape(2, 8, 8, 3)
        >>> out = augmix(images)
        >>> out.shape, bool((out >= 0).all() and (out <= 1).all())
        ((2, 8, 8, 3), True)
    """

    def __init__(self, value_range=(0, 255), num_chains=3, chain_depth=3, factor=0.3, alpha=1.0, all_ops=True,
                 interpolation="bilinear", seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.value_range = parse_value_range(value_range, self._owner(), keep=True)
        for name, value in (("num_chains", num_chains), ("chain_depth", chain_depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{self._owner()}: `{name}` must be a positive int, got {value!r}.")
        self.num_chains, self.chain_depth = num_chains, chain_depth
        self.factor = keras_factor(factor, "factor", self._owner(), 0, 1)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
            raise ValueError(f"{self._owner()}: `alpha` must be a positive number, got {alpha!r}.")
        self.alpha = alpha
        self.all_ops = bool(all_ops)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"{self._owner()}: `interpolation` must be one of {tuple(INTERPOLATIONS)}, "
                             f"got {interpolation!r}.")
        self.interpolation = interpolation
        self.operations = augmentation_operations(self.factor, self.value_range, interpolation, self.data_format,
                                                  kwargs.get("dtype"),
                                                  names=ALL_OPERATIONS if self.all_ops else BASIC_OPERATIONS)

    def get_random_transformation(self, images, training=True, seed=None):
        """``{"chain_mixing_weights": (num_chains,), "weight_sample": (), "operations": int
        (num_chains, chain_depth) (``len(operations)`` means none), "transforms": every
        operation's transformation, each array with leading axes (num_chains, chain_depth)}``."""
        if not training:
            return None
        gamma_key, beta_key, index_key, steps_key = keys(self._seed(seed), 4)
        gammas = random.gamma((self.num_chains,), self.alpha, seed=gamma_key)
        operations = random.randint((self.num_chains, self.chain_depth), 0, len(self.operations) + 1,
                                    seed=index_key)

        def draw(key):
            return {name: layer.get_random_transformation(images, training=True, seed=k)
                    for (name, layer), k in zip(self.operations.items(), keys(key, len(self.operations)))}

        step_keys = jnp.reshape(jnp.stack(keys(steps_key, self.num_chains * self.chain_depth)),
                                (self.num_chains, self.chain_depth, -1))
        return {"chain_mixing_weights": gammas / jnp.sum(gammas),
                "weight_sample": random.beta((), self.alpha, self.alpha, seed=beta_key),
                "operations": operations, "transforms": jax.vmap(jax.vmap(draw))(step_keys)}

    def transform_images(self, images, transformation, training=True):
        images = jnp.asarray(images).astype(self.compute_dtype)
        if not training or transformation is None:
            return images
        dtype = self.compute_dtype
        chain_weights = jnp.asarray(transformation["chain_mixing_weights"], dtype)

        def step(x, drawn):
            operation, transforms = drawn
            branches = [self._branch(layer, transforms[name]) for name, layer in self.operations.items()]
            return jax.lax.switch(operation, branches + [lambda y: y], x), None  # the last: "none"

        def chain(_, drawn):
            return None, jax.lax.scan(step, images, drawn)[0]

        # Scans over chains and steps: each operation is traced (and compiled) once.
        _, chains = jax.lax.scan(chain, None, (jnp.asarray(transformation["operations"]), transformation["transforms"]))
        mixed = jnp.tensordot(chain_weights, chains, axes=1)
        weight = jnp.asarray(transformation["weight_sample"], dtype)
        return jnp.clip(weight * images + (1 - weight) * mixed, *self.value_range).astype(dtype)

    def _branch(self, layer, transformation):
        dtype = self.compute_dtype
        return lambda images: layer.transform_images(images, transformation, training=True).astype(dtype)

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range, "num_chains": self.num_chains,
                "chain_depth": self.chain_depth, "factor": self.factor, "alpha": self.alpha,
                "all_ops": self.all_ops, "interpolation": self.interpolation}


__all__ = ["AugMix"]
