"""Regularizers against ``keras.regularizers`` on the same arrays."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lamina import regularizers
from lamina.core.variable import Variable


@pytest.fixture(scope="module")
def w():
    return np.random.default_rng(1).normal(size=(6, 4)).astype("float32")


CASES = [
    ("L1", {}), ("L1", {"l1": 0.3}), ("L2", {}), ("L2", {"l2": 1.5}), ("L1L2", {}),
    ("L1L2", {"l1": 0.1, "l2": 0.2}), ("L1L2", {"l2": 0.05}),
    ("OrthogonalRegularizer", {}), ("OrthogonalRegularizer", {"factor": 0.5, "mode": "columns"}),
    ("OrthogonalRegularizer", {"factor": 2.0, "mode": "rows"}),
]


@pytest.mark.parametrize("cls_name, kwargs", CASES)
def test_value_matches_keras(keras, w, cls_name, kwargs):
    ours = getattr(regularizers, cls_name)(**kwargs)
    theirs = getattr(keras.regularizers, cls_name)(**kwargs)
    for x in (w, w.T, np.zeros_like(w), np.concatenate([w, np.zeros((2, 4), "float32")])):
        value = ours(x)
        assert value.shape == () and value.dtype == jnp.float32
        # Keras is given a JAX array: its NumPy path of OrthogonalRegularizer breaks on columns.
        np.testing.assert_allclose(float(value), float(theirs(jnp.asarray(x))), rtol=1e-6, atol=1e-8)


def assert_same_config(ours, theirs):
    # Keras keeps some factors as float32 tensors (0.01 -> 0.009999999776...); lamina keeps
    # the Python float it was given.
    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        assert value == (pytest.approx(theirs[key], rel=1e-6) if isinstance(value, float) else theirs[key])


@pytest.mark.parametrize("cls_name, kwargs", CASES)
def test_config_matches_keras(keras, cls_name, kwargs):
    ours = getattr(regularizers, cls_name)(**kwargs)
    assert_same_config(ours.get_config(), getattr(keras.regularizers, cls_name)(**kwargs).get_config())


def test_config_keeps_exact_factors():
    assert regularizers.L1(0.3).get_config() == {"l1": 0.3}
    assert regularizers.OrthogonalRegularizer().get_config() == {"factor": 0.01, "mode": "rows"}


@pytest.mark.parametrize("name", ["l1", "l2", "orthogonal_regularizer"])
def test_string_defaults_match_keras(keras, w, name):
    ours, theirs = regularizers.get(name), keras.regularizers.get(name)
    assert type(ours).__name__ == type(theirs).__name__
    assert_same_config(ours.get_config(), theirs.get_config())
    np.testing.assert_allclose(float(ours(w)), float(theirs(jnp.asarray(w))), rtol=1e-6)


def test_l1_l2_string_uses_documented_defaults(keras, w):
    # Keras documents "l1_l2" as L1L2(l1=0.01, l2=0.01), but its own get("l1_l2") fails and
    # "l1l2" gives L1L2() with no penalty; lamina follows the documentation.
    ours = regularizers.get("l1_l2")
    assert isinstance(ours, regularizers.L1L2) and ours.get_config() == {"l1": 0.01, "l2": 0.01}
    theirs = keras.regularizers.L1L2(l1=0.01, l2=0.01)
    np.testing.assert_allclose(float(ours(w)), float(theirs(jnp.asarray(w))), rtol=1e-6)
    assert regularizers.L1L2().get_config() == keras.regularizers.L1L2().get_config()


def test_penalty_follows_formula_and_gradient(w):
    reg = regularizers.L1L2(l1=0.1, l2=0.2)
    np.testing.assert_allclose(float(reg(w)), 0.1 * np.abs(w).sum() + 0.2 * np.square(w).sum(),
                               rtol=1e-5)
    np.testing.assert_allclose(jax.grad(regularizers.L2(0.1))(jnp.asarray(w)), 0.2 * w, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(reg)(w), reg(w), rtol=1e-6)


def test_accepts_variable_and_keeps_dtype(w):
    for reg in (regularizers.L1(), regularizers.L2(), regularizers.L1L2(0.1, 0.1),
                regularizers.OrthogonalRegularizer()):
        np.testing.assert_array_equal(np.asarray(reg(Variable(w))), np.asarray(reg(w)))
        assert reg(jnp.asarray(w, jnp.float16)).dtype == jnp.float16


def test_orthogonal_is_zero_on_orthogonal_rows():
    assert float(regularizers.OrthogonalRegularizer(factor=1.0)(jnp.eye(4) * 3.0)) == 0.0


def test_invalid_arguments():
    with pytest.raises(ValueError, match="l1"):
        regularizers.L1(-0.1)
    with pytest.raises(ValueError, match="l2"):
        regularizers.L2(float("nan"))
    with pytest.raises(ValueError, match="mode"):
        regularizers.OrthogonalRegularizer(mode="diagonal")
    with pytest.raises(ValueError, match="rank-2"):
        regularizers.OrthogonalRegularizer()(jnp.ones((2, 2, 2)))


def test_none_factors_mean_defaults():
    assert regularizers.L1(None).l1 == 0.01
    assert regularizers.L1L2(None, None).get_config() == {"l1": 0.0, "l2": 0.0}


@pytest.mark.parametrize("cls_name, kwargs", CASES)
def test_round_trip(w, cls_name, kwargs):
    reg = getattr(regularizers, cls_name)(**kwargs)
    config = json.loads(json.dumps(regularizers.serialize(reg)))
    assert config == {"class_name": cls_name, "config": reg.get_config()}
    for restored in (regularizers.deserialize(config), regularizers.get(config)):
        assert type(restored) is type(reg) and restored.get_config() == reg.get_config()
        np.testing.assert_array_equal(np.asarray(restored(w)), np.asarray(reg(w)))


def test_get_passthrough_and_none():
    reg = regularizers.L2(0.5)
    assert regularizers.get(reg) is reg
    assert regularizers.get(None) is None
    assert isinstance(regularizers.get(regularizers.L1), regularizers.L1)
    fn = lambda x: jnp.sum(x)  # noqa: E731
    assert regularizers.get(fn) is fn


def test_unknown_name_raises():
    with pytest.raises(ValueError, match="Unknown regularizer 'l3'"):
        regularizers.get("l3")
    with pytest.raises(ValueError, match="Unknown regularizer class"):
        regularizers.deserialize({"class_name": "L3", "config": {}})
