"""Functional API conformance with Keras 3 (issue 9): unique layer names, names recorded in
the config, ``Model`` subclasses built as ``CustomModel(inputs, outputs)``, masks during the
symbolic pass, and Sequential's symbolic graph."""

import numpy as np
import pytest

import lamina as lm


class Scale(lm.Layer):
    """The serialization guide's headline layer: get_config() without ``name``."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {"factor": self.factor}


# -- defect 3: one name, two layers --------------------------------------------------------


def test_two_layers_with_one_name_are_refused_when_the_model_is_built():
    inputs = lm.Input(shape=(3,))
    hidden = lm.layers.Dense(4, name="block")(inputs)
    outputs = lm.layers.Dense(2, name="block")(hidden)
    with pytest.raises(ValueError, match=r"'block' is used by 2 different layers.*Dense.*Dense.*unique"):
        lm.Model(inputs, outputs)


def test_a_config_listing_one_name_twice_is_refused():
    inputs = lm.Input(shape=(3,), name="x")
    outputs = lm.layers.Dense(2, name="second")(lm.layers.Dense(4, name="first")(inputs))
    config = lm.Model(inputs, outputs).get_config()
    config["layers"][2]["name"] = "first"
    config["layers"][2]["config"]["name"] = "first"
    with pytest.raises(ValueError, match="two layers named 'first'"):
        lm.models.Functional.from_config(config)


def test_a_shared_layer_is_one_layer_not_a_duplicate():
    inputs = lm.Input(shape=(3,))
    shared = lm.layers.Dense(3, name="shared")
    model = lm.Model(inputs, shared(shared(inputs)))
    assert [layer.name for layer in model.layers][1:] == ["shared"]


# -- defect 4: names recorded by the Functional config -------------------------------------


def test_custom_layer_without_name_in_its_config_round_trips(tmp_path):
    inputs = lm.Input(shape=(2,))
    hidden = lm.layers.Dense(3)(inputs)
    model = lm.Model(inputs, Scale(3.0)(hidden))
    x = np.arange(4, dtype="float32").reshape(2, 2)
    clone = lm.Model.from_config(model.get_config(), custom_objects={"Scale": Scale})
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    path = tmp_path / "scale.lamina"
    model.save(path)
    loaded = lm.load_model(path, custom_objects={"Scale": Scale})
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)
    np.testing.assert_allclose(loaded(x), 3.0 * (x @ model.layers[1].kernel.numpy() + model.layers[1].bias.numpy()),
                               rtol=1e-6)


# -- defect 9: CustomModel(inputs, outputs) ------------------------------------------------


class CustomModel(lm.Model):
    """The custom-train_step guide's pattern: Model subclass, built functionally."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps_taken = 0

    def train_step(self, data):
        x, y = data
        with_loss = lambda: lm.losses.mean_squared_error(y, self(x, training=True)).mean()  # noqa: E731
        loss, grads = lm.value_and_grad(with_loss, self.trainable_weights)()
        self.optimizer.apply(grads, self.trainable_weights)
        return {"loss": loss}

    def test_step(self, data):
        x, y = data
        return {"doubled": 2.0 * lm.losses.mean_squared_error(y, self(x)).mean()}


def _custom_model(positional=True):
    inputs = lm.Input(shape=(3,), name="features")
    outputs = lm.layers.Dense(1, name="score", kernel_initializer="ones")(inputs)
    return CustomModel(inputs, outputs) if positional else CustomModel(inputs=inputs, outputs=outputs)


@pytest.mark.parametrize("positional", [True, False])
def test_model_subclass_built_functionally_is_both(positional):
    model = _custom_model(positional)
    assert isinstance(model, CustomModel) and isinstance(model, lm.models.Functional)
    assert type(model).__name__ == "CustomModel" and model.name.startswith("custom_model")
    assert [layer.name for layer in model.layers] == ["features", "score"]
    assert model.input_shape == (None, 3) and model.output_shape == (None, 1)
    assert model.steps_taken == 0  # the subclass's own __init__ ran
    lines = []
    model.summary(print_fn=lines.append)
    assert any("score (Dense)" in line for line in lines)


