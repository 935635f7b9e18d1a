"""A Functional model lists its layers (and so its weights) in Keras's order, so that
``get_weights()`` of a Keras model with the same graph can be copied in with ``set_weights``."""

import numpy as np
import pytest

import lamina as lm


def _seq2seq(k):
    encoder_input = k.layers.Input(shape=(None,))
    embedded = k.layers.Embedding(50, 8)(encoder_input)
    _, state_h, state_c = k.layers.LSTM(8, return_state=True, name="encoder")(embedded)
    decoder_input = k.layers.Input(shape=(None,))
    decoder_embedded = k.layers.Embedding(60, 8)(decoder_input)
    decoded = k.layers.LSTM(8, name="decoder")(decoder_embedded, initial_state=[state_h, state_c])
    return k.Model([encoder_input, decoder_input], k.layers.Dense(3)(decoded))


def _residual(k):
    inputs = k.Input(shape=(6,))
    x = k.layers.Dense(5, activation="relu")(inputs)
    skip = k.layers.Dense(5)(inputs)
    y = k.layers.Dense(5)(k.layers.Dense(4)(x))
    added = k.layers.Add()([y, skip])
    return k.Model(inputs, [k.layers.Dense(2)(added), k.layers.Dense(1)(x)])


def _shared_and_multi_input(k):
    a, b = k.Input(shape=(4,)), k.Input(shape=(3,))
    shared = k.layers.Dense(3)
    joined = k.layers.Concatenate()([shared(k.layers.Dense(3)(a)), shared(b)])
    return k.Model([a, b], k.layers.Dense(2)(joined))


@pytest.mark.parametrize("build", [_seq2seq, _residual, _shared_and_multi_input])
def test_layers_and_weights_follow_keras_order(build, keras):
    ours, theirs = build(lm), build(keras)
    assert [type(layer).__name__ for layer in ours.layers] == [type(layer).__name__ for layer in theirs.layers]
    shapes = [w.shape for w in theirs.get_weights()]
    assert [w.shape for w in ours.get_weights()] == shapes
    ours.set_weights(theirs.get_weights())  # Keras's weights drop straight in
    rng = np.random.default_rng(0)
    inputs = [rng.integers(0, 50, size=(2, 5)) if "int" in str(t.dtype) or len(t.shape) == 2 and t.shape[1] is None
              else rng.normal(size=(2, *t.shape[1:])).astype("float32") for t in theirs.inputs]
    expected = theirs.predict(inputs, verbose=0)
    got = ours.predict(inputs, verbose=0)
    for e, g in zip(expected if isinstance(expected, list) else [expected], got if isinstance(got, list) else [got]):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_one_input_given_as_a_list_of_one_array():
    """Keras accepts ``model([x])`` (and ``fit([x], y)``) for a model with one input."""
    inputs = lm.Input(shape=(6,))
    model = lm.Model(inputs, lm.layers.Dense(2)(inputs))
    x = np.ones((4, 6), "float32")
    np.testing.assert_allclose(model([x]), model(x))
    np.testing.assert_allclose(model.predict([x], verbose=0), model.predict(x, verbose=0))
    model.compile(optimizer="sgd", loss="mse")
    assert len(model.fit([x], np.zeros((4, 2)), verbose=0).history["loss"]) == 1
