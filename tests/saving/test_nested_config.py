"""Objects inside a layer's get_config() (a sublayer, an initializer, a regularizer, an
activation) are serialized recursively and revived before from_config (issue 9, defect 11);
Model.from_config takes custom_objects and rebuilds Functional configs."""

import json

import numpy as np
import pytest

import lamina as lm


class Block(lm.Layer):
    """A layer whose get_config() returns objects, with the default from_config."""

    def __init__(self, inner, initializer="zeros", regularizer=None, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        self.initializer = lm.initializers.get(initializer)
        self.regularizer = lm.regularizers.get(regularizer)
        self.activation = lm.activations.get(activation)

    def build(self, input_shape):
        self.offset = self.add_weight(shape=(self.inner.units,), initializer=self.initializer,
                                      regularizer=self.regularizer)

    def call(self, x):
        return self.activation(self.inner(x) + self.offset)

    def get_config(self):
        return {**super().get_config(), "inner": self.inner, "initializer": self.initializer,
                "regularizer": self.regularizer, "activation": self.activation}


class GuideBlock(lm.Layer):
    """The saving guide's pattern: from_config deserializes the sublayer itself."""

    def __init__(self, sublayer, **kwargs):
        super().__init__(**kwargs)
        self.sublayer = sublayer

    def call(self, x):
        return self.sublayer(x)

    def get_config(self):
        return {**super().get_config(), "sublayer": lm.saving.serialize(self.sublayer)}

    @classmethod
    def from_config(cls, config):
        sublayer = lm.saving.deserialize(config.pop("sublayer"))
        return cls(sublayer, **config)


def _block():
    return Block(lm.layers.Dense(3, kernel_initializer=lm.initializers.Constant(0.5)),
                 initializer=lm.initializers.Constant(0.25), regularizer=lm.regularizers.L2(0.1),
                 activation=lm.activations.relu, name="block")


def test_nested_objects_are_serialized_to_json_and_revived():
    config = lm.saving.serialize_object(_block())
    inner = config["config"]
    assert inner["inner"]["class_name"] == "Dense" and inner["inner"]["config"]["units"] == 3
    assert inner["initializer"] == {"class_name": "Constant", "config": {"value": 0.25}}
    assert inner["regularizer"]["class_name"] == "L2"
    # A function left in a config is written in Keras's form for functions.
    assert inner["activation"] == {"module": "builtins", "class_name": "function", "config": "relu",
                                   "registered_name": "function"}
    restored = lm.saving.deserialize(json.loads(json.dumps(config)), custom_objects={"Block": Block})
    assert isinstance(restored.inner, lm.layers.Dense) and restored.inner.units == 3
    assert restored.inner.get_config()["kernel_initializer"]["config"] == {"value": 0.5}
    assert isinstance(restored.initializer, lm.initializers.Constant) and restored.initializer.value == 0.25
    assert isinstance(restored.regularizer, lm.regularizers.L2)
    assert restored.activation is lm.activations.relu and restored.name == "block"


def test_model_with_nested_config_layer_saves_and_loads(tmp_path):
    inputs = lm.Input(shape=(2,))
    model = lm.Model(inputs, _block()(inputs))
    x = np.array([[1.0, -2.0], [0.5, 3.0]], "float32")
    path = tmp_path / "block.lamina"
    model.save(path)
    loaded = lm.load_model(path, custom_objects={"Block": Block})
    block = loaded.get_layer("block")
    kernel = block.inner.kernel.numpy()
    np.testing.assert_allclose(loaded(x), np.maximum(x @ kernel + block.inner.bias.numpy() + 0.25, 0), rtol=1e-6)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)
    assert float(sum(loaded.losses)) == pytest.approx(0.1 * 3 * 0.25**2, rel=1e-5)  # the revived regularizer


def test_a_class_with_its_own_from_config_receives_the_config_as_saved():
    layer = GuideBlock(lm.layers.Dense(2), name="guide")
    config = json.loads(json.dumps(lm.saving.serialize(layer)))
    restored = lm.saving.deserialize(config, custom_objects={"GuideBlock": GuideBlock})
    assert isinstance(restored.sublayer, lm.layers.Dense) and restored.sublayer.units == 2


