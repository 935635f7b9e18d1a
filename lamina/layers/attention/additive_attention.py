"""``AdditiveAttention`` (Bahdanau-style), as Keras 3's: ``Attention`` with additive scores."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.attention.attention import Attention
from lamina.saving.object_registry import register_builtin


@register_builtin
class AdditiveAttention(Attention):
    """Additive attention, as ``keras.layers.AdditiveAttention``.

    Scores are ``sum(scale * tanh(query + key), axis=-1)`` over the feature axis, with a
    trainable ``scale`` of shape ``(dim,)`` (``glorot_uniform``) when ``use_scale=True``
    (the default), else 1. Inputs, masks, dropout (``seed`` as a keyword) and outputs are
    ``Attention``'s.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> layer = lm.layers.AdditiveAttention()
        >>> layer([jnp.ones((2, 3, 4)), jnp.ones((2, 5, 4))]).shape
        (2, 3, 4)
        >>> layer.scale.shape
        (4,)
    """

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def _build_scores(self, query_shape):
        if self.use_scale:
            if query_shape[-1] is None:
                raise ValueError(
                    f"AdditiveAttention '{self.name}': the query's last dimension must be known to make the "
                    f"scale; got query shape {query_shape}."
                )
            self.scale = self.add_weight(shape=(query_shape[-1],), initializer="glorot_uniform", name="scale")

    def _calculate_scores(self, query, key):
        pairs = jnp.tanh(jnp.expand_dims(query, -2) + jnp.expand_dims(key, -3))
        if self.scale is not None:
            pairs = self.scale.value * pairs
        return jnp.sum(pairs, axis=-1)

    def get_config(self):
        config = super().get_config()
        del config["score_mode"]  # not an argument here (Keras's config has none either)
        return config


__all__ = ["AdditiveAttention"]
