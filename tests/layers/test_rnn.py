"""SimpleRNN, LSTM, GRU, RNN(cell), Bidirectional and TimeDistributed against Keras 3 (JAX).

``check_layer`` covers outputs, gradients, compute_output_shape, the config round trip and
eager == lm.jit; return_state, initial_state, masks and stateful layers (which it cannot
express) are compared with Keras directly, with the Keras weights copied in.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm
from lamina.layers.masking import get_mask, set_mask
from lamina.layers.rnn import (
    GRU,
    LSTM,
    RNN,
    Bidirectional,
    GRUCell,
    LSTMCell,
    SimpleRNN,
    SimpleRNNCell,
    TimeDistributed,
)

RTOL, ATOL = 1e-5, 1e-6
LAYERS = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}
SHAPE = (2, 4, 3)  # batch, time, features: small, so the suite stays fast


def right_padded_mask():
    """Sequences of lengths 4 and 2: the second is padded on the right."""
    return np.array([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=bool)


def paired(keras, name, x, **config):
    """A Keras layer and a lamina layer of the same config, with the Keras weights copied in."""
    theirs = getattr(keras.layers, name)(**config)
    theirs(x)
    ours = LAYERS[name](**config)
    ours(jnp.asarray(x))
    ours.set_weights(theirs.get_weights())
    return ours, theirs


def assert_all_close(ours, theirs):
    ours = ours if isinstance(ours, (list, tuple)) else [ours]
    theirs = theirs if isinstance(theirs, (list, tuple)) else [theirs]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL)


# --- check_layer: outputs, gradients, shapes, config, jit ---------------------------------------

# return_sequences=True for SimpleRNN and LSTM also goes through check_layer below (generic RNN
# with a SimpleRNNCell, masked LSTM, Bidirectional LSTM).
CASES = [
    ("SimpleRNN", {"activation": "relu"}),
    ("LSTM", {"go_backwards": True, "use_bias": False, "unroll": True}),
    ("GRU", {"return_sequences": True, "go_backwards": True}),
    ("GRU", {"reset_after": False}),
]


@pytest.mark.parametrize("name, config", CASES, ids=[f"{n}-{'-'.join(c) or 'default'}" for n, c in CASES])
def test_recurrent_layers_match_keras(name, config):
    check_layer(lambda: LAYERS[name](3, **config), lambda k: getattr(k.layers, name)(3, **config),
                input_shape=SHAPE, grad_rtol=1e-4)


def test_masked_sequences_match_keras_with_gradients():
    # The mask is passed explicitly to both (as Embedding(mask_zero=True) would provide it).
    check_layer(lambda: LSTM(3, return_sequences=True), lambda k: k.layers.LSTM(3, return_sequences=True),
                input_shape=SHAPE, call_kwargs={"mask": right_padded_mask()}, grad_rtol=1e-4)


def test_generic_rnn_with_builtin_cell_matches_keras(keras):
    x = random_input(SHAPE, seed=15)
    theirs = keras.layers.RNN(keras.layers.SimpleRNNCell(3), return_sequences=True)
    expected = theirs(x)
    ours = RNN(SimpleRNNCell(3), return_sequences=True)
    ours(jnp.asarray(x))
    ours.set_weights(theirs.get_weights())
    assert_all_close(ours(jnp.asarray(x)), expected)
    config = ours.get_config()
    assert config["cell"]["class_name"] == "SimpleRNNCell"
    rebuilt = RNN.from_config(config)
    assert rebuilt.get_config() == config
    rebuilt(jnp.asarray(x))
    rebuilt.set_weights(ours.get_weights())
    assert_all_close(rebuilt(jnp.asarray(x)), expected)
    assert ours.compute_output_shape((None, 4, 3)) == (None, 4, 3)


# --- return_state, initial_state ------------------------------------------------------------------

def test_return_state_matches_keras(keras):
    # (return_state with return_sequences and masks: test_mask_keeps_previous_state_like_keras)
    x = random_input(SHAPE, seed=1)
    ours, theirs = paired(keras, "LSTM", x, units=3, return_state=True)
    mine = ours(jnp.asarray(x))
    assert isinstance(mine, tuple) and len(mine) == 3  # output, h, c
    assert_all_close(mine, theirs(x))
    assert ours.compute_output_shape((None, 4, 3)) == ((None, 3), (None, 3), (None, 3))


def test_initial_state_matches_keras(keras):
    x = random_input(SHAPE, seed=2)
    states = [random_input((2, 3), seed=10 + i) for i in range(2)]
    ours, theirs = paired(keras, "LSTM", x, units=3, return_sequences=True, return_state=True)
    assert_all_close(ours(jnp.asarray(x), initial_state=[jnp.asarray(s) for s in states]),
                     theirs(x, initial_state=states))
    with pytest.raises(ValueError, match="initial_state must hold"):
        ours(jnp.asarray(x), initial_state=[jnp.asarray(states[0])])


def test_single_array_initial_state_and_mask_with_initial_state(keras):
    x = random_input(SHAPE, seed=3)
    h0 = random_input((2, 3), seed=4)
    ours, theirs = paired(keras, "GRU", x, units=3, return_sequences=True)
    assert_all_close(ours(jnp.asarray(x), initial_state=jnp.asarray(h0), mask=right_padded_mask()),
                     theirs(x, initial_state=h0, mask=right_padded_mask()))


# --- masks ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, go_backwards", [("SimpleRNN", True), ("LSTM", False), ("GRU", True)])
def test_mask_keeps_previous_state_like_keras(keras, name, go_backwards):
    x = random_input(SHAPE, seed=5)
    mask = right_padded_mask()
    ours, theirs = paired(keras, name, x, units=3, return_sequences=True, return_state=True,
                          go_backwards=go_backwards)
    mine = ours(jnp.asarray(x), mask=mask)
    assert_all_close(mine, theirs(x, mask=mask))
    if not go_backwards:
        # The padded sample's last states are those after its last real step, and the padded
        # timesteps repeat the previous output (Keras's behaviour).
        np.testing.assert_allclose(mine[0][1, 2:], np.broadcast_to(mine[0][1, 1], (2, 3)), rtol=1e-6)
        np.testing.assert_allclose(mine[1][1], mine[0][1, 1], rtol=1e-6)


def test_registered_mask_reaches_the_layer_and_propagates(keras):
    x = random_input(SHAPE, seed=6)
    mask = jnp.asarray(right_padded_mask())
    ours, theirs = paired(keras, "LSTM", x, units=3, return_sequences=True)
    inputs = jnp.asarray(x)
    set_mask(inputs, mask)  # what Embedding(mask_zero=True) does for its output
    out = ours(inputs)
    assert_all_close(out, theirs(x, mask=right_padded_mask()))
    np.testing.assert_array_equal(np.asarray(get_mask(out)), np.asarray(mask))  # return_sequences keeps it
    last_only = LSTM(3)
    assert get_mask(last_only(inputs)) is None


@pytest.mark.skipif(not hasattr(lm.layers, "Embedding"), reason="lm.layers.Embedding is not there yet")
def test_mask_from_embedding_mask_zero(keras):
    tokens = np.array([[3, 1, 4, 1], [5, 9, 0, 0]], dtype="int32")
    k_embed, k_lstm = keras.layers.Embedding(10, 3, mask_zero=True), keras.layers.LSTM(3, return_sequences=True)
    expected = k_lstm(k_embed(tokens))
    embed, lstm = lm.layers.Embedding(10, 3, mask_zero=True), LSTM(3, return_sequences=True)
    lstm(embed(jnp.asarray(tokens)))
    embed.set_weights(k_embed.get_weights())
    lstm.set_weights(k_lstm.get_weights())
    assert_all_close(lstm(embed(jnp.asarray(tokens))), expected)


# --- Bidirectional --------------------------------------------------------------------------------

def test_bidirectional_matches_keras():
    layer, _ = check_layer(
        lambda: Bidirectional(LSTM(3, return_sequences=True, name="enc")),
        lambda k: k.layers.Bidirectional(k.layers.LSTM(3, return_sequences=True, name="enc")),
        input_shape=SHAPE, grad_rtol=1e-4,
    )
    assert (layer.forward_layer.name, layer.backward_layer.name) == ("forward_enc", "backward_enc")
    assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards


@pytest.mark.parametrize("merge_mode", ["sum", "mul", "ave"])
def test_bidirectional_other_merge_modes_match_keras(keras, merge_mode):
    x = random_input(SHAPE, seed=14)
    theirs = keras.layers.Bidirectional(keras.layers.GRU(3), merge_mode=merge_mode)
    expected = theirs(x)
    ours = Bidirectional(GRU(3), merge_mode=merge_mode)
    ours(jnp.asarray(x))
    ours.set_weights(theirs.get_weights())
    assert_all_close(ours(jnp.asarray(x)), expected)
    assert ours.compute_output_shape((None, 4, 3)) == (None, 3)


def test_bidirectional_mask_state_and_no_merge_match_keras(keras):
    x = random_input(SHAPE, seed=7)
    mask = right_padded_mask()
    theirs = keras.layers.Bidirectional(keras.layers.GRU(3, return_sequences=True, return_state=True), merge_mode=None)
    theirs(x)
    ours = Bidirectional(GRU(3, return_sequences=True, return_state=True), merge_mode=None)
    ours(jnp.asarray(x))
    ours.set_weights(theirs.get_weights())
    states = [random_input((2, 3), seed=20), random_input((2, 3), seed=21)]
    mine = ours(jnp.asarray(x), mask=mask, initial_state=[jnp.asarray(s) for s in states])
    assert len(mine) == 4  # forward output, backward output, forward state, backward state
    assert_all_close(mine, theirs(x, mask=mask, initial_state=states))
    assert ours.compute_output_shape((None, 4, 3)) == ((None, 4, 3), (None, 4, 3), (None, 3), (None, 3))
    np.testing.assert_array_equal(np.asarray(mine[0][1, 2:]), 0.0)  # zero_output_for_mask is forced


def test_bidirectional_config_round_trip_with_explicit_backward_layer():
    layer = Bidirectional(SimpleRNN(2, return_sequences=True),
                          backward_layer=SimpleRNN(2, return_sequences=True, go_backwards=True, name="back"))
    layer(jnp.ones(SHAPE))
    rebuilt = Bidirectional.from_config(layer.get_config())
    assert rebuilt.get_config() == layer.get_config()
    assert rebuilt.backward_layer.name == "back"
    with pytest.raises(ValueError, match="merge_mode"):
        Bidirectional(SimpleRNN(2), merge_mode="max")
    with pytest.raises(ValueError, match="go_backwards"):
        Bidirectional(SimpleRNN(2), backward_layer=SimpleRNN(2))


# --- TimeDistributed ------------------------------------------------------------------------------

def test_time_distributed_dense_matches_keras():
    layer, _ = check_layer(lambda: TimeDistributed(lm.layers.Dense(3, activation="relu")),
                           lambda k: k.layers.TimeDistributed(k.layers.Dense(3, activation="relu")),
                           input_shape=SHAPE)
    assert [v.name for v in layer.weights] == ["kernel", "bias"]


def test_time_distributed_passes_the_mask_on():
    class SeesMask(lm.Layer):
        def call(self, inputs, mask=None):
            return inputs * mask[:, None].astype(inputs.dtype)

    mask = jnp.asarray(right_padded_mask())
    layer = TimeDistributed(SeesMask())
    out = layer(jnp.ones((2, 4, 3)), mask=mask)
    np.testing.assert_array_equal(np.asarray(out[..., 0]), np.asarray(mask, np.float32))
    np.testing.assert_array_equal(np.asarray(get_mask(out)), np.asarray(mask))
    with pytest.raises(ValueError, match="rank >= 3"):
        TimeDistributed(lm.layers.Dense(2))(jnp.ones((2, 3)))


# --- dropout, statefulness, compilation -----------------------------------------------------------

def test_dropout_only_in_training_and_fresh_each_step():
    x = jnp.asarray(random_input(SHAPE, seed=8))
    shared = GRU(3, dropout=0.5, seed=2)  # one input mask for every gate (Keras's implementation 2)
    assert not np.allclose(shared(x, training=True), shared(x))
    layer = LSTM(3, dropout=0.3, recurrent_dropout=0.4, seed=1)  # one mask per gate
    inference = layer(x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), np.asarray(inference))
    first, second = layer(x, training=True), layer(x, training=True)
    assert not np.allclose(first, inference) and not np.allclose(first, second)

    def loss():
        return jnp.sum(layer(x, training=True) ** 2)

    step = lm.jit(lm.value_and_grad(loss, layer.trainable_weights))
    (a, grads), (b, _) = step(), step()  # the seed generator advances inside compiled code too
    assert a != b and all(np.isfinite(np.asarray(g)).all() for g in grads)


def test_cells_draw_masks_per_call():
    cell = GRUCell(3, dropout=0.5, seed=3)
    x = jnp.ones((2, 4))
    h = [jnp.zeros((2, 3))]
    assert not np.allclose(cell(x, h, training=True)[0], cell(x, h, training=True)[0])
    np.testing.assert_array_equal(np.asarray(cell(x, h)[0]), np.asarray(cell(x, h)[0]))


@pytest.mark.parametrize("cell_class, keras_name", [(SimpleRNNCell, "SimpleRNNCell"), (LSTMCell, "LSTMCell"),
                                                    (GRUCell, "GRUCell")])
def test_single_cell_step_matches_keras(keras, cell_class, keras_name):
    x = random_input((2, 5), seed=9)
    theirs = getattr(keras.layers, keras_name)(3)
    n_states = 2 if cell_class is LSTMCell else 1
    states = [random_input((2, 3), seed=30 + i) for i in range(n_states)]
    expected = theirs(x, states)
    ours = cell_class(3)
    ours(jnp.asarray(x), [jnp.asarray(s) for s in states])
    ours.set_weights(theirs.get_weights())
    out, new_states = ours(jnp.asarray(x), [jnp.asarray(s) for s in states])
    assert_all_close([out, *new_states], [expected[0], *expected[1]])


def test_stateful_matches_keras_and_resets(keras):
    x1, x2 = random_input(SHAPE, seed=11), random_input(SHAPE, seed=12)
    theirs = keras.layers.SimpleRNN(3, stateful=True)
    theirs(x1)
    theirs.reset_state()
    ours = SimpleRNN(3, stateful=True)
    ours(jnp.asarray(x1))
    ours.reset_state()
    assert len(ours.weights) == 3 and len(ours.states) == 1  # carried states are not weights
    ours.set_weights(theirs.get_weights())
    assert_all_close([ours(jnp.asarray(x1)), ours(jnp.asarray(x2))], [theirs(x1), theirs(x2)])
    compiled = lm.jit(lambda x: ours(x))
    assert_all_close(compiled(jnp.asarray(x1)), theirs(x1))  # the state moves on in compiled code too
    ours.reset_state()
    theirs.reset_state()
    assert_all_close(ours(jnp.asarray(x2)), theirs(x2))
    with pytest.raises(ValueError, match="fixed batch size"):
        SimpleRNN(2, stateful=True).build_from_shape((None, 4, 3))


def test_loop_is_one_scan_and_jit_matches_eager():
    layer = GRU(3, return_sequences=True, return_state=True)
    x = jnp.asarray(random_input((2, 50, 3), seed=13))
    jaxpr = str(jax.make_jaxpr(lambda v: layer(v))(x))
    assert "scan" in jaxpr and jaxpr.count("tanh") < 5  # one loop body, not 50 copies
    compiled = lm.jit(lambda v, m: layer(v, mask=m))
    mask = jnp.ones((2, 50), bool).at[1, 30:].set(False)
    assert_all_close(compiled(x, mask), layer(x, mask=mask))


def test_custom_cell_runs_through_generic_rnn():
    class Accumulate(lm.Layer):
        """h_t = h_{t-1} + x_t @ w (a cell without built-in fast path)."""

        state_size = 2

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 2), initializer="ones")

        def call(self, inputs, states):
            h = states[0] + jnp.matmul(inputs, self.w.value)
            return h, [h]

    layer = RNN(Accumulate(), return_sequences=True, go_backwards=True)
    x = jnp.arange(24, dtype=jnp.float32).reshape(2, 4, 3)
    out = layer(x, mask=jnp.asarray(right_padded_mask()))
    totals = x.sum(-1)  # per-step increment, the same on both units
    expected_0 = jnp.cumsum(totals[0, ::-1])
    np.testing.assert_allclose(np.asarray(out[0, :, 0]), np.asarray(expected_0))
    np.testing.assert_allclose(np.asarray(out[1, :, 0]), np.asarray([0, 0, totals[1, 1], totals[1, 1] + totals[1, 0]]))
    assert layer.compute_output_shape((None, 4, 3)) == (None, 4, 2)


def test_config_arguments_and_regularizers():
    layer = LSTM(3, dropout=0.1, recurrent_dropout=0.2, unit_forget_bias=False, kernel_regularizer="l2",
                 go_backwards=True, name="seq")
    config = layer.get_config()
    assert config["units"] == 3 and config["go_backwards"] and config["name"] == "seq"
    assert "cell" not in config and layer.units == 3 and layer.recurrent_dropout == 0.2
    layer(jnp.ones(SHAPE))
    assert len(layer.losses) == 1  # the kernel's L2 penalty
    rebuilt = LSTM.from_config(config)
    assert rebuilt.get_config() == config
    biased = LSTM(3)
    biased(jnp.ones(SHAPE))
    np.testing.assert_array_equal(biased.cell.bias.numpy(), [0, 0, 0, 1, 1, 1] + [0] * 6)  # unit_forget_bias
    with pytest.raises(NotImplementedError, match="stacked"):
        RNN([SimpleRNNCell(2), SimpleRNNCell(2)])
    with pytest.raises(ValueError, match="rank 3"):
        SimpleRNN(2)(jnp.ones((2, 3)))
