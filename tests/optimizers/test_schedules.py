"""Learning-rate schedules against keras.optimizers.schedules at many steps."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm
import lamina.optimizers  # noqa: F401  (lm.optimizers)
from lamina.optimizers import schedules

STEPS = [0, 1, 2, 3, 5, 9, 10, 11, 15, 20, 25, 30, 49, 50, 51, 70, 99, 100, 101, 150, 300, 1000]

CASES = [
    ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.9}),
    ("ExponentialDecay", {"initial_learning_rate": 0.5, "decay_steps": 7, "decay_rate": 0.5, "staircase": True}),
    ("PiecewiseConstantDecay", {"boundaries": [10, 50, 100], "values": [1.0, 0.5, 0.1, 0.01]}),
    ("PiecewiseConstantDecay", {"boundaries": [0], "values": [0.3, 0.2]}),
    ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 100}),
    ("PolynomialDecay", {"initial_learning_rate": 1.0, "decay_steps": 30, "end_learning_rate": 0.1,
                         "power": 2.0, "cycle": True}),
    ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5}),
    ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 4, "decay_rate": 2.0, "staircase": True}),
    ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 100}),
    ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 100, "alpha": 0.2}),
    ("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 80, "warmup_target": 0.4, "warmup_steps": 20}),
    ("CosineDecay", {"initial_learning_rate": 0.01, "decay_steps": 50, "alpha": 0.1, "warmup_target": 1.0,
                     "warmup_steps": 10}),
    ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 10}),
    ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 20, "t_mul": 1.0,
                             "m_mul": 0.5, "alpha": 0.1}),
    ("CosineDecayRestarts", {"initial_learning_rate": 1.0, "first_decay_steps": 7, "t_mul": 1.5, "m_mul": 0.9}),
]


@pytest.mark.parametrize("name, config", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_keras(keras, name, config):
    ours = getattr(schedules, name)(**config)
    theirs = getattr(keras.optimizers.schedules, name)(**config)
    with jax.disable_jit():  # Keras's eager lax.cond compiles its branches at every call
        expected = np.array([float(theirs(s)) for s in STEPS])
    eager = np.array([float(ours(s)) for s in STEPS])
    # An optimizer calls its schedule on int32 `iterations`, traced inside compiled steps.
    compiled = np.asarray(jax.jit(jax.vmap(ours))(jnp.asarray(STEPS, jnp.int32)))
    np.testing.assert_allclose(eager, expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(compiled, expected, rtol=1e-5, atol=1e-8)
    assert ours(jnp.int32(3)).dtype == jnp.float32
    # Same config keys and values as Keras (so configs move between the two).
    assert ours.get_config() == theirs.get_config()


@pytest.mark.parametrize("name, config", CASES[::3])
def test_config_round_trip(name, config):
    sched = getattr(schedules, name)(**config)
    payload = json.loads(json.dumps(schedules.serialize(sched)))
    assert payload["class_name"] == name
    again = schedules.deserialize(payload)
    assert type(again) is type(sched) and again.get_config() == sched.get_config()
    np.testing.assert_allclose(float(again(17)), float(sched(17)))


def test_accepts_iterations_variable():
    sched = schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
    step = lm.Variable(jnp.int32(2), trainable=False)
    assert float(sched(step)) == 0.25


def test_bad_arguments():
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.ExponentialDecay(0.1, decay_steps=0, decay_rate=0.5)
    with pytest.raises(ValueError, match="boundaries"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="first_decay_steps"):
        schedules.CosineDecayRestarts(0.1, first_decay_steps=-1)
    with pytest.raises(NotImplementedError):
        schedules.LearningRateSchedule()(0)
