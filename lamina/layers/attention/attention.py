"""``Attention`` (Luong-style dot-product attention), with Keras 3's inputs, masks and weights.

Called on a list ``[query, value]`` or ``[query, value, key]`` (``key`` defaults to ``value``):
``query`` ``(batch, Tq, dim)``, ``value`` ``(batch, Tv, dim_v)``, ``key`` ``(batch, Tv, dim)``.
The scores ``(batch, Tq, Tv)`` go through a softmax over ``Tv`` and weigh ``value``.

Masks (``mask=[query_mask, value_mask]``, or the masks attached to the inputs, e.g. by
``Embedding(mask_zero=True)``): a masked value position gets ``1e9`` subtracted from its score
before the softmax (so it takes no weight), a masked query position gives a zero output, and
the output carries the query's mask. ``use_causal_mask=True`` stops position ``i`` from
attending to positions after ``i``. The key's mask, if any, is not used (as in Keras).

``AdditiveAttention`` (``additive_attention.py``) shares everything but the scores.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina import random
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin

_SCORE_MODES = ("dot", "concat")


@register_builtin
class Attention(Layer):
    """Dot-product attention, as ``keras.layers.Attention``.

    ``use_scale=True`` adds a trainable scalar ``scale`` (initialized to 1) multiplying the
    scores; ``score_mode="concat"`` scores with ``concat_score_weight * sum(tanh(q + k))``
    (``tanh(scale * (q + k))`` with ``use_scale``) instead of ``q . k``. ``dropout`` drops
    attention weights in training, drawn from the layer's ``SeedGenerator`` (``seed``).

    Call: ``layer([query, value(, key)], mask=None, training=None,
    return_attention_scores=False, use_causal_mask=False)``; returns ``(batch, Tq, dim_v)``,
    and with ``return_attention_scores=True`` also the weights after masking and softmax
    ``(batch, Tq, Tv)``. The softmax is computed in float32 at least (mixed precision).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> query, value = jnp.ones((2, 3, 4)), jnp.ones((2, 5, 4))
        >>> output, scores = lm.layers.Attention()([query, value], return_attention_scores=True)
        >>> output.shape, scores.shape
        ((2, 3, 4), (2, 3, 5))
    """

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        kind = type(self).__name__
        if score_mode not in _SCORE_MODES:
            raise ValueError(
                f"{kind} '{self.name}': score_mode must be one of {_SCORE_MODES}; got {score_mode!r}."
            )
        if not 0 <= dropout <= 1:
            raise ValueError(f"{kind} '{self.name}': dropout must be in [0, 1]; got {dropout!r}.")
        self.use_scale = use_scale
        self.score_mode = score_mode
        self.dropout = dropout
        self.seed = seed
        if dropout > 0:  # only then, as Keras: its state is listed in ``variables``
            self.seed_generator = random.SeedGenerator(seed)
        self.supports_masking = True
        self.scale = None
        self.concat_score_weight = None

    # -- inputs -------------------------------------------------------------------------------
    def _split(self, inputs, what="inputs"):
        """``(query, value, key)`` of a ``[query, value(, key)]`` list (shapes or arrays)."""
        kind = type(self).__name__
        # (A single input's shape is a tuple too: a tuple of sizes, not of shapes.)
        if not isinstance(inputs, (list, tuple)) or any(d is None or isinstance(d, int) for d in inputs):
            raise ValueError(
                f"{kind} '{self.name}': must be called on a list [query, value] or [query, value, key]; "
                f"got {what} {_describe(inputs)}."
            )
        if not 2 <= len(inputs) <= 3:
            raise ValueError(
                f"{kind} '{self.name}': expected a list of 2 or 3 {what} ([query, value] or [query, value, "
                f"key]); got {len(inputs)}."
            )
        return inputs[0], inputs[1], inputs[2] if len(inputs) == 3 else inputs[1]

    def _check_masks(self, mask):
        if mask is not None and (not isinstance(mask, (list, tuple)) or not 2 <= len(mask) <= 3):
            raise ValueError(
                f"{type(self).__name__} '{self.name}': mask must be a list [query_mask, value_mask] (a third "
                f"entry, the key's mask, is ignored); got {_describe(mask)}."
            )

    def build(self, input_shape):
        query, value, key = (tuple(s) for s in self._split(input_shape, "input shapes"))
        if query[-1] is not None and key[-1] is not None and query[-1] != key[-1]:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': query and key must have the same last dimension; got "
                f"query shape {query} and key shape {key}."
            )
        if value[:-1] != key[:-1] and None not in value[:-1] + key[:-1]:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': value and key must agree on every axis but the last; "
                f"got value shape {value} and key shape {key}."
            )
        self._build_scores(query)

    def _build_scores(self, query_shape):
        if self.use_scale:
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight(shape=(), initializer="ones", name="concat_score_weight")

    # -- computation --------------------------------------------------------------------------
    def _calculate_scores(self, query, key):
        """Scores ``(batch, Tq, Tv)`` of ``query`` ``(batch, Tq, dim)`` against ``key``."""
        if self.score_mode == "dot":
            scores = jnp.matmul(query, jnp.swapaxes(key, -2, -1))
            return scores if self.scale is None else scores * self.scale.value
        pairs = jnp.expand_dims(query, -2) + jnp.expand_dims(key, -3)
        if self.scale is not None:
            pairs = self.scale.value * pairs
        return self.concat_score_weight.value * jnp.sum(jnp.tanh(pairs), axis=-1)

    def call(self, inputs, mask=None, training=False, return_attention_scores=False, use_causal_mask=False):
        query, value, key = self._split(inputs)
        self._check_masks(mask)
        query_mask = None if mask is None else mask[0]
        value_mask = None if mask is None else mask[1]
        scores = self._calculate_scores(query, key)
        scores_mask = None if value_mask is None else jnp.expand_dims(jnp.asarray(value_mask).astype(bool), -2)
        if use_causal_mask:
            tq, tv = scores.shape[-2], scores.shape[-1]
            causal = (jnp.arange(tq)[:, None] >= jnp.arange(tv)[None, :])[None]
            scores_mask = causal if scores_mask is None else scores_mask & causal
        given_dtype = scores.dtype
        # The softmax in float32 at least (a bfloat16 normalizing sum is off by up to 1%).
        scores = scores.astype(jnp.result_type(given_dtype, jnp.float32))
        if scores_mask is not None:
            # Keras subtracts a large number (it does not replace the score): same weights, and
            # a row whose every position is masked still gets the softmax of its scores.
            large = 65504.0 if given_dtype == jnp.float16 else 1.0e9
            scores = jnp.where(scores_mask, scores, scores - large)
        weights = jax.nn.softmax(scores, axis=-1).astype(given_dtype)
        dropped = weights
        if training and self.dropout > 0:
            dropped = random.dropout(weights, self.dropout, seed=self.seed_generator)
        output = jnp.matmul(dropped, value.astype(dropped.dtype))
        if query_mask is not None:
            keep = jnp.expand_dims(jnp.asarray(query_mask).astype(bool), -1)
            output = jnp.where(keep, output, jnp.zeros((), output.dtype))
        if return_attention_scores:
            return output, weights
        return output

    def compute_mask(self, inputs, mask=None):
        """The query's mask (as Keras), ``None`` when it has none."""
        self._check_masks(mask)
        if mask is None or mask[0] is None:
            return None
        return jnp.asarray(mask[0])

    def compute_output_shape(self, input_shape):
        query, value, _ = self._split(input_shape, "input shapes")
        return (*tuple(query)[:-1], tuple(value)[-1])

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale, "score_mode": self.score_mode,
                "dropout": self.dropout, "seed": self.seed}


def _describe(value):
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}"
    shape = getattr(value, "shape", None)
    return f"an array of shape {tuple(shape)}" if shape is not None else repr(value)


__all__ = ["Attention"]
