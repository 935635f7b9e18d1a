"""lm.random: the global seed, SeedGenerator as state, refusing unseeded draws under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

# --- set_seed ------------------------------------------------------------------------------

@pytest.mark.parametrize("draw", [
    lambda: lm.random.normal((5,)),
    lambda: lm.random.uniform((5,)),
    lambda: lm.random.truncated_normal((5,)),
])
def test_set_seed_makes_unseeded_draws_repeatable(draw):
    lm.random.set_seed(11)
    first = [np.asarray(draw()) for _ in range(2)]
    lm.random.set_seed(11)
    second = [np.asarray(draw()) for _ in range(2)]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])  # consecutive draws differ


def test_different_seeds_give_different_numbers():
    lm.random.set_seed(1)
    a = np.asarray(lm.random.normal((8,)))
    lm.random.set_seed(2)
    b = np.asarray(lm.random.normal((8,)))
    assert not np.array_equal(a, b)


def test_set_seed_makes_layer_initialization_repeatable():
    lm.random.set_seed(5)
    a = lm.layers.Dense(4)
    a(np.ones((1, 3), np.float32))
    lm.random.set_seed(5)
    b = lm.layers.Dense(4)
    b(np.ones((1, 3), np.float32))
    np.testing.assert_array_equal(a.kernel.numpy(), b.kernel.numpy())


def test_set_seed_also_seeds_numpy():
    lm.random.set_seed(3)
    a = np.random.rand(3)
    lm.random.set_seed(3)
    np.testing.assert_array_equal(a, np.random.rand(3))


def test_int_seed_is_deterministic():
    np.testing.assert_array_equal(np.asarray(lm.random.normal((4,), seed=9)),
                                  np.asarray(lm.random.normal((4,), seed=9)))


def test_normal_mean_stddev_dtype():
    x = np.asarray(lm.random.normal((20000,), mean=2.0, stddev=0.5, seed=0))
    assert x.dtype == np.float32
    assert abs(x.mean() - 2.0) < 0.02 and abs(x.std() - 0.5) < 0.02


def test_uniform_bounds():
    x = np.asarray(lm.random.uniform((10000,), minval=-1.0, maxval=3.0, seed=0))
    assert x.min() >= -1.0 and x.max() < 3.0
    assert abs(x.mean() - 1.0) < 0.05


# --- SeedGenerator ---------------------------------------------------------------------------

def test_seed_generator_keys_differ():
    gen = lm.random.SeedGenerator(42)
    keys = [np.asarray(gen.next()) for _ in range(4)]
    assert len({k.tobytes() for k in keys}) == 4


def test_seed_generator_state_is_a_non_trainable_variable_that_advances():
    gen = lm.random.SeedGenerator(42)
    assert isinstance(gen.state, lm.Variable)
    assert not gen.state.trainable
    before = gen.state.numpy()
    gen.next()
    after = gen.state.numpy()
    assert not np.array_equal(before, after)


def test_seed_generator_same_seed_same_sequence():
    a, b = lm.random.SeedGenerator(7), lm.random.SeedGenerator(7)
    for _ in range(3):
        np.testing.assert_array_equal(np.asarray(a.next()), np.asarray(b.next()))
    assert not np.array_equal(np.asarray(lm.random.SeedGenerator(8).next()),
                              np.asarray(lm.random.SeedGenerator(7).next()))


def test_seed_generator_keys_are_usable_by_jax_random():
    key = lm.random.SeedGenerator(0).next()
    assert jax.random.normal(key, (3,)).shape == (3,)


def test_unseeded_seed_generators_follow_set_seed():
    lm.random.set_seed(99)
    a = np.asarray(lm.random.SeedGenerator().next())
    lm.random.set_seed(99)
    b = np.asarray(lm.random.SeedGenerator().next())
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(np.asarray(lm.random.SeedGenerator().next()), b)


def test_seed_generator_draws_differ_each_lm_jit_step():
    gen = lm.random.SeedGenerator(3)
    draw = lm.jit(lambda: lm.random.normal((4,), seed=gen))
    first, second = np.asarray(draw()), np.asarray(draw())
    assert not np.array_equal(first, second)
    assert not isinstance(gen.state.value, jax.core.Tracer)


def test_seed_generator_in_lm_jit_matches_eager_sequence():
    eager_gen, jit_gen = lm.random.SeedGenerator(21), lm.random.SeedGenerator(21)
    draw = lm.jit(lambda: lm.random.uniform((3,), seed=jit_gen))
    for _ in range(3):
        np.testing.assert_array_equal(np.asarray(draw()), np.asarray(lm.random.uniform((3,), seed=eager_gen)))


# --- unseeded draws under compilation (Keras #18426) -----------------------------------------

def test_unseeded_draw_inside_lm_jit_raises():
    @lm.jit
    def f(x):
        return x + lm.random.normal((3,))

    with pytest.raises(ValueError, match="SeedGenerator"):
        f(jnp.zeros((3,)))


def test_unseeded_draw_inside_jax_jit_raises():
    with pytest.raises(ValueError, match="SeedGenerator"):
        jax.jit(lambda x: x + lm.random.uniform((3,)))(jnp.zeros((3,)))


def test_unseeded_dropout_inside_jax_jit_raises():
    with pytest.raises(ValueError, match="SeedGenerator"):
        jax.jit(lambda x: lm.random.dropout(x, 0.5))(jnp.ones((3,)))


def test_seeded_int_draw_inside_jit_is_allowed():
    out = jax.jit(lambda: lm.random.normal((3,), seed=1))()
    np.testing.assert_array_equal(np.asarray(out), np.asarray(lm.random.normal((3,), seed=1)))
    out = lm.jit(lambda x: x + lm.random.uniform((3,), seed=2))(jnp.zeros((3,)))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(lm.random.uniform((3,), seed=2)))


# --- dropout ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_dropout_statistics(rate):
    x = jnp.ones((300, 100))
    out = np.asarray(lm.random.dropout(x, rate, seed=4))
    zero = out == 0
    assert abs(zero.mean() - rate) < 0.015  # 30000 draws: std <= 0.003
    np.testing.assert_allclose(out[~zero], 1.0 / (1.0 - rate), rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.05  # expectation preserved


def test_dropout_with_seed_generator_differs_each_call():
    gen = lm.random.SeedGenerator(0)
    x = jnp.ones((50, 50))
    assert not np.array_equal(np.asarray(lm.random.dropout(x, 0.5, seed=gen)),
                              np.asarray(lm.random.dropout(x, 0.5, seed=gen)))


def test_dropout_noise_shape():
    out = np.asarray(lm.random.dropout(jnp.ones((100, 8)), 0.5, noise_shape=(None, 1), seed=1))
    assert ((out == 0).all(axis=1) | (out == 2.0).all(axis=1)).all()


def test_dropout_keeps_dtype_and_shape():
    x = jnp.ones((4, 5), dtype=jnp.bfloat16)
    out = lm.random.dropout(x, 0.5, seed=0)
    assert out.shape == (4, 5) and out.dtype == jnp.bfloat16
