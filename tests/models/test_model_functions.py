"""Keras's model functions: model.to_json / lm.models.model_from_json, lm.models.load_model,
lm.models.clone_model, and get_layer's contract."""

import json

import numpy as np
import pytest

import lamina as lm

X = np.linspace(-1, 1, 8, dtype="float32").reshape(2, 4)


def _functional():
    inputs = lm.Input(shape=(4,), name="features")
    shared = lm.layers.Dense(4, activation="tanh", name="shared")
    outputs = lm.layers.Dense(2, name="head")(shared(shared(inputs)))
    return lm.Model(inputs, outputs, name="net")


def _sequential():
    return lm.Sequential([lm.Input(shape=(4,), name="features"), lm.layers.Dense(3, activation="relu", name="hidden"),
                          lm.layers.Dense(2, name="head")], name="stack")


# -- to_json / model_from_json ---------------------------------------------------------------


@pytest.mark.parametrize("make", [_functional, _sequential])
def test_json_round_trip_rebuilds_the_architecture(make):
    model = make()
    text = model.to_json(indent=2)
    assert "\n  " in text and json.loads(text)["class_name"] == type(model).__name__
    copy = lm.models.model_from_json(text)
    assert type(copy) is type(model) and copy.name == model.name
    assert [layer.name for layer in copy.layers] == [layer.name for layer in model.layers]
    assert copy.output_shape == model.output_shape == (None, 2)
    assert [w.shape for w in copy.weights] == [w.shape for w in model.weights]
    copy.set_weights(model.get_weights())
    np.testing.assert_allclose(copy(X), model(X), rtol=1e-6)


def test_model_from_json_needs_custom_classes_and_refuses_other_text():
    class Doubler(lm.Layer):
        def call(self, x):
            return 2 * x

    inputs = lm.Input(shape=(4,))
    text = lm.Model(inputs, Doubler(name="twice")(inputs)).to_json()
    with pytest.raises(ValueError, match="Doubler"):
        lm.models.model_from_json(text)
    copy = lm.models.model_from_json(text, custom_objects={"Doubler": Doubler})
    np.testing.assert_allclose(copy(X), 2 * X)
    with pytest.raises(ValueError, match="could not be parsed"):
        lm.models.model_from_json("{not json")
    with pytest.raises(ValueError, match="not a model"):
        lm.models.model_from_json(json.dumps(lm.saving.serialize(lm.layers.Dense(2))))


def test_models_load_model_is_load_model(tmp_path):
    model = _sequential()
    model.save(tmp_path / "m.lamina")
    loaded = lm.models.load_model(tmp_path / "m.lamina")
    np.testing.assert_allclose(loaded(X), model(X), rtol=1e-6)


# -- clone_model -----------------------------------------------------------------------------


def _assert_fresh_copy(model, clone):
    assert type(clone) is type(model) and clone.name == model.name
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    mine = {id(v) for v in model.weights}
    assert len(clone.weights) == len(model.weights) and not any(id(v) in mine for v in clone.weights)
    assert [layer.get_config() for layer in clone.layers] == [layer.get_config() for layer in model.layers]
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(X), model(X), rtol=1e-6)


def test_clone_sequential_has_new_weights_and_the_same_config():
    model = _sequential()
    clone = lm.models.clone_model(model)
    assert clone.input_shape == (None, 4) and clone.layers[0] is not model.layers[0]
    _assert_fresh_copy(model, clone)


def test_clone_functional_clones_a_shared_layer_once():
    model = _functional()
    clone = lm.models.clone_model(model)
    assert len(clone.weights) == 4  # shared Dense: one kernel and bias, still shared
    _assert_fresh_copy(model, clone)
    shared = clone.get_layer("shared")
    kernel, bias = shared.kernel.numpy(), shared.bias.numpy()
    head = clone.get_layer("head")
    hidden = np.tanh(np.tanh(X @ kernel + bias) @ kernel + bias)
    np.testing.assert_allclose(clone(X), hidden @ head.kernel.numpy() + head.bias.numpy(), rtol=1e-5)


