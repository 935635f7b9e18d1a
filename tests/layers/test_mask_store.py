"""The mask store keeps a mask exactly as long as its array: no cap that drops early masks, and
no reference that keeps arrays or tracers alive after the call (or the compiled trace) ends."""

import gc
import weakref

import jax.numpy as jnp
import numpy as np

import lamina as lm
from lamina.layers import masking
from lamina.layers.masking import get_mask, set_mask


def test_an_early_output_keeps_its_mask_after_300_later_calls():
    kept = lm.layers.Embedding(5, 4, mask_zero=True)(np.array([[1, 0, 2]]))
    other = lm.layers.Embedding(5, 4, mask_zero=True)
    for _ in range(300):
        other(np.array([[1, 2, 0]]))
    np.testing.assert_array_equal(np.asarray(get_mask(kept)), [[True, False, True]])

    # and the kept output still carries its mask into the next layer
    class Spy(lm.Layer):
        def call(self, x, mask=None):
            self.mask = mask
            return x

    spy = Spy()
    spy(kept)
    np.testing.assert_array_equal(np.asarray(spy.mask), [[True, False, True]])


def test_the_store_holds_no_reference_to_the_array():
    x = jnp.array([[1.0, 0.0]])
    set_mask(x, jnp.array([[True, False]]))
    ref = weakref.ref(x)
    key = id(x)
    del x
    gc.collect()
    assert ref() is None
    assert key not in masking._masks  # the entry went with its array


def test_a_reused_identity_never_sees_an_old_mask():
    for _ in range(50):
        x = jnp.zeros((1, 3))
        assert get_mask(x) is None
        set_mask(x, jnp.ones((1, 3), bool))
        del x


def test_no_tracer_survives_an_lm_jit_call():
    embedding, traced = lm.layers.Embedding(5, 4, mask_zero=True), []

    class Spy(lm.Layer):
        def call(self, x, mask=None):
            traced.append(weakref.ref(mask))
            return x * mask[..., None]

    spy = Spy()

    @lm.jit
    def step(ids):
        hidden = embedding(ids)
        traced.append(weakref.ref(hidden))
        return spy(hidden)

    before = len(masking._masks)
    out = step(jnp.array([[1, 0, 2]]))
    gc.collect()
    assert traced, "the step was not traced"
    assert [r() for r in traced if r() is not None] == []
    assert len(masking._masks) == before
    np.testing.assert_array_equal(np.asarray(out)[0, 1], np.zeros(4))


def test_an_array_that_is_its_own_mask_is_not_kept_alive():
    flags = jnp.array([[True, False]])
    set_mask(flags, flags)
    assert get_mask(flags) is flags
    ref = weakref.ref(flags)
    del flags
    gc.collect()
    assert ref() is None
