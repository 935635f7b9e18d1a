"""Masks flow from Embedding(mask_zero=True) through mask-preserving layers."""

import jax.numpy as jnp
import numpy as np

import lamina as lm
from lamina.layers.masking import get_mask


def test_dense_keeps_the_timestep_mask_like_keras(keras):
    ids = np.array([[1, 2, 0]])
    mine = lm.layers.Dense(3)(lm.layers.Embedding(5, 4, mask_zero=True)(ids))
    theirs = keras.layers.Dense(3)(keras.layers.Embedding(5, 4, mask_zero=True)(ids))
    np.testing.assert_array_equal(np.asarray(get_mask(mine)), np.asarray(theirs._keras_mask))


def test_mask_reaches_a_layer_that_takes_mask():
    class Spy(lm.Layer):
        def call(self, x, mask=None):
            self.mask = mask
            return x

    spy = Spy()
    spy(lm.layers.Dense(2)(lm.layers.Embedding(5, 4, mask_zero=True)(jnp.array([[3, 0]]))))
    np.testing.assert_array_equal(np.asarray(spy.mask), [[True, False]])
