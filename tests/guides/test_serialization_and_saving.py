"""Port of the Keras 3 guide "Save, serialize, and export models".

Source: keras-team/keras-io, ``guides/keras_core/serialization_and_saving.py`` (the top-level
copy is the TensorFlow/SavedModel version). One test per section, with the smallest faithful
change: ``keras`` -> ``lm``, ``keras.ops`` -> ``jax.numpy``, small sizes.

Changes beyond the mechanical translation (each one a place where a Keras user notices lamina):
- Files: ``model.save("x.keras")`` -> ``"x.lamina"`` and ``save_weights("x.weights.h5")`` ->
  ``"x.safetensors"``, lamina's own formats.
- ``keras.saving.get_custom_objects().clear()`` is not called: it would unregister the custom
  classes of every other test module in the session; the test checks instead that the
  registered names are listed there.
- The "Custom objects" ``CustomLayer(sublayer)`` snippet is shown as text in the guide with a
  typo (``self.sublayer = layer``); it is run here with ``self.sublayer = sublayer``.
- Serialized configs: the guide shows Keras's ``{"module", "class_name", "config",
  "registered_name"}``; the tests assert what a config must carry for lamina (class, config,
  the registered lookup name) and that it round-trips, not Keras's exact dictionary layout.

No section is left out (the guide has no export section in its Keras 3 version).
"""

import jax.numpy as jnp
import numpy as np

import lamina as lm


def get_model():
    inputs = lm.Input(shape=(32,))
    outputs = lm.layers.Dense(1)(inputs)
    model = lm.Model(inputs, outputs)
    model.compile(optimizer=lm.optimizers.Adam(), loss="mean_squared_error")
    return model


def test_saving(tmp_path):
    """Section "Saving" (and "How to save and load a model"): save, load_model, same predictions."""
    model = get_model()
    rng = np.random.default_rng(0)
    test_input = rng.random((128, 32)).astype("float32")
    test_target = rng.random((128, 1)).astype("float32")
    model.fit(test_input, test_target, verbose=0)
    path = str(tmp_path / "my_model.lamina")
    model.save(path)
    reconstructed_model = lm.models.load_model(path)
    np.testing.assert_allclose(model.predict(test_input, verbose=0), reconstructed_model.predict(test_input, verbose=0))
    # "The optimizer and its state ... enables you to restart training where you left"
    assert int(reconstructed_model.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) == 4
    reconstructed_model.fit(test_input, test_target, verbose=0)


@lm.saving.register_keras_serializable(package="MyLayers")
class CustomLayer(lm.layers.Layer):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {"factor": self.factor}


@lm.saving.register_keras_serializable(package="my_package", name="custom_fn")
def custom_fn(x):
    return x**2


def get_custom_model():
    inputs = lm.Input(shape=(4,))
    mid = CustomLayer(0.5)(inputs)
    outputs = lm.layers.Dense(1, activation=custom_fn)(mid)
    model = lm.Model(inputs, outputs)
    model.compile(optimizer="rmsprop", loss="mean_squared_error")
    return model


def train_model(model):
    rng = np.random.default_rng(1)
    model.fit(rng.random((4, 4)).astype("float32"), rng.random((4, 1)).astype("float32"), verbose=0)
    return model


TEST_INPUT = np.random.default_rng(2).random((4, 4)).astype("float32")


def test_registering_custom_objects(tmp_path):
    """Section "Registering custom objects (preferred)": a registered layer and activation function."""
    custom_objects = lm.saving.get_custom_objects()
    assert custom_objects["MyLayers>CustomLayer"] is CustomLayer
    assert custom_objects["my_package>custom_fn"] is custom_fn

    model = train_model(get_custom_model())
    path = str(tmp_path / "custom_model.lamina")
    model.save(path)
    reconstructed_model = lm.models.load_model(path)
    np.testing.assert_allclose(model.predict(TEST_INPUT, verbose=0), reconstructed_model.predict(TEST_INPUT, verbose=0))
    assert isinstance(reconstructed_model.layers[1], CustomLayer) and reconstructed_model.layers[1].factor == 0.5


def test_passing_custom_objects_to_load_model(tmp_path):
    """Section "Passing custom objects to `load_model()`"."""
    model = train_model(get_custom_model())
    path = str(tmp_path / "custom_model.lamina")
    model.save(path)
    reconstructed_model = lm.models.load_model(path, custom_objects={"CustomLayer": CustomLayer, "custom_fn": custom_fn})
    np.testing.assert_allclose(model.predict(TEST_INPUT, verbose=0), reconstructed_model.predict(TEST_INPUT, verbose=0))


