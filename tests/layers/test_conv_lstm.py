"""``ConvLSTM1D/2D/3D`` against Keras 3 (initial states, strides, dilation, both data formats,
going backwards); masks, dropout in training and stateful carrying against the formulas they
must follow (Keras's JAX backend mishandles masks of states with spatial axes: its masked
ConvLSTM1D/3D calls fail and ConvLSTM2D's gives other numbers); training under ``fit`` and
Keras files."""

import inspect

import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm

# Gradients are compared on the 2-D case (weights, input and initial states): the three ranks run
# the same step function, and each gradient check compiles the loop's backward pass twice.
CASES = [
    ("ConvLSTM1D", dict(filters=2, kernel_size=3, strides=2, go_backwards=True), (2, 3, 7, 3), {}, False),
    ("ConvLSTM2D", dict(filters=2, kernel_size=(3, 2), padding="same", data_format="channels_first",
                        return_sequences=True, return_state=True), (2, 3, 2, 5, 4),
     {"initial_state": [random_input((2, 2, 5, 4), seed=5), random_input((2, 2, 5, 4), seed=6)]}, True),
    ("ConvLSTM3D", dict(filters=2, kernel_size=2, dilation_rate=2, use_bias=False, return_sequences=True),
     (1, 2, 4, 5, 3, 1), {}, False),
]


@pytest.mark.parametrize("name, config, input_shape, call_kwargs, grads", CASES, ids=[c[0] for c in CASES])
def test_conv_lstm_matches_keras(keras, name, config, input_shape, call_kwargs, grads):
    check_layer(lambda: getattr(lm.layers, name)(**config), lambda k: getattr(k.layers, name)(**config),
                input_shape, call_kwargs=call_kwargs, keras=keras, check_grads=grads)


def test_a_masked_step_keeps_h_and_c_and_repeats_the_previous_output():
    x = random_input((2, 4, 5, 2), seed=2)
    mask = np.array([[1, 1, 0, 1], [1, 0, 1, 1]], bool)
    layer = lm.layers.ConvLSTM1D(3, 3, padding="same", return_sequences=True, return_state=True)
    outputs = layer(x, mask=mask)
    assert np.array_equal(np.asarray(lm.layers.masking.get_mask(outputs[0])), mask)  # passed on
    out, h, c = (np.asarray(a) for a in outputs)
    # The same as running each sequence without its masked step.
    kept_out, kept_h, kept_c = (np.asarray(a) for a in layer(x[mask].reshape(2, 3, 5, 2)))
    np.testing.assert_allclose(out[mask].reshape(2, 3, 5, 3), kept_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, kept_h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c, kept_c, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[0, 2], out[0, 1])
    np.testing.assert_array_equal(out[1, 1], out[1, 0])


def _with_weights(config, kernel, recurrent_kernel, bias):
    layer = lm.layers.ConvLSTM1D(1, 1, return_sequences=True, **config)
    layer.build((None, 4, 8, 1))
    layer.set_weights([np.reshape(kernel, (1, 1, 4)), np.reshape(recurrent_kernel, (1, 1, 4)), np.asarray(bias)])
    return layer


@pytest.mark.parametrize("which", ["dropout", "recurrent_dropout"])
def test_dropout_in_training_drops_one_gate_input_per_position_for_the_whole_sequence(which):
    """1x1 kernels keep positions independent; only the cell gate (c) reads the dropped tensor,
    so each sequence at each position must equal the inference output with that tensor scaled
    by 0 or 1 / (1 - rate) = 2, the same factor at every step, and about half by 0."""
    x = random_input((64, 4, 8, 1), seed=3)
    kernel, recurrent, bias = np.array([0.7, -0.4, 1.3, 0.5]), np.array([0.3, 0.6, -0.9, 0.8]), np.zeros(4)
    gate = np.array([0.0, 0.0, 1.0, 0.0])  # the cell gate's column
    if which == "dropout":
        kernel = kernel * gate
        candidates = [x * 0.0, x * 2.0]
        plain = [_with_weights({}, kernel, recurrent, bias)] * 2
    else:
        recurrent = recurrent * gate
        candidates = [x, x]
        plain = [_with_weights({}, kernel, recurrent * f, bias) for f in (0.0, 2.0)]
    dropped = _with_weights({which: 0.5, "seed": 7}, kernel, recurrent, bias)
    train_step = lm.jit(lambda v: dropped(v, training=True))  # as inside fit: the seed state advances
    out = np.asarray(train_step(x))
    zero, kept = (np.asarray(layer(c)) for layer, c in zip(plain, candidates))
    assert not np.allclose(zero, kept)
    # One decision per (sample, position), for all four steps at once.
    is_zero = np.isclose(out, zero, rtol=1e-5, atol=1e-6).all(axis=1)
    is_kept = np.isclose(out, kept, rtol=1e-5, atol=1e-6).all(axis=1)
    assert (is_zero | is_kept).all()
    assert 0.4 < is_zero.mean() < 0.6  # 512 draws at rate 0.5
    np.testing.assert_allclose(np.asarray(dropped(x, training=False)), np.asarray(_with_weights(
        {}, kernel, recurrent, bias)(x)), rtol=1e-6)  # inference drops nothing
    assert not np.allclose(np.asarray(train_step(x)), out)  # fresh masks at each step


