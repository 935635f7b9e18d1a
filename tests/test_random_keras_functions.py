"""lm.random holds every function of ``keras.random``: ``randint``, ``shuffle``, ``categorical``,
``gamma``, ``binomial``, ``beta`` next to ``normal``/``uniform``/``truncated_normal``/``dropout``,
with Keras's signatures and ``seed=`` (an int, a ``SeedGenerator``, or None eagerly)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

DRAWS = {
    "randint": lambda seed: lm.random.randint((64,), 0, 10, seed=seed),
    "shuffle": lambda seed: lm.random.shuffle(jnp.arange(64), seed=seed),
    "categorical": lambda seed: lm.random.categorical(jnp.zeros((2, 8)), 16, seed=seed),
}  # gamma, binomial and beta take seeds the same way; their samplers take seconds to compile


def test_every_keras_random_function_is_in_lm_random(keras):
    public = {name for name in dir(keras.random) if not name.startswith("_")}
    assert public <= set(dir(lm.random))


def test_seed_generator_draws_new_numbers_per_compiled_call():
    """As the Getting-started guide's MyDropout: the generator's state advances at each call,
    also inside compiled code (one key per draw); an int seed repeats."""
    generator = lm.random.SeedGenerator(7)
    step = lm.jit(lambda: {name: draw(generator) for name, draw in DRAWS.items()})
    first, second = step(), step()
    for name in DRAWS:
        assert not np.array_equal(np.asarray(first[name]), np.asarray(second[name])), name
    key = jax.random.PRNGKey(7)
    for _ in range(2 * len(DRAWS)):
        key = jax.random.split(key)[0]
    np.testing.assert_array_equal(np.asarray(generator.state), np.asarray(key))
    repeat = jax.jit(lambda: [DRAWS["randint"](3), DRAWS["randint"](3)])()
    np.testing.assert_array_equal(*map(np.asarray, repeat))


@jax.jit
def _large_draws():
    n = 20_000
    logits = jnp.log(jnp.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    return dict(
        ints=lm.random.randint((n,), -2, 3, seed=0),
        ids=lm.random.categorical(logits, n, seed=1),
        gamma=lm.random.gamma((n,), 3.0, seed=2),
        binomial=lm.random.binomial((n,), 10, 0.3, seed=3),
        beta=lm.random.beta((n,), 2.0, 6.0, seed=4),
    )


def test_distributions_follow_their_formulas():
    draws = {name: np.asarray(value) for name, value in _large_draws().items()}
    n = 20_000
    ints = draws["ints"]
    assert ints.dtype == np.int32 and set(np.unique(ints)) == {-2, -1, 0, 1, 2}
    np.testing.assert_allclose(np.bincount(ints + 2) / n, 0.2, atol=0.02)

    ids = draws["ids"]
    assert ids.shape == (2, n) and ids.dtype == np.int32
    for row, probabilities in zip(ids, [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]):
        np.testing.assert_allclose(np.bincount(row, minlength=3) / n, probabilities, atol=0.02)

    g = draws["gamma"]  # mean = variance = alpha
    assert g.dtype == np.float32 and g.min() > 0
    np.testing.assert_allclose([g.mean(), g.var()], [3.0, 3.0], rtol=0.08)
    b = draws["binomial"]  # mean n p, variance n p (1 - p)
    assert set(np.unique(b)) <= set(range(11))
    np.testing.assert_allclose([b.mean(), b.var()], [3.0, 2.1], rtol=0.08)
    beta = draws["beta"]  # mean a / (a + b)
    assert 0 <= beta.min() and beta.max() <= 1
    np.testing.assert_allclose(beta.mean(), 0.25, rtol=0.05)


def test_shuffle_permutes_whole_slices_along_the_axis():
    x = np.arange(24).reshape(4, 6)
    rows = np.asarray(lm.random.shuffle(x, seed=0))
    assert sorted(map(tuple, rows)) == sorted(map(tuple, x))  # each row intact
    columns = np.asarray(lm.random.shuffle(x, axis=1, seed=1))
    assert sorted(map(tuple, columns.T)) == sorted(map(tuple, x.T))
    assert not np.array_equal(columns, x)


def test_categorical_names_a_wrong_logits_shape():
    with pytest.raises(ValueError, match=r"categorical.*\(batch, classes\).*\(8,\)"):
        lm.random.categorical(jnp.zeros(8), 2, seed=0)


def test_unseeded_draws_are_refused_inside_compiled_code():
    with pytest.raises(ValueError, match="SeedGenerator"):
        jax.jit(lambda: lm.random.randint((2,), 0, 5))()


def test_seed_generator_has_keras_methods():
    generator = lm.random.SeedGenerator(5)
    first = np.asarray(generator.next(ordered=False))
    again = lm.random.SeedGenerator.from_config(generator.get_config())
    np.testing.assert_array_equal(np.asarray(again.next()), first)
