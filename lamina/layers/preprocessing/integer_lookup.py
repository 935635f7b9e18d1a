"""``IntegerLookup``: integer tokens to contiguous indices (or back), with a learned or given vocabulary."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lamina.layers.layer import Layer
from lamina.layers.preprocessing.index_lookup import IndexLookup
from lamina.layers.preprocessing.tf_graph import TFGraphCallable
from lamina.saving.object_registry import register_builtin


@register_builtin
class IntegerLookup(TFGraphCallable, IndexLookup, Layer):
    """Maps integer tokens to indices, as ``keras.layers.IntegerLookup``.

    Indices are laid out ``[mask] + [OOV] * num_oov_indices + vocabulary``: with the defaults
    (no mask token, one OOV index) an unknown value maps to 0 and the vocabulary starts at 1.
    Give ``vocabulary`` (a list, or a file with one token per line) or learn it with
    ``adapt(data)`` (most frequent first, cut to ``max_tokens``). ``output_mode``: ``"int"``
    (indices), ``"one_hot"``, ``"multi_hot"``, ``"count"`` or ``"tf_idf"`` (counts times
    ``idf_weights``, given or adapted). ``invert=True`` maps indices back to tokens (unknown
    indices to ``oov_token``). The lookup is ``jax.numpy``: it runs inside ``fit`` and
    ``lm.jit`` too (there with ``oov_method='floormod'``, the default; with
    ``num_oov_indices=0`` an unknown value raises when called eagerly, and maps to -1 inside
    compiled code, where no error can be raised). ``get_vocabulary()`` and
    ``vocabulary_size()`` describe the table; a given vocabulary is in the config, an
    adapted one is saved with the model's assets.

    Example:
        >>> import numpy as np, lamina as lm
        >>> lookup = lm.layers.IntegerLookup(vocabulary=[12, 36, 1138, 42])
        >>> lookup(np.array([[12, 1138, 42], [42, 1000, 36]])).tolist()
        [[1, 3, 4], [4, 0, 2]]
        >>> lm.layers.IntegerLookup(vocabulary=[12, 36], invert=True)(np.array([2, 0])).tolist()
        [36, -1]
    """

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1, vocabulary=None,
                 vocabulary_dtype="int64", idf_weights=None, invert=False, output_mode="int", sparse=False,
                 pad_to_max_tokens=False, oov_method="floormod", salt=None, **kwargs):
        if vocabulary_dtype != "int64":
            raise ValueError(
                f"IntegerLookup: only vocabulary_dtype='int64' is supported (as in Keras); got {vocabulary_dtype!r}."
            )
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices, mask_token=mask_token,
                         oov_token=oov_token, vocabulary=vocabulary, idf_weights=idf_weights, invert=invert,
                         output_mode=output_mode, sparse=sparse, pad_to_max_tokens=pad_to_max_tokens,
                         oov_method=oov_method, salt=salt, **kwargs)
        self.vocabulary_dtype = vocabulary_dtype

    def _set_tokens(self, tokens, idf_weights=None):
        tokens = np.asarray(tokens)
        limits = np.iinfo(np.int32)
        if tokens.size and not jax.config.jax_enable_x64 and (tokens.min() < limits.min or tokens.max() > limits.max):
            raise ValueError(
                f"{self._owner()}: the vocabulary holds integers outside int32 (from {tokens.min()} to "
                f"{tokens.max()}), which JAX computes in unless jax_enable_x64 is set; hash or remap them first."
            )
        super()._set_tokens(tokens, idf_weights)

    def call(self, inputs):
        inputs = jnp.asarray(inputs)
        if not jnp.issubdtype(inputs.dtype, jnp.integer):
            inputs = inputs.astype("int32")
        return self._encode(self._lookup(inputs, jnp), jnp)

    def tf_output_dtype(self):
        return "int32" if self.output_mode == "int" else self.compute_dtype

    def get_config(self):
        config = super().get_config()
        for key in ("oov_token", "mask_token"):
            if config[key] is not None:
                config[key] = int(config[key])
        if config["vocabulary"] is not None and not isinstance(config["vocabulary"], str):
            config["vocabulary"] = [int(v) for v in config["vocabulary"]]
        config["vocabulary_dtype"] = self.vocabulary_dtype
        return config


__all__ = ["IntegerLookup"]
