"""Constraints against ``keras.constraints`` on the same arrays."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lamina import constraints
from lamina.core.variable import Variable


@pytest.fixture(scope="module")
def kernels():
    rng = np.random.default_rng(2)
    dense = (rng.normal(size=(6, 4)) * 2.0).astype("float32")
    dense[:, 1] = 0.0  # an all-zero unit: the epsilon must keep it at zero, not NaN
    conv = (rng.normal(size=(3, 3, 2, 5)) * 0.3).astype("float32")
    return {"dense": dense, "conv": conv}


CASES = [
    ("MaxNorm", {}, "dense"), ("MaxNorm", {"max_value": 1.5, "axis": 1}, "dense"),
    ("MaxNorm", {"max_value": 0.5, "axis": [0, 1, 2]}, "conv"),
    ("MinMaxNorm", {}, "dense"), ("MinMaxNorm", {"min_value": 1.0, "max_value": 3.0, "rate": 0.5}, "dense"),
    ("MinMaxNorm", {"min_value": 0.5, "max_value": 0.8, "axis": [0, 1, 2]}, "conv"),
    ("NonNeg", {}, "dense"), ("NonNeg", {}, "conv"),
    ("UnitNorm", {}, "dense"), ("UnitNorm", {"axis": 1}, "dense"),
    ("UnitNorm", {"axis": [0, 1, 2]}, "conv"),
]


@pytest.mark.parametrize("cls_name, kwargs, kernel", CASES)
def test_matches_keras(keras, kernels, cls_name, kwargs, kernel):
    w = kernels[kernel]
    ours = getattr(constraints, cls_name)(**kwargs)(w)
    theirs = getattr(keras.constraints, cls_name)(**kwargs)(w)
    assert isinstance(ours, jax.Array) and ours.shape == w.shape and ours.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(getattr(constraints, cls_name)(**kwargs)(Variable(w)), ours)


@pytest.mark.parametrize("cls_name, kwargs, kernel", CASES)
def test_config_matches_keras(keras, cls_name, kwargs, kernel):
    ours = getattr(constraints, cls_name)(**kwargs).get_config()
    assert ours == getattr(keras.constraints, cls_name)(**kwargs).get_config()


def test_projections_follow_their_definitions(kernels):
    w = kernels["dense"]
    norms = np.linalg.norm(constraints.MaxNorm(max_value=1.0)(w), axis=0)
    assert (norms <= 1.0 + 1e-6).all() and norms[1] == 0.0
    unit = np.linalg.norm(constraints.UnitNorm()(w), axis=0)
    np.testing.assert_allclose(np.delete(unit, 1), 1.0, rtol=1e-5)
    assert (np.asarray(constraints.NonNeg()(w)) >= 0).all()
    np.testing.assert_array_equal(constraints.Constraint()(w), w)


@pytest.mark.parametrize("name, cls_name", [
    ("max_norm", "MaxNorm"), ("min_max_norm", "MinMaxNorm"), ("non_neg", "NonNeg"),
    ("unit_norm", "UnitNorm"),
])
def test_strings_match_keras(keras, name, cls_name):
    ours, theirs = constraints.get(name), keras.constraints.get(name)
    assert type(ours).__name__ == type(theirs).__name__ == cls_name
    assert ours.get_config() == theirs.get_config()


@pytest.mark.parametrize("cls_name, kwargs, kernel", CASES)
def test_round_trip(kernels, cls_name, kwargs, kernel):
    constraint = getattr(constraints, cls_name)(**kwargs)
    config = json.loads(json.dumps(constraints.serialize(constraint)))
    assert config == {"class_name": cls_name, "config": constraint.get_config()}
    restored = constraints.get(config)
    assert type(restored) is type(constraint)
    w = kernels[kernel]
    np.testing.assert_array_equal(restored(w), constraint(w))
    assert type(constraints.deserialize(config)) is type(constraint)


def test_under_jit(kernels):
    w = kernels["conv"]
    c = constraints.MinMaxNorm(0.5, 0.8, axis=[0, 1, 2])
    np.testing.assert_allclose(jax.jit(c)(w), c(w), rtol=1e-6)


def test_get_passthrough_and_none():
    c = constraints.NonNeg()
    assert constraints.get(c) is c
    assert constraints.get(None) is None
    assert isinstance(constraints.get(constraints.UnitNorm), constraints.UnitNorm)
    fn = lambda w: jnp.clip(w, -1, 1)  # noqa: E731
    assert constraints.get(fn) is fn


def test_unknown_name_raises():
    with pytest.raises(ValueError, match="Unknown constraint 'nonneg'"):
        constraints.get("nonneg")
    with pytest.raises(ValueError, match="Unknown constraint class"):
        constraints.deserialize({"class_name": "Positive", "config": {}})
