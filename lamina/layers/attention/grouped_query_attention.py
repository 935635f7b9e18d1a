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

from lamina import constraints, initializers, regularizers
from lamina.layers.attention.multi_head_attention import (
    _as_input,
    _attend,
    causal_mask,
    combined_attention_mask,
    sliding_window_mask,
)
from lamina.layers.core.dropout import Dropout
from lamina.layers.core.einsum_dense import EinsumDense
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object


def _positive_int(layer, name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"GroupedQueryAttention '{layer.name}': {name} must be a positive integer; got {value!r}.")


class GroupedQueryAttention(Layer):
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
        super().__init__(**kwargs)
        for name, value in (("head_dim", head_dim), ("num_query_heads", num_query_heads),
                            ("num_key_value_heads", num_key_value_heads)):
            _positive_int(self, name, value)
        if num_query_heads % num_key_value_heads != 0:
            raise ValueError(
                f"GroupedQueryAttention '{self.name}': num_query_heads must be divisible by num_key_value_heads; "
                f"got {num_query_heads} and {num_key_value_heads}."
            )
        if sliding_window is not None and (not isinstance(sliding_window, int) or sliding_window <= 0):
            raise ValueError(
                f"GroupedQueryAttention '{self.name}': sliding_window must be None or a positive integer; "
                f"got {sliding_window!r}."
            )
        if not 0 <= dropout <= 1:
            raise ValueError(f"GroupedQueryAttention '{self.name}': dropout must be in [0, 1]; got {dropout!r}.")
        if flash_attention and dropout > 0:
            raise ValueError(
                f"GroupedQueryAttention '{self.name}': dropout is not supported with flash_attention; set "
                "dropout=0.0 to use flash attention."
            )
        self.supports_masking = True
        self.head_dim = head_dim
        self.num_query_heads = num_query_heads
        self.num_key_value_heads = num_key_value_heads
        self.num_repeats = num_query_heads // num_key_value_heads
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        self.use_gate = bool(use_gate)
        self.sliding_window = sliding_window
        self._flash_attention = flash_attention
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.seed = seed
        self._inverse_sqrt_head_dim = 1.0 / math.sqrt(float(head_dim))
        # Assigned here so that they keep Keras's weight order (query, key, [gate], value,
        # attention_output) whichever is built first: key and value are built on the first
        # call, since Layer.__call__ builds from the query's shape only.
        self._query_dense = None
        self._key_dense = None
        self._gate_dense = None
        self._value_dense = None
        self._output_dense = None
        self._dropout_layer = Dropout(self.dropout, seed=seed, dtype=self.dtype_policy)

    # -- building -----------------------------------------------------------------------------
    def _projection(self, equation, heads_or_dim, bias_axes, name, activation=None):
        output_shape = (None, heads_or_dim, self.head_dim) if isinstance(heads_or_dim, int) else heads_or_dim
        return EinsumDense(
            equation, output_shape=output_shape, bias_axes=bias_axes if self.use_bias else None,
            activation=activation, name=name, kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer, kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer, activity_regularizer=self.activity_regularizer,
            kernel_constraint=self.kernel_constraint, bias_constraint=self.bias_constraint,
            dtype=self.dtype_policy,
        )

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

    # -- masks (Keras's methods, overridable as there) ----------------------------------------
    def _compute_attention_mask(self, query, value, query_mask=None, value_mask=None, key_mask=None,
                                attention_mask=None, use_causal_mask=False):
        extra = [self._compute_causal_mask(query, value)] if use_causal_mask else []
        if self.sliding_window is not None:
            extra.append(self._compute_sliding_window_mask(query, value))
        return combined_attention_mask(query_mask, value_mask, key_mask, attention_mask, extra)

    def _compute_causal_mask(self, query, value=None):
        return causal_mask(query, value)

    def _compute_sliding_window_mask(self, query, value=None):
        return sliding_window_mask(query, value, self.sliding_window)

    # -- the computation ----------------------------------------------------------------------
    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False):
        if self._flash_attention and return_attention_scores:
            raise ValueError(
                f"GroupedQueryAttention '{self.name}': return_attention_scores is not supported with "
                "flash_attention; build the layer with flash_attention=False to get the scores."
            )
        dtype = query.dtype
        value = _as_input(value, dtype)
        key = value if key is None else _as_input(key, dtype)
        if self._key_dense is None or self._value_dense is None:
            self._build_key_value(tuple(value.shape), tuple(key.shape))
        # Causal masking alone goes to the fused kernel as a flag, not as a (T, S) mask (as Keras).
        causal_only = (use_causal_mask and query_mask is None and value_mask is None and key_mask is None
                       and attention_mask is None and self.sliding_window is None)
        if not causal_only:
            attention_mask = self._compute_attention_mask(
                query, value, query_mask=query_mask, value_mask=value_mask, key_mask=key_mask,
                attention_mask=attention_mask, use_causal_mask=use_causal_mask,
            )
        gate = self._gate_dense(query) if self._gate_dense is not None else None
        projected_query = self._query_dense(query)
        # Each key/value head serves `num_repeats` consecutive query heads.
        projected_key = jnp.repeat(self._key_dense(key), self.num_repeats, axis=2)
        projected_value = jnp.repeat(self._value_dense(value), self.num_repeats, axis=2)
        # Dropout (in training, or when a mask may leave a row with no key: then the explicit
        # softmax gives zeros, as Keras's) and scores need the explicit path; else the fused one.
        dropout_active = self.dropout > 0 and (training or attention_mask is not None)
        fused = not (dropout_active or return_attention_scores)
        dropout_key = None
        if not fused and self.dropout > 0 and training:
            dropout_key = self._dropout_layer.seed_generator.next()
        if attention_mask is not None:
            attention_mask = jnp.asarray(attention_mask).astype(bool)
        output, scores = _attend(projected_query, projected_key, projected_value, attention_mask, dropout_key,
                                 axes=(1,), scale=self._inverse_sqrt_head_dim, fused=fused,
                                 is_causal=bool(causal_only), rate=self.dropout)
        if gate is not None:
            output = output * gate
        output = self._output_dense(output)
        if return_attention_scores:
            return output, scores
        return output

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
            "use_bias": self.use_bias,
            "use_gate": self.use_gate,
            "sliding_window": self.sliding_window,
            "dropout": self.dropout,
            "kernel_initializer": serialize_object(self.kernel_initializer),
            "bias_initializer": serialize_object(self.bias_initializer),
            "kernel_regularizer": serialize_object(self.kernel_regularizer),
            "bias_regularizer": serialize_object(self.bias_regularizer),
            "activity_regularizer": serialize_object(self.activity_regularizer),
            "kernel_constraint": serialize_object(self.kernel_constraint),
            "bias_constraint": serialize_object(self.bias_constraint),
            "seed": self.seed,
        }


# Keras 3 exports the class as ``keras.layers.GroupQueryAttention`` only and names it so in
# its files: both names load.
register_builtin(GroupedQueryAttention, "GroupQueryAttention")

__all__ = ["GroupedQueryAttention"]
