"""lm.layers.Masking against Keras 3: outputs and the mask through the layer checker, and the
masking guide's use (Masking in front of an LSTM, in a Sequential model and a functional one)
with the same weights."""

import numpy as np
import pytest
from layer_checker import check_layer

import lamina as lm
from lamina.layers.masking import get_mask


def _padded_steps(mask_value=0.0, seed=0):
    x = np.random.default_rng(seed).normal(size=(3, 5, 4)).astype("float32")
    x[:, 1] = mask_value  # a masked step in every sample
    x[0, 3:] = mask_value  # trailing padding in one
    x[2, 0, 0] = mask_value  # one feature equal to mask_value does not mask the step
    return x


@pytest.mark.parametrize("mask_value", [0.0, -1.0, 2])
def test_masking_passes_the_checker(keras, mask_value):
    layer, _ = check_layer(lambda: lm.layers.Masking(mask_value=mask_value),
                           lambda k: k.layers.Masking(mask_value=mask_value),
                           inputs=_padded_steps(float(mask_value)), keras=keras)
    assert layer.get_config()["mask_value"] == mask_value


def test_masking_replaces_an_incoming_mask_like_keras(keras):
    incoming = np.ones((3, 5), bool)
    check_layer(lambda: lm.layers.Masking(), lambda k: k.layers.Masking(), inputs=_padded_steps(),
                input_masks={0: incoming}, keras=keras)


def test_masking_mask_values_are_the_steps_with_any_other_feature():
    x = _padded_steps()
    mask = np.asarray(lm.layers.Masking().compute_mask(x))
    np.testing.assert_array_equal(mask, np.any(x != 0.0, axis=-1))
    assert mask[2, 0] and not mask[0, 1] and not mask[0, 4]
    output = lm.layers.Masking()(x)
    np.testing.assert_array_equal(np.asarray(get_mask(output)), mask)


def test_masking_then_lstm_in_a_sequential_model_matches_keras(keras):
    # guides/understanding_masking_and_padding.py, "Masking": Masking in front of an LSTM.
    x = _padded_steps()
    theirs = keras.Sequential([keras.Input((5, 4)), keras.layers.Masking(mask_value=0.0), keras.layers.LSTM(6)])
    ours = lm.Sequential([lm.Input((5, 4)), lm.layers.Masking(mask_value=0.0), lm.layers.LSTM(6)])
    ours.build((None, 5, 4))
    ours.set_weights(theirs.get_weights())
    expected = np.asarray(theirs(x))
    np.testing.assert_allclose(np.asarray(ours(x)), expected, rtol=1e-5, atol=1e-6)
    # The mask matters: without it, the padded steps would change the last state.
    unmasked = lm.layers.LSTM(6)
    unmasked(x)
    unmasked.set_weights(theirs.get_weights())
    assert not np.allclose(np.asarray(unmasked(x)), expected, atol=1e-4)


def test_masking_then_lstm_in_a_functional_model_matches_keras_and_trains(keras):
    x = _padded_steps()
    y = np.random.default_rng(1).normal(size=(3, 1)).astype("float32")

    def build(module):
        inputs = module.Input((5, 4))
        hidden = module.layers.LSTM(3, return_sequences=True)(module.layers.Masking()(inputs))
        outputs = module.layers.Dense(1)(module.layers.GlobalAveragePooling1D()(hidden))
        return module.Model(inputs, outputs)

    theirs, ours = build(keras), build(lm)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), rtol=1e-5, atol=1e-6)
    ours.compile(optimizer=lm.optimizers.SGD(0.1), loss="mse")
    losses = ours.fit(x, y, batch_size=3, epochs=3, shuffle=False, verbose=0).history["loss"]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("mask_value", ["0", float("nan"), None, True])
def test_masking_refuses_a_non_number_with_the_layer_name(mask_value):
    with pytest.raises(ValueError, match=r"Masking 'masking(_\d+)?': mask_value must be a number"):
        lm.layers.Masking(mask_value=mask_value)


def test_masking_accepts_numpy_scalars_and_saves_plain_numbers():
    layer = lm.layers.Masking(mask_value=np.float32(0.5))
    assert lm.layers.deserialize(lm.layers.serialize(layer)).mask_value == 0.5
