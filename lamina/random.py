"""Randomness (``lm.random``): one global seed stream and seed generators held as state.

Unseeded initializers and layers draw their seeds from a global stream, so
``lm.random.set_seed(n)`` before building a model makes a run repeatable. Random layers keep a
``SeedGenerator`` whose state is a non-trainable ``Variable``: every ``next()`` returns a fresh
key *and* advances that state, so a compiled step draws new numbers each time it runs.
"""

from __future__ import annotations

import os
import random as _py_random

import jax
import jax.numpy as jnp
import numpy as np

from lamina.core.variable import Variable


class _GlobalStream:
    def __init__(self):
        self.reset(None)

    def reset(self, seed):
        self.seed = int.from_bytes(os.urandom(4), "little") if seed is None else int(seed)
        self.counter = 0

    def next_seed(self) -> int:
        """A fresh 31-bit integer seed, different at every call, repeatable after set_seed."""
        self.counter += 1
        # Drawn with NumPy on the host: the same stream through jax.random compiled three small
        # programs, which cost a fresh process ~150 ms before its first layer was built.
        entropy = (self.seed % 2**64, self.counter)
        return int(np.random.default_rng(entropy).integers(0, 2**31 - 1))


_stream = _GlobalStream()


def set_seed(seed: int) -> None:
    """Make lamina (and Python's and NumPy's global generators) repeatable from ``seed``.

    Example:
        >>> import lamina as lm
        >>> lm.random.set_seed(0); a = lm.random.normal((2,))
        >>> lm.random.set_seed(0); b = lm.random.normal((2,))
        >>> bool((a == b).all())
        True
    """
    _stream.reset(seed)
    _py_random.seed(seed)
    np.random.seed(seed % 2**32)


def draw_seed() -> int:
    """The next integer seed from the global stream (used by unseeded initializers/layers)."""
    return _stream.next_seed()


def _tracing() -> bool:
    from jax._src import core  # no public API tells whether a trace is in progress

    return not core.trace_state_clean()


class SeedGenerator:
    """Random state as a variable: ``next()`` returns a new PRNG key and advances the state.

    Held by a layer, it is tracked like a weight (in ``layer.variables``, not ``weights``), so
    compiled steps thread it through and each step draws different numbers.

    Example:
        >>> import lamina as lm
        >>> gen = lm.random.SeedGenerator(42)
        >>> k1, k2 = gen.next(), gen.next()
        >>> bool((k1 != k2).any())
        True
    """

    def __init__(self, seed: int | None = None, name: str = "seed_generator"):
        if seed is None:
            seed = draw_seed()
        self.initial_seed = int(seed)
        with jax.ensure_compile_time_eval():
            initial = np.asarray(jax.random.PRNGKey(self.initial_seed))
        self.state = Variable(initial, trainable=False, dtype="uint32", name="seed_generator_state")
        self.name = name

    def next(self, ordered: bool = True) -> jax.Array:
        """A fresh raw PRNG key (uint32[2]); the stored state moves on. ``ordered`` is
        accepted for Keras's signature: every draw here is ordered by the state it reads."""
        new_state, key = jax.random.split(self.state.value)
        self.state.assign(new_state)
        return key

    def get_config(self) -> dict:
        return {"seed": self.initial_seed}

    @classmethod
    def from_config(cls, config: dict) -> SeedGenerator:
        """A generator from ``get_config()``: it starts again from the same seed."""
        return cls(**config)

    def _lm_state_variables(self) -> list:
        return [self.state]


def _key(seed) -> jax.Array:
    """A PRNG key from an int seed, a SeedGenerator, or (outside compiled code) the global stream."""
    if isinstance(seed, SeedGenerator):
        return seed.next()
    if seed is None:
        if _tracing():
            raise ValueError(
                "An unseeded random draw (seed=None) inside compiled code (lm.jit, fit, or a "
                "layer traced to build a functional model) would be frozen into the program and "
                "return the same numbers at every step. Draw from an "
                "lm.random.SeedGenerator held by your layer (seed=self.seed_generator), whose "
                "state advances at every step, or pass an integer seed on purpose."
            )
        seed = draw_seed()
    if isinstance(seed, (int, np.integer)):
        return jax.random.PRNGKey(int(seed))
    return seed  # already a key


def _check_float_dtype(function: str, dtype) -> None:
    # Checked before a key is drawn, so a refused call leaves the seed stream where it was;
    # JAX's own message names neither lamina's function nor the integer alternative.
    if not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
        raise ValueError(
            f"lm.random.{function} draws floating-point numbers; got dtype={jnp.dtype(dtype).name}. "
            "Use lm.random.randint for integers."
        )


def normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None) -> jax.Array:
    """Normal samples; ``seed`` is an int, a SeedGenerator or None (global stream, eager only)."""
    _check_float_dtype("normal", dtype)
    return mean + stddev * jax.random.normal(_key(seed), tuple(shape), dtype=dtype)


