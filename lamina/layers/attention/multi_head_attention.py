"""``MultiHeadAttention`` (Vaswani et al., 2017), with Keras 3's arguments, weights and masks.

The projections are ``lm.layers.EinsumDense`` sublayers with Keras's equations (so kernels
are initialized with Keras's fans), named ``query``, ``key``, ``value`` (and ``gate`` with
``use_gate``) and ``attention_output``, each with a ``kernel`` and a ``bias`` of Keras's
shapes, in Keras's order, so ``set_weights(keras_mha.get_weights())``
copies Keras weights in: query/key kernels ``(dim, num_heads, key_dim)``, value kernel
``(dim, num_heads, value_dim)``, output kernel ``(num_heads, value_dim, *output_shape)``.

Masks (combined with a logical AND into one ``(B, T, S)`` mask, as in Keras):
- ``query_mask`` ``(B, T)`` and ``value_mask`` / ``key_mask`` ``(B, S)``: given explicitly, or
  else the masks registered on the ``query``, ``value`` and ``key`` inputs (by
  ``Embedding(mask_zero=True)`` or any masking layer), which ``Layer.__call__`` passes in as
  these arguments (as Keras does for ``<name>_mask`` arguments);
- ``attention_mask`` ``(B, T, S)`` (or broadcastable), true where attention is allowed;
- ``use_causal_mask=True``: position ``t`` sees positions ``<= t``;
- ``sliding_window=w``: positions closer than ``w``.
The output carries the query's mask.
"""

from __future__ import annotations

import functools
import math
import string

import jax
import jax.numpy as jnp
import numpy as np

from lamina import constraints, initializers, random, regularizers
from lamina.core.variable import Variable
from lamina.layers.core.dropout import Dropout
from lamina.layers.core.einsum_dense import EinsumDense
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object

_FLOATS = frozenset(map(jnp.dtype, ("float16", "bfloat16", "float32", "float64")))


def _build_proj_equation(free_dims, bound_dims, output_dims):
    """Keras's projection equation, e.g. ``"abc,cde->abde"``: ``(equation, bias_axes, output_rank)``."""
    letters = string.ascii_lowercase
    free = letters[:free_dims]
    bound = letters[free_dims:free_dims + bound_dims]
    out = letters[free_dims + bound_dims:free_dims + bound_dims + output_dims]
    return f"{free}{bound},{bound}{out}->{free}{out}", out, free_dims + output_dims


def _get_output_shape(output_rank, known_last_dims):
    return [None] * (output_rank - len(known_last_dims)) + list(known_last_dims)


