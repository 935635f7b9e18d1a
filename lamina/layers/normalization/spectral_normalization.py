"""``SpectralNormalization`` (Miyato et al., 2018): a wrapper that divides a layer's kernel by
its largest singular value, estimated by power iteration, as ``keras.layers.SpectralNormalization``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina import initializers
from lamina.layers.core.wrapper import Wrapper
from lamina.layers.input_spec import InputSpec
from lamina.saving.object_registry import register_builtin

_EPSILON = 1e-7  # Keras's backend epsilon, in its L2 normalization


def _l2_normalize(x):
    # Keras's form: x * rsqrt(sum(x^2)), the inverse norm capped at 1 / epsilon.
    return x * jnp.minimum(jax.lax.rsqrt(jnp.sum(jnp.square(x))), 1.0 / _EPSILON)


@register_builtin
class SpectralNormalization(Wrapper):
    """Spectral normalization of a wrapped layer's ``kernel`` (or ``embeddings``).

    Holds a non-trainable ``vector_u`` ``(1, kernel.shape[-1])`` (truncated normal, stddev
    0.02). In training, each call runs ``power_iterations`` steps of power iteration on the
    kernel reshaped to ``(-1, kernel.shape[-1])``, stores the new ``u``, and **assigns**
    ``kernel / sigma`` to the wrapped layer's kernel before calling it (``sigma`` the
    estimated largest singular value; ``u`` and ``v`` carry no gradient), as Keras does; an
    all-zero kernel is left alone. At inference the wrapped layer runs with its kernel as it
    is (normalized by the last training step). The output is cast to the input's dtype.

    The kernel is also one of this layer's own weights (``weights``: kernel, ``vector_u``,
    then the wrapped layer's others), as in Keras.

    Example:
        >>> import jax.numpy as jnp, numpy as np, lamina as lm
        >>> layer = lm.layers.SpectralNormalization(lm.layers.Dense(2), power_iterations=20)
        >>> _ = layer(jnp.ones((1, 3)), training=True)
        >>> round(float(np.linalg.svd(np.asarray(layer.kernel.value))[1][0]), 3)
        1.0
    """

    def __init__(self, layer, power_iterations=1, **kwargs):
        super().__init__(layer, **kwargs)
        if not isinstance(power_iterations, int) or isinstance(power_iterations, bool) or power_iterations <= 0:
            raise ValueError(
                f"SpectralNormalization '{self.name}': power_iterations must be a positive integer; got "
                f"{power_iterations!r}."
            )
        self.power_iterations = power_iterations
        self.kernel = None
        self.vector_u = None

    def build(self, input_shape):
        super().build(input_shape)
        self.input_spec = InputSpec(min_ndim=1, axes={-1: input_shape[-1]})
        kernel = getattr(self.layer, "kernel", None)
        if kernel is None:
            kernel = getattr(self.layer, "embeddings", None)
        if kernel is None:
            raise ValueError(
                f"SpectralNormalization '{self.name}': the wrapped layer {type(self.layer).__name__} "
                f"'{self.layer.name}' has neither a `kernel` nor an `embeddings` weight to normalize."
            )
        self.kernel = kernel
        self.vector_u = self.add_weight(
            shape=(1, kernel.shape[-1]), initializer=initializers.TruncatedNormal(stddev=0.02),
            trainable=False, name="vector_u", dtype=kernel.dtype,
        )

    def normalized_weights(self):
        """``(new vector_u, kernel / sigma)`` from one round of power iterations on the current
        kernel (Keras's method of the same name; nothing is assigned)."""
        kernel = self.kernel._uncast_value()
        weights = jnp.reshape(kernel, (-1, kernel.shape[-1]))
        vector_u = self.vector_u._uncast_value()
        for _ in range(self.power_iterations):
            vector_v = _l2_normalize(vector_u @ weights.T)
            vector_u = _l2_normalize(vector_v @ weights)
        vector_u = jax.lax.stop_gradient(vector_u)
        vector_v = jax.lax.stop_gradient(vector_v)
        sigma = (vector_v @ weights) @ vector_u.T
        return vector_u.astype(self.vector_u.dtype), (kernel / sigma).astype(kernel.dtype)

    def call(self, inputs, training=False):
        if training:
            kernel, vector_u = self.kernel._uncast_value(), self.vector_u._uncast_value()
            # An all-zero kernel has no direction to normalize (sigma would be 0): kept as is. A
            # cond, not a where: the untaken 0/0 branch would make the gradient NaN.
            new_u, new_kernel = jax.lax.cond(jnp.all(kernel == 0), lambda: (vector_u, kernel),
                                             self.normalized_weights)
            self.vector_u.assign(new_u)
            self.kernel.assign(new_kernel)
        output = self.layer(inputs)
        # Keras casts to the input's dtype, which would truncate an Embedding's output to the
        # integer ids' dtype: only a floating input sets the output's dtype here.
        return output.astype(inputs.dtype) if jnp.issubdtype(inputs.dtype, jnp.floating) else output

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}


__all__ = ["SpectralNormalization"]
