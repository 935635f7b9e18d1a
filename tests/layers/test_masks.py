"""Masks flow from Embedding(mask_zero=True) through mask-preserving layers, merging layers
(a list of masks in) and layers with several outputs (a mask per output), as in Keras 3."""

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm
from lamina.layers.masking import get_mask, set_mask


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


# --- several inputs and several outputs (Layer.__call__, as Keras 3) ------------------------------

IDS_A = np.array([[1, 2, 0, 0], [3, 0, 0, 0]], np.int32)
IDS_B = np.array([[1, 0, 0, 2], [0, 0, 0, 1]], np.int32)


def _embedded(keras, ids_list):
    """Keras's and lamina's Embedding(mask_zero=True) outputs (with their masks), same tables."""
    from layer_checker import random_input

    theirs, ours = [], []
    for i, ids in enumerate(ids_list):
        table = random_input((4, 3), seed=10 + i)
        k = keras.layers.Embedding(4, 3, mask_zero=True)
        k.build()
        k.set_weights([table])
        theirs.append(k(ids))
        ours.append(lm.layers.Embedding(4, 3, mask_zero=True, weights=[table])(jnp.asarray(ids)))
    return theirs, ours


def _assert_same_masks(ours, theirs):
    from keras.src.backend import get_keras_mask

    ours = list(ours) if isinstance(ours, (list, tuple)) else [ours]
    theirs = list(theirs) if isinstance(theirs, (list, tuple)) else [theirs]
    assert len(ours) == len(theirs)
    for i, (mine, reference) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(reference), rtol=1e-5, atol=1e-6)
        expected = get_keras_mask(reference)
        if expected is None:
            assert get_mask(mine) is None, f"output {i}: a mask where Keras has none"
        else:
            np.testing.assert_array_equal(np.asarray(get_mask(mine)), np.asarray(expected), err_msg=f"output {i}")


@pytest.mark.parametrize("name, kwargs", [("Add", {}), ("Multiply", {}), ("Maximum", {}), ("Concatenate", {"axis": 1}),
                                          ("Concatenate", {}), ("Dot", {"axes": 2})])
def test_merging_two_masked_inputs_like_keras(keras, name, kwargs):
    """Two Embedding(mask_zero=True) outputs merged: Keras ORs the masks (Concatenate: any
    unmasked element per position; Dot: no mask); the merged mask reaches the next layer."""
    theirs_in, ours_in = _embedded(keras, [IDS_A, IDS_B])
    theirs = getattr(keras.layers, name)(**kwargs)(theirs_in)
    ours = getattr(lm.layers, name)(**kwargs)(ours_in)
    _assert_same_masks(ours, theirs)
    _assert_same_masks(lm.layers.Dense(2, kernel_initializer="ones")(ours),
                       keras.layers.Dense(2, kernel_initializer="ones")(theirs))


def test_merge_layers_get_the_list_of_masks_with_none_for_unmasked_inputs():
    class Spy(lm.Layer):
        def call(self, inputs, mask=None):
            self.mask = mask
            return inputs[0]

    spy = Spy()
    masked = lm.layers.Embedding(5, 2, mask_zero=True)(jnp.array([[3, 0]]))
    spy([jnp.ones((1, 2, 2)), masked])
    assert spy.mask[0] is None
    np.testing.assert_array_equal(np.asarray(spy.mask[1]), [[True, False]])
    spy([jnp.ones((1, 2, 2)), jnp.ones((1, 2, 2))])
    assert spy.mask is None  # no input has a mask: none at all (not [None, None])


@pytest.mark.parametrize("name, config", [("LSTM", dict(return_sequences=True, return_state=True)),
                                          ("GRU", dict(return_state=True))])
def test_rnn_return_state_masks_like_keras(keras, name, config):
    """With return_state the output sequence keeps the input mask, the states get none (Keras's
    compute_mask returns [mask, None, ...]); without return_sequences nothing is masked."""
    theirs_in, ours_in = _embedded(keras, [IDS_A])
    theirs_layer = getattr(keras.layers, name)(3, **config)
    theirs = theirs_layer(theirs_in[0])
    ours_layer = getattr(lm.layers, name)(3, **config)
    ours_layer(ours_in[0])
    ours_layer.set_weights(theirs_layer.get_weights())
    ours = ours_layer(ours_in[0])
    assert isinstance(ours, tuple)
    _assert_same_masks(ours, theirs)
    assert all(get_mask(state) is None for state in ours[1:])


def test_bidirectional_return_state_masks_like_keras(keras):
    theirs_in, ours_in = _embedded(keras, [IDS_A])
    make = dict(return_sequences=True, return_state=True)
    theirs_layer = keras.layers.Bidirectional(keras.layers.GRU(2, **make), merge_mode=None)
    theirs = theirs_layer(theirs_in[0])
    ours_layer = lm.layers.Bidirectional(lm.layers.GRU(2, **make), merge_mode=None)
    ours_layer(ours_in[0])
    ours_layer.set_weights(theirs_layer.get_weights())
    _assert_same_masks(ours_layer(ours_in[0]), theirs)  # both sequences masked, no state


def test_named_mask_arguments_and_list_compute_mask():
    """A tensor argument ``x`` gets its mask in ``x_mask`` (unless one is given); a list from
    compute_mask is recorded output by output; an output that has a mask keeps it."""
    class Pair(lm.Layer):
        def call(self, a, b, a_mask=None, b_mask=None):
            self.seen = (a_mask, b_mask)
            return a * 2, b * 2, a

        def compute_mask(self, inputs, mask=None):
            return [mask, None, jnp.zeros(mask.shape, bool)]

    a, b = jnp.ones((1, 3, 2)), jnp.ones((1, 3, 2))
    mask_a, mask_b = jnp.array([[True, True, False]]), jnp.array([[True, False, False]])
    set_mask(a, mask_a)
    set_mask(b, mask_b)
    pair = Pair()
    out_a, out_b, same_a = pair(a, b)
    np.testing.assert_array_equal(np.asarray(pair.seen[0]), np.asarray(mask_a))
    np.testing.assert_array_equal(np.asarray(pair.seen[1]), np.asarray(mask_b))
    np.testing.assert_array_equal(np.asarray(get_mask(out_a)), np.asarray(mask_a))
    assert get_mask(out_b) is None
    np.testing.assert_array_equal(np.asarray(get_mask(same_a)), np.asarray(mask_a))  # kept, as Keras
    explicit = jnp.array([[False, True, True]])
    pair(a, b=b, b_mask=explicit)
    assert pair.seen[1] is explicit
