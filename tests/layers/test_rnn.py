"""SimpleRNN, LSTM, GRU, RNN(cell), Bidirectional and TimeDistributed against Keras 3 (JAX).

Every layer and cell goes through ``check_layer`` (outputs, output masks, gradients,
compute_output_shape, the config round trip, eager == lm.jit), return_state (tuple outputs),
initial_state and masks included; only stateful layers (state carried across calls) and
chains of layers are compared with Keras directly, with the Keras weights copied in.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm
from lamina.layers.masking import get_mask
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
    layer, _ = check_layer(lambda: RNN(SimpleRNNCell(3), return_sequences=True),
                           lambda k: k.layers.RNN(k.layers.SimpleRNNCell(3), return_sequences=True),
                           inputs=random_input(SHAPE, seed=15), keras=keras, grad_rtol=1e-4)
    assert layer.get_config()["cell"]["class_name"] == "SimpleRNNCell"
    assert layer.compute_output_shape((None, 4, 3)) == (None, 4, 3)


# --- return_state, initial_state ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
def test_return_state_matches_keras(keras, name):
    # (return_state with return_sequences and masks: test_mask_keeps_previous_state_like_keras)
    layer, outputs = check_layer(lambda: LAYERS[name](3, return_state=True),
                                 lambda k: getattr(k.layers, name)(3, return_state=True),
                                 inputs=random_input(SHAPE, seed=1), keras=keras, grad_rtol=1e-4)
    assert isinstance(outputs, tuple) and len(outputs) == len(layer.state_size) + 1  # output, *states
    assert layer.compute_output_shape((None, 4, 3)) == ((None, 3),) * len(outputs)


def test_initial_state_matches_keras(keras):
    # The initial states are inputs too: their gradients are compared with Keras's.
    states = [random_input((2, 3), seed=10 + i) for i in range(2)]
    layer, _ = check_layer(lambda: LSTM(3, return_sequences=True, return_state=True),
                           lambda k: k.layers.LSTM(3, return_sequences=True, return_state=True),
                           inputs=random_input(SHAPE, seed=2), call_kwargs={"initial_state": states},
                           keras=keras, grad_rtol=1e-4)
    with pytest.raises(ValueError, match="initial_state must hold"):
        layer(jnp.asarray(random_input(SHAPE, seed=2)), initial_state=[jnp.asarray(states[0])])


def test_single_array_initial_state_and_mask_with_initial_state(keras):
    call_kwargs = {"initial_state": random_input((2, 3), seed=4), "mask": right_padded_mask()}
    check_layer(lambda: GRU(3, return_sequences=True), lambda k: k.layers.GRU(3, return_sequences=True),
                inputs=random_input(SHAPE, seed=3), call_kwargs=call_kwargs, keras=keras, grad_rtol=1e-4)


# --- masks ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, go_backwards", [("SimpleRNN", True), ("LSTM", False), ("GRU", True)])
def test_mask_keeps_previous_state_like_keras(keras, name, go_backwards):
    config = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    _, mine = check_layer(lambda: LAYERS[name](3, **config), lambda k: getattr(k.layers, name)(3, **config),
                          inputs=random_input(SHAPE, seed=5), call_kwargs={"mask": right_padded_mask()},
                          keras=keras, grad_rtol=1e-4)
    if not go_backwards:
        # The padded sample's last states are those after its last real step, and the padded
        # timesteps repeat the previous output (Keras's behaviour).
        np.testing.assert_allclose(mine[0][1, 2:], np.broadcast_to(mine[0][1, 1], (2, 3)), rtol=1e-6)
        np.testing.assert_allclose(mine[1][1], mine[0][1, 1], rtol=1e-6)


@pytest.mark.parametrize("config", [dict(return_sequences=True), dict(),
                                    dict(return_sequences=True, return_state=True)])
def test_registered_mask_reaches_the_layer_and_propagates(keras, config):
    # The mask is attached to the input, as Embedding(mask_zero=True) leaves it; the checker
    # compares the output masks with Keras's (return_sequences keeps it, on the sequence only).
    _, outputs = check_layer(lambda: LSTM(3, **config), lambda k: k.layers.LSTM(3, **config),
                             inputs=random_input(SHAPE, seed=6), input_masks={0: right_padded_mask()},
                             keras=keras, grad_rtol=1e-4)
    sequence = outputs[0] if isinstance(outputs, tuple) else outputs
    assert (get_mask(sequence) is not None) == config.get("return_sequences", False)


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
    layer, _ = check_layer(lambda: Bidirectional(GRU(3), merge_mode=merge_mode),
                           lambda k: k.layers.Bidirectional(k.layers.GRU(3), merge_mode=merge_mode),
                           inputs=random_input(SHAPE, seed=14), keras=keras, grad_rtol=1e-4)
    assert layer.compute_output_shape((None, 4, 3)) == (None, 3)


@pytest.mark.parametrize("merge_mode", [None, "concat"])
def test_bidirectional_mask_state_and_no_merge_match_keras(keras, merge_mode):
    states = [random_input((2, 3), seed=20), random_input((2, 3), seed=21)]
    config = dict(return_sequences=True, return_state=True)
    layer, mine = check_layer(
        lambda: Bidirectional(GRU(3, **config), merge_mode=merge_mode),
        lambda k: k.layers.Bidirectional(k.layers.GRU(3, **config), merge_mode=merge_mode),
        inputs=random_input(SHAPE, seed=7), call_kwargs={"mask": right_padded_mask(), "initial_state": states},
        keras=keras, grad_rtol=1e-4,
    )
    if merge_mode is None:
        assert len(mine) == 4  # forward output, backward output, forward state, backward state
        assert layer.compute_output_shape((None, 4, 3)) == ((None, 4, 3), (None, 4, 3), (None, 3), (None, 3))
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
    # A cell is called on (inputs, states) and returns (output, new_states); cells have no
    # compute_output_shape (in Keras either): the output shapes are compared with Keras's.
    n_states = 2 if cell_class is LSTMCell else 1
    states = [random_input((2, 3), seed=30 + i) for i in range(n_states)]
    _, (out, new_states) = check_layer(lambda: cell_class(3), lambda k: getattr(k.layers, keras_name)(3),
                                       inputs=random_input((2, 5), seed=9), args=[states], keras=keras,
                                       check_output_shape=False, grad_rtol=1e-4)
    assert out.shape == (2, 3) and len(new_states) == n_states


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
    assert type(RNN([SimpleRNNCell(2), SimpleRNNCell(2)]).cell).__name__ == "StackedRNNCells"  # as Keras
    with pytest.raises(ValueError, match="rank 3"):
        SimpleRNN(2)(jnp.ones((2, 3)))
