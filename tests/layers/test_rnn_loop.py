"""The built-in recurrent layers' loop: how it is laid out, and that it still computes Keras's numbers.

Each step does its own input-to-gates matmul inside the ``lax.scan`` (as Keras's cells do): one
matmul for all timesteps before the loop measured 2x slower per training step on XLA:CPU; and
the loop stacks the outputs only for ``return_sequences=True``. The comparisons with Keras 3 cover what that loop handles: masks (padding on either side, a last
step masked), ``go_backwards``, ``return_state``, ``zero_output_for_mask``, GRU's two
``reset_after`` variants and dropout masks (one per gate or one shared), with Keras's weights
and the same dropout masks copied in.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import random_input

from lamina.layers.rnn import GRU, LSTM, SimpleRNN

LAYERS = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}
GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}
BATCH, TIME, FEATURES, UNITS = 3, 6, 5, 4


def padded_mask():
    """Sample 0 is whole, sample 1 padded on the right, sample 2 on the left."""
    return np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1]], dtype=bool)


def scans(jaxpr):
    """Every ``scan`` equation in a jaxpr, sub-jaxprs (``jit``, ``cond``...) included."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan":
            yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else [value]:
                inner = getattr(sub, "jaxpr", None)
                if inner is not None:
                    yield from scans(getattr(inner, "jaxpr", inner))


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
def test_the_loop_runs_over_the_raw_inputs(name, masked):
    # What goes into the scan per timestep is the (time, batch, features) input itself, not a
    # (time, batch, gates * units) projection made before the loop.
    layer = LAYERS[name](UNITS)
    x = jnp.asarray(random_input((BATCH, TIME, FEATURES), seed=1))
    mask = jnp.asarray(padded_mask()) if masked else None
    closed = jax.make_jaxpr(lambda v: layer(v, mask=mask))(x)
    (scan,) = list(scans(closed.jaxpr))
    xs = scan.invars[scan.params["num_consts"] + scan.params["num_carry"]:]
    shapes = sorted(tuple(v.aval.shape) for v in xs)
    expected = [(TIME, BATCH), (TIME, BATCH, FEATURES)] if masked else [(TIME, BATCH, FEATURES)]
    assert shapes == expected, f"{name}: the loop reads {shapes}; gates * units = {GATES[name] * UNITS}"


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_only_a_sequence_output_is_stacked(name, return_sequences):
    # Without return_sequences the last output is read off the final states: the loop stacks
    # no (time, batch, units) outputs.
    layer = LAYERS[name](UNITS, return_sequences=return_sequences, zero_output_for_mask=True)
    x = jnp.asarray(random_input((BATCH, TIME, FEATURES), seed=1))
    closed = jax.make_jaxpr(lambda v: layer(v, mask=jnp.asarray(padded_mask())))(x)
    (scan,) = list(scans(closed.jaxpr))
    stacked = scan.outvars[scan.params["num_carry"]:]
    assert [tuple(v.aval.shape) for v in stacked] == ([(TIME, BATCH, UNITS)] if return_sequences else [])


def both(keras, name, **config):
    """The lamina layer and its Keras twin, built, with Keras's weights copied into lamina's."""
    theirs = getattr(keras.layers, name)(UNITS, **config)
    theirs.build((BATCH, TIME, FEATURES))
    ours = LAYERS[name](UNITS, **config)
    ours.build_from_shape((BATCH, TIME, FEATURES))
    ours.set_weights(theirs.get_weights())
    return ours, theirs


def assert_close(ours, theirs):
    ours = ours if isinstance(ours, (list, tuple)) else [ours]
    theirs = theirs if isinstance(theirs, (list, tuple)) else [theirs]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


CONFIGS = [
    ("LSTM", {}),
    ("LSTM", {"return_sequences": True, "return_state": True}),
    ("LSTM", {"go_backwards": True, "zero_output_for_mask": True}),
    ("GRU", {"return_state": True, "go_backwards": True}),
    ("GRU", {"reset_after": False, "return_sequences": True}),
    ("GRU", {"reset_after": False, "zero_output_for_mask": True, "return_state": True}),
    ("SimpleRNN", {"return_sequences": True, "go_backwards": True, "zero_output_for_mask": True}),
    ("SimpleRNN", {"return_state": True}),
]


@pytest.mark.parametrize("name, config", CONFIGS, ids=[f"{n}-{'-'.join(c) or 'default'}" for n, c in CONFIGS])
def test_outputs_match_keras_with_and_without_a_mask(keras, name, config):
    ours, theirs = both(keras, name, **config)
    x = random_input((BATCH, TIME, FEATURES), seed=2)
    assert_close(ours(jnp.asarray(x)), theirs(x))
    # Sample 1's last step is masked: with zero_output_for_mask its last output is zeros.
    assert_close(ours(jnp.asarray(x), mask=jnp.asarray(padded_mask())), theirs(x, mask=padded_mask()))


def dropout_mask(shape, rate, seed):
    """A dropout mask as both libraries draw them: 0 or 1 / (1 - rate)."""
    keep = np.random.default_rng(seed).random(shape) >= rate
    return (keep / (1 - rate)).astype("float32")


DROPOUT = [
    ("LSTM", {"dropout": 0.3}),  # one input mask for all gates
    ("LSTM", {"dropout": 0.3, "recurrent_dropout": 0.4, "return_sequences": True}),  # one per gate
    ("GRU", {"dropout": 0.3, "recurrent_dropout": 0.4}),
    ("GRU", {"dropout": 0.3, "recurrent_dropout": 0.4, "reset_after": False, "go_backwards": True}),
    ("SimpleRNN", {"dropout": 0.3, "recurrent_dropout": 0.4}),
]


@pytest.mark.parametrize("name, config", DROPOUT, ids=[f"{n}-{'-'.join(c)}" for n, c in DROPOUT])
def test_dropout_matches_keras_with_the_same_masks(keras, name, config):
    ours, theirs = both(keras, name, **config)
    x = random_input((BATCH, TIME, FEATURES), seed=3)
    per_gate = GATES[name] if config.get("recurrent_dropout") and name != "SimpleRNN" else 1
    n_recurrent = GATES[name] if name != "SimpleRNN" else 1
    input_masks = dropout_mask((per_gate, BATCH, FEATURES), config["dropout"], seed=4)
    recurrent_masks = None
    if config.get("recurrent_dropout"):
        recurrent_masks = dropout_mask((n_recurrent, BATCH, UNITS), config["recurrent_dropout"], seed=5)
    # Keras keeps the masks it drew on the cell until the call ends: masks set there are used.
    theirs.cell._dropout_mask = list(input_masks) if per_gate > 1 else input_masks[0]
    if recurrent_masks is not None:
        theirs.cell._recurrent_dropout_mask = list(recurrent_masks) if n_recurrent > 1 else recurrent_masks[0]

    def fixed_masks(batch_size, input_dim, dtype, training):
        if not training:
            return None, None
        return jnp.asarray(input_masks), None if recurrent_masks is None else jnp.asarray(recurrent_masks)

    ours.cell.dropout_masks = fixed_masks
    expected = theirs(x, training=True)
    got = ours(jnp.asarray(x), training=True)
    assert not np.allclose(np.asarray(got), np.asarray(ours(jnp.asarray(x))))  # the masks did something
    assert_close(got, expected)