def test_using_a_custom_object_scope(tmp_path):
    """Section "Using a custom object scope"."""
    model = train_model(get_custom_model())
    path = str(tmp_path / "custom_model.lamina")
    model.save(path)
    custom_objects = {"CustomLayer": CustomLayer, "custom_fn": custom_fn}
    with lm.saving.custom_object_scope(custom_objects):
        reconstructed_model = lm.models.load_model(path)
    np.testing.assert_allclose(model.predict(TEST_INPUT, verbose=0), reconstructed_model.predict(TEST_INPUT, verbose=0))


class SublayerWrapper(lm.layers.Layer):
    """The guide's "Custom objects" CustomLayer(sublayer) snippet."""

    def __init__(self, sublayer, **kwargs):
        super().__init__(**kwargs)
        self.sublayer = sublayer

    def call(self, x):
        return self.sublayer(x)

    def get_config(self):
        base_config = super().get_config()
        config = {"sublayer": lm.saving.serialize_keras_object(self.sublayer)}
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config):
        sublayer_config = config.pop("sublayer")
        sublayer = lm.saving.deserialize_keras_object(sublayer_config)
        return cls(sublayer, **config)


def test_custom_objects_with_a_sublayer():
    """Section "Custom objects": a layer built around another layer, rebuilt from its config."""
    layer = SublayerWrapper(lm.layers.Dense(3, activation="relu"), name="wrapper")
    config = layer.get_config()
    new_layer = SublayerWrapper.from_config(config)
    assert new_layer.name == "wrapper"
    assert isinstance(new_layer.sublayer, lm.layers.Dense) and new_layer.sublayer.units == 3
    assert new_layer(np.ones((2, 5), "float32")).shape == (2, 3)


def test_in_memory_model_cloning():
    """Section "In-memory model cloning": clone_model gives the same architecture, fresh weights."""
    model = train_model(get_custom_model())
    new_model = lm.models.clone_model(model)
    assert [type(layer) for layer in new_model.layers] == [type(layer) for layer in model.layers]
    assert [w.shape for w in new_model.weights] == [w.shape for w in model.weights]
    assert new_model is not model and new_model.layers[-1] is not model.layers[-1]
    assert not any(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(new_model.weights, model.weights) if a.shape == (4, 1))


def test_get_config_and_from_config():
    """Section "`get_config()` and `from_config()`": layer, Sequential and Functional examples."""
    layer = lm.layers.Dense(3, activation="relu")
    layer_config = layer.get_config()
    assert layer_config["units"] == 3 and layer_config["activation"] == "relu"
    new_layer = lm.layers.Dense.from_config(layer_config)
    assert new_layer.get_config() == layer_config

    model = lm.Sequential([lm.Input((32,)), lm.layers.Dense(1)])
    config = model.get_config()
    new_model = lm.Sequential.from_config(config)
    assert new_model(np.ones((2, 32), "float32")).shape == (2, 1)

    inputs = lm.Input((32,))
    outputs = lm.layers.Dense(1)(inputs)
    model = lm.Model(inputs, outputs)
    config = model.get_config()
    new_model = lm.Model.from_config(config)
    assert new_model(np.ones((2, 32), "float32")).shape == (2, 1)
    assert new_model.count_params() == 33


def test_to_json_and_model_from_json():
    """Section "`to_json()` and `keras.models.model_from_json()`"."""
    model = lm.Sequential([lm.Input((32,)), lm.layers.Dense(1)])
    json_config = model.to_json()
    assert isinstance(json_config, str)
    new_model = lm.models.model_from_json(json_config)
    assert isinstance(new_model, lm.Sequential)
    assert [w.shape for w in new_model.weights] == [(32, 1), (1,)]


def test_arbitrary_object_serialization_and_deserialization():
    """Section "Arbitrary object serialization and deserialization"."""
    my_reg = lm.regularizers.L1(0.005)
    config = lm.saving.serialize_keras_object(my_reg)
    assert config["class_name"] == "L1"
    np.testing.assert_allclose(config["config"]["l1"], 0.005, rtol=1e-6)
    new_reg = lm.saving.deserialize_keras_object(config)
    assert isinstance(new_reg, lm.regularizers.L1)
    w = np.array([1.0, -2.0], "float32")
    np.testing.assert_allclose(float(new_reg(w)), 0.005 * 3.0, rtol=1e-6)


class SubclassedModel(lm.Model):
    def __init__(self, output_dim, name=None):
        super().__init__(name=name)
        self.output_dim = output_dim
        self.dense_1 = lm.layers.Dense(64, activation="relu", name="dense_1")
        self.dense_2 = lm.layers.Dense(64, activation="relu", name="dense_2")
        self.dense_3 = lm.layers.Dense(output_dim, name="predictions")

    def call(self, inputs):
        x = self.dense_1(inputs)
        x = self.dense_2(x)
        x = self.dense_3(x)
        return x

    def get_config(self):
        return {"output_dim": self.output_dim, "name": self.name}


