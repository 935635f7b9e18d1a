"""Port of the Keras guide "Working with RNNs"
(keras-team/keras-io, guides/working_with_rnns.py; there is no guides/keras_core/ version).

Translation: ``keras`` -> ``lm``; MNIST -> scikit-learn's digits (each 8x8 image read as 8
timesteps of 8 features, instead of 28x28); the guide's TensorFlow leftovers get their JAX
equivalents: ``tf.TensorShape([a, b])`` -> the tuple ``(a, b)``, ``tf.nest.flatten`` ->
``jax.tree_util.tree_leaves``, ``tf.matmul`` / ``tf.einsum`` -> ``jnp.matmul`` / ``jnp.einsum``,
``tf.argmax`` / ``tf.expand_dims`` -> NumPy; sizes shrunk. Parameter counts, output shapes and
the numbers of built models are compared with Keras 3 (same weights).

Left out: the ``with tf.device("CPU:0")`` context and ``plt.imshow`` of the "Using CuDNN
kernels" section (TensorFlow and matplotlib; lamina picks the device through JAX). The rest
of that section (the prediction of the CPU model) is kept.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

import lamina as lm
from lamina import layers


@pytest.fixture(scope="module")
def K():
    import keras

    return keras


def test_built_in_rnn_layers_a_simple_example(capsys):
    """## Built-in RNN layers: a simple example (Embedding -> LSTM(128) -> Dense(10))."""
    model = lm.Sequential()
    # Add an Embedding layer expecting input vocab of size 1000, and
    # output embedding dimension of size 64.
    model.add(layers.Embedding(input_dim=1000, output_dim=64))
    # Add a LSTM layer with 128 internal units.
    model.add(layers.LSTM(128))
    # Add a Dense layer with 10 units.
    model.add(layers.Dense(10))

    model.summary()
    assert "0 (unbuilt)" in capsys.readouterr().out  # as Keras prints it: no input shape yet
    ids = np.random.randint(0, 1000, size=(4, 7))
    assert model(ids).shape == (4, 10)
    model.summary()
    printed = capsys.readouterr().out
    assert "164,106" in printed  # 64,000 + 98,816 + 1,290
    assert [layer.count_params() for layer in model.layers] == [64000, 98816, 1290]


def test_outputs_and_states(K):
    """## Outputs and states (return_sequences; return_state and initial_state)."""
    model = lm.Sequential()
    model.add(layers.Embedding(input_dim=1000, output_dim=64))
    # The output of GRU will be a 3D tensor of shape (batch_size, timesteps, 256)
    model.add(layers.GRU(256, return_sequences=True))
    # The output of SimpleRNN will be a 2D tensor of shape (batch_size, 128)
    model.add(layers.SimpleRNN(128))
    model.add(layers.Dense(10))
    model.summary()
    ids = np.random.randint(0, 1000, size=(2, 5))
    assert model(ids).shape == (2, 10)
    assert tuple(model.layers[1].compute_output_shape((2, 5, 64))) == (2, 5, 256)
    assert [layer.count_params() for layer in model.layers] == [64000, 247296, 49280, 1290]

    encoder_vocab = 1000
    decoder_vocab = 2000

    def seq2seq(k):
        encoder_input = k.layers.Input(shape=(None,))
        encoder_embedded = k.layers.Embedding(input_dim=encoder_vocab, output_dim=64)(
            encoder_input
        )
        # Return states in addition to output
        output, state_h, state_c = k.layers.LSTM(64, return_state=True, name="encoder")(
            encoder_embedded
        )
        encoder_state = [state_h, state_c]

        decoder_input = k.layers.Input(shape=(None,))
        decoder_embedded = k.layers.Embedding(input_dim=decoder_vocab, output_dim=64)(
            decoder_input
        )
        # Pass the 2 states to a new LSTM layer, as initial state
        decoder_output = k.layers.LSTM(64, name="decoder")(
            decoder_embedded, initial_state=encoder_state
        )
        output = k.layers.Dense(10)(decoder_output)
        return k.Model([encoder_input, decoder_input], output)

    model = seq2seq(lm)
    model.summary()
    assert model.count_params() == 64000 + 33024 + 128000 + 33024 + 650
    enc = np.random.randint(0, encoder_vocab, size=(3, 6))
    dec = np.random.randint(0, decoder_vocab, size=(3, 4))
    out = model([enc, dec])
    assert out.shape == (3, 10)
    twin = seq2seq(K)
    # Layer by layer (by position among the layers of each class), so that the numbers are
    # compared even while the model-level order differs (checked at the end).
    for ours, theirs in zip(sorted(model.layers, key=_kind_rank), sorted(twin.layers, key=_kind_rank)):
        theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(out, twin([enc, dec]), rtol=1e-5, atol=1e-6)

    # model.get_weights() lists the layers in Keras's order, so that Keras weights load.
    assert [type(layer).__name__ for layer in model.layers] == [type(layer).__name__ for layer in twin.layers]
    assert [w.shape for w in model.get_weights()] == [w.shape for w in twin.get_weights()]


