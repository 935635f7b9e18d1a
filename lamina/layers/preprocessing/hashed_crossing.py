"""``HashedCrossing``: feature crosses (tuples of categorical values) hashed into bins, on the host."""

from __future__ import annotations

import numpy as np

from lamina.layers.preprocessing.categorical_output import check_mode, encode
from lamina.layers.preprocessing.fingerprint import CROSS_HASH_KEY, fingerprint_cats, fingerprints
from lamina.layers.preprocessing.host_data import HostLayer, to_numpy
from lamina.saving.object_registry import register_builtin


def _feature_hashes(values: np.ndarray) -> np.ndarray:
    """Each value's 64-bit hash (uint64) as ``tf.sparse.cross_hashed`` takes it: an integer as
    itself (two's complement), a string by its FarmHash fingerprint."""
    if values.dtype.kind in "iub":
        return values.astype(np.int64).view(np.uint64)
    unique, inverse = np.unique(values, return_inverse=True)
    return fingerprints([v.encode("utf-8") for v in unique.tolist()])[inverse.reshape(-1)]


@register_builtin
class HashedCrossing(HostLayer):
    """Crosses categorical features and hashes each combination into ``num_bins`` bins, as
    ``keras.layers.HashedCrossing`` (the bins equal Keras's: TensorFlow's ``cross_hashed``
    fingerprint chain, written in Python).

    Called on a list of at least two inputs of equal shape ``()``, ``(batch,)`` or ``(batch,
    1)``, each of integers or strings. ``output_mode``: ``"int"`` (bins, in the layer's dtype,
    ``"int64"`` by default) or ``"one_hot"``. Computes with NumPy on the host and returns NumPy
    arrays: apply it to the data before ``fit`` or in the data pipeline.

    Example:
        >>> import numpy as np, lamina as lm
        >>> cross = lm.layers.HashedCrossing(num_bins=5)
        >>> cross([np.array([1, 2, 3]), np.array(["A", "B", "C"])]).tolist()
        [2, 3, 3]
    """

    def __init__(self, num_bins, output_mode="int", sparse=False, **kwargs):
        if output_mode == "int" and kwargs.get("dtype") is None:
            kwargs["dtype"] = "int64"
        super().__init__(**kwargs)
        owner = f"HashedCrossing '{self.name}'"
        self.output_mode = check_mode(owner, output_mode, ("int", "one_hot"))
        if sparse:
            raise ValueError(f"{owner}: `sparse=True` is not supported (as in Keras, only its TensorFlow "
                             "backend gives sparse outputs); the outputs are dense arrays.")
        self.num_bins = num_bins
        self.sparse = sparse

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"HashedCrossing '{self.path}' must be called on a list or tuple of at least two "
                             f"inputs; got {type(inputs).__name__}.")
        features = [to_numpy(x) for x in inputs]
        shape = features[0].shape
        if len(shape) > 2 or (len(shape) == 2 and shape[-1] != 1):
            raise ValueError(f"HashedCrossing '{self.path}': inputs must have shape (), (batch,) or (batch, 1); "
                             f"got {shape}.")
        if any(f.shape != shape for f in features[1:]):
            raise ValueError(f"HashedCrossing '{self.path}': all inputs must have the same shape; got "
                             f"{[f.shape for f in features]}.")
        if any(f.dtype.kind not in "iuU" for f in features):
            raise ValueError(f"HashedCrossing '{self.path}': inputs must hold integers or strings; got dtypes "
                             f"{[str(f.dtype) for f in features]}.")
        crossed = np.full(features[0].size, CROSS_HASH_KEY, np.uint64)
        for feature in features:
            crossed = fingerprint_cats(crossed, _feature_hashes(feature.reshape(-1)))
        bins = (crossed % np.uint64(self.num_bins)).astype(np.int64).reshape(shape)
        if self.output_mode == "int":
            return bins.astype(self.compute_dtype)
        return encode(bins, "one_hot", self.num_bins, np.dtype(self.compute_dtype), xp=np)

    def tf_output_dtype(self):
        return self.compute_dtype

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 2 or not all(
                isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"HashedCrossing '{self.name}': expected a list of at least two input shapes; got "
                             f"{input_shape!r}.")
        first = tuple(input_shape[0])
        if self.output_mode == "int":
            return first
        if first and first[-1] == 1:
            return first[:-1] + (self.num_bins,)
        return first + (self.num_bins,)

    def get_config(self):
        config = {k: v for k, v in super().get_config().items() if k != "trainable"}  # Keras's keys
        return {**config, "num_bins": self.num_bins, "output_mode": self.output_mode,
                "sparse": self.sparse}


__all__ = ["HashedCrossing"]