def _three_layer_mlp(dropout=False):
    inputs = lm.Input(shape=(784,), name="digits")
    x = lm.layers.Dense(64, activation="relu", name="dense_1")(inputs)
    x = lm.layers.Dense(64, activation="relu", name="dense_2")(x)
    if dropout:
        x = lm.layers.Dropout(0.5)(x)
    outputs = lm.layers.Dense(10, name="predictions")(x)
    return lm.Model(inputs=inputs, outputs=outputs, name="3_layer_mlp")


def test_apis_for_in_memory_weight_transfer():
    """Section "APIs for in-memory weight transfer": layer to layer, model to model, stateless layers."""

    def create_layer():
        layer = lm.layers.Dense(64, activation="relu", name="dense_2")
        layer.build((None, 784))
        return layer

    layer_1 = create_layer()
    layer_2 = create_layer()
    layer_2.set_weights(layer_1.get_weights())
    for a, b in zip(layer_1.weights, layer_2.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # The copied weights are the ones the (already built) layer computes with.
    x = np.random.default_rng(5).random((2, 784)).astype("float32")
    np.testing.assert_allclose(np.asarray(layer_2(x)), np.asarray(layer_1(x)), rtol=1e-6)

    functional_model = _three_layer_mlp()
    subclassed_model = SubclassedModel(10)
    subclassed_model(np.ones((1, 784)))
    subclassed_model.set_weights(functional_model.get_weights())
    assert len(functional_model.weights) == len(subclassed_model.weights)
    for a, b in zip(functional_model.weights, subclassed_model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy())

    functional_model_with_dropout = _three_layer_mlp(dropout=True)
    functional_model_with_dropout.set_weights(functional_model.get_weights())
    x = np.random.default_rng(3).random((2, 784)).astype("float32")
    np.testing.assert_allclose(functional_model_with_dropout.predict(x, verbose=0), functional_model.predict(x, verbose=0), rtol=1e-5)


class NestedDenseLayer(lm.layers.Layer):
    def __init__(self, units, name=None):
        super().__init__(name=name)
        self.dense_1 = lm.layers.Dense(units, name="dense_1")
        self.dense_2 = lm.layers.Dense(units, name="dense_2")

    def call(self, inputs):
        return self.dense_2(self.dense_1(inputs))


def test_apis_for_saving_weights_to_disk(tmp_path, keras):
    """Section "APIs for saving weights to disk & loading them back", and the nested-layer note."""
    sequential_model = lm.Sequential(
        [
            lm.Input(shape=(784,), name="digits"),
            lm.layers.Dense(64, activation="relu", name="dense_1"),
            lm.layers.Dense(64, activation="relu", name="dense_2"),
            lm.layers.Dense(10, name="predictions"),
        ]
    )
    before = [w.numpy().copy() for w in sequential_model.weights]
    path = str(tmp_path / "my_model.safetensors")
    sequential_model.save_weights(path)
    for w in sequential_model.weights:
        w.assign(jnp.zeros(w.shape))
    sequential_model.load_weights(path)
    for a, w in zip(before, sequential_model.weights):
        np.testing.assert_array_equal(a, w.numpy())

    nested_model = lm.Sequential([lm.Input((784,)), NestedDenseLayer(10, "nested")])
    variable_names = [v.name for v in nested_model.weights]
    nested_model.get_layer("nested").dense_1.trainable = False
    variable_names_2 = [v.name for v in nested_model.weights]

    class KNestedDenseLayer(keras.layers.Layer):
        def __init__(self, units, name=None):
            super().__init__(name=name)
            self.dense_1 = keras.layers.Dense(units, name="dense_1")
            self.dense_2 = keras.layers.Dense(units, name="dense_2")

        def call(self, inputs):
            return self.dense_2(self.dense_1(inputs))

    k_nested = keras.Sequential([keras.Input((784,)), KNestedDenseLayer(10, "nested")])
    k_names = [v.name for v in k_nested.weights]
    k_nested.get_layer("nested").dense_1.trainable = False
    k_names_2 = [v.name for v in k_nested.weights]
    assert variable_names == k_names and variable_names_2 == k_names_2
    assert (variable_names != variable_names_2) == (k_names != k_names_2)


def test_transfer_learning_example(tmp_path, capsys):
    """Section "Transfer learning example": load pretrained weights, then extract layers."""
    functional_model = _three_layer_mlp()
    path = str(tmp_path / "pretrained.safetensors")
    functional_model.save_weights(path)

    pretrained_model = _three_layer_mlp()
    pretrained_model.load_weights(path)
    for a, b in zip(functional_model.weights, pretrained_model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    extracted_layers = pretrained_model.layers[:-1]
    extracted_layers.append(lm.layers.Dense(5, name="dense_3"))
    model = lm.Sequential(extracted_layers)
    model.summary()
    assert "dense_3" in capsys.readouterr().out
    assert model.count_params() == 50_240 + 4_160 + 325
    x = np.random.default_rng(4).random((2, 784)).astype("float32")
    assert model(x).shape == (2, 5)
    np.testing.assert_array_equal(model.get_layer("dense_1").kernel.numpy(), functional_model.get_layer("dense_1").kernel.numpy())


@lm.saving.register_keras_serializable(package="MyLayers", name="KernelMult")
class MyDense(lm.layers.Layer):
    def __init__(self, units, *, kernel_regularizer=None, kernel_initializer=None, nested_model=None, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = units
        self.kernel_regularizer = kernel_regularizer
        self.kernel_initializer = kernel_initializer
        self.nested_model = nested_model

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.hidden_units,
                "kernel_regularizer": self.kernel_regularizer,
                "kernel_initializer": self.kernel_initializer,
                "nested_model": self.nested_model,
            }
        )
        return config

    def build(self, input_shape):
        input_units = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_units, self.hidden_units),
            regularizer=self.kernel_regularizer,
            initializer=self.kernel_initializer,
        )

    def call(self, inputs):
        return jnp.matmul(inputs, self.kernel)


