"""``StringLookup``: string tokens to contiguous indices (or back), computed on the host."""

from __future__ import annotations

import numpy as np

from lamina.layers.preprocessing.host_data import HostLayer, to_numpy
from lamina.layers.preprocessing.index_lookup import IndexLookup
from lamina.saving.object_registry import register_builtin


@register_builtin
class StringLookup(IndexLookup, HostLayer):
    """Maps string tokens to indices, as ``keras.layers.StringLookup``.

    Indices are laid out ``[mask] + [OOV] * num_oov_indices + vocabulary``: with the defaults
    (no mask token, one OOV index ``"[UNK]"``) an unknown string maps to 0 and the vocabulary
    starts at 1; several OOV indices share unknown strings by FarmHash (SipHash with a
    ``salt``), with Keras's bucket numbers. Give ``vocabulary`` (a list, or a file with one
    token per line) or learn it with ``adapt(data)``. ``output_mode``: ``"int"``,
    ``"one_hot"``, ``"multi_hot"``, ``"count"``, ``"tf_idf"``; ``invert=True`` maps indices
    back to strings.

    JAX arrays cannot hold strings: the layer computes with NumPy on the host, taking NumPy
    string/bytes/object arrays, lists, or TensorFlow eager tensors, and returns NumPy arrays
    (int64 indices, float encodings; strings when inverted). Apply it to the data before
    ``fit`` or in the data pipeline; called inside traced code it raises an error saying so.

    Example:
        >>> import numpy as np, lamina as lm
        >>> lookup = lm.layers.StringLookup(vocabulary=["a", "b", "c", "d"])
        >>> lookup(np.array([["a", "c", "d"], ["d", "z", "b"]])).tolist()
        [[1, 3, 4], [4, 0, 2]]
        >>> lm.layers.StringLookup(vocabulary=["a", "b"], invert=True)(np.array([2, 0])).tolist()
        ['b', '[UNK]']
    """

    _string_tokens = True

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]", vocabulary=None,
                 idf_weights=None, invert=False, output_mode="int", pad_to_max_tokens=False, sparse=False,
                 encoding="utf-8", salt=None, **kwargs):
        self.encoding = encoding
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices, mask_token=mask_token,
                         oov_token=oov_token, vocabulary=vocabulary, idf_weights=idf_weights, invert=invert,
                         output_mode=output_mode, sparse=sparse, pad_to_max_tokens=pad_to_max_tokens,
                         salt=salt, **kwargs)

    def call(self, inputs):
        array = to_numpy(inputs, self.encoding)
        if self.invert:
            if array.dtype.kind not in "iu":
                raise TypeError(f"StringLookup '{self.path}' (invert=True) expects integer indices; got "
                                f"an array of dtype {array.dtype}.")
            return self._lookup(array.astype(np.int64), np)
        if array.dtype.kind != "U":
            raise TypeError(
                f"StringLookup '{self.path}' expects strings (a NumPy str/bytes/object array, a list of "
                f"str, or a tf.string tensor); got an array of dtype {array.dtype}. For integer tokens "
                "use IntegerLookup."
            )
        return self._encode(self._lookup(array, np), np)

    def tf_output_dtype(self):
        if self.invert:
            return "string"
        return "int64" if self.output_mode == "int" else self.compute_dtype

    def get_config(self):
        return {**super().get_config(), "encoding": self.encoding}


__all__ = ["StringLookup"]