def uniform(shape, minval=0.0, maxval=1.0, dtype="float32", seed=None) -> jax.Array:
    """Uniform samples in ``[minval, maxval)``; ``seed`` as for ``normal``.

    Example:
        >>> import lamina as lm
        >>> draws = lm.random.uniform((1000,), 2.0, 5.0, seed=0)
        >>> 2.0 <= float(draws.min()) and float(draws.max()) < 5.0
        True
    """
    _check_float_dtype("uniform", dtype)
    return jax.random.uniform(_key(seed), tuple(shape), dtype=dtype, minval=minval, maxval=maxval)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None) -> jax.Array:
    """Normal samples cut at two standard deviations; ``seed`` as for ``normal``."""
    _check_float_dtype("truncated_normal", dtype)
    return mean + stddev * jax.random.truncated_normal(_key(seed), -2.0, 2.0, tuple(shape), dtype=dtype)


def dropout(inputs, rate: float, noise_shape=None, seed=None) -> jax.Array:
    """Zero each element with probability ``rate`` and scale the rest by ``1 / (1 - rate)``."""
    inputs = jnp.asarray(inputs)
    shape = inputs.shape if noise_shape is None else tuple(
        inputs.shape[i] if d is None else d for i, d in enumerate(noise_shape)
    )
    keep = jax.random.bernoulli(_key(seed), 1.0 - rate, shape)
    return jnp.where(keep, inputs / (1.0 - rate), jnp.zeros((), inputs.dtype))


def randint(shape, minval, maxval, dtype="int32", seed=None) -> jax.Array:
    """Integers drawn uniformly from ``[minval, maxval)``; ``seed`` as for ``normal``.

    Example:
        >>> import lamina as lm
        >>> draws = lm.random.randint((1000,), 2, 5, seed=0)
        >>> int(draws.min()), int(draws.max()), str(draws.dtype)
        (2, 4, 'int32')
    """
    return jax.random.randint(_key(seed), tuple(shape), minval, maxval, dtype=dtype)


def shuffle(x, axis: int = 0, seed=None) -> jax.Array:
    """``x`` with its slices along ``axis`` in a random order; ``seed`` as for ``normal``.

    Example:
        >>> import jax.numpy as jnp
        >>> import lamina as lm
        >>> sorted(lm.random.shuffle(jnp.arange(5), seed=0).tolist())
        [0, 1, 2, 3, 4]
    """
    return jax.random.permutation(_key(seed), jnp.asarray(x), axis=axis, independent=False)


def categorical(logits, num_samples: int, dtype="int32", seed=None) -> jax.Array:
    """``num_samples`` class ids per row of ``logits`` (``(batch, classes)`` unnormalized
    log-probabilities), shape ``(batch, num_samples)``; ``seed`` as for ``normal``.

    Example:
        >>> import jax.numpy as jnp
        >>> import lamina as lm
        >>> logits = jnp.log(jnp.array([[1.0, 0.0], [0.0, 1.0]]))
        >>> lm.random.categorical(logits, 3, seed=0).tolist()
        [[0, 0, 0], [1, 1, 1]]
    """
    logits = jnp.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"lm.random.categorical: `logits` must have shape (batch, classes); got shape {logits.shape}.")
    draws = jax.random.categorical(_key(seed), logits, axis=-1, shape=(int(num_samples), logits.shape[0]))
    return jnp.transpose(draws).astype(dtype)


def gamma(shape, alpha, dtype="float32", seed=None) -> jax.Array:
    """Gamma samples of shape parameter ``alpha`` (scale 1); ``seed`` as for ``normal``.

    Example:
        >>> import lamina as lm
        >>> round(float(lm.random.gamma((20000,), 3.0, seed=0).mean()), 1)
        3.0
    """
    return jax.random.gamma(_key(seed), jnp.asarray(alpha, dtype), tuple(shape), dtype=dtype)


def binomial(shape, counts, probabilities, dtype="float32", seed=None) -> jax.Array:
    """Successes in ``counts`` trials of probability ``probabilities``; ``seed`` as for ``normal``.

    Example:
        >>> import lamina as lm
        >>> round(float(lm.random.binomial((20000,), 10, 0.3, seed=0).mean()), 1)
        3.0
    """
    return jax.random.binomial(
        _key(seed), jnp.asarray(counts, dtype), jnp.asarray(probabilities, dtype), tuple(shape), dtype=dtype
    )


def beta(shape, alpha, beta, dtype="float32", seed=None) -> jax.Array:
    """Beta(``alpha``, ``beta``) samples in ``[0, 1]``; ``seed`` as for ``normal``.

    Example:
        >>> import lamina as lm
        >>> round(float(lm.random.beta((20000,), 2.0, 6.0, seed=0).mean()), 2)
        0.25
    """
    return jax.random.beta(_key(seed), jnp.asarray(alpha, dtype), jnp.asarray(beta, dtype), tuple(shape), dtype=dtype)
