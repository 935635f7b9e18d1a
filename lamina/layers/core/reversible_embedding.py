"""``ReversibleEmbedding``: an ``Embedding`` that also projects back to the vocabulary."""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.core import lora
from lamina.layers.core.embedding import Embedding
from lamina.layers.masking import set_mask
from lamina.saving.object_registry import register_builtin


@register_builtin
class ReversibleEmbedding(Embedding):
    """An ``Embedding`` that, called with ``reverse=True``, maps ``(..., output_dim)`` vectors
    to ``(..., input_dim)`` logits, as ``keras.layers.ReversibleEmbedding`` (a language model's
    input embedding and output projection in one layer).

    With ``tie_weights=True`` (the default) the reverse projection is the transpose of
    ``embeddings``; with ``False`` it is its own trainable ``reverse_embeddings`` weight of
    shape ``(output_dim, input_dim)``, created with ``embeddings_initializer``. No bias.
    ``reverse_dtype`` (a dtype name) is the dtype the reverse matmul runs in (default: the
    layer's compute dtype); ``logit_soft_cap=c`` returns ``tanh(logits / c) * c``. The forward
    call carries ``Embedding``'s mask (``mask_zero=True``); the reverse call's output has no
    mask.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> layer = lm.layers.ReversibleEmbedding(100, 8)
        >>> hidden = layer(jnp.array([[3, 1, 4]]))
        >>> hidden.shape, layer(hidden, reverse=True).shape
        ((1, 3, 8), (1, 3, 100))
        >>> untied = lm.layers.ReversibleEmbedding(100, 8, tie_weights=False)
        >>> untied.build()
        >>> [(w.name, w.shape) for w in untied.weights]
        [('embeddings', (100, 8)), ('reverse_embeddings', (8, 100))]
    """

    def __init__(self, input_dim, output_dim, tie_weights=True, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False, reverse_dtype=None,
                 logit_soft_cap=None, **kwargs):
        super().__init__(input_dim, output_dim, embeddings_initializer=embeddings_initializer,
                         embeddings_regularizer=embeddings_regularizer, embeddings_constraint=embeddings_constraint,
                         mask_zero=mask_zero, **kwargs)
        if reverse_dtype is not None:
            try:
                jnp.dtype(reverse_dtype)
            except TypeError:
                raise ValueError(f"ReversibleEmbedding '{self.name}': reverse_dtype must be a dtype name such as "
                                 f"'float32', got {reverse_dtype!r}.") from None
        if logit_soft_cap is not None and not (isinstance(logit_soft_cap, (int, float))
                                               and not isinstance(logit_soft_cap, bool) and logit_soft_cap > 0):
            raise ValueError(f"ReversibleEmbedding '{self.name}': logit_soft_cap must be a positive number or None, "
                             f"got {logit_soft_cap!r}.")
        self.tie_weights = bool(tie_weights)
        self.reverse_dtype = reverse_dtype
        self.logit_soft_cap = logit_soft_cap

    def build(self, input_shape=None):
        super().build(input_shape)
        if not self.tie_weights:
            self.reverse_embeddings = self.add_weight(
                shape=(self.output_dim, self.input_dim), initializer=self.embeddings_initializer,
                name="reverse_embeddings",
            )

    def call(self, inputs, reverse=False):
        if not reverse:
            outputs = super().call(inputs)
            # Set here rather than by compute_mask, which cannot tell a forward call from a
            # reverse one (whose float input must not become a mask).
            if self.mask_zero:
                set_mask(outputs, jnp.not_equal(inputs, 0))
            return outputs
        if inputs.shape[-1] != self.output_dim:
            raise ValueError(
                f"ReversibleEmbedding '{self.path}': reverse=True takes vectors of size output_dim="
                f"{self.output_dim} on the last axis, got input of shape {tuple(inputs.shape)}."
            )
        # Tied: the table with LoRA's product merged in, as the forward lookup reads it.
        kernel = lora.effective(self, "embeddings").T if self.tie_weights else self.reverse_embeddings.value
        if self.reverse_dtype is not None:
            inputs, kernel = inputs.astype(self.reverse_dtype), kernel.astype(self.reverse_dtype)
        logits = jnp.matmul(inputs, kernel)
        if self.logit_soft_cap is not None:
            logits = jnp.tanh(logits / self.logit_soft_cap) * self.logit_soft_cap
        return logits

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape, reverse=False):
        if reverse:
            return (*tuple(input_shape)[:-1], self.input_dim)
        return (*input_shape, self.output_dim)

    def get_config(self):
        return {**super().get_config(), "tie_weights": self.tie_weights, "reverse_dtype": self.reverse_dtype,
                "logit_soft_cap": self.logit_soft_cap}


__all__ = ["ReversibleEmbedding"]
