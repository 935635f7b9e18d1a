"""Port of the Keras 3 guide "The Functional API".

Source: keras-team/keras-io, ``guides/keras_core/functional_api.py`` (the Keras 3 text; the
top-level ``guides/functional_api.py`` is the TensorFlow version). One test per section, with
the smallest faithful change: ``keras`` -> ``lm``, ``keras.ops`` -> ``jax.numpy``, MNIST ->
scikit-learn's ``load_digits`` (64 features instead of 784), CIFAR-10 -> small random arrays,
far fewer samples, epochs and a smaller vocabulary.

Changes beyond the mechanical translation:
- ``model.save("my_model.keras")`` -> ``model.save(".../my_model.lamina")``: lamina's own file
  format is ``.lamina``.
- "Extract and reuse nodes in the graph of layers" uses a small Functional model built here
  instead of ``keras.applications.VGG19()`` (which downloads pretrained ImageNet weights); the
  feature-extraction pattern itself is unchanged.
- ``keras.utils.plot_model`` needs pydot and Graphviz; where they are not installed the test
  checks the documented behaviour instead (an ImportError that names the ``plot`` extra).
"""

import importlib.util
import shutil

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

import lamina as lm
from lamina import layers


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype("float32"), y.astype("int32")


def _mnist_model():
    inputs = lm.Input(shape=(64,))
    dense = layers.Dense(64, activation="relu")
    x = dense(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    return lm.Model(inputs=inputs, outputs=outputs, name="mnist_model")


def test_introduction(keras, capsys):
    """Section "Introduction": Input shape/dtype, a 3-layer graph, summary()."""
    inputs = lm.Input(shape=(784,))
    img_inputs = lm.Input(shape=(32, 32, 3))
    assert tuple(inputs.shape) == (None, 784)
    assert tuple(img_inputs.shape) == (None, 32, 32, 3)
    assert str(inputs.dtype) == "float32"

    dense = layers.Dense(64, activation="relu")
    x = dense(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    model = lm.Model(inputs=inputs, outputs=outputs, name="mnist_model")
    assert model.name == "mnist_model"
    assert tuple(outputs.shape) == (None, 10)

    model.summary()
    text = capsys.readouterr().out
    assert "mnist_model" in text
    assert "55,050" in text  # 50,240 + 4,160 + 650, as the guide's summary shows

    kin = keras.Input(shape=(784,))
    kx = keras.layers.Dense(64, activation="relu")(keras.layers.Dense(64, activation="relu")(kin))
    assert model.count_params() == keras.Model(kin, keras.layers.Dense(10)(kx)).count_params()


def test_plot_model(tmp_path):
    """Section "Introduction": keras.utils.plot_model(model, ..., show_shapes=True)."""
    model = _mnist_model()
    target = tmp_path / "my_first_model_with_shape_info.png"
    have_graphviz = importlib.util.find_spec("pydot") is not None and shutil.which("dot") is not None
    if have_graphviz:
        lm.utils.plot_model(model, str(target), show_shapes=True)
        assert target.stat().st_size > 0
    else:
        with pytest.raises(ImportError, match=r"lamina\[plot\]"):
            lm.utils.plot_model(model, str(target), show_shapes=True)


def test_training_evaluation_and_inference(digits, keras):
    """Section "Training, evaluation, and inference": fit with validation_split, then evaluate."""
    x, y = digits
    x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]
    model = _mnist_model()
    model.compile(
        loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=lm.optimizers.RMSprop(),
        metrics=["accuracy"],
    )
    history = model.fit(x_train, y_train, batch_size=64, epochs=2, validation_split=0.2, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert history.history["loss"][1] < history.history["loss"][0]

    test_scores = model.evaluate(x_test, y_test, verbose=2)
    assert len(test_scores) == 2
    assert test_scores[1] > 0.5  # chance is 0.1
    logits = model.predict(x_test, verbose=0)
    np.testing.assert_allclose(test_scores[1], np.mean(np.argmax(logits, axis=1) == y_test), atol=1e-6)

    # The same trained weights evaluated by Keras give the same loss and accuracy.
    kin = keras.Input(shape=(64,))
    kx = keras.layers.Dense(64, activation="relu")(keras.layers.Dense(64, activation="relu")(kin))
    kmodel = keras.Model(kin, keras.layers.Dense(10)(kx))
    kmodel.set_weights(model.get_weights())
    kmodel.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    np.testing.assert_allclose(test_scores, kmodel.evaluate(x_test, y_test, verbose=0), rtol=1e-5)


def test_save_and_serialize(digits, tmp_path):
    """Section "Save and serialize": model.save() then keras.models.load_model()."""
    x, y = digits
    model = _mnist_model()
    model.compile(loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer=lm.optimizers.RMSprop(), metrics=["accuracy"])
    model.fit(x[:256], y[:256], batch_size=64, epochs=1, verbose=0)
    expected = model.predict(x[:32], verbose=0)
    path = str(tmp_path / "my_model.lamina")
    model.save(path)
    del model
    model = lm.models.load_model(path)
    np.testing.assert_allclose(model.predict(x[:32], verbose=0), expected, rtol=1e-6)
    assert model.name == "mnist_model"


def _conv_encoder(input_name):
    encoder_input = lm.Input(shape=(28, 28, 1), name=input_name)
    x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    encoder_output = layers.GlobalMaxPooling2D()(x)
    return encoder_input, encoder_output


def _conv_decoder_layers(x):
    x = layers.Reshape((4, 4, 1))(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu")(x)
    x = layers.UpSampling2D(3)(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    return layers.Conv2DTranspose(1, 3, activation="relu")(x)


def test_same_graph_of_layers_defines_multiple_models():
    """Section "Use the same graph of layers to define multiple models": encoder + autoencoder."""
    encoder_input, encoder_output = _conv_encoder("img")
    encoder = lm.Model(encoder_input, encoder_output, name="encoder")
    decoder_output = _conv_decoder_layers(encoder_output)
    autoencoder = lm.Model(encoder_input, decoder_output, name="autoencoder")

    assert tuple(encoder_output.shape) == (None, 16)
    assert tuple(decoder_output.shape) == (None, 28, 28, 1)  # "the same as the input shape"
    # Parameter counts of the guide's summaries.
    assert encoder.count_params() == 18_672
    assert autoencoder.count_params() == 28_241
    imgs = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    assert autoencoder(imgs).shape == (2, 28, 28, 1)
    # The two models share the encoder's layers, hence its weights.
    np.testing.assert_allclose(np.asarray(encoder(imgs)), np.asarray(lm.Model(encoder_input, encoder_output)(imgs)))


def test_all_models_are_callable_like_layers():
    """Section "All models are callable, just like layers": nesting and ensembling."""
    encoder_input, encoder_output = _conv_encoder("original_img")
    encoder = lm.Model(encoder_input, encoder_output, name="encoder")
    decoder_input = lm.Input(shape=(16,), name="encoded_img")
    decoder = lm.Model(decoder_input, _conv_decoder_layers(decoder_input), name="decoder")

    autoencoder_input = lm.Input(shape=(28, 28, 1), name="img")
    encoded_img = encoder(autoencoder_input)
    decoded_img = decoder(encoded_img)
    autoencoder = lm.Model(autoencoder_input, decoded_img, name="autoencoder")
    assert tuple(decoded_img.shape) == (None, 28, 28, 1)
    assert autoencoder.count_params() == encoder.count_params() + decoder.count_params()
    imgs = np.random.default_rng(1).random((2, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(autoencoder(imgs)), np.asarray(decoder(encoder(imgs))), rtol=1e-5, atol=1e-6)

    def get_model():
        inputs = lm.Input(shape=(128,))
        outputs = layers.Dense(1)(inputs)
        return lm.Model(inputs, outputs)

    model1, model2, model3 = get_model(), get_model(), get_model()
    inputs = lm.Input(shape=(128,))
    y1, y2, y3 = model1(inputs), model2(inputs), model3(inputs)
    outputs = layers.average([y1, y2, y3])
    ensemble_model = lm.Model(inputs=inputs, outputs=outputs)
    x = np.random.default_rng(2).random((4, 128)).astype("float32")
    mean = (np.asarray(model1(x)) + np.asarray(model2(x)) + np.asarray(model3(x))) / 3
    np.testing.assert_allclose(np.asarray(ensemble_model(x)), mean, rtol=1e-5)


NUM_TAGS, NUM_WORDS, NUM_DEPARTMENTS = 12, 1000, 4


def _ticket_model(outputs_as="dict"):
    title_input = lm.Input(shape=(None,), name="title")
    body_input = lm.Input(shape=(None,), name="body")
    tags_input = lm.Input(shape=(NUM_TAGS,), name="tags")
    title_features = layers.Embedding(NUM_WORDS, 64)(title_input)
    body_features = layers.Embedding(NUM_WORDS, 64)(body_input)
    title_features = layers.LSTM(128)(title_features)
    body_features = layers.LSTM(32)(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(NUM_DEPARTMENTS, name="department")(x)
    if outputs_as == "list":  # the guide's earlier (tf.keras) text: outputs=[priority_pred, department_pred]
        return lm.Model(inputs=[title_input, body_input, tags_input], outputs=[priority_pred, department_pred])
    return lm.Model(inputs=[title_input, body_input, tags_input], outputs={"priority": priority_pred, "department": department_pred})


def _bce_logits(y, logits):
    return np.mean(np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits))))


def _cce_logits(y, logits):
    log_softmax = logits - logits.max(-1, keepdims=True)
    log_softmax = log_softmax - np.log(np.exp(log_softmax).sum(-1, keepdims=True))
    return np.mean(-(y * log_softmax).sum(-1))


@pytest.mark.parametrize("outputs_as", ["dict", "list"])
def test_models_with_multiple_inputs_and_outputs(outputs_as):
    """Section "Models with multiple inputs and outputs": losses by list and by output name.

    Keras 3's text returns the outputs as a dict; its earlier text as a list -- "since the
    output layers have different names", losses, weights and targets keyed by layer name must
    pair with the right output either way."""
    model = _ticket_model(outputs_as)
    model.compile(
        optimizer=lm.optimizers.RMSprop(1e-3),
        loss=[lm.losses.BinaryCrossentropy(from_logits=True), lm.losses.CategoricalCrossentropy(from_logits=True)],
        loss_weights=[1.0, 0.2],
    )
    model.compile(
        optimizer=lm.optimizers.RMSprop(1e-3),
        loss={
            "priority": lm.losses.BinaryCrossentropy(from_logits=True),
            "department": lm.losses.CategoricalCrossentropy(from_logits=True),
        },
        loss_weights={"priority": 1.0, "department": 0.2},
    )
    rng = np.random.default_rng(3)
    n = 64
    title_data = rng.integers(NUM_WORDS, size=(n, 6))
    body_data = rng.integers(NUM_WORDS, size=(n, 12))
    tags_data = rng.integers(2, size=(n, NUM_TAGS)).astype("float32")
    priority_targets = rng.random(size=(n, 1)).astype("float32")
    dept_targets = rng.integers(2, size=(n, NUM_DEPARTMENTS)).astype("float32")
    inputs = {"title": title_data, "body": body_data, "tags": tags_data}
    targets = {"priority": priority_targets, "department": dept_targets}

    # Targets, losses and weights are paired with outputs by name: the total loss must be
    # BCE(priority) + 0.2 * CCE(department), never the other pairing.
    preds = model.predict(inputs, verbose=0)
    if outputs_as == "list":
        preds = dict(zip(["priority", "department"], preds))
    assert set(preds) == {"priority", "department"}
    assert preds["priority"].shape == (n, 1) and preds["department"].shape == (n, NUM_DEPARTMENTS)
    expected = _bce_logits(priority_targets, preds["priority"]) + 0.2 * _cce_logits(dept_targets, preds["department"])
    logs = model.evaluate(inputs, targets, batch_size=n, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-4)

    assert sorted(logs) == ["department_loss", "loss", "priority_loss"]
    if outputs_as == "dict":  # training is the same code for both forms: run it once
        history = model.fit(inputs, targets, epochs=2, batch_size=32, verbose=0)
        assert sorted(history.history) == ["department_loss", "loss", "priority_loss"]
        assert np.all(np.isfinite(history.history["loss"]))


def test_toy_resnet_model():
    """Section "A toy ResNet model": residual connections with layers.add, trained with fit()."""
    inputs = lm.Input(shape=(32, 32, 3), name="img")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    block_1_output = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_1_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_2_output = layers.add([x, block_1_output])
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_2_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_3_output = layers.add([x, block_2_output])
    x = layers.Conv2D(64, 3, activation="relu")(block_3_output)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10)(x)
    model = lm.Model(inputs, outputs, name="toy_resnet")
    assert model.count_params() == 223_242  # the guide's summary total
    assert tuple(block_1_output.shape) == (None, 9, 9, 64)

    rng = np.random.default_rng(4)
    x_train = rng.random((40, 32, 32, 3)).astype("float32")
    y_train = lm.utils.to_categorical(rng.integers(10, size=(40, 1)), 10)
    assert y_train.shape == (40, 10)
    model.compile(optimizer=lm.optimizers.RMSprop(1e-3), loss=lm.losses.CategoricalCrossentropy(from_logits=True), metrics=["acc"])
    history = model.fit(x_train, y_train, batch_size=16, epochs=1, validation_split=0.2, verbose=0)
    assert sorted(history.history) == ["acc", "loss", "val_acc", "val_loss"]


def test_shared_layers():
    """Section "Shared layers": one Embedding called on two inputs holds one set of weights."""
    shared_embedding = layers.Embedding(1000, 128)
    text_input_a = lm.Input(shape=(None,), dtype="int32")
    text_input_b = lm.Input(shape=(None,), dtype="int32")
    encoded_input_a = shared_embedding(text_input_a)
    encoded_input_b = shared_embedding(text_input_b)
    assert tuple(encoded_input_a.shape) == (None, None, 128)
    model = lm.Model([text_input_a, text_input_b], [encoded_input_a, encoded_input_b])
    assert len(model.weights) == 1 and model.count_params() == 128_000
    a, b = model([np.array([[1, 2]]), np.array([[1, 2, 3]])])
    np.testing.assert_array_equal(np.asarray(a)[0], np.asarray(b)[0, :2])


def test_extract_and_reuse_nodes_in_the_graph_of_layers():
    """Section "Extract and reuse nodes in the graph of layers" (feature extraction).

    A small convnet stands in for VGG19 (pretrained weights would be a download).
    """
    inputs = lm.Input(shape=(16, 16, 3))
    x = layers.Conv2D(8, 3, activation="relu", name="block1_conv1")(inputs)
    x = layers.MaxPooling2D(2, name="block1_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(5, name="predictions")(x)
    base = lm.Model(inputs, outputs, name="small_vgg")

    features_list = [layer.output for layer in base.layers]
    feat_extraction_model = lm.Model(inputs=base.input, outputs=features_list)
    img = np.random.random((1, 16, 16, 3)).astype("float32")
    extracted_features = feat_extraction_model(img)
    assert len(extracted_features) == len(base.layers)
    assert [tuple(f.shape) for f in extracted_features][-3:] == [(1, 7, 7, 8), (1, 392), (1, 5)]
    np.testing.assert_allclose(np.asarray(extracted_features[-1]), np.asarray(base(img)), rtol=1e-5)


class CustomDense(layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)

    def call(self, inputs):
        return jnp.matmul(inputs, self.w) + self.b

    def get_config(self):
        return {"units": self.units}


def test_extend_the_api_using_custom_layers():
    """Section "Extend the API using custom layers": CustomDense, get_config, Model.from_config."""
    inputs = lm.Input((4,))
    outputs = CustomDense(10)(inputs)
    model = lm.Model(inputs, outputs)
    assert tuple(outputs.shape) == (None, 10)
    config = model.get_config()
    new_model = lm.Model.from_config(config, custom_objects={"CustomDense": CustomDense})
    assert isinstance(new_model.layers[-1], CustomDense) and new_model.layers[-1].units == 10
    assert new_model(np.ones((2, 4), "float32")).shape == (2, 10)


def test_when_to_use_the_functional_api():
    """Section "When to use the functional API": the MLP both ways, and validation at definition."""
    inputs = lm.Input(shape=(32,))
    x = layers.Dense(64, activation="relu")(inputs)
    outputs = layers.Dense(10)(x)
    mlp = lm.Model(inputs, outputs)

    class MLP(lm.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense_1 = layers.Dense(64, activation="relu")
            self.dense_2 = layers.Dense(10)

        def call(self, inputs):
            x = self.dense_1(inputs)
            return self.dense_2(x)

    sub = MLP()
    _ = sub(jnp.zeros((1, 32)))
    sub.set_weights(mlp.get_weights())
    x = np.random.default_rng(5).random((3, 32)).astype("float32")
    np.testing.assert_allclose(np.asarray(sub(x)), np.asarray(mlp(x)), rtol=1e-6)

    # "Model validation while defining its connectivity graph": a bad call fails at definition.
    with pytest.raises(ValueError, match="conv2d"):
        layers.Conv2D(4, 3)(inputs)


def test_mix_and_match_api_styles():
    """Section "Mix-and-match API styles": a Functional model inside a custom RNN and vice versa."""
    units, timesteps, input_dim, batch_size = 32, 10, 5, 16
    inputs = lm.Input((None, units))
    x = layers.GlobalAveragePooling1D()(inputs)
    outputs = layers.Dense(1)(x)
    model = lm.Model(inputs, outputs)

    class CustomRNN(layers.Layer):
        def __init__(self, classifier=None):
            super().__init__()
            self.units = units
            self.projection_1 = layers.Dense(units=units, activation="tanh")
            self.projection_2 = layers.Dense(units=units, activation="tanh")
            self.classifier = classifier if classifier is not None else layers.Dense(1)

        def call(self, inputs):
            outputs = []
            state = jnp.zeros(shape=(inputs.shape[0], self.units))
            for t in range(inputs.shape[1]):
                x = inputs[:, t, :]
                h = self.projection_1(x)
                y = h + self.projection_2(state)
                state = y
                outputs.append(y)
            features = jnp.stack(outputs, axis=1)
            return self.classifier(features)

    rnn_model = CustomRNN(classifier=model)
    out = rnn_model(jnp.zeros((1, timesteps, input_dim)))
    assert out.shape == (1, 1)
    assert len(rnn_model.weights) == 6

    inputs = lm.Input(batch_shape=(batch_size, timesteps, input_dim))
    x = layers.Conv1D(32, 3)(inputs)
    outputs = CustomRNN()(x)
    model = lm.Model(inputs, outputs)
    assert tuple(outputs.shape) == (batch_size, timesteps - 2, 1)
    assert model(np.zeros((batch_size, timesteps, input_dim), "float32")).shape == (batch_size, 8, 1)

    rnn_model = CustomRNN()
    assert rnn_model(jnp.zeros((1, 10, 5))).shape == (1, 10, 1)