@lm.saving.register_keras_serializable(package="ComplexModels")
class CustomModel(lm.layers.Layer):
    def __init__(self, first_layer, second_layer=None, **kwargs):
        super().__init__(**kwargs)
        self.first_layer = first_layer
        if second_layer is not None:
            self.second_layer = second_layer
        else:
            self.second_layer = lm.layers.Dense(8)

    def get_config(self):
        config = super().get_config()
        config.update({"first_layer": self.first_layer, "second_layer": self.second_layer})
        return config

    @classmethod
    def from_config(cls, config):
        config["first_layer"] = lm.layers.deserialize(config["first_layer"])
        config["second_layer"] = lm.layers.deserialize(config["second_layer"])
        return cls(**config)

    def call(self, inputs):
        return self.first_layer(self.second_layer(inputs))


def test_defining_the_config_methods():
    """Section "Appendix: Handling custom objects / Defining the config methods"."""
    layer = MyDense(units=16, kernel_regularizer="l1", kernel_initializer="ones")
    layer3 = MyDense(units=64, nested_model=layer)
    config = lm.layers.serialize(layer3)
    new_layer = lm.layers.deserialize(config)
    assert isinstance(new_layer, MyDense) and new_layer.hidden_units == 64
    nested = new_layer.nested_model
    assert isinstance(nested, MyDense) and nested.hidden_units == 16
    nested(np.ones((1, 3), "float32"))
    np.testing.assert_array_equal(nested.kernel.numpy(), np.ones((3, 16)))
    np.testing.assert_allclose(float(sum(nested.losses)), 0.01 * 48, rtol=1e-6)  # "l1" is L1(0.01)

    inputs = lm.Input((32,))
    outputs = CustomModel(first_layer=layer)(inputs)
    model = lm.Model(inputs, outputs)
    config = model.get_config()
    new_model = lm.Model.from_config(config)
    assert tuple(new_model.outputs[0].shape) == (None, 16)
    rebuilt = new_model.layers[-1]
    assert isinstance(rebuilt, CustomModel) and isinstance(rebuilt.first_layer, MyDense)
    assert isinstance(rebuilt.second_layer, lm.layers.Dense) and rebuilt.second_layer.units == 8


def test_how_custom_objects_are_serialized():
    """Section "How custom objects are serialized": the registered name leads back to the class."""
    layer = MyDense(units=16, kernel_regularizer=lm.regularizers.L1L2(l1=1e-5, l2=1e-4), kernel_initializer="ones")
    config = lm.layers.serialize(layer)
    assert config.get("registered_name", config["class_name"]) == "MyLayers>KernelMult"
    regularizer = config["config"]["kernel_regularizer"]
    assert regularizer["class_name"] == "L1L2"
    np.testing.assert_allclose([regularizer["config"]["l1"], regularizer["config"]["l2"]], [1e-5, 1e-4], rtol=1e-6)
    new_layer = lm.layers.deserialize(config)
    assert isinstance(new_layer, MyDense)
    assert isinstance(new_layer.kernel_regularizer, lm.regularizers.L1L2)

