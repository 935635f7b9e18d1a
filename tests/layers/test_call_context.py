"""`training` given positionally counts as explicit and reaches inner layers."""

import jax.numpy as jnp

import lamina as lm


class Record(lm.Layer):
    def call(self, x, training=None):
        self.seen = training
        return x


class Outer(lm.Layer):
    def __init__(self):
        super().__init__()
        self.inner = Record()

    def call(self, x, training=None):
        return self.inner(x)


def test_positional_training_is_explicit_and_propagates():
    outer = Outer()
    outer(jnp.ones(1), True)
    assert outer.inner.seen is True
    outer(jnp.ones(1))
    assert outer.inner.seen is False


def test_positional_training_reaches_dropout():
    drop = lm.layers.Dropout(0.5, seed=3)
    out = drop(jnp.ones(256), True)
    assert 0 < int((out == 0).sum()) < 256
