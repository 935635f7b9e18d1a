"""summary(): rows per layer, output shapes, and totals equal to Keras's counts."""

import lamina as lm


def capture(model, **kwargs):
    lines = []
    model.summary(print_fn=lines.append, **kwargs)
    return "\n".join(lines)


def test_sequential_summary_matches_keras_counts(keras):
    mine = lm.Sequential([lm.Input(shape=(784,)), lm.layers.Dense(64, activation="relu"), lm.layers.Dense(10)])
    theirs = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
    text = capture(mine)
    assert f"Total params: {theirs.count_params():,}" in text
    assert "(None, 64)" in text and "(None, 10)" in text
    assert "Non-trainable params: 0" in text


def test_functional_summary_shows_connections_and_frozen_counts(keras):
    x = lm.Input(shape=(4,), name="x")
    hidden = lm.layers.Dense(3, name="hidden")
    model = lm.Model(x, lm.layers.Dense(2, name="head")(hidden(x)))
    hidden.trainable = False
    text = capture(model)
    assert "x[0][0]" in text and "hidden[0][0]" in text
    assert "Trainable params: 8" in text and "Non-trainable params: 15" in text


def test_nested_models_expand_on_request():
    inner = lm.Sequential([lm.Input(shape=(2,)), lm.layers.Dense(3, name="inner_dense")])
    x = lm.Input(shape=(2,))
    outer = lm.Model(x, lm.layers.Dense(1)(inner(x)))
    assert "inner_dense" not in capture(outer)
    assert "inner_dense" in capture(outer, expand_nested=True)