def _kind_rank(layer):
    """Sort key pairing two models' layers: the class, then the creation order (the number in
    an auto-generated name; the encoder before the decoder)."""
    if layer.name in ("encoder", "decoder"):
        return type(layer).__name__, ("encoder", "decoder").index(layer.name)
    digits = "".join(ch for ch in layer.name if ch.isdigit())
    return type(layer).__name__, int(digits or -1)


def test_rnn_layers_and_rnn_cells():
    """## RNN layers and RNN cells: ``RNN(LSTMCell(10))`` computes what ``LSTM(10)`` does."""
    x = np.random.random((4, 6, 5)).astype("float32")
    built_in = layers.LSTM(10)
    generic = layers.RNN(layers.LSTMCell(10))
    expected = built_in(x)
    generic.build(x.shape)
    generic.set_weights(built_in.get_weights())
    np.testing.assert_allclose(generic(x), expected, rtol=1e-5, atol=1e-6)


def test_cross_batch_statefulness():
    """## Cross-batch statefulness (``stateful=True``, ``reset_states()``)."""
    paragraph1 = np.random.random((20, 10, 50)).astype(np.float32)
    paragraph2 = np.random.random((20, 10, 50)).astype(np.float32)
    paragraph3 = np.random.random((20, 10, 50)).astype(np.float32)

    lstm_layer = layers.LSTM(64, stateful=True)
    first = np.asarray(lstm_layer(paragraph1))
    output = lstm_layer(paragraph2)
    output = lstm_layer(paragraph3)

    # The state carried over: the three calls equal one call on the whole sequence.
    whole = layers.LSTM(64)
    whole(paragraph1)
    whole.set_weights(lstm_layer.get_weights())
    np.testing.assert_allclose(
        output, whole(np.concatenate([paragraph1, paragraph2, paragraph3], axis=1)),
        rtol=1e-4, atol=1e-5)

    # reset_states() will reset the cached state to the original initial_state.
    # If no initial_state was provided, zero-states will be used by default.
    lstm_layer.reset_states()
    np.testing.assert_allclose(lstm_layer(paragraph1), first, rtol=1e-5, atol=1e-6)


def test_rnn_state_reuse():
    """### RNN State Reuse (``layer.states`` as another layer's ``initial_state``)."""
    paragraph1 = np.random.random((20, 10, 50)).astype(np.float32)
    paragraph2 = np.random.random((20, 10, 50)).astype(np.float32)
    paragraph3 = np.random.random((20, 10, 50)).astype(np.float32)

    lstm_layer = layers.LSTM(64, stateful=True)
    output = lstm_layer(paragraph1)
    output = lstm_layer(paragraph2)

    existing_state = lstm_layer.states
    # The recorded states are not weights.
    assert len(lstm_layer.weights) == 3
    assert [tuple(s.shape) for s in existing_state] == [(20, 64), (20, 64)]

    new_lstm_layer = layers.LSTM(64)
    new_output = new_lstm_layer(paragraph3, initial_state=existing_state)
    assert new_output.shape == (20, 64)
    # With the same weights, the new layer continues where the stateful one stopped.
    new_lstm_layer.set_weights(lstm_layer.get_weights())
    new_output = new_lstm_layer(paragraph3, initial_state=existing_state)
    np.testing.assert_allclose(new_output, lstm_layer(paragraph3), rtol=1e-5, atol=1e-6)
    del output


