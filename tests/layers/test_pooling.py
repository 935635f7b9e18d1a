"""Pooling layers against Keras 3 (JAX backend), and the fast reshape path against
``lax.reduce_window``."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_arguments_and_config, check_layer

import lamina as lm
from lamina.layers import pooling
from lamina.layers.pooling import pool_ops


def _check(name, config, input_shape, **kwargs):
    return check_layer(lambda: getattr(pooling, name)(**config), lambda k: getattr(k.layers, name)(**config),
                       input_shape, **kwargs)


def tie_free(shape, seed=0):
    """Distinct values in random order: no window has two equal maxima."""
    values = np.random.default_rng(seed).permutation(int(np.prod(shape))).astype(np.float32)
    return (values / values.size - 0.5).reshape(shape)


POOL_CASES = [
    # strides == pool_size (the fast path), sizes divisible or not, "valid" crops, "same" pads
    ("MaxPooling1D", dict(), (2, 9, 3)),
    ("MaxPooling1D", dict(pool_size=3, padding="same", data_format="channels_first"), (2, 3, 10)),
    ("MaxPooling2D", dict(), (2, 7, 9, 3)),
    ("MaxPooling2D", dict(pool_size=(2, 3), padding="same"), (2, 5, 7, 2)),
    ("AveragePooling1D", dict(pool_size=2, padding="same"), (2, 9, 3)),
    ("AveragePooling2D", dict(pool_size=2), (2, 7, 9, 3)),
    ("AveragePooling2D", dict(pool_size=(3, 2), padding="same", data_format="channels_first"), (2, 2, 7, 5)),
    ("MaxPooling3D", dict(padding="same"), (1, 3, 4, 5, 2)),
    ("AveragePooling3D", dict(pool_size=(1, 2, 3), padding="same"), (1, 3, 4, 5, 2)),
    # overlapping or strided windows (lax.reduce_window, as Keras)
    ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same"), (2, 10, 3)),
    ("MaxPooling2D", dict(pool_size=3, strides=(2, 1), data_format="channels_first"), (2, 2, 9, 8)),
    ("AveragePooling2D", dict(pool_size=3, strides=(2, 1), padding="same"), (2, 7, 6, 2)),
]


@pytest.mark.parametrize("name, config, input_shape", POOL_CASES)
def test_pooling_matches_keras(keras, name, config, input_shape):
    _check(name, config, input_shape, inputs=tie_free(input_shape), keras=keras)


GLOBAL_CASES = [
    ("GlobalAveragePooling2D", dict(keepdims=True), (2, 4, 5, 3)),
    ("GlobalAveragePooling3D", dict(data_format="channels_first"), (1, 2, 3, 4, 5)),
    ("GlobalMaxPooling1D", dict(keepdims=True, data_format="channels_first"), (2, 3, 5)),
    ("GlobalMaxPooling2D", dict(), (2, 4, 5, 3)),
    ("GlobalMaxPooling3D", dict(keepdims=True), (1, 2, 3, 4, 5)),
]


@pytest.mark.parametrize("name, config, input_shape", GLOBAL_CASES)
def test_global_pooling_matches_keras(keras, name, config, input_shape):
    _check(name, config, input_shape, inputs=tie_free(input_shape), keras=keras)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_global_average_pooling_1d_with_mask_matches_keras(keras, data_format):
    mask = np.array([[True, True, False, True, False], [True, False, False, False, False]])
    shape = (2, 5, 3) if data_format == "channels_last" else (2, 3, 5)
    _check("GlobalAveragePooling1D", dict(data_format=data_format), shape, call_kwargs={"mask": mask}, keras=keras)


def test_global_average_pooling_1d_uses_the_embedding_mask():
    embed = lm.layers.Embedding(10, 3, mask_zero=True) if hasattr(lm.layers, "Embedding") else None
    if embed is None:
        pytest.skip("Embedding is not exported yet")
    tokens = np.array([[4, 2, 0, 0]])
    pooled = pooling.GlobalAveragePooling1D()(embed(tokens))
    vectors = embed.get_weights()[0]
    np.testing.assert_allclose(np.asarray(pooled)[0], vectors[[4, 2]].mean(axis=0), rtol=1e-6)


FAST_CASES = [
    # (pool_size, padding, data_format, input shape): sizes that divide and sizes that do not
    ((2, 2), "valid", "channels_last", (2, 8, 6, 3)),
    ((2, 2), "valid", "channels_last", (2, 7, 9, 3)),
    ((3, 2), "same", "channels_last", (2, 7, 5, 2)),
    ((2, 3), "same", "channels_first", (2, 2, 5, 8)),
    ((3,), "valid", "channels_last", (3, 11, 2)),
    ((4,), "same", "channels_first", (3, 2, 10)),
    ((2, 1, 3), "same", "channels_last", (1, 3, 4, 7, 2)),
]


@pytest.mark.parametrize("pool_size, padding, data_format, shape", FAST_CASES)
def test_fast_max_pool_equals_reduce_window_in_value_and_gradient(pool_size, padding, data_format, shape):
    x = jnp.asarray(tie_free(shape))

    def run(fn):
        def pooled(v):
            return fn(v, "max", pool_size, pool_size, padding, data_format)

        cotangent = jnp.asarray(tie_free(jax.eval_shape(pooled, x).shape, seed=1))
        y, vjp = jax.jit(lambda v: jax.vjp(pooled, v))(x)
        return np.asarray(y), np.asarray(jax.jit(vjp)(cotangent)[0])

    fast = run(lambda x, m, p, s, pad, df: pool_ops.max_pool_by_reshape(x, p, pad, df))
    window = run(pool_ops.pool_by_window)
    assert fast[0].shape == window[0].shape
    np.testing.assert_allclose(fast[0], window[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fast[1], window[1], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("pool_size, padding, data_format, shape", FAST_CASES)
def test_fast_max_pool_gradient_on_ties_equals_reduce_window(pool_size, padding, data_format, shape):
    """With equal values in a window (ReLU zeros, quantized inputs) the first maximum in
    row-major order takes the whole gradient, exactly as select_and_scatter (Keras) does."""
    x = jnp.asarray(np.random.default_rng(0).integers(0, 3, shape).astype("float32"))

    def grad_of(fn):
        def weighted(v):
            y = fn(v, "max", pool_size, pool_size, padding, data_format)
            return jnp.sum(y * jnp.arange(1, y.size + 1, dtype=y.dtype).reshape(y.shape))

        return np.asarray(jax.grad(weighted)(x))

    fast = grad_of(lambda x, m, p, s, pad, df: pool_ops.max_pool_by_reshape(x, p, pad, df))
    np.testing.assert_array_equal(fast, grad_of(pool_ops.pool_by_window))


def _primitives(fn, x):
    return {str(eqn.primitive) for eqn in jax.make_jaxpr(jax.grad(lambda v: jnp.sum(fn(v))))(x).jaxpr.eqns}


def test_non_overlapping_max_pool_gradient_avoids_select_and_scatter():
    x = jnp.asarray(tie_free((2, 9, 8, 3)))
    fast = _primitives(pooling.MaxPooling2D(2, padding="same"), x)
    assert not any("reduce_window" in p or "select_and_scatter" in p for p in fast), fast
    overlapping = _primitives(pooling.MaxPooling2D(3, strides=2), x)
    assert any("select_and_scatter" in p or "reduce_window" in p for p in overlapping), overlapping


def test_compute_output_shape_keeps_unknown_sizes():
    assert pooling.MaxPooling2D(3, strides=2, padding="same").compute_output_shape((None, None, 9, 4)) == (
        None, None, 5, 4)
    assert pooling.AveragePooling1D(2).compute_output_shape((None, 7, 3)) == (None, 3, 3)
    assert pooling.GlobalMaxPooling2D(keepdims=True).compute_output_shape((None, 4, 4, 2)) == (None, 1, 1, 2)


@pytest.mark.parametrize("make, bad_shape", [
    (lambda: pooling.MaxPooling2D(), (2, 8, 3)),
    (lambda: pooling.AveragePooling1D(2), (2, 8, 8, 3)),
    (lambda: pooling.GlobalAveragePooling2D(), (2, 8, 3)),
    (lambda: pooling.GlobalMaxPooling1D(), (2, 8)),
])
def test_bad_rank_raises_naming_the_layer_path(make, bad_shape):
    class Block(lm.Layer):
        def __init__(self):
            super().__init__(name="pool_block")
            self.pool = make()

        def call(self, x):
            return self.pool(x)

    with pytest.raises(ValueError, match=r"'pool_block/pool'.*expected rank"):
        Block()(jnp.zeros(bad_shape))


def test_valid_window_larger_than_the_input_raises():
    with pytest.raises(ValueError, match="'big'.*does not fit"):
        pooling.MaxPooling2D(4, name="big")(jnp.zeros((1, 3, 8, 1)))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="padding"):
        pooling.MaxPooling2D(padding="causal")
    with pytest.raises(ValueError, match="pool_size"):
        pooling.MaxPooling2D((2, 2, 2))
    with pytest.raises(TypeError):
        pooling.AveragePooling2D()  # pool_size is required, as in Keras 3


@pytest.mark.parametrize("make", [
    lambda: pooling.MaxPooling2D(2, padding="same"),
    lambda: pooling.AveragePooling2D(2, padding="same"),
    lambda: pooling.AveragePooling2D(2),
    lambda: pooling.MaxPooling2D(3, strides=2),
    lambda: pooling.AveragePooling2D(3, strides=2, padding="same"),
    lambda: pooling.GlobalAveragePooling2D(),
])
def test_gradient_under_jit_equals_eager(make):
    """The compiled train step differentiates inside jit: reduce_window needs literal init values there."""
    layer, x = make(), jnp.asarray(tie_free((2, 7, 6, 3)))
    cotangent = jnp.asarray(tie_free(layer(x).shape, seed=2))

    def objective(v):
        return jnp.sum(cotangent * layer(v))

    np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(objective))(x)), np.asarray(jax.grad(objective)(x)),
                               rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", [n for n in pooling.__all__ if not n.startswith("Base")])
def test_arguments_and_config_match_keras(keras, name):
    check_arguments_and_config(getattr(pooling, name), getattr(keras.layers, name))