def test_model_subclass_built_functionally_trains_with_its_own_steps():
    model = _custom_model()
    model.compile(optimizer=lm.optimizers.SGD(0.1))
    x = np.arange(12, dtype="float32").reshape(4, 3) / 10
    y = np.ones((4, 1), "float32")
    kernel, bias = model.layers[1].kernel.numpy(), model.layers[1].bias.numpy()
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    error = x @ kernel + bias - y  # one SGD step on the mean squared error, by hand
    np.testing.assert_allclose(model.layers[1].kernel.numpy(), kernel - 0.1 * 2 * x.T @ error / 4, rtol=1e-5)
    expected = 2.0 * np.mean((model.predict(x, verbose=0) - y) ** 2)
    assert model.evaluate(x, y, return_dict=True, verbose=0)["doubled"] == pytest.approx(expected, rel=1e-5)


def test_model_subclass_built_functionally_saves_and_loads(tmp_path):
    model = _custom_model()
    path = tmp_path / "custom.lamina"
    model.save(path)
    with pytest.raises(ValueError, match="CustomModel"):
        lm.load_model(path)
    loaded = lm.load_model(path, custom_objects={"CustomModel": CustomModel})
    assert isinstance(loaded, CustomModel) and isinstance(loaded, lm.models.Functional)
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


def test_model_subclass_with_two_plain_arguments_is_not_taken_for_functional():
    class Pair(lm.Model):
        def __init__(self, first, second):
            super().__init__()
            self.first, self.second = first, second

        def call(self, x):
            return self.second(self.first(x))

    model = Pair(lm.layers.Dense(2), lm.layers.Dense(1))
    assert not isinstance(model, lm.models.Functional)
    assert model(np.ones((1, 3), "float32")).shape == (1, 1)


# -- defect 5: masks during the symbolic pass (the masking guide's custom layers) ----------


class CustomEmbedding(lm.Layer):
    """The masking guide's embedding: a mask from compute_mask."""

    def __init__(self, input_dim, output_dim, mask_zero=False, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim, self.mask_zero = input_dim, output_dim, mask_zero

    def build(self, input_shape):
        self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim), initializer="random_normal")

    def call(self, inputs):
        return self.embeddings.value[inputs.astype("int32")]

    def compute_mask(self, inputs, mask=None):
        return None if not self.mask_zero else inputs != 0


class TemporalSplit(lm.Layer):
    """The masking guide's splitter: one mask per output."""

    def call(self, inputs):
        return list(_jnp().split(inputs, 2, axis=1))

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else list(_jnp().split(mask, 2, axis=1))


