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

    def next(self) -> jax.Array:
        """A fresh raw PRNG key (uint32[2]); the stored state moves on."""
        new_state, key = jax.random.split(self.state.value)
        self.state.assign(new_state)
        return key

    def get_config(self) -> dict:
        return {"seed": self.initial_seed}

    def _lm_state_variables(self) -> list:
        return [self.state]


def _key(seed) -> jax.Array:
    """A PRNG key from an int seed, a SeedGenerator, or (outside compiled code) the global stream."""
    if isinstance(seed, SeedGenerator):
        return seed.next()
    if seed is None:
        if _tracing():
            raise ValueError(
                "An unseeded random draw (seed=None) inside compiled code would be frozen into "
                "the program and return the same numbers at every step. Draw from an "
                "lm.random.SeedGenerator held by your layer (seed=self.seed_generator), whose "
                "state advances at every step, or pass an integer seed on purpose."
            )
        seed = draw_seed()
    if isinstance(seed, (int, np.integer)):
        return jax.random.PRNGKey(int(seed))
    return seed  # already a key


def normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None) -> jax.Array:
    """Normal samples; ``seed`` is an int, a SeedGenerator or None (global stream, eager only)."""
    return mean + stddev * jax.random.normal(_key(seed), tuple(shape), dtype=dtype)


def uniform(shape, minval=0.0, maxval=1.0, dtype="float32", seed=None) -> jax.Array:
    """Uniform samples in ``[minval, maxval)``; ``seed`` as for ``normal``."""
    return jax.random.uniform(_key(seed), tuple(shape), dtype=dtype, minval=minval, maxval=maxval)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None) -> jax.Array:
    """Normal samples cut at two standard deviations; ``seed`` as for ``normal``."""
    return mean + stddev * jax.random.truncated_normal(_key(seed), -2.0, 2.0, tuple(shape), dtype=dtype)


def dropout(inputs, rate: float, noise_shape=None, seed=None) -> jax.Array:
    """Zero each element with probability ``rate`` and scale the rest by ``1 / (1 - rate)``."""
    inputs = jnp.asarray(inputs)
    shape = inputs.shape if noise_shape is None else tuple(
        inputs.shape[i] if d is None else d for i, d in enumerate(noise_shape)
    )
    keep = jax.random.bernoulli(_key(seed), 1.0 - rate, shape)
    return jnp.where(keep, inputs / (1.0 - rate), jnp.zeros((), inputs.dtype))
