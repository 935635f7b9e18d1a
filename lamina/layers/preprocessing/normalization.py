"""``Normalization``: ``(inputs - mean) / sqrt(variance)`` with statistics given or adapted."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin

_EPSILON = 1e-7  # Keras's backend.epsilon(): the smallest standard deviation divided by


def _first_of_batch(batch):
    """``x`` from an ``(x, y)`` or ``(x, y, sample_weight)`` batch."""
    return batch[0] if isinstance(batch, tuple) else batch


@register_builtin
class Normalization(Layer):
    """Feature-wise normalization, as ``keras.layers.Normalization``.

    Statistics are kept per position of ``axis`` (an int, a tuple of ints, or ``None`` for
    one scalar mean and variance) and taken over every other axis. Give them as ``mean`` and
    ``variance``, or compute them from data with ``adapt(data)``: ``data`` is an array, or an
    iterable of batches (a list of arrays, a generator, an ``lm.data.Dataset``; ``(x, y)``
    batches use ``x``). Adapted statistics live in the non-trainable variables ``mean`` and
    ``variance`` (attributes ``adapt_mean``, ``adapt_variance``; plus ``count``, kept for
    Keras's weight layout), so they load with ``set_weights`` and travel with saved weights;
    the ``mean`` and ``variance`` properties give them in the inputs' broadcast shape.
    ``invert=True`` maps back: ``mean + inputs * sqrt(variance)``.

    Example:
        >>> import numpy as np, lamina as lm
        >>> norm = lm.layers.Normalization()
        >>> norm.adapt(np.array([[0.0, 10.0], [2.0, 30.0]]))
        >>> norm.mean.tolist(), norm.variance.tolist()
        ([[1.0, 20.0]], [[1.0, 100.0]])
        >>> norm(np.array([[1.0, 40.0]])).tolist()
        [[0.0, 2.0]]
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, int):
            axis = (axis,)
        else:
            axis = tuple(axis)
        self.axis = axis
        self.input_mean = mean
        self.input_variance = variance
        self.invert = invert
        self.supports_masking = True
        self._keep_axis = self._reduce_axis = self._broadcast_shape = self._stats_shape = None
        if (mean is None) != (variance is None):
            raise ValueError(
                f"Normalization '{self.name}': give both mean and variance, or neither "
                f"(got mean={mean!r}, variance={variance!r})."
            )
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError(
                    f"Normalization '{self.name}': mean and variance must have the same shape, got "
                    f"{np.shape(mean)} and {np.shape(variance)}."
                )
            if len(np.shape(mean)) > len(self.axis):
                raise ValueError(
                    f"Normalization '{self.name}': the rank of mean ({len(np.shape(mean))}) must not "
                    f"exceed the number of axes ({len(self.axis)}, axis={self.axis})."
                )

    def build(self, input_shape):
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(
                f"Normalization '{self.name}': every axis must be in [-{ndim}, {ndim}) for inputs of "
                f"rank {ndim}; got axis={self.axis}."
            )
        self._keep_axis = tuple(sorted(a % ndim for a in self.axis))
        for a in self._keep_axis:
            if input_shape[a] is None:
                raise ValueError(
                    f"Normalization '{self.name}': the kept axis {a} must have a known size; got input "
                    f"shape {tuple(input_shape)}."
                )
        self._reduce_axis = tuple(a for a in range(ndim) if a not in self._keep_axis)
        self._broadcast_shape = [input_shape[a] if a in self._keep_axis else 1 for a in range(ndim)]
        stats_shape = tuple(input_shape[a] for a in self._keep_axis)
        self._stats_shape = stats_shape
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(shape=stats_shape, initializer="zeros", name="mean", trainable=False)
            self.adapt_variance = self.add_weight(shape=stats_shape, initializer="ones", name="variance",
                                                  trainable=False)
            self.count = self.add_weight(shape=(), initializer="zeros", dtype="int32", name="count", trainable=False)
        else:
            self._given = tuple(self._broadcast_given(v) for v in (self.input_mean, self.input_variance))

    def _broadcast_given(self, value):
        value = np.asarray(value, dtype=self.dtype)
        if value.ndim:
            expanded = [1] * len(self._broadcast_shape)
            for i in range(1, value.ndim + 1):
                expanded[self._keep_axis[-i]] = value.shape[-i]
            value = value.reshape(expanded)
        return np.broadcast_to(value, self._broadcast_shape)

    def _statistics(self):
        if self.input_mean is not None:
            return jnp.asarray(self._given[0]), jnp.asarray(self._given[1])
        shape = self._broadcast_shape
        return (jnp.reshape(self.adapt_mean.value, shape).astype(self.dtype),
                jnp.reshape(self.adapt_variance.value, shape).astype(self.dtype))

    @property
    def mean(self):
        """The mean in the inputs' broadcast shape (``None`` before the layer is built)."""
        return self._statistics()[0] if self.built else None

    @property
    def variance(self):
        """The variance in the inputs' broadcast shape (``None`` before the layer is built)."""
        return self._statistics()[1] if self.built else None

    def call(self, inputs):
        inputs = inputs.astype(self.dtype)
        mean, variance = self._statistics()
        std = jnp.maximum(jnp.sqrt(variance), _EPSILON)
        if self.invert:
            return mean + inputs * std
        return (inputs - mean) / std

    def adapt(self, data):
        """Compute ``mean`` and ``variance`` from ``data`` (an array or an iterable of batches)
        with Keras's formulas: one pass over an array; over batches, running per-batch
        moments merged by count. Builds the layer from the data's shape if needed."""
        if self.input_mean is not None:
            raise ValueError(
                f"Normalization '{self.path}' was given mean and variance; adapt() cannot change them."
            )
        iterable = False
        if isinstance(data, (np.ndarray, jax.Array)):
            shape = tuple(data.shape)
        elif hasattr(data, "__iter__"):
            iterable = True
            batches = iter(data)
            first = next(batches, None)
            if first is None:
                raise ValueError(f"Normalization '{self.path}': adapt() received an empty iterable (no batches).")
            first = _first_of_batch(first)
            if not hasattr(first, "shape"):
                raise TypeError(
                    f"Normalization '{self.path}': adapt() expects batches that are arrays with a "
                    f"shape; got an element of type {type(first).__name__}."
                )
            shape = tuple(first.shape)
            data = itertools.chain([first], batches)
        else:
            raise TypeError(
                f"Normalization '{self.path}': adapt() accepts a NumPy/JAX array or an iterable of "
                f"batches, got {type(data).__name__}."
            )
        if not self.built:
            self.build_from_shape(shape)
        else:
            self._check_shape(shape)

        if isinstance(data, np.ndarray):
            total_mean = np.mean(data, axis=self._reduce_axis)
            total_var = np.var(data, axis=self._reduce_axis)
        elif not iterable:
            total_mean = jnp.mean(data, axis=self._reduce_axis)
            total_var = jnp.var(data, axis=self._reduce_axis)
        else:
            total_mean = jnp.zeros(self._stats_shape)
            total_var = jnp.zeros(self._stats_shape)
            total_count = 0
            for batch in data:
                batch = jnp.asarray(_first_of_batch(batch), dtype=self.dtype)
                self._check_shape(batch.shape)
                batch_mean = jnp.mean(batch, axis=self._reduce_axis)
                batch_var = jnp.var(batch, axis=self._reduce_axis)
                batch_count = math.prod(batch.shape[a] for a in self._reduce_axis) if self._reduce_axis else 1
                total_count += batch_count
                batch_weight = float(batch_count) / total_count
                existing_weight = 1.0 - batch_weight
                new_total_mean = total_mean * existing_weight + batch_mean * batch_weight
                total_var = ((total_var + (total_mean - new_total_mean) ** 2) * existing_weight
                             + (batch_var + (batch_mean - new_total_mean) ** 2) * batch_weight)
                total_mean = new_total_mean
        self.adapt_mean.assign(jnp.asarray(total_mean))
        self.adapt_variance.assign(jnp.asarray(total_var))

    def _check_shape(self, shape):
        for a in self._keep_axis:
            if len(shape) <= a or shape[a] != self._broadcast_shape[a]:
                raise ValueError(
                    f"Normalization '{self.path}' was built for input shape {self._lm_build_shape}, "
                    f"but adapt() got data of incompatible shape {tuple(shape)}."
                )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "axis": list(self.axis),
            "invert": self.invert,
            "mean": None if self.input_mean is None else np.asarray(self.input_mean).tolist(),
            "variance": None if self.input_variance is None else np.asarray(self.input_variance).tolist(),
        }


__all__ = ["Normalization"]
