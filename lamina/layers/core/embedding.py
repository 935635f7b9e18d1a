"""``Embedding``: integer indices to dense vectors, with an optional padding mask."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import constraints, initializers, regularizers
from lamina.layers.core import lora, lora_files, quantized  # noqa: F401 - lora_files: LoRA in Keras files
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object

# Keras's short initializer names that lm.initializers does not know (yet).
_KERAS_INITIALIZER_ALIASES = {"uniform": "random_uniform", "normal": "random_normal",
                              "one": "ones", "zero": "zeros"}


@register_builtin
class Embedding(Layer):
    """Looks up row ``i`` of an ``(input_dim, output_dim)`` table for each index ``i``, as
    ``keras.layers.Embedding``.

    With ``mask_zero=True`` index 0 is padding: the output's mask is ``inputs != 0``, and it
    reaches the next layers that take ``mask`` (``input_dim`` must then count index 0).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> layer = lm.layers.Embedding(10, 4, mask_zero=True)
        >>> ids = jnp.array([[3, 1, 0, 0]])
        >>> layer(ids).shape
        (1, 4, 4)
        >>> layer.compute_mask(ids).tolist()
        [[True, True, False, False]]
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 weights=None, activity_regularizer=None, quantization_config=None, lora_rank=None,
                 lora_alpha=None, **kwargs):
        kwargs.pop("input_length", None)  # deprecated in Keras 3; accepted and ignored
        kwargs.setdefault("autocast", False)  # ids stay as given, as in Keras
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        for arg, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Embedding '{self.name}': {arg} must be a positive integer, got {value!r}.")
        self.input_dim = input_dim
        self.output_dim = output_dim
        if isinstance(embeddings_initializer, str):
            embeddings_initializer = _KERAS_INITIALIZER_ALIASES.get(embeddings_initializer, embeddings_initializer)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self.quantization_config = quantized.config_from(quantization_config)
        lora.init(self, lora_rank, lora_alpha)
        if weights is not None:
            self.build_from_shape((None,))
            self.set_weights(weights if isinstance(weights, list) and len(weights) == 1 else [weights])

    def build(self, input_shape=None):
        if self.quantization_mode is not None:  # a quantized layer rebuilt (from a file)
            quantized.build_embedding(self, (self.input_dim, self.output_dim), self.quantization_mode,
                                      self.quantization_config)
        else:
            self.embeddings = self.add_weight(
                shape=(self.input_dim, self.output_dim), initializer=self.embeddings_initializer,
                name="embeddings", regularizer=self.embeddings_regularizer,
                constraint=self.embeddings_constraint,
            )
        self.built = True  # enable_lora checks it
        if self.lora_rank and not self.lora_enabled:
            self.enable_lora(self.lora_rank, self.lora_alpha)

    def call(self, inputs):
        if inputs.dtype not in (jnp.int32, jnp.int64):
            inputs = inputs.astype(jnp.int32)
        if self.quantization_mode is not None:
            return lora.low_rank_term(self, inputs, quantized.embedding_call(self, inputs))
        return jnp.take(lora.effective(self, "embeddings"), inputs, axis=0).astype(self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return jnp.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def quantize(self, mode=None, type_check=True, config=None):
        """Quantize the table in place (``"int8"``, ``"int4"``, or a
        ``lm.quantizers.QuantizationConfig``), as Keras's ``Embedding.quantize``; see
        docs/quantization.md."""
        quantized.quantize_embedding(self, mode, config, type_check, Embedding)

    def _lm_keras_variable_order(self):
        return quantized.keras_variable_order(self)

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": serialize_object(self.embeddings_initializer),
            "embeddings_regularizer": serialize_object(self.embeddings_regularizer),
            "activity_regularizer": serialize_object(self.activity_regularizer),
            "embeddings_constraint": serialize_object(self.embeddings_constraint),
            "mask_zero": self.mask_zero,
            **quantized.config_entry(self),
            **lora.config_entry(self),
        }

    def enable_lora(self, rank, lora_alpha=None, a_initializer="he_uniform", b_initializer="zeros"):
        """Freeze ``embeddings`` and train a low-rank update ``(lora_alpha / rank) *
        lora_embeddings_a @ lora_embeddings_b`` instead, as Keras's ``Embedding.enable_lora``
        (``lamina/layers/core/lora.py``).

        Example:
            >>> import lamina as lm
            >>> layer = lm.layers.Embedding(10, 4)
            >>> layer.build()
            >>> layer.enable_lora(2)
            >>> [w.name for w in layer.trainable_weights]
            ['lora_embeddings_a', 'lora_embeddings_b']
        """
        lora.enable(self, "embeddings", lambda: (self.input_dim, self.output_dim), rank, lora_alpha, a_initializer,
                    b_initializer, self.embeddings_constraint, self.embeddings_regularizer)


__all__ = ["Embedding"]
