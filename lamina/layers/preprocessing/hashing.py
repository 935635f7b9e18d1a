"""``Hashing``: values (strings or integers) to bins by a stable hash, computed on the host."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lamina.layers.preprocessing.categorical_output import check_mode, encode, encoded_shape
from lamina.layers.preprocessing.category_encoding import to_sparse
from lamina.layers.preprocessing.fingerprint import buckets, salt_pair
from lamina.layers.preprocessing.host_data import HostLayer, to_numpy
from lamina.saving.object_registry import register_builtin


@register_builtin
class Hashing(HostLayer):
    """Hashes values into ``num_bins`` bins, as ``keras.layers.Hashing``, with Keras's bin numbers.

    A value's bin is FarmHash ``Fingerprint64`` of its string form (integers and floats, cut
    to integers, in decimal) modulo ``num_bins``, or SipHash-2-4 keyed by ``salt`` (an integer
    or a pair) when one is given: the very functions TensorFlow's ``to_hash_bucket_fast`` /
    ``to_hash_bucket_strong`` compute, written in Python, so bins equal Keras's without
    TensorFlow. With ``mask_value``, that value goes to bin 0 and the others to bins ``1 ..
    num_bins - 1``. ``output_mode``: ``"int"`` (bins, in the layer's dtype, ``"int64"`` by
    default), ``"one_hot"``, ``"multi_hot"``, ``"count"`` (floats; ``sparse=True``: a
    ``jax.experimental.sparse.BCOO``).

    The hashes run with NumPy on the host (each distinct value hashed once per call) and give
    NumPy arrays: apply the layer to the data before ``fit`` or in the data pipeline; inside
    traced code it raises an error saying so.

    Example:
        >>> import numpy as np, lamina as lm
        >>> lm.layers.Hashing(num_bins=3)(np.array([["A"], ["B"], ["C"], ["D"], ["E"]])).ravel().tolist()
        [1, 0, 1, 1, 2]
        >>> lm.layers.Hashing(num_bins=3, mask_value="")(np.array([["A"], [""]])).ravel().tolist()
        [1, 0]
    """

    def __init__(self, num_bins, mask_value=None, salt=None, output_mode="int", sparse=False, **kwargs):
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = "int64" if output_mode == "int" else "float32"
        super().__init__(**kwargs)
        owner = f"Hashing '{self.name}'"
        if num_bins is None or num_bins <= 0:
            raise ValueError(f"{owner}: `num_bins` must be a positive integer; got {num_bins!r}.")
        output_mode = check_mode(owner, output_mode)
        if output_mode == "int" and self.dtype_policy.name not in ("int32", "int64"):
            raise ValueError(f"{owner}: with output_mode='int' the dtype must be 'int32' or 'int64'; got "
                             f"{self.dtype_policy.name!r}.")
        if sparse and output_mode == "int":
            raise ValueError(f"{owner}: `sparse=True` needs output_mode 'one_hot', 'multi_hot' or 'count'.")
        self.num_bins = num_bins
        self.mask_value = mask_value
        self.strong_hash = salt is not None
        self.salt = None if salt is None else salt_pair(owner, salt)
        self.output_mode = output_mode
        self.sparse = sparse

    def hash_values(self, values) -> np.ndarray:
        """The bin of each value (int64, ``values``' shape), before any output encoding."""
        bins = self.num_bins
        mask = None
        if self.mask_value is not None and bins > 1:
            bins -= 1
            mask = values == self.mask_value
        hashed = buckets(values, bins, self.salt)
        if mask is not None:
            hashed = np.where(mask, 0, hashed + 1)
        return hashed

    def call(self, inputs):
        values = to_numpy(inputs)
        if self.output_mode == "one_hot" and values.ndim and values.shape[-1] == 1:
            values = values[..., 0]
        hashed = self.hash_values(values)
        if self.output_mode == "int":
            return hashed.astype(self.compute_dtype)
        outputs = encode(hashed, self.output_mode, self.num_bins, np.dtype(self.compute_dtype), xp=np)
        return to_sparse(jnp.asarray(outputs)) if self.sparse else outputs

    def tf_output_dtype(self):
        return self.compute_dtype

    def compute_output_shape(self, input_shape):
        return encoded_shape(input_shape, self.output_mode, self.num_bins)

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins, "salt": self.salt, "mask_value": self.mask_value,
                "output_mode": self.output_mode, "sparse": self.sparse}


__all__ = ["Hashing"]