def test_bidirectional_rnns():
    """## Bidirectional RNNs."""
    model = lm.Sequential()
    model.add(
        layers.Bidirectional(layers.LSTM(64, return_sequences=True), input_shape=(5, 10))
    )
    model.add(layers.Bidirectional(layers.LSTM(32)))
    model.add(layers.Dense(10))
    model.summary()
    assert [layer.count_params() for layer in model.layers] == [38400, 41216, 650]

    x = np.random.random((3, 5, 10)).astype("float32")
    assert model(x).shape == (3, 10)
    # (Bidirectional's numbers against Keras are the layer checker's business, tests/layers.)


def test_performance_optimization_and_cudnn_kernels(K):
    """## Performance optimization and CuDNN kernels / ### Using CuDNN kernels when available."""
    batch_size = 64
    # Each digit is a (8, 8) sequence (height is treated like time).
    input_dim = 8

    units = 64
    output_size = 10  # labels are from 0 to 9

    # Build the RNN model
    def build_model(allow_cudnn_kernel=True):
        if allow_cudnn_kernel:
            # The LSTM layer with default options uses CuDNN.
            lstm_layer = lm.layers.LSTM(units, input_shape=(None, input_dim))
        else:
            # Wrapping a LSTMCell in a RNN layer will not use CuDNN.
            lstm_layer = lm.layers.RNN(
                lm.layers.LSTMCell(units), input_shape=(None, input_dim)
            )
        model = lm.Sequential(
            [
                lstm_layer,
                lm.layers.BatchNormalization(),
                lm.layers.Dense(output_size),
            ]
        )
        return model

    images, labels = load_digits(return_X_y=True)
    images = (images / 16.0).reshape(-1, 8, 8).astype("float32")
    x_train, y_train = images[:1152], labels[:1152]  # whole batches: one compiled step
    x_test, y_test = images[1152:1728], labels[1152:1728]
    sample, sample_label = x_train[0], y_train[0]

    model = build_model(allow_cudnn_kernel=True)
    model.compile(
        loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer="sgd",
        metrics=["accuracy"],
    )
    history = model.fit(
        x_train, y_train, validation_data=(x_test, y_test), batch_size=batch_size, epochs=1
    )
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]

    # The same model in Keras, from the same weights, trains to the same numbers (unshuffled
    # batches; BatchNormalization's moving statistics included).
    twin = K.Sequential([K.Input((None, input_dim)), K.layers.LSTM(units),
                         K.layers.BatchNormalization(), K.layers.Dense(output_size)])
    twin.set_weights(model.get_weights())
    for m, k in ((model, lm), (twin, K)):
        m.compile(loss=k.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="sgd",
                  metrics=["accuracy"])
    ours = model.fit(x_train[:256], y_train[:256], batch_size=batch_size, shuffle=False, verbose=0)
    theirs = twin.fit(x_train[:256], y_train[:256], batch_size=batch_size, shuffle=False, verbose=0)
    assert ours.history["loss"] == pytest.approx(theirs.history["loss"], rel=1e-4)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

    noncudnn_model = build_model(allow_cudnn_kernel=False)
    noncudnn_model.set_weights(model.get_weights())
    # Same weights, same function: the generic RNN(LSTMCell) predicts what LSTM predicts.
    np.testing.assert_allclose(noncudnn_model.predict(x_test), model.predict(x_test),
                               rtol=1e-4, atol=1e-5)
    noncudnn_model.compile(
        loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer="sgd",
        metrics=["accuracy"],
    )
    history = noncudnn_model.fit(
        x_train, y_train, validation_data=(x_test, y_test), batch_size=batch_size, epochs=1
    )
    assert len(history.history["val_accuracy"]) == 1

    cpu_model = build_model(allow_cudnn_kernel=True)
    cpu_model.set_weights(model.get_weights())
    result = np.argmax(cpu_model.predict_on_batch(np.expand_dims(sample, 0)), axis=1)
    assert result.shape == (1,)
    assert result[0] == np.argmax(model.predict_on_batch(sample[None]), axis=1)[0]
    del sample_label


unit_1 = 10
unit_2 = 20
unit_3 = 30


