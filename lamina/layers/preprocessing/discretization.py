"""``Discretization``: numbers bucketed by boundaries, given or learned as quantiles by ``adapt``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lamina.layers.layer import Layer
from lamina.layers.preprocessing.categorical_output import check_mode, encode, encoded_shape
from lamina.layers.preprocessing.category_encoding import to_sparse
from lamina.layers.preprocessing.host_data import batches
from lamina.layers.preprocessing.tf_graph import TFGraphCallable
from lamina.saving.object_registry import register_builtin


def _summary(values, epsilon):
    """A weighted sample of sorted ``values``: about ``1 / epsilon`` evenly spaced order
    statistics, each standing for ``step`` values (row 0: values, row 1: weights)."""
    values = np.sort(np.reshape(values, -1))
    step = max(values.size / (1.0 / epsilon), 1)  # as Keras writes it: the same float rounding
    picked = values[int(step - 1)::int(step)]
    return np.stack([picked, np.full(picked.shape, step, dtype=picked.dtype)])


def _compress(summary, epsilon):
    """``summary`` resampled at cumulative-weight fractions ``epsilon, 2 epsilon, ..., 1``
    (interpolating values and cumulative weights); unchanged when it is already that small."""
    if summary.shape[1] * epsilon < 1:
        return summary
    fractions = epsilon + np.arange(0.0, 1.0, epsilon)
    cumulative = summary[1].cumsum()
    at = cumulative / cumulative[-1]
    values = np.interp(fractions, at, summary[0])
    weights = np.interp(fractions, at, cumulative)
    return np.stack([values, np.diff(weights, prepend=0.0)]).astype("float32")


def _merge(a, b, epsilon):
    merged = np.concatenate([a, b], axis=1)
    return _compress(merged[:, np.argsort(merged[0])], epsilon)


@register_builtin
class Discretization(TFGraphCallable, Layer):
    """Buckets numbers by boundaries, as ``keras.layers.Discretization``.

    With ``bin_boundaries=[b0, b1, ...]`` a value ``x`` goes to bucket ``i`` where
    ``b[i-1] <= x < b[i]`` (bucket 0 below ``b0``, the last at or above the last boundary).
    With ``num_bins``, ``adapt(data)`` learns ``num_bins - 1`` boundaries as approximate
    quantiles of ``data`` (Keras's summary algorithm, error about ``epsilon``); ``data`` is an
    array or an iterable of batches (a generator, ``tf.data``/``lm.data`` dataset; ``(x, y)``
    batches use ``x``). ``output_mode``: ``"int"`` (bucket ids, int32), ``"one_hot"``,
    ``"multi_hot"``, ``"count"`` (see ``CategoryEncoding``). The boundaries are part of the
    config (adapted ones too), so a saved layer needs no data. Works inside compiled code.

    Example:
        >>> import numpy as np, lamina as lm
        >>> layer = lm.layers.Discretization(bin_boundaries=[0.0, 1.0, 2.0])
        >>> layer(np.array([[-1.5, 1.0, 3.4, 0.5]])).tolist()
        [[0, 2, 3, 1]]
        >>> learned = lm.layers.Discretization(num_bins=4, epsilon=0.01)
        >>> learned.adapt(np.arange(100.0))
        >>> [round(b) for b in learned.bin_boundaries]     # approximate quartiles, as Keras's
        [24, 49, 74]
    """

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int", sparse=False,
                 **kwargs):
        super().__init__(**kwargs)
        owner = f"Discretization '{self.name}'"
        output_mode = check_mode(owner, output_mode)
        if sparse and output_mode == "int":
            raise ValueError(f"{owner}: `sparse=True` needs output_mode 'one_hot', 'multi_hot' or 'count'.")
        if num_bins is not None and num_bins < 0:
            raise ValueError(f"{owner}: `num_bins` must be >= 0, got {num_bins}.")
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError(
                f"{owner}: give `bin_boundaries` or `num_bins` (to adapt), not both; got "
                f"bin_boundaries={bin_boundaries!r} and num_bins={num_bins!r}."
            )
        if num_bins is None and bin_boundaries is None:
            raise ValueError(f"{owner}: give `bin_boundaries`, or `num_bins` and then call adapt().")
        self.bin_boundaries = None if bin_boundaries is None else [float(b) for b in bin_boundaries]
        self.num_bins = num_bins
        self.epsilon = epsilon
        self.output_mode = output_mode
        self.sparse = sparse
        self.summary = np.zeros((2, 0), dtype="float32")

    @property
    def _depth(self):
        return len(self.bin_boundaries) + 1 if self.bin_boundaries is not None else self.num_bins

    def call(self, inputs):
        if self.bin_boundaries is None:
            raise ValueError(
                f"Discretization '{self.path}' has no bin boundaries yet: pass `bin_boundaries`, "
                "or call adapt(data) before calling the layer."
            )
        inputs = jnp.asarray(inputs)
        if not jnp.issubdtype(inputs.dtype, jnp.floating):
            inputs = inputs.astype(self.compute_dtype)
        indices = jnp.digitize(inputs, jnp.asarray(self.bin_boundaries, dtype=inputs.dtype)).astype("int32")
        dtype = "int32" if self.output_mode == "int" else self.compute_dtype
        outputs = encode(indices, self.output_mode, self._depth, dtype)
        return to_sparse(outputs) if self.sparse else outputs

    def adapt(self, data, steps=None):
        """Learn ``num_bins - 1`` boundaries from ``data`` (an array or an iterable of batches,
        ``steps`` of them at most), replacing any learned before."""
        if self.num_bins is None:
            raise ValueError(
                f"Discretization '{self.path}' was given bin_boundaries; adapt() needs a layer made "
                "with `num_bins` instead."
            )
        self.reset_state()
        for batch in batches(data, steps):
            self.update_state(batch)
        self.finalize_state()

    def update_state(self, data):
        """Merge one batch into the running quantile summary."""
        data = np.asarray(data).astype("float32")
        self.summary = _merge(_summary(data, self.epsilon), self.summary, self.epsilon)

    def finalize_state(self):
        """Set ``bin_boundaries`` from the summary."""
        if self.num_bins is None:
            return
        self.bin_boundaries = _compress(self.summary, 1.0 / self.num_bins)[0, :-1].tolist()

    def reset_state(self):
        """Forget the data seen by ``update_state``."""
        self.summary = np.zeros((2, 0), dtype="float32")

    def tf_output_dtype(self):
        return "int32" if self.output_mode == "int" else self.compute_dtype

    def compute_output_shape(self, input_shape):
        return encoded_shape(input_shape, self.output_mode, self._depth)

    def get_config(self):
        config = {k: v for k, v in super().get_config().items() if k != "trainable"}  # Keras's keys
        return {**config, "bin_boundaries": self.bin_boundaries, "num_bins": self.num_bins,
                "epsilon": self.epsilon, "output_mode": self.output_mode, "sparse": self.sparse}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("bin_boundaries") is not None and config.get("num_bins") is not None:
            boundaries = config.pop("bin_boundaries")  # adapted: both were saved
            layer = super().from_config(config)
            layer.bin_boundaries = [float(b) for b in boundaries]
            return layer
        return super().from_config(config)


__all__ = ["Discretization"]