def test_model_from_config_takes_custom_objects_and_rebuilds_a_functional_config():
    inputs = lm.Input(shape=(2,), name="x")
    model = lm.Model(inputs, _block()(inputs))
    config = json.loads(json.dumps(model.get_config()))
    with pytest.raises(ValueError, match="Block"):
        lm.Model.from_config(config)
    clone = lm.Model.from_config(config, custom_objects={"Block": Block})
    assert isinstance(clone, lm.models.Functional)
    assert [layer.name for layer in clone.layers] == ["x", "block"]
    clone.set_weights(model.get_weights())
    x = np.ones((1, 2), "float32")
    np.testing.assert_allclose(clone(x), model(x), rtol=1e-6)


def test_registered_model_subclass_built_functionally_revives_from_its_config():
    @lm.saving.register_serializable(package="nested_config_test")
    class Scorer(lm.Model):
        def score(self, x):
            return self.predict(x, verbose=0).sum()

    inputs = lm.Input(shape=(2,))
    model = Scorer(inputs, lm.layers.Dense(1)(inputs))
    config = json.loads(json.dumps(lm.saving.serialize(model)))
    assert config["class_name"] == "nested_config_test>Scorer"
    clone = lm.saving.deserialize(config)
    assert isinstance(clone, Scorer) and isinstance(clone, lm.models.Functional)
    clone.set_weights(model.get_weights())
    x = np.ones((3, 2), "float32")
    assert clone.score(x) == pytest.approx(model.score(x), rel=1e-6)


# -- get_build_config / build_from_config, get_compile_config / compile_from_config ---------


class Expander(lm.Layer):
    """Builds from get_build_config() on loading (the saving guide's hooks)."""

    def __init__(self, units=2, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.built_from_config = False

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="ones")

    def call(self, x):
        return x @ self.w.value

    def get_config(self):
        return {**super().get_config(), "units": self.units}

    def get_build_config(self):
        return {"features": int(self.w.shape[0])}

    def build_from_config(self, config):
        self.build((None, config["features"]))
        self.built_from_config = True


def _scaled_error(y_true, y_pred):
    return ((y_pred - y_true) ** 2).sum(axis=-1) / 10.0


class CompileHooks(lm.Model):
    """The guide's model: get_compile_config() returns the objects compile() received."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = lm.layers.Dense(2)

    def call(self, x):
        return self.dense(x)

    def compile(self, optimizer, loss_fn):
        super().compile(optimizer=optimizer, loss=loss_fn)
        self.loss_fn = loss_fn

    def get_compile_config(self):
        return {"optimizer": self.optimizer, "loss_fn": self.loss_fn}

    def compile_from_config(self, config):
        self.compile(optimizer=lm.saving.deserialize(config["optimizer"]),
                     loss_fn=lm.saving.deserialize(config["loss_fn"]))


def test_build_config_of_a_layer_is_saved_and_builds_it_on_loading():
    layer = Expander(3, name="expander")
    layer(np.ones((1, 4), "float32"))
    config = json.loads(json.dumps(lm.saving.serialize(layer)))
    assert config["build_config"] == {"features": 4}
    restored = lm.saving.deserialize(config, custom_objects={"Expander": Expander})
    assert restored.built and restored.built_from_config and restored.w.shape == (4, 3)
    np.testing.assert_allclose(restored(np.ones((1, 4), "float32")), np.full((1, 3), 4.0))


def test_compile_config_with_objects_is_serialized_and_revived_by_the_override(tmp_path):
    model = CompileHooks()
    model.compile(optimizer=lm.optimizers.SGD(0.25), loss_fn=_scaled_error)
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "hooks.lamina"
    model.save(path)
    custom = {"CompileHooks": CompileHooks, "_scaled_error": _scaled_error}
    loaded = lm.load_model(path, custom_objects=custom)
    assert loaded.loss_fn is _scaled_error and loaded.optimizer.learning_rate == pytest.approx(0.25)
    prediction = loaded.predict(x, verbose=0)
    expected = np.mean(np.sum(prediction**2, axis=-1) / 10.0)
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)


def test_names_deserialize_as_keras_reads_them():
    class Mine(lm.Layer):
        def call(self, x):
            return x

    assert lm.saving.deserialize("SGD") == "SGD"  # a built-in class's name stays a name (compile takes it)
    assert lm.saving.deserialize("Mine", custom_objects={"Mine": Mine}) is Mine  # a custom class: the class
    assert lm.saving.deserialize("relu") == "relu"  # a function's name stays a name, as in Keras
    assert lm.saving.deserialize("os.system") == "os.system"  # a string, never imported