@lm.saving.register_keras_serializable()
class NestedCell(lm.layers.Layer):
    def __init__(self, unit_1, unit_2, unit_3, **kwargs):
        self.unit_1 = unit_1
        self.unit_2 = unit_2
        self.unit_3 = unit_3
        self.state_size = [(unit_1,), (unit_2, unit_3)]
        self.output_size = [(unit_1,), (unit_2, unit_3)]
        super().__init__(**kwargs)

    def build(self, input_shapes):
        # expect input_shape to contain 2 items, [(batch, i1), (batch, i2, i3)]
        i1 = input_shapes[0][1]
        i2 = input_shapes[1][1]
        i3 = input_shapes[1][2]

        self.kernel_1 = self.add_weight(
            shape=(i1, self.unit_1), initializer="uniform", name="kernel_1"
        )
        self.kernel_2_3 = self.add_weight(
            shape=(i2, i3, self.unit_2, self.unit_3),
            initializer="uniform",
            name="kernel_2_3",
        )

    def call(self, inputs, states):
        # inputs should be in [(batch, input_1), (batch, input_2, input_3)]
        # state should be in shape [(batch, unit_1), (batch, unit_2, unit_3)]
        input_1, input_2 = jax.tree_util.tree_leaves(inputs)
        s1, s2 = states

        output_1 = jnp.matmul(input_1, self.kernel_1)
        output_2_3 = jnp.einsum("bij,ijkl->bkl", input_2, self.kernel_2_3)
        state_1 = s1 + output_1
        state_2_3 = s2 + output_2_3

        output = (output_1, output_2_3)
        new_states = (state_1, state_2_3)

        return output, new_states

    def get_config(self):
        return {"unit_1": self.unit_1, "unit_2": unit_2, "unit_3": self.unit_3}


def test_rnns_with_list_dict_inputs_or_nested_inputs():
    """## RNNs with list/dict inputs, or nested inputs (a cell with nested state)."""
    i1 = 32
    i2 = 8
    i3 = 4
    batch_size = 16
    num_batches = 2
    timestep = 5

    cell = NestedCell(unit_1, unit_2, unit_3)
    rnn = lm.layers.RNN(cell)

    input_1 = lm.Input((None, i1))
    input_2 = lm.Input((None, i2, i3))

    outputs = rnn((input_1, input_2))

    model = lm.models.Model([input_1, input_2], outputs)

    # The guide (written for tf.keras) passes metrics=["accuracy"]; Keras 3 refuses one flat
    # entry for two outputs ("tuple arity mismatch"), and so does lamina: one list per output.
    model.compile(optimizer="adam", loss="mse", metrics=[["accuracy"], ["accuracy"]])

    input_1_data = np.random.random((batch_size * num_batches, timestep, i1))
    input_2_data = np.random.random((batch_size * num_batches, timestep, i2, i3))
    target_1_data = np.random.random((batch_size * num_batches, unit_1))
    target_2_data = np.random.random((batch_size * num_batches, unit_2, unit_3))
    input_data = [input_1_data, input_2_data]
    target_data = [target_1_data, target_2_data]

    # The RNN's output is the cell's output at the last timestep.
    out_1, out_2 = model.predict(input_data)
    k1, k23 = (np.asarray(w) for w in (cell.kernel_1, cell.kernel_2_3))
    np.testing.assert_allclose(out_1, input_1_data[:, -1] @ k1, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out_2, np.einsum("bij,ijkl->bkl", input_2_data[:, -1], k23), rtol=1e-4, atol=1e-6)

    history = model.fit(input_data, target_data, batch_size=batch_size)
    assert np.isfinite(history.history["loss"][0])

    # The states accumulate every step's output: return_state gives their sum over time.
    rnn_with_state = lm.layers.RNN(cell, return_state=True)
    _, state_1, state_2_3 = rnn_with_state((input_1_data, input_2_data))  # (outputs, *states)
    k1, k23 = (np.asarray(w) for w in (cell.kernel_1, cell.kernel_2_3))
    np.testing.assert_allclose(state_1, np.einsum("bti,ij->bj", input_1_data, k1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(state_2_3, np.einsum("btij,ijkl->bkl", input_2_data, k23), rtol=1e-4, atol=1e-6)