def test_stateful_layer_carries_h_and_c_between_batches():
    x = random_input((2, 6, 5, 2), seed=1)
    whole = lm.layers.ConvLSTM1D(3, 3, padding="same", return_sequences=True)
    expected = np.asarray(whole(x))
    assert [(w.name, w.shape) for w in whole.weights] == [
        ("kernel", (3, 2, 12)), ("recurrent_kernel", (3, 3, 12)), ("bias", (12,))]
    np.testing.assert_array_equal(np.asarray(whole.cell.bias.value), [0] * 3 + [1] * 3 + [0] * 6)  # unit_forget_bias
    stateful = lm.layers.ConvLSTM1D(3, 3, padding="same", return_sequences=True, stateful=True)
    stateful.build((2, 6, 5, 2))
    stateful.set_weights(whole.get_weights())
    first, second = stateful(x[:, :3]), stateful(x[:, 3:])
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), expected, rtol=1e-5, atol=1e-6)
    assert [v.shape for v in stateful.states] == [(2, 5, 3), (2, 5, 3)]
    stateful.reset_state()
    np.testing.assert_allclose(np.asarray(stateful(x[:, 3:])), np.asarray(whole(x[:, 3:])), rtol=1e-5, atol=1e-6)


def test_arguments_and_config_are_keras_s(keras):
    params = lambda cls: list(inspect.signature(cls.__init__).parameters)  # noqa: E731
    assert params(lm.layers.ConvLSTM2D) == params(keras.layers.ConvLSTM2D)
    layer = lm.layers.ConvLSTM2D(2, 3, recurrent_dropout=0.1)
    mine, reference = layer.get_config(), keras.layers.ConvLSTM2D(2, 3, recurrent_dropout=0.1).get_config()
    assert list(mine) == list(reference)
    for key in ("kernel_size", "strides", "dilation_rate", "padding", "data_format", "activation",
                "unit_forget_bias", "recurrent_dropout", "unroll"):
        assert mine[key] == reference[key], key
    assert (layer.filters, layer.kernel_size, layer.recurrent_dropout) == (2, (3, 3), 0.1)


def test_round_trips_through_keras_files(keras, tmp_path):
    model = lm.Sequential([lm.Input((3, 6, 1)), lm.layers.ConvLSTM1D(2, 3, dropout=0.2, seed=1)])
    x = random_input((2, 3, 6, 1))
    path = str(tmp_path / "conv_lstm.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)


def test_bad_inputs_and_states_name_the_layer():
    with pytest.raises(ValueError, match=r"'cl'.*expected rank 5.*\(batch, time, \*spatial, channels\).*\(2, 3, 4\)"):
        lm.layers.ConvLSTM2D(2, 3, name="cl")(np.ones((2, 3, 4), "float32"))
    layer = lm.layers.ConvLSTM1D(2, 3, name="cl1")
    with pytest.raises(ValueError, match=r"'cl1'.*initial state c has shape \(2, 4, 2\); expected \(2, 3, 2\)"):
        layer(np.ones((2, 3, 5, 1), "float32"), initial_state=[np.zeros((2, 3, 2)), np.zeros((2, 4, 2))])
    with pytest.raises(ValueError, match=r"'cl2/cell'.*spatial and channel axes.*must be known"):
        lm.layers.ConvLSTM1D(2, 3, name="cl2").build((None, 4, None, 3))
    with pytest.raises(ValueError, match=r"'cl3'.*stateful=True needs a fixed batch size"):
        lm.layers.ConvLSTM1D(2, 3, stateful=True, name="cl3").build((None, 4, 5, 3))
    with pytest.raises(ValueError, match=r"ConvLSTM2D 'cl4'.*strides.*dilation_rate"):
        lm.layers.ConvLSTM2D(2, 3, strides=2, dilation_rate=2, name="cl4")
