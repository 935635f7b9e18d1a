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
    assert inner["regularizer"]["class_name"] == "L2" and inner["activation"] == "relu"
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