def _attention_equations(rank, attention_axes):
    """Keras's einsum equations for projected tensors of ``rank`` (batch, ..., heads, channels):
    ``(dot_product, combine, scores_rank)``."""
    letters = string.ascii_lowercase
    target = letters[:rank]
    batch_dims = tuple(np.delete(range(rank), attention_axes + (rank - 1,)))
    source, offset = "", rank
    for i in range(rank):
        if i in batch_dims or i == rank - 1:
            source += target[i]
        else:
            source += letters[offset]
            offset += 1
    product = "".join([target[i] for i in batch_dims] + [target[i] for i in attention_axes]
                      + [source[i] for i in attention_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


def _masked_softmax(scores, mask, axes, scores_rank):
    """Keras's ``Softmax(axis=attention axes)`` with a mask: masked scores are set to a large
    negative number before, and to zero after, the softmax. Computed in float32 (a bfloat16
    normalizing sum is off by up to 1%), answered in the scores' dtype."""
    norm_axes = tuple(range(scores_rank - len(axes), scores_rank))
    given_dtype = scores.dtype
    scores = scores.astype(jnp.result_type(given_dtype, jnp.float32))
    if mask is not None:
        while mask.ndim < scores.ndim:
            mask = jnp.expand_dims(mask, -len(axes) * 2 - 1)  # before the attention axes: heads
        large_negative = -3e4 if scores.dtype == jnp.float16 else -1e9
        scores = jnp.where(mask, scores, jnp.asarray(large_negative, scores.dtype))
    if len(norm_axes) > 1:
        probs = jnp.exp(scores - jax.scipy.special.logsumexp(scores, axis=norm_axes, keepdims=True))
    else:
        probs = jax.nn.softmax(scores, axis=norm_axes[0])
    if mask is not None:
        probs = jnp.where(mask, probs, jnp.zeros((), probs.dtype))
    return probs.astype(given_dtype)


@functools.partial(jax.jit, static_argnames=("axes", "scale", "fused", "is_causal", "rate"))
def _attend(query, key, value, mask, dropout_key, *, axes, scale, fused, is_causal, rate):
    """Scaled dot-product attention of projected tensors: ``(output, scores or None)``."""
    if fused:
        if mask is not None:
            while mask.ndim < 4:
                mask = jnp.expand_dims(mask, -len(axes) * 2 - 1)
        output = jax.nn.dot_product_attention(query, key, value, mask=mask, scale=scale, is_causal=is_causal)
        return output, None
    if is_causal:
        t, s = query.shape[1], key.shape[1]
        causal = (jnp.arange(t)[:, None] >= jnp.arange(s)[None, :])[None]
        mask = causal if mask is None else mask & causal
    dot_product, combine, scores_rank = _attention_equations(query.ndim, axes)
    query = query * jnp.asarray(scale, query.dtype)
    scores = _masked_softmax(jnp.einsum(dot_product, key, query), mask, axes, scores_rank)
    dropped = scores if dropout_key is None else random.dropout(scores, rate, seed=dropout_key)
    return jnp.einsum(combine, dropped, value), scores


def combined_attention_mask(query_mask=None, value_mask=None, key_mask=None, attention_mask=None, extra=()):
    """Keras's attention mask from every mask source, combined with a logical AND: one boolean
    ``(B, T, S)`` mask (or broadcastable), ``None`` when there is none. ``extra`` holds the
    layer's own ``(1, T, S)`` masks (causal, sliding window), made by its overridable methods.
    Shared by ``MultiHeadAttention`` and ``GroupedQueryAttention``, which Keras masks alike."""
    auto = None

    def both(a, b):
        return b if a is None else a & b

    if query_mask is not None:
        auto = jnp.expand_dims(jnp.asarray(query_mask).astype(bool), -1)
    if value_mask is not None:
        auto = both(auto, jnp.expand_dims(jnp.asarray(value_mask).astype(bool), -2))
    if key_mask is not None:
        auto = both(auto, jnp.expand_dims(jnp.asarray(key_mask).astype(bool), -2))
    for mask in extra:
        auto = both(auto, mask)
    if attention_mask is not None:
        attention_mask = jnp.asarray(attention_mask).astype(bool)
    if auto is not None:
        attention_mask = auto if attention_mask is None else attention_mask & auto
    return attention_mask


def causal_mask(query, value=None):
    """``(1, T, S)``: true where the key position is not after the query position."""
    t = query.shape[1]
    s = t if value is None else value.shape[1]
    return (jnp.arange(t)[:, None] >= jnp.arange(s)[None, :])[None]


def sliding_window_mask(query, value, window):
    """``(1, T, S)``: true where the query and key positions are closer than ``window``."""
    t = query.shape[1]
    s = t if value is None else value.shape[1]
    return (jnp.abs(jnp.arange(t)[:, None] - jnp.arange(s)[None, :]) < window)[None]


def _as_input(x, dtype):
    x = jnp.asarray(x.value if isinstance(x, Variable) else x)
    return x.astype(dtype) if x.dtype in _FLOATS and x.dtype != dtype else x


class _ProjectedAttention(Layer):
    """What ``MultiHeadAttention`` and ``GroupedQueryAttention`` share (Keras builds, masks and
    calls them alike): the checks of their common arguments, the weight arguments of their
    ``EinsumDense`` projections, the masks and the call around the attention. A subclass makes
    ``_query_dense``, ``_gate_dense``, ``_output_dense`` in ``build``, ``_key_dense`` and
    ``_value_dense`` in ``_build_key_value``, and sets ``_attention_axes`` and ``_scale``."""

    def __init__(self, *, dropout, use_bias, use_gate, sliding_window, flash_attention, seed,
                 kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                 activity_regularizer, kernel_constraint, bias_constraint, **kwargs):
        super().__init__(**kwargs)
        who = f"{type(self).__name__} '{self.name}'"
        if sliding_window is not None and (not isinstance(sliding_window, int) or sliding_window <= 0):
            raise ValueError(f"{who}: sliding_window must be None or a positive integer; got {sliding_window!r}.")
        if not 0 <= dropout <= 1:
            raise ValueError(f"{who}: dropout must be in [0, 1]; got {dropout!r}.")
        if flash_attention and dropout > 0:
            raise ValueError(
                f"{who}: dropout is not supported with flash_attention; set dropout=0.0 to use flash attention."
            )
        self.supports_masking = True
        self._dropout = float(dropout)
        self._use_bias = bool(use_bias)
        self._use_gate = bool(use_gate)
        self._sliding_window = sliding_window
        self._flash_attention = flash_attention
        self.seed = seed
        self._kernel_initializer = initializers.get(kernel_initializer)
        self._bias_initializer = initializers.get(bias_initializer)
        self._kernel_regularizer = regularizers.get(kernel_regularizer)
        self._bias_regularizer = regularizers.get(bias_regularizer)
        self._activity_regularizer = regularizers.get(activity_regularizer)
        self._kernel_constraint = constraints.get(kernel_constraint)
        self._bias_constraint = constraints.get(bias_constraint)
        # The projections are made in build (their shapes depend on the inputs'). The
        # attributes are assigned here so that they keep their place: weight order = Keras's
        # (query, key, [gate], value, attention_output).
        self._query_dense = None
        self._key_dense = None
        self._gate_dense = None
        self._value_dense = None
        self._output_dense = None
        self._dropout_layer = Dropout(self._dropout, seed=seed, dtype=self.dtype_policy)

    dropout = property(lambda self: self._dropout)
    use_bias = property(lambda self: self._use_bias)

    def _einsum_dense(self, equation, output_shape, bias_axes, name, activation=None):
        """A projection with this layer's weight arguments."""
        return EinsumDense(
            equation, output_shape=output_shape, bias_axes=bias_axes if self._use_bias else None,
            activation=activation, name=name, kernel_initializer=self._kernel_initializer,
            bias_initializer=self._bias_initializer, kernel_regularizer=self._kernel_regularizer,
            bias_regularizer=self._bias_regularizer, activity_regularizer=self._activity_regularizer,
            kernel_constraint=self._kernel_constraint, bias_constraint=self._bias_constraint,
            dtype=self.dtype_policy,
        )

    # -- masks (Keras's methods, overridable as there) ----------------------------------------
    def _compute_attention_mask(self, query, value, query_mask=None, value_mask=None, key_mask=None,
                                attention_mask=None, use_causal_mask=False):
        """One boolean ``(B, T, S)`` mask from every mask source (``None`` when there is none)."""
        extra = [self._compute_causal_mask(query, value)] if use_causal_mask else []
        if self._sliding_window is not None:
            extra.append(self._compute_sliding_window_mask(query, value))
        return combined_attention_mask(query_mask, value_mask, key_mask, attention_mask, extra)

    def _compute_causal_mask(self, query, value=None):
        """``(1, T, S)``: true where the key position is not after the query position."""
        return causal_mask(query, value)

    def _compute_sliding_window_mask(self, query, value=None):
        return sliding_window_mask(query, value, self._sliding_window)

    # -- attention ----------------------------------------------------------------------------
    def _normalized_axes(self, rank):
        if self._attention_axes is None:
            return tuple(range(1, rank - 2))
        return tuple(axis if axis >= 0 else (rank - 1) + axis for axis in self._attention_axes)

    def _project_key_value(self, key, value):
        return self._key_dense(key), self._value_dense(value)

    def _compute_attention(self, query, key, value, attention_mask=None, training=None,
                           return_attention_scores=False, use_causal_mask=False):
        """Attention on projected ``(B, T, N, H)`` tensors: ``(output, scores or None)``.

        As Keras: without dropout, scores, extra attention axes (or a value_dim other than
        key_dim) it is ``jax.nn.dot_product_attention`` (a query row whose every key is masked
        then averages all values); otherwise an explicit masked softmax (such a row gives
        zeros). Unlike Keras, a layer with dropout also takes the fused path at inference
        when there is no mask (no row can be fully masked, so the numbers are Keras's), so
        cuDNN attention serves ``predict`` and ``evaluate`` on GPUs. The math is compiled
        once per configuration and shape (see ``_attend``).
        """
        axes = self._normalized_axes(query.ndim)
        dropout_active = self._dropout > 0 and (training or attention_mask is not None)
        # (Keras also takes the fused path when value_dim != key_dim, where it fails.)
        fused = not (dropout_active or return_attention_scores or query.ndim != 4
                     or key.shape != value.shape)
        dropout_key = None
        if not fused and self._dropout > 0 and training:
            dropout_key = self._dropout_layer.seed_generator.next()
        if attention_mask is not None:
            attention_mask = jnp.asarray(attention_mask).astype(bool)
        return _attend(query, key, value, attention_mask, dropout_key, axes=axes, scale=self._scale,
                       fused=fused, is_causal=bool(use_causal_mask), rate=self._dropout)

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False):
        # (Masks registered on query, value and key arrive as query_mask... from Layer.__call__.)
        dtype = query.dtype
        value = _as_input(value, dtype)
        key = value if key is None else _as_input(key, dtype)
        if self._key_dense is None or self._value_dense is None:
            self._build_key_value(tuple(value.shape), tuple(key.shape))
        # Causal masking alone goes to the fused kernel as a flag, not as a (T, S) mask (as Keras).
        causal_only = (use_causal_mask and query_mask is None and value_mask is None and key_mask is None
                       and attention_mask is None and self._sliding_window is None)
        if causal_only:
            attention_mask = None
        else:
            attention_mask = self._compute_attention_mask(
                query, value, query_mask=query_mask, value_mask=value_mask, key_mask=key_mask,
                attention_mask=attention_mask, use_causal_mask=use_causal_mask,
            )
        gate = self._gate_dense(query) if self._gate_dense is not None else None
        projected_query = self._query_dense(query)
        projected_key, projected_value = self._project_key_value(key, value)
        output, scores = self._compute_attention(
            projected_query, projected_key, projected_value, attention_mask, training,
            return_attention_scores, use_causal_mask=causal_only,
        )
        if gate is not None:
            output = output * gate
        output = self._output_dense(output)
        if return_attention_scores:
            return output, scores
        return output

    def get_config(self):
        return {
            **super().get_config(),
            "dropout": self._dropout,
            "use_bias": self._use_bias,
            "use_gate": self._use_gate,
            "sliding_window": self._sliding_window,
            "kernel_initializer": serialize_object(self._kernel_initializer),
            "bias_initializer": serialize_object(self._bias_initializer),
            "kernel_regularizer": serialize_object(self._kernel_regularizer),
            "bias_regularizer": serialize_object(self._bias_regularizer),
            "activity_regularizer": serialize_object(self._activity_regularizer),
            "kernel_constraint": serialize_object(self._kernel_constraint),
            "bias_constraint": serialize_object(self._bias_constraint),
            "seed": self.seed,
        }


@register_builtin
class MultiHeadAttention(_ProjectedAttention):
    """Multi-head (scaled dot-product) attention, as ``keras.layers.MultiHeadAttention``.

    Call: ``layer(query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
    attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False)``
    with ``query`` ``(B, T, dim)`` and ``value``/``key`` ``(B, S, dim)`` (more axes with
    ``attention_axes``). Returns ``(B, T, dim)`` (or ``output_shape``), and with
    ``return_attention_scores=True`` also the softmax scores ``(B, num_heads, T, S)``.
    Masks: see the module docstring. Weights come in Keras's order: query, key, [gate],
    value, attention_output, each kernel then bias. The key and value projections are built
    on the first call (or by ``build(query_shape, value_shape, key_shape)``), since
    ``Layer.__call__`` builds from the query's shape only. ``flash_attention`` is accepted for
    Keras compatibility (with dropout it raises, as in Keras); XLA chooses the kernel.
    Unlike Keras, an explicit ``query_mask`` argument is used (Keras reads only the mask
    attached to the query tensor), and ``value_dim != key_dim`` works without scores or
    dropout too.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> from lamina.layers.attention import MultiHeadAttention
        >>> mha = MultiHeadAttention(num_heads=2, key_dim=4)
        >>> x = jnp.ones((3, 5, 8))
        >>> y, scores = mha(x, x, return_attention_scores=True, use_causal_mask=True)
        >>> y.shape, scores.shape
        ((3, 5, 8), (3, 2, 5, 5))
        >>> [w.shape for w in mha.weights][:2]
        [(8, 2, 4), (2, 4)]
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None,
                 attention_axes=None, sliding_window=None, flash_attention=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 use_gate=False, seed=None, **kwargs):
        super().__init__(
            dropout=dropout, use_bias=use_bias, use_gate=use_gate, sliding_window=sliding_window,
            flash_attention=flash_attention, seed=seed, kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint, bias_constraint=bias_constraint, **kwargs,
        )
        for arg, value, optional in (("num_heads", num_heads, False), ("key_dim", key_dim, False),
                                     ("value_dim", value_dim, True)):
            if (value is not None or not optional) and (
                not isinstance(value, int) or isinstance(value, bool) or value <= 0
            ):
                raise ValueError(f"MultiHeadAttention '{self.name}': {arg} must be a positive integer, got {value!r}.")
        self._num_heads = num_heads
        self._key_dim = key_dim
        self._value_dim = value_dim if value_dim else key_dim
        if output_shape:
            output_shape = (output_shape,) if isinstance(output_shape, int) else tuple(output_shape)
        self._output_shape = output_shape or None
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        elif attention_axes is not None:
            if not isinstance(attention_axes, (list, tuple)):
                raise ValueError(f"MultiHeadAttention: attention_axes must be an int, list or tuple; got {attention_axes!r}.")
            attention_axes = tuple(attention_axes)
        self._attention_axes = attention_axes
        self._scale = 1.0 / math.sqrt(float(self._key_dim))

    # -- read-only arguments ------------------------------------------------------------------
    num_heads = property(lambda self: self._num_heads)
    key_dim = property(lambda self: self._key_dim)
    value_dim = property(lambda self: self._value_dim)
    attention_axes = property(lambda self: self._attention_axes)
    query_dense = property(lambda self: self._query_dense)
    key_dense = property(lambda self: self._key_dense)
    value_dense = property(lambda self: self._value_dense)
    output_dense = property(lambda self: self._output_dense)

    # -- building -----------------------------------------------------------------------------
    def _projection(self, name, free_dims, bound_dims, output_shape, activation=None):
        equation, bias_axes, output_rank = _build_proj_equation(free_dims, bound_dims, len(output_shape))
        return self._einsum_dense(equation, _get_output_shape(output_rank - 1, output_shape), bias_axes, name,
                                  activation=activation)

    def build(self, query_shape, value_shape=None, key_shape=None):
        """Builds the query (and gate) and output projections from ``query_shape``, and the key
        and value projections when their shapes are given (else on the first call)."""
        query_shape = tuple(query_shape)
        rank = len(query_shape)
        if rank < 3:
            raise ValueError(
                f"MultiHeadAttention '{self.name}': query must have rank >= 3 (batch, ..., dim); "
                f"got shape {query_shape}."
            )
        heads = self._num_heads
        if self._query_dense is None:
            self._query_dense = self._projection("query", rank - 1, 1, [heads, self._key_dim])
            self._query_dense.build_from_shape(query_shape)
        if self._use_gate and self._gate_dense is None:
            self._gate_dense = self._projection("gate", rank - 1, 1, [heads, self._value_dim], activation="sigmoid")
            self._gate_dense.build_from_shape(query_shape)
        if self._output_dense is None:
            output_shape = list(self._output_shape or (query_shape[-1],))
            self._output_dense = self._projection("attention_output", rank - 1, 2, output_shape)
            self._output_dense.build_from_shape(query_shape[:-1] + (heads, self._value_dim))
        if value_shape is not None:
            self._build_key_value(tuple(value_shape), None if key_shape is None else tuple(key_shape))

    def _build_key_value(self, value_shape, key_shape):
        key_shape = value_shape if key_shape is None else key_shape
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(
                f"MultiHeadAttention '{self.name}': value and key must agree on every axis but the last; "
                f"got value shape {value_shape} and key shape {key_shape}."
            )
        if self._key_dense is None:
            self._key_dense = self._projection("key", len(key_shape) - 1, 1, [self._num_heads, self._key_dim])
            self._key_dense.build_from_shape(key_shape)
        if self._value_dense is None:
            self._value_dense = self._projection("value", len(value_shape) - 1, 1, [self._num_heads, self._value_dim])
            self._value_dense.build_from_shape(value_shape)

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        query_shape = tuple(query_shape)
        if value_shape is not None and key_shape is not None and tuple(value_shape)[1:-1] != tuple(key_shape)[1:-1]:
            raise ValueError(
                f"MultiHeadAttention '{self.name}': value and key must agree on every axis but the last; "
                f"got value shape {tuple(value_shape)} and key shape {tuple(key_shape)}."
            )
        if self._output_shape:
            return query_shape[:-1] + tuple(self._output_shape)
        return query_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self._num_heads,
            "key_dim": self._key_dim,
            "value_dim": self._value_dim,
            "output_shape": None if self._output_shape is None else list(self._output_shape),
            "attention_axes": None if self._attention_axes is None else list(self._attention_axes),
        }
