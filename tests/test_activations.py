"""Activations against ``keras.activations`` (JAX backend) on the same inputs."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lamina import activations
from lamina.core.variable import Variable

NAMES = [
    "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "sigmoid", "hard_sigmoid", "hard_silu",
    "hard_swish", "silu", "swish", "tanh", "softplus", "softsign", "softmax", "log_softmax",
    "exponential", "linear", "mish", "log_sigmoid",
]


@pytest.fixture(scope="module")
def x():
    # Wide enough to reach every piece of the piecewise functions (hard_sigmoid's +-3, relu6's 6).
    return (np.random.default_rng(0).normal(size=(4, 5, 8)) * 4.0).astype("float32")


def assert_close(ours, theirs):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_matches_keras(keras, x, name):
    assert_close(getattr(activations, name)(x), getattr(keras.activations, name)(x))


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_keras(keras, name):
    ours = inspect.signature(getattr(activations, name)).parameters
    theirs = inspect.signature(getattr(keras.activations, name)).parameters
    assert [(p.name, p.default) for p in ours.values()] == [
        (p.name, p.default) for p in theirs.values()]


@pytest.mark.parametrize("approximate", [False, True])
def test_gelu_both_forms(keras, x, approximate):
    assert_close(activations.gelu(x, approximate=approximate),
                 keras.activations.gelu(x, approximate=approximate))


def test_gelu_default_is_exact_unlike_jax(x):
    np.testing.assert_allclose(activations.gelu(x), jax.nn.gelu(x, approximate=False), rtol=1e-6)
    assert not np.allclose(activations.gelu(x), jax.nn.gelu(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kwargs", [
    {"negative_slope": 0.1}, {"max_value": 6.0}, {"max_value": 2.5}, {"threshold": 1.0},
    {"threshold": -0.5}, {"negative_slope": 0.3, "max_value": 3.0},
    {"negative_slope": 0.2, "threshold": 1.5}, {"negative_slope": 0.5, "max_value": 4.0, "threshold": 2.0},
    {"max_value": 5.0, "threshold": 1.0},
])
def test_relu_options(keras, x, kwargs):
    assert_close(activations.relu(x, **kwargs), keras.activations.relu(x, **kwargs))


@pytest.mark.parametrize("name, kwargs", [
    ("leaky_relu", {"negative_slope": 0.05}), ("elu", {"alpha": 0.3}),
    ("softmax", {"axis": 0}), ("softmax", {"axis": 1}), ("log_softmax", {"axis": 0}),
    ("log_softmax", {"axis": -2}),
])
def test_arguments(keras, x, name, kwargs):
    assert_close(getattr(activations, name)(x, **kwargs), getattr(keras.activations, name)(x, **kwargs))


@pytest.mark.parametrize("name", [n for n in NAMES if n != "linear"])
def test_accepts_variable_and_lists(x, name):
    fn = getattr(activations, name)
    expected = np.asarray(fn(x))
    np.testing.assert_array_equal(np.asarray(fn(Variable(x))), expected)
    np.testing.assert_array_equal(np.asarray(fn(x.tolist())), expected)


def test_linear_passes_input_through(x):
    assert activations.linear(x) is x


def test_under_jit(x):
    for name in ["relu", "gelu", "softmax", "hard_silu", "mish"]:
        fn = getattr(activations, name)
        np.testing.assert_allclose(jax.jit(fn)(x), fn(x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(jax.jit(lambda v: activations.relu(v, max_value=2.0, threshold=0.5))(x),
                               activations.relu(x, max_value=2.0, threshold=0.5))


def test_bfloat16_keeps_dtype():
    y = activations.gelu(jnp.ones((3,), jnp.bfloat16))
    assert y.dtype == jnp.bfloat16


# --- get / serialize / deserialize ---------------------------------------------------------

def test_get():
    assert activations.get(None) is activations.linear
    assert activations.get("relu") is activations.relu
    assert activations.get("swish") is activations.silu
    assert activations.get("hard_swish") is activations.hard_silu
    custom = lambda t: 2 * t  # noqa: E731
    assert activations.get(custom) is custom


@pytest.mark.parametrize("name", NAMES)
def test_serialize_round_trip_like_keras(keras, name):
    fn = getattr(activations, name)
    assert activations.serialize(fn) == keras.activations.serialize(getattr(keras.activations, name))
    assert activations.deserialize(activations.serialize(fn)) is fn
    assert activations.get(activations.serialize(fn)) is fn


def test_unknown_name_raises():
    with pytest.raises(ValueError, match="Unknown activation 'rellu'"):
        activations.get("rellu")
    with pytest.raises(ValueError, match="Known names: .*relu"):
        activations.deserialize("rellu")


def test_custom_registered_object_round_trip():
    class Scaled:
        def __init__(self, factor=2.0):
            self.factor = factor

        def __call__(self, t):
            return self.factor * jnp.asarray(t)

        def get_config(self):
            return {"factor": self.factor}

    config = activations.serialize(Scaled(3.0))
    assert config == {"class_name": "Scaled", "config": {"factor": 3.0}}
    restored = activations.deserialize(config, custom_objects={"Scaled": Scaled})
    np.testing.assert_array_equal(restored(jnp.ones(2)), [3.0, 3.0])
