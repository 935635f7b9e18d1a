"""Reshaping layers against Keras 3 (JAX backend) through the shared layer checker."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_arguments_and_config, check_layer

import lamina as lm
from lamina.layers import reshaping


def _check(name, config, input_shape, **kwargs):
    return check_layer(lambda: getattr(reshaping, name)(**config), lambda k: getattr(k.layers, name)(**config),
                       input_shape, **kwargs)


CASES = [
    ("ZeroPadding1D", dict(padding=(1, 2)), (2, 5, 3)),
    ("ZeroPadding2D", dict(), (2, 4, 5, 3)),
    ("ZeroPadding2D", dict(padding=(1, 3)), (1, 4, 5, 2)),
    ("ZeroPadding2D", dict(padding=((1, 0), (2, 3)), data_format="channels_first"), (1, 2, 4, 5)),
    ("ZeroPadding3D", dict(padding=(1, 0, 2)), (1, 2, 3, 4, 2)),
    ("Cropping1D", dict(cropping=(2, 1)), (2, 7, 3)),
    ("Cropping2D", dict(cropping=((1, 2), (0, 3))), (2, 6, 7, 3)),
    ("Cropping2D", dict(cropping=1, data_format="channels_first"), (1, 2, 5, 6)),
    ("Cropping3D", dict(cropping=((1, 0), (0, 1), (1, 1))), (1, 3, 4, 5, 2)),
    ("UpSampling1D", dict(size=3), (2, 4, 3)),
    ("UpSampling2D", dict(size=(2, 3), data_format="channels_first"), (1, 2, 3, 4)),
    ("UpSampling2D", dict(size=(2, 3), interpolation="bilinear"), (2, 3, 4, 2)),
    ("UpSampling2D", dict(size=2, interpolation="bilinear", data_format="channels_first"), (1, 2, 3, 5)),
    ("UpSampling3D", dict(size=(1, 2, 3)), (1, 2, 3, 2, 2)),
    ("Flatten", dict(), (2, 3, 4, 5)),
    ("Flatten", dict(data_format="channels_first"), (2, 3, 4, 5)),
    ("Reshape", dict(target_shape=(4, -1)), (2, 3, 4, 2)),
    ("Permute", dict(dims=(3, 1, 2)), (2, 3, 4, 5)),
    ("RepeatVector", dict(n=3), (2, 5)),
]


@pytest.mark.parametrize("name, config, input_shape", CASES)
def test_matches_keras(keras, name, config, input_shape):
    _check(name, config, input_shape, keras=keras)


def test_flatten_of_a_vector_batch():
    assert reshaping.Flatten()(jnp.ones((4,))).shape == (4, 1)


def test_flatten_channels_first_orders_like_channels_last():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)  # (batch, channels, h, w)
    first = reshaping.Flatten(data_format="channels_first")(x)
    last = reshaping.Flatten()(np.transpose(x, (0, 2, 3, 1)))
    np.testing.assert_array_equal(np.asarray(first), np.asarray(last))


def test_compute_output_shape_with_unknown_sizes():
    assert reshaping.Flatten().compute_output_shape((None, 3, None)) == (None, None)
    assert reshaping.Flatten().compute_output_shape((None, 3, 4)) == (None, 12)
    assert reshaping.Reshape((2, -1)).compute_output_shape((None, None, 4)) == (None, 2, None)
    assert reshaping.ZeroPadding2D(1).compute_output_shape((None, None, 4, 3)) == (None, None, 6, 3)
    assert reshaping.UpSampling2D(2).compute_output_shape((None, 3, None, 1)) == (None, 6, None, 1)
    assert reshaping.Cropping2D(1).compute_output_shape((None, None, 4, 3)) == (None, None, 2, 3)


def test_padding_and_cropping_arguments_normalize_like_keras(keras):
    for ours, theirs in [
        (reshaping.ZeroPadding2D(2), keras.layers.ZeroPadding2D(2)),
        (reshaping.ZeroPadding2D((1, 3)), keras.layers.ZeroPadding2D((1, 3))),
        (reshaping.Cropping2D(((1, 2), 3)), keras.layers.Cropping2D(((1, 2), 3))),
        (reshaping.Cropping3D(1), keras.layers.Cropping3D(1)),
        (reshaping.ZeroPadding1D(2), keras.layers.ZeroPadding1D(2)),
    ]:
        key = "padding" if "padding" in ours.get_config() else "cropping"
        assert ours.get_config()[key] == theirs.get_config()[key]


@pytest.mark.parametrize("make, bad_shape", [
    (lambda: reshaping.ZeroPadding2D(), (2, 4, 3)),
    (lambda: reshaping.Cropping2D(1), (2, 4, 4, 4, 3)),
    (lambda: reshaping.UpSampling2D(), (2, 4)),
    (lambda: reshaping.Permute((2, 1)), (2, 3, 4, 5)),
    (lambda: reshaping.RepeatVector(2), (2, 3, 4)),
])
def test_bad_rank_raises_naming_the_layer_path(make, bad_shape):
    class Block(lm.Layer):
        def __init__(self):
            super().__init__(name="shape_block")
            self.inner = make()

        def call(self, x):
            return self.inner(x)

    with pytest.raises(ValueError, match=r"'shape_block/inner'.*expected rank"):
        Block()(jnp.zeros(bad_shape))


def test_reshape_size_mismatch_raises_naming_the_layer():
    with pytest.raises(ValueError, match=r"'r'.*target_shape"):
        reshaping.Reshape((5, -1), name="r")(jnp.zeros((2, 12)))
    with pytest.raises(ValueError, match=r"'r2'.*target_shape"):
        reshaping.Reshape((5, 3), name="r2")(jnp.zeros((2, 12)))


def test_cropping_everything_raises():
    with pytest.raises(ValueError, match=r"'crop'.*removes the whole"):
        reshaping.Cropping2D(((2, 2), (0, 0)), name="crop")(jnp.zeros((1, 4, 4, 1)))


@pytest.mark.parametrize("make, error", [
    (lambda: reshaping.Reshape((2, -1, -1)), ValueError),
    (lambda: reshaping.Permute((0, 1)), ValueError),
    (lambda: reshaping.RepeatVector(0), ValueError),
    (lambda: reshaping.RepeatVector(2.0), TypeError),
    (lambda: reshaping.ZeroPadding2D((1, 2, 3)), ValueError),
    (lambda: reshaping.Cropping2D(-1), ValueError),
    (lambda: reshaping.UpSampling2D(interpolation="area"), ValueError),
])
def test_bad_arguments_raise(make, error):
    with pytest.raises(error):
        make()


@pytest.mark.parametrize("make", [
    lambda: reshaping.UpSampling2D(2, interpolation="bilinear"),
    lambda: reshaping.Cropping2D(((1, 0), (2, 1))),
    lambda: reshaping.ZeroPadding2D(((1, 0), (2, 1))),
    lambda: reshaping.Flatten(data_format="channels_first"),
])
def test_gradient_under_jit_equals_eager(make):
    layer = make()
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 4, 3)), jnp.float32)
    cotangent = jnp.asarray(np.random.default_rng(1).normal(size=layer(x).shape), jnp.float32)

    def objective(v):
        return jnp.sum(cotangent * layer(v))

    np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(objective))(x)), np.asarray(jax.grad(objective)(x)),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", [n for n in reshaping.__all__ if not n.startswith("Base")])
def test_arguments_and_config_match_keras(keras, name):
    check_arguments_and_config(getattr(reshaping, name), getattr(keras.layers, name))
