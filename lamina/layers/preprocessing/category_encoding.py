"""``CategoryEncoding``: integer category ids as one-hot, multi-hot or count vectors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lamina.layers.layer import Layer
from lamina.layers.preprocessing.categorical_output import check_mode, encode, encoded_shape
from lamina.layers.preprocessing.tf_graph import TFGraphCallable
from lamina.saving.object_registry import register_builtin


def to_sparse(dense):
    """``dense`` as a ``jax.experimental.sparse.BCOO`` array (the layers' ``sparse=True``)."""
    from jax.experimental import sparse  # noqa: PLC0415 - only sparse outputs need it

    return sparse.BCOO.fromdense(dense)


@register_builtin
class CategoryEncoding(TFGraphCallable, Layer):
    """Encodes integer ids in ``[0, num_tokens)``, as ``keras.layers.CategoryEncoding``.

    ``output_mode``: ``"multi_hot"`` (default; a 1 for each id present in a sample, the last
    axis of a batch being the sample), ``"one_hot"`` (a row per id; a trailing axis of size 1
    is replaced) or ``"count"`` (how often each id occurs; ``count_weights=`` of the inputs'
    shape weighs each occurrence). Outputs are in the layer's ``dtype`` (float32 under the
    mixed policies, as in Keras; ``count`` with weights: the compute dtype); ``sparse=True``
    returns a ``jax.experimental.sparse.BCOO``.
    Works inside compiled code (``fit``, ``lm.jit``); called eagerly, ids outside the range
    raise an error naming the layer (traced, they encode to zeros).

    Example:
        >>> import numpy as np, lamina as lm
        >>> lm.layers.CategoryEncoding(4, output_mode="one_hot")(np.array([3, 0])).tolist()
        [[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]]
        >>> lm.layers.CategoryEncoding(4)(np.array([[0, 1], [3, 3]])).tolist()
        [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    """

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        owner = f"CategoryEncoding '{self.name}'"
        output_mode = check_mode(owner, output_mode, ("one_hot", "multi_hot", "count"))
        if num_tokens is None:
            raise ValueError(
                f"{owner}: `num_tokens` must be set (the number of categories). If it is not known "
                "beforehand, use IntegerLookup instead."
            )
        if not isinstance(num_tokens, (int, np.integer)) or num_tokens < 1:
            raise ValueError(f"{owner}: `num_tokens` must be an integer >= 1, got {num_tokens!r}.")
        self.num_tokens = int(num_tokens)
        self.output_mode = output_mode
        self.sparse = sparse

    def call(self, inputs, count_weights=None):
        inputs = jnp.asarray(inputs)
        if not jnp.issubdtype(inputs.dtype, jnp.integer):
            inputs = inputs.astype("int32")
        if not isinstance(inputs, jax.core.Tracer):
            self._check_range(inputs)
        if count_weights is not None:
            if self.output_mode != "count":
                raise ValueError(
                    f"CategoryEncoding '{self.path}': `count_weights` is only used with "
                    f"output_mode='count' (this layer's is {self.output_mode!r})."
                )
            count_weights = jnp.asarray(count_weights, dtype=self.compute_dtype)
        # The variable dtype, as Keras's (float32 under the mixed policies).
        outputs = encode(inputs, self.output_mode, self.num_tokens, self.dtype, count_weights)
        return to_sparse(outputs) if self.sparse else outputs

    def _check_range(self, inputs):
        values = np.asarray(inputs)  # NumPy: jnp reductions would be traced inside an outer jit
        if values.size and (values.min() < 0 or values.max() >= self.num_tokens):
            raise ValueError(
                f"CategoryEncoding '{self.path}': input values must be in [0, num_tokens={self.num_tokens}); "
                f"got values from {values.min()} to {values.max()}."
            )

    def tf_output_dtype(self):
        return self.dtype

    def compute_output_shape(self, input_shape):
        return encoded_shape(input_shape, self.output_mode, self.num_tokens)

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens, "output_mode": self.output_mode,
                "sparse": self.sparse}


__all__ = ["CategoryEncoding"]
