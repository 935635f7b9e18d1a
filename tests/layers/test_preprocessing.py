"""Rescaling and Normalization against Keras 3 through the layer checker, plus
Normalization.adapt (arrays and batched iterables) against Keras's adapt."""

import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm
from lamina.layers.preprocessing import Normalization, Rescaling

# --- Rescaling ---------------------------------------------------------------------------------

@pytest.mark.parametrize("scale, offset", [(1 / 255, 0.0), ([0.5, 2.0, -1.0, 3.0], -1.0)])
def test_rescaling_passes_the_checker(keras, scale, offset):
    check_layer(lambda: Rescaling(scale, offset=offset),
                lambda k: k.layers.Rescaling(np.asarray(scale, np.float32), offset=offset),
                input_shape=(2, 3, 4), keras=keras)


def test_rescaling_integer_images_and_config():
    images = jnp.asarray(np.arange(24, dtype=np.uint8).reshape(1, 2, 4, 3))
    layer = Rescaling(np.array([1.0, 0.5, 0.25]), offset=1)
    out = layer(images)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out), np.asarray(images, np.float32) * [1.0, 0.5, 0.25] + 1)
    config = layer.get_config()
    assert config["scale"] == [1.0, 0.5, 0.25] and config["offset"] == 1
    assert Rescaling.from_config(config).get_config() == config


# --- Normalization -----------------------------------------------------------------------------

DATA = random_input((40, 3, 4), seed=7) * np.array([1.0, 5.0, 0.1, 2.0], np.float32) + 3.0


def _adapted(cls, data=DATA, **config):
    layer = cls(**config)
    layer.adapt(data)
    return layer


@pytest.mark.parametrize("config", [
    dict(mean=2.0, variance=4.0),
    dict(mean=[1.0, -2.0, 0.5, 3.0], variance=[1.0, 4.0, 0.25, 9.0], invert=True),
    dict(axis=(1, 2), mean=np.arange(12.0).reshape(3, 4).tolist(), variance=np.arange(1.0, 13.0).reshape(3, 4).tolist()),
])
def test_normalization_with_given_statistics_passes_the_checker(keras, config):
    check_layer(lambda: Normalization(**config), lambda k: k.layers.Normalization(**config),
                input_shape=(2, 3, 4), keras=keras)


@pytest.mark.parametrize("config", [{}, dict(axis=None), dict(axis=(1, 2), invert=True)])
def test_adapted_normalization_passes_the_checker(keras, config):
    layer, _ = check_layer(lambda: _adapted(Normalization, **config),
                           lambda k: _adapted(k.layers.Normalization, **config),
                           input_shape=(2, 3, 4), keras=keras, rtol=1e-5, atol=1e-5)
    assert [v.name for v in layer.weights] == ["mean", "variance", "count"]
    assert layer.trainable_weights == []


def _batches():
    return [DATA[i:i + 16] for i in range(0, 40, 16)]  # 16, 16, 8: unequal batches


@pytest.mark.parametrize("kind", ["numpy", "jax", "list", "generator", "xy_batches", "dataset"])
@pytest.mark.parametrize("axis", [-1, (1, 2)])
def test_adapt_equals_keras_adapt(keras, kind, axis):
    # Keras's adapt over an iterable needs TensorFlow (absent here), so batched adapts are
    # compared with Keras adapted on the whole array: the batch-merging formula Keras (and
    # lamina) use is exact up to rounding.
    theirs = keras.layers.Normalization(axis=axis)
    theirs.adapt(jnp.asarray(DATA) if kind == "jax" else DATA)

    class Batches(lm.data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            b = _batches()[i]
            return b, np.zeros(len(b))

    data = {"numpy": DATA, "jax": jnp.asarray(DATA), "list": _batches(), "generator": (b for b in _batches()),
            "xy_batches": [(b, np.zeros(len(b))) for b in _batches()], "dataset": Batches()}[kind]
    ours = Normalization(axis=axis)
    ours.adapt(data)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(ours(DATA[:5])), np.asarray(theirs(DATA[:5])), rtol=1e-5, atol=1e-5)


def test_batched_adapt_equals_the_whole_data_statistics():
    layer = Normalization()
    layer.adapt(_batches())
    flat = DATA.reshape(-1, 4)
    np.testing.assert_allclose(layer.adapt_mean.numpy(), flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.adapt_variance.numpy(), flat.var(0), rtol=1e-4)


def test_normalization_statistics_follow_set_weights_and_jit():
    layer = Normalization()
    layer(jnp.ones((2, 4)))  # built unadapted: identity
    layer.set_weights([np.full(4, 2.0, np.float32), np.full(4, 4.0, np.float32), np.array(0, np.int32)])
    x = jnp.asarray(random_input((3, 4)))
    expected = (np.asarray(x) - 2.0) / 2.0
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(lm.jit(lambda v: layer(v))(x)), expected, rtol=1e-6)


def test_normalization_errors():
    with pytest.raises(ValueError, match="both mean and variance"):
        Normalization(mean=1.0)
    layer = Normalization()
    layer.adapt(DATA)
    with pytest.raises(ValueError, match="incompatible shape"):
        layer.adapt(np.ones((5, 3, 7), np.float32))
    with pytest.raises(ValueError, match="empty iterable"):
        Normalization().adapt([])
    with pytest.raises(ValueError, match="cannot change"):
        Normalization(mean=0.0, variance=1.0).adapt(DATA)


def test_normalization_config_round_trip():
    layer = Normalization(axis=(1, 2), mean=[[1.0, 2.0]], variance=[[3.0, 4.0]], invert=True)
    config = layer.get_config()
    assert config["axis"] == [1, 2] and config["mean"] == [[1.0, 2.0]]
    assert Normalization.from_config(config).get_config() == config
