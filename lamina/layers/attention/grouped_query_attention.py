"""``GroupedQueryAttention`` (Ainslie et al., 2023), with Keras 3's arguments, weights and masks.

``num_query_heads`` query heads share ``num_key_value_heads`` key/value heads, each key/value
head serving ``num_query_heads // num_key_value_heads`` consecutive query heads. The
projections are ``EinsumDense`` sublayers held as ``_query_dense``, ``_key_dense``,
(``_gate_dense`` with ``use_gate``), ``_value_dense`` and ``_output_dense`` and named
``query``, ``key``, ``gate``, ``value``, ``attention_output``, as in Keras, so ``set_weights``
of a Keras layer's weights and Keras's ``.keras`` files line up: query (and gate) kernels
``(dim, num_query_heads, head_dim)``, key/value kernels ``(dim, num_key_value_heads,
head_dim)``, output kernel ``(num_query_heads, head_dim, dim)``.

Masks and the attention itself are ``MultiHeadAttention``'s (``multi_head_attention.py``):
the same mask sources combined the same way, and the same compiled attention on
``(batch, length, heads, head_dim)`` tensors.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from lamina.layers.attention.multi_head_attention import _ProjectedAttention
from lamina.saving.object_registry import register_builtin


def _positive_int(layer, name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"GroupedQueryAttention '{layer.name}': {name} must be a positive integer; got {value!r}.")


class GroupedQueryAttention(_ProjectedAttention):
    """Grouped-query attention, as ``keras.layers.GroupedQueryAttention`` (alias
    ``GroupQueryAttention``).

    Call: ``layer(query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
    attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False)``
    with ``query`` ``(B, T, dim)`` and ``value``/``key`` ``(B, S, dim_v)``/``(B, S, dim_k)``.
    Returns ``(B, T, dim)``, and with ``return_attention_scores=True`` also the softmax scores
    ``(B, num_query_heads, T, S)``. Masks attached to ``query``, ``value`` and ``key`` are used
    when no explicit ``*_mask`` is given; ``sliding_window=w`` lets a position attend only to
    positions closer than ``w``. ``dropout`` drops attention scores in training.
    ``flash_attention`` is accepted for Keras compatibility (with dropout, or with
    ``return_attention_scores``, it raises as Keras does); XLA chooses the kernel.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> gqa = lm.layers.GroupedQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2)
        >>> x = jnp.ones((2, 5, 8))
        >>> y, scores = gqa(x, x, return_attention_scores=True, use_causal_mask=True)
        >>> y.shape, scores.shape
        ((2, 5, 8), (2, 4, 5, 5))
        >>> [w.shape for w in gqa.weights][:4]
        [(8, 4, 4), (4, 4), (8, 2, 4), (2, 4)]
    """

    def __init__(self, head_dim, num_query_heads, num_key_value_heads, dropout=0.0, use_bias=True,
                 sliding_window=None, flash_attention=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, use_gate=False,
                 seed=None, **kwargs):
        super().__init__(
            dropout=dropout, use_bias=use_bias, use_gate=use_gate, sliding_window=sliding_window,
            flash_attention=flash_attention, seed=seed, kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint, bias_constraint=bias_constraint, **kwargs,
        )
        for name, value in (("head_dim", head_dim), ("num_query_heads", num_query_heads),
                            ("num_key_value_heads", num_key_value_heads)):
            _positive_int(self, name, value)
        if num_query_heads % num_key_value_heads != 0:
            raise ValueError(
                f"GroupedQueryAttention '{self.name}': num_query_heads must be divisible by num_key_value_heads; "
                f"got {num_query_heads} and {num_key_value_heads}."
            )
        self.head_dim = head_dim
        self.num_query_heads = num_query_heads
        self.num_key_value_heads = num_key_value_heads
        self.num_repeats = num_query_heads // num_key_value_heads
        # The layer's own output is regularized too, besides the projections' (MultiHeadAttention
        # regularizes the projections' only).
        self.activity_regularizer = self._activity_regularizer
        self._attention_axes = None  # one attention axis: the sequence (axis 1 of (B, T, heads, H))
        self._scale = 1.0 / math.sqrt(float(head_dim))

    # -- arguments, under Keras's attribute names ---------------------------------------------
    use_gate = property(lambda self: self._use_gate)
    sliding_window = property(lambda self: self._sliding_window)
    kernel_initializer = property(lambda self: self._kernel_initializer)
    bias_initializer = property(lambda self: self._bias_initializer)
    kernel_regularizer = property(lambda self: self._kernel_regularizer)
    bias_regularizer = property(lambda self: self._bias_regularizer)
    kernel_constraint = property(lambda self: self._kernel_constraint)
    bias_constraint = property(lambda self: self._bias_constraint)

    # -- building -----------------------------------------------------------------------------
    def _projection(self, equation, heads_or_dim, bias_axes, name, activation=None):
        output_shape = (None, heads_or_dim, self.head_dim) if isinstance(heads_or_dim, int) else heads_or_dim
        return self._einsum_dense(equation, output_shape, bias_axes, name, activation=activation)

    def _check_rank(self, what, shape):
        if len(shape) != 3:
            raise ValueError(
                f"GroupedQueryAttention '{self.name}': {what} must have rank 3 (batch, length, dim); got shape "
                f"{tuple(shape)}."
            )

    def build(self, query_shape, value_shape=None, key_shape=None):
        """Builds the query (and gate) and output projections from ``query_shape``, and the key
        and value projections when their shapes are given (else on the first call)."""
        query_shape = tuple(query_shape)
        self._check_rank("query", query_shape)
        if self._query_dense is None:
            self._query_dense = self._projection("bqm,muh->bquh", self.num_query_heads, "uh", "query")
            self._query_dense.build_from_shape(query_shape)
        if self.use_gate and self._gate_dense is None:
            self._gate_dense = self._projection("bqm,muh->bquh", self.num_query_heads, "uh", "gate",
                                                activation="sigmoid")
            self._gate_dense.build_from_shape(query_shape)
        if self._output_dense is None:
            self._output_dense = self._projection("bquh,uhm->bqm", (None, query_shape[-1]), "m", "attention_output")
            self._output_dense.build_from_shape((None, None, self.num_query_heads, self.head_dim))
        if value_shape is not None:
            self._build_key_value(tuple(value_shape), None if key_shape is None else tuple(key_shape))

    def _build_key_value(self, value_shape, key_shape):
        key_shape = value_shape if key_shape is None else key_shape
        self._check_rank("value", value_shape)
        self._check_rank("key", key_shape)
        if value_shape[1] is not None and key_shape[1] is not None and value_shape[1] != key_shape[1]:
            raise ValueError(
                f"GroupedQueryAttention '{self.name}': value and key must have the same length; got value shape "
                f"{value_shape} and key shape {key_shape}."
            )
        if self._key_dense is None:
            self._key_dense = self._projection("bkm,mvh->bkvh", self.num_key_value_heads, "vh", "key")
            self._key_dense.build_from_shape(key_shape)
        if self._value_dense is None:
            self._value_dense = self._projection("bkm,mvh->bkvh", self.num_key_value_heads, "vh", "value")
            self._value_dense.build_from_shape(value_shape)

    # -- the computation ----------------------------------------------------------------------
    def _project_key_value(self, key, value):
        # Each key/value head serves `num_repeats` consecutive query heads.
        return (jnp.repeat(self._key_dense(key), self.num_repeats, axis=2),
                jnp.repeat(self._value_dense(value), self.num_repeats, axis=2))

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False):
        if self._flash_attention and return_attention_scores:
            raise ValueError(
                f"GroupedQueryAttention '{self.name}': return_attention_scores is not supported with "
                "flash_attention; build the layer with flash_attention=False to get the scores."
            )
        return super().call(query, value, key=key, query_mask=query_mask, value_mask=value_mask,
                            key_mask=key_mask, attention_mask=attention_mask,
                            return_attention_scores=return_attention_scores, training=training,
                            use_causal_mask=use_causal_mask)

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        query_shape, value_shape = tuple(query_shape), tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        # (Keras's also demands query_shape[-1] == value_shape[-1], which its call does not need.)
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(
                f"GroupedQueryAttention '{self.name}': value and key must agree on every axis but the last; got "
                f"value_shape={value_shape} and key_shape={key_shape}."
            )
        return query_shape

    def get_config(self):
        return {
            **super().get_config(),
            "head_dim": self.head_dim,
            "num_query_heads": self.num_query_heads,
            "num_key_value_heads": self.num_key_value_heads,
        }


# Keras 3 exports the class as ``keras.layers.GroupQueryAttention`` only and names it so in
# its files: both names load.
register_builtin(GroupedQueryAttention, "GroupQueryAttention")

__all__ = ["GroupedQueryAttention"]