def test_clone_of_a_compiled_model_is_compiled_alike():
    model = _sequential()
    model.compile(optimizer=lm.optimizers.SGD(0.05), loss="mse")
    clone = lm.models.clone_model(model)
    assert clone.get_compile_config() == model.get_compile_config()
    assert clone.optimizer is not model.optimizer


def test_clone_with_input_tensors_clone_function_and_call_function():
    model = _functional()
    new_input = lm.Input(shape=(4,), name="other")
    clone = lm.models.clone_model(model, input_tensors=new_input)
    assert clone.inputs[0] is new_input

    def relu_instead(layer):
        config = layer.get_config()
        if config.get("activation") == "tanh":
            config["activation"] = "relu"
        return type(layer).from_config(config)

    relu_clone = lm.models.clone_model(model, clone_function=relu_instead)
    relu_clone.set_weights(model.get_weights())
    shared = model.get_layer("shared")
    kernel, bias = shared.kernel.numpy(), shared.bias.numpy()
    hidden = np.maximum(np.maximum(X @ kernel + bias, 0) @ kernel + bias, 0)
    head = model.get_layer("head")
    np.testing.assert_allclose(relu_clone(X), hidden @ head.kernel.numpy() + head.bias.numpy(), rtol=1e-5)

    def scale_after_head(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        return lm.layers.Rescaling(10.0)(out) if layer.name == "head" else out

    scaled = lm.models.clone_model(model, clone_function=lambda layer: layer, call_function=scale_after_head)
    assert scaled.get_layer("head") is model.get_layer("head")  # layers reused
    np.testing.assert_allclose(scaled(X), 10 * model(X), rtol=1e-6)


def test_clone_recursive_clones_nested_models():
    inner = _sequential()
    inputs = lm.Input(shape=(4,))
    outer = lm.Model(inputs, inner(inputs))
    shallow = lm.models.clone_model(outer)
    deep = lm.models.clone_model(outer, recursive=True)
    assert shallow.layers[1] is not inner and deep.layers[1] is not inner
    assert [layer.name for layer in deep.layers[1].layers] == ["hidden", "head"]
    deep.set_weights(outer.get_weights())
    np.testing.assert_allclose(deep(X), outer(X), rtol=1e-6)


def test_clone_subclassed_model_goes_through_its_config_and_refuses_graph_arguments():
    @lm.saving.register_serializable(package="model_functions_test")
    class Mlp(lm.Model):
        def __init__(self, units=3, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.dense = lm.layers.Dense(units)

        def call(self, x):
            return self.dense(x)

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    model = Mlp(5)
    clone = lm.models.clone_model(model)
    assert isinstance(clone, Mlp) and clone.units == 5 and clone.dense is not model.dense
    with pytest.raises(ValueError, match="only supported for Sequential and Functional"):
        lm.models.clone_model(model, clone_function=lambda layer: layer)
    with pytest.raises(ValueError, match="call_function is not supported for Sequential"):
        lm.models.clone_model(_sequential(), call_function=lambda layer, *a, **k: layer(*a, **k))


# -- get_layer --------------------------------------------------------------------------------


def test_get_layer_by_name_or_index_as_keras():
    model = _functional()
    assert model.get_layer("head") is model.layers[-1] is model.get_layer(index=-1)
    assert model.get_layer("features") is model.layers[0]  # the graph's InputLayer too
    with pytest.raises(ValueError, match="only a layer name or a layer index"):
        model.get_layer("head", index=0)
    with pytest.raises(ValueError, match="Provide either a layer name or layer index"):
        model.get_layer()
    with pytest.raises(ValueError, match=r"No such layer: 'missing'.*\['features', 'shared', 'head'\]"):
        model.get_layer("missing")
    with pytest.raises(ValueError, match="only has 3 layers"):
        model.get_layer(index=3)


def test_clone_of_a_sequential_built_from_data_is_built():
    model = lm.Sequential([lm.layers.Dense(3, name="hidden"), lm.layers.Dense(2, name="head")])
    model(X)
    clone = lm.models.clone_model(model)
    assert clone.built and clone.input_shape == (None, 4)
    _assert_fresh_copy(model, clone)