class TemporalSoftmax(lm.Layer):
    """The masking guide's consumer: asserts that a mask arrives, also while building."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.masks_seen = []

    def call(self, inputs, mask=None):
        jnp = _jnp()
        self.masks_seen.append(mask)
        assert mask is not None
        broadcast = jnp.expand_dims(mask.astype("float32"), -1)
        exp = jnp.exp(inputs) * broadcast
        return exp / jnp.sum(exp * broadcast, axis=1, keepdims=True)


def _jnp():
    import jax.numpy as jnp

    return jnp


def _keras_masking_layers(keras):
    ops = keras.ops

    class KCustomEmbedding(keras.layers.Layer):
        def __init__(self, input_dim, output_dim, mask_zero=False, **kwargs):
            super().__init__(**kwargs)
            self.input_dim, self.output_dim, self.mask_zero = input_dim, output_dim, mask_zero

        def build(self, input_shape):
            self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim), initializer="random_normal")

        def call(self, inputs):
            return ops.take(self.embeddings, ops.cast(inputs, "int32"), axis=0)

        def compute_mask(self, inputs, mask=None):
            return None if not self.mask_zero else ops.not_equal(inputs, 0)

    class KTemporalSoftmax(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs, mask=None):
            broadcast = ops.expand_dims(ops.cast(mask, "float32"), -1)
            exp = ops.exp(inputs) * broadcast
            return exp / ops.sum(exp * broadcast, axis=1, keepdims=True)

    return KCustomEmbedding, KTemporalSoftmax


IDS = np.array([[3, 1, 4, 0, 0, 0], [2, 7, 1, 8, 2, 0], [5, 0, 0, 0, 0, 0]], "int32")


def test_symbolic_outputs_carry_their_masks():
    inputs = lm.Input(shape=(6,), dtype="int32")
    embedded = lm.layers.Embedding(10, 4, mask_zero=True)(inputs)
    assert inputs._keras_mask is None
    assert embedded._keras_mask.shape == (None, 6) and embedded._keras_mask.dtype == np.bool_
    dense = lm.layers.Dense(3)(embedded)  # supports_masking: the mask passes through
    assert dense._keras_mask.shape == (None, 6)
    first, second = TemporalSplit()(embedded)
    assert first._keras_mask.shape == second._keras_mask.shape == (None, 3)
    pooled = lm.layers.GlobalAveragePooling1D()(dense)  # consumes the mask, makes none
    assert pooled._keras_mask is None


def test_layer_taking_mask_sees_it_while_the_model_is_built_and_matches_keras(keras):
    softmax = TemporalSoftmax()
    inputs = lm.Input(shape=(None,), dtype="int32")
    x = lm.layers.Embedding(input_dim=10, output_dim=4, mask_zero=True)(inputs)
    outputs = softmax(lm.layers.Dense(2)(x))
    assert softmax.masks_seen[0] is not None  # the symbolic pass already had the mask
    model = lm.Model(inputs, outputs)

    _, KTemporalSoftmax = _keras_masking_layers(keras)
    k_inputs = keras.Input(shape=(None,), dtype="int32")
    k_x = keras.layers.Embedding(input_dim=10, output_dim=4, mask_zero=True)(k_inputs)
    k_model = keras.Model(k_inputs, KTemporalSoftmax()(keras.layers.Dense(2)(k_x)))
    k_model.set_weights(model.get_weights())
    expected = np.asarray(k_model(IDS))
    np.testing.assert_allclose(model(IDS), expected, rtol=1e-5)
    np.testing.assert_allclose(model.predict(IDS, verbose=0), expected, rtol=1e-5)  # compiled


def test_compute_mask_layer_feeds_a_masked_pooling_as_in_keras(keras):
    inputs = lm.Input(shape=(6,), dtype="int32")
    x = CustomEmbedding(10, 4, mask_zero=True)(inputs)
    outputs = lm.layers.Dense(1)(lm.layers.GlobalAveragePooling1D()(x))
    model = lm.Model(inputs, outputs)

    KCustomEmbedding, _ = _keras_masking_layers(keras)
    k_inputs = keras.Input(shape=(6,), dtype="int32")
    k_x = KCustomEmbedding(10, 4, mask_zero=True)(k_inputs)
    k_model = keras.Model(k_inputs, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(k_x)))
    k_model.set_weights(model.get_weights())
    expected = np.asarray(k_model(IDS))
    np.testing.assert_allclose(model(IDS), expected, rtol=1e-5, atol=1e-6)
    # the padding is left out of the mean, as the mask says
    table, kernel, bias = model.get_weights()
    mask = IDS != 0
    mean = (table[IDS] * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(expected, mean @ kernel + bias, rtol=1e-5, atol=1e-6)


def test_a_mask_given_to_a_functional_model_reaches_its_layers():
    inputs = lm.Input(shape=(4, 2))
    model = lm.Model(inputs, lm.layers.GlobalAveragePooling1D()(inputs))
    x = np.random.default_rng(0).normal(size=(2, 4, 2)).astype("float32")
    mask = np.array([[True, True, False, False], [True, True, True, False]])
    expected = (x * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model(x, mask=mask), expected, rtol=1e-6)


# -- defect 10: Sequential's symbolic graph ------------------------------------------------


def test_sequential_with_input_has_a_symbolic_graph_for_feature_extraction(keras):
    model = lm.Sequential([lm.Input(shape=(6, 6, 2)), lm.layers.Conv2D(3, 3, activation="relu"),
                           lm.layers.Conv2D(2, 3, name="my_intermediate_layer"), lm.layers.Flatten()])
    assert model.built and len(model.layers) == 3
    assert model.input_shape == (None, 6, 6, 2) and model.output_shape == (None, 8)
    assert model.inputs[0] is model.input and model.outputs[0] is model.output
    assert [layer.output.shape for layer in model.layers] == [(None, 4, 4, 3), (None, 2, 2, 2), (None, 8)]
    assert model.layers[1].input is model.layers[0].output
    extractor = lm.Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers])
    x = np.random.default_rng(1).normal(size=(2, 6, 6, 2)).astype("float32")
    features = extractor(x)

    k_model = keras.Sequential([keras.Input(shape=(6, 6, 2)), keras.layers.Conv2D(3, 3, activation="relu"),
                                keras.layers.Conv2D(2, 3), keras.layers.Flatten()])
    k_model.set_weights(model.get_weights())
    k_extractor = keras.Model(inputs=k_model.inputs[0], outputs=[layer.output for layer in k_model.layers])
    for got, expected in zip(features, k_extractor(x)):
        np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-5, atol=1e-6)
    middle = lm.Model(model.inputs, model.get_layer(name="my_intermediate_layer").output)
    np.testing.assert_allclose(middle(x), features[1], rtol=1e-6)


def test_sequential_with_input_shape_on_its_first_layer_is_built_with_a_graph():
    model = lm.Sequential([lm.layers.Dense(2, input_shape=(4,)), lm.layers.Dense(3)])
    assert model.built and model.input_shape == (None, 4) and model.output_shape == (None, 3)
    model.add(lm.layers.Dense(5))
    assert model.output_shape == (None, 5) and model.layers[-1].input is model.layers[1].output
    popped = model.pop()
    assert model.output_shape == (None, 3) and popped._lm_inbound_nodes == []


def test_sequential_built_from_data_gets_its_graph_when_asked():
    model = lm.Sequential([lm.layers.Dense(2), lm.layers.Dense(3)])
    with pytest.raises(AttributeError, match="no defined inputs yet"):
        model.inputs  # noqa: B018
    model(np.ones((5, 4), "float32"))
    assert model.input_shape == (None, 4) and model.output_shape == (None, 3)
    head = lm.Model(model.inputs, model.layers[0].output)
    np.testing.assert_allclose(head(np.ones((1, 4), "float32")), model.layers[0](np.ones((1, 4), "float32")))


def test_sequential_config_keeps_names_its_layers_leave_out(tmp_path):
    model = lm.Sequential([lm.Input(shape=(2,)), lm.layers.Dense(3, name="hidden"), Scale(2.0)])
    path = tmp_path / "scale.lamina"
    model.save(path)
    loaded = lm.load_model(path, custom_objects={"Scale": Scale})
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.output_shape == (None, 3)
    x = np.ones((2, 2), "float32")
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


def test_shapes_of_a_one_tensor_list_are_that_tensor_s_shape_as_in_keras(keras):
    inputs = lm.Input(shape=(3,))
    model = lm.Model([inputs], [lm.layers.Dense(2)(inputs)])
    k_inputs = keras.Input(shape=(3,))
    k_model = keras.Model([k_inputs], [keras.layers.Dense(2)(k_inputs)])
    assert model.input_shape == tuple(k_model.input_shape) == (None, 3)
    assert model.output_shape == tuple(k_model.output_shape) == (None, 2)


def test_model_subclass_making_its_graph_in_init_is_functional():
    class Classifier(lm.Model):
        def __init__(self, classes=3, **kwargs):
            inputs = lm.Input(shape=(4,), name="pixels")
            outputs = lm.layers.Dense(classes, name="logits")(inputs)
            super().__init__(inputs=inputs, outputs=outputs, **kwargs)
            self.classes = classes

        def describe(self):
            return f"{self.classes} classes"

    model = Classifier(name="clf")
    assert isinstance(model, Classifier) and isinstance(model, lm.models.Functional)
    assert model.name == "clf" and model.describe() == "3 classes" and model.output_shape == (None, 3)
    x = np.ones((2, 4), "float32")
    logits = model.get_layer("logits")
    np.testing.assert_allclose(model(x), x @ logits.kernel.numpy() + logits.bias.numpy(), rtol=1e-6)
