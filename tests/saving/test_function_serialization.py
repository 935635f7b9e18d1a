"""Functions in configs, as Keras writes and reads them (issue 9).

``lm.saving.serialize(fn)`` gives Keras's ``{"class_name": "function", "config": <name>, ...}``;
``lm.saving.deserialize`` keeps a plain string a string unless ``custom_objects`` names it, so a
compile config's ``["accuracy", fn]`` comes back as given (not the plain accuracy function,
which would change the metric ``compile`` picks). Files written when lamina saved every
function by plain name still load: names resolve where a function is expected.
"""

import json
import sys
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

PACKAGE = "fn_serialization_test"
FUNCTION_FORM = {"module": "builtins", "class_name": "function", "registered_name": "function"}


def half_square_error(y_true, y_pred):
    return jnp.sum(jnp.square(y_pred - y_true), axis=-1) / 2.0


def mean_pred(y_true, y_pred):
    return jnp.mean(y_pred)


def doubled_relu(x):
    return 2.0 * jnp.maximum(x, 0.0)


class CompiledByConfig(lm.Model):
    """The saving guide's pattern: its own compile config, revived with deserialize_keras_object."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = lm.layers.Dense(4, activation="softmax")

    def call(self, inputs):
        return self.dense(inputs)

    def compile(self, optimizer, loss_fn, metrics):
        super().compile(optimizer=optimizer, loss=loss_fn, metrics=metrics)
        self.model_optimizer, self.loss_fn, self.loss_metrics = optimizer, loss_fn, metrics

    def get_compile_config(self):
        return {"model_optimizer": self.model_optimizer, "loss_fn": self.loss_fn, "metric": self.loss_metrics}

    def compile_from_config(self, config):
        self.compile(optimizer=lm.utils.deserialize_keras_object(config["model_optimizer"]),
                     loss_fn=lm.utils.deserialize_keras_object(config["loss_fn"]),
                     metrics=lm.utils.deserialize_keras_object(config["metric"]))


@pytest.fixture
def registered():
    """Register the test's functions and model for one test; unregister them afterwards."""
    names = []
    for obj in (half_square_error, mean_pred, doubled_relu, CompiledByConfig):
        lm.saving.register_serializable(package=PACKAGE)(obj)
        names.append(f"{PACKAGE}>{obj.__name__}")
    yield
    for name in names:
        lm.saving.get_custom_objects().pop(name, None)


def _compiled_model():
    model = CompiledByConfig()
    model.compile(optimizer="SGD", loss_fn=half_square_error, metrics=["accuracy", mean_pred])
    x = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    prediction = np.asarray(model(x))
    y = np.eye(4, dtype="float32")[prediction.argmax(axis=-1)]  # the predicted classes
    return model, x, y


def _check_restored(restored, x, y):
    """The metrics come back as given, and "accuracy" is again the one compile picks for
    one-hot labels (categorical: every prediction right), not the plain equality one (0)."""
    assert restored.loss_metrics == ["accuracy", mean_pred] and restored.loss_fn is half_square_error
    logs = restored.evaluate(x, y, verbose=0, return_dict=True)
    prediction = restored.predict(x, verbose=0)
    assert logs["accuracy"] == pytest.approx(np.mean(prediction.argmax(-1) == y.argmax(-1)))
    assert logs["accuracy"] == pytest.approx(1.0)
    assert logs["mean_pred"] == pytest.approx(np.mean(prediction), rel=1e-5)
    assert logs["loss"] == pytest.approx(np.mean(np.sum((prediction - y) ** 2, -1) / 2.0), rel=1e-5)


def test_guide_compile_config_round_trips_through_a_file(tmp_path, registered):
    model, x, y = _compiled_model()
    path = tmp_path / "compiled.lamina"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("config.json"))["compile_config"]
    assert saved["metric"] == ["accuracy", {**FUNCTION_FORM, "config": f"{PACKAGE}>mean_pred"}]
    assert saved["model_optimizer"] == "SGD"
    _check_restored(lm.load_model(path), x, y)


def _to_plain_names(value):
    """``value`` as lamina wrote it before the Keras form: each function as its plain name."""
    if isinstance(value, dict):
        if value.get("class_name") == "function":
            return value["config"]
        return {key: _to_plain_names(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_plain_names(item) for item in value]
    return value


def test_a_file_with_functions_by_plain_name_still_loads(tmp_path, registered):
    model, x, y = _compiled_model()
    path = tmp_path / "new.lamina"
    model.save(path)
    old = tmp_path / "old.lamina"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "config.json":
                config = json.loads(data)
                assert "'class_name': 'function'" in str(config)  # there is something to convert
                config = _to_plain_names(config)
                assert config["compile_config"]["metric"] == ["accuracy", f"{PACKAGE}>mean_pred"]
                data = json.dumps(config).encode()
            target.writestr(info, data)
    _check_restored(lm.load_model(old), x, y)


def test_plain_strings_stay_strings():
    modules_before = set(sys.modules)
    for name in ("accuracy", "relu", "mean_squared_error", "SGD", "Dense", "os.system", "no such name"):
        assert lm.saving.deserialize(name) == name
    assert lm.saving.deserialize(["accuracy", "mse"]) == ["accuracy", "mse"]
    assert set(sys.modules) == modules_before


def test_custom_objects_and_registrations_name_a_plain_string(registered):
    def my_fn(x):
        return x

    assert lm.saving.deserialize("my_fn", custom_objects={"my_fn": my_fn}) is my_fn
    with lm.saving.custom_object_scope({"my_fn": my_fn}):
        assert lm.saving.deserialize("my_fn") is my_fn
    assert lm.saving.deserialize("my_fn") == "my_fn"
    assert lm.saving.deserialize(f"{PACKAGE}>mean_pred") is mean_pred  # a registered name, as in Keras


def test_functions_serialize_in_keras_form(keras, registered):
    assert lm.saving.serialize(lm.activations.relu) == keras.saving.serialize_keras_object(keras.activations.relu)
    assert lm.saving.serialize(lm.losses.mse) == {**FUNCTION_FORM, "config": "mean_squared_error"}
    config = json.loads(json.dumps(lm.saving.serialize({"metrics": ["accuracy", mean_pred]})))
    assert config == {"metrics": ["accuracy", {**FUNCTION_FORM, "config": f"{PACKAGE}>mean_pred"}]}
    assert lm.saving.deserialize(config["metrics"]) == ["accuracy", mean_pred]
    # Inside a built-in layer's config an activation stays its plain name, as Keras writes it.
    assert lm.saving.serialize(lm.layers.Dense(2, activation="relu"))["config"]["activation"] == "relu"


def test_keras_written_function_configs_load(keras, registered):
    def keras_mean_pred(y_true, y_pred):
        return y_pred

    keras.saving.register_keras_serializable(package=PACKAGE, name="mean_pred")(keras_mean_pred)
    try:
        written = [keras.saving.serialize_keras_object(obj) for obj in (
            keras.activations.relu, keras.losses.mean_squared_error, keras.metrics.binary_accuracy,
            ["accuracy", keras_mean_pred])]
    finally:
        keras.saving.get_custom_objects().pop(f"{PACKAGE}>mean_pred")
    relu, mse, binary_accuracy, metrics = (lm.saving.deserialize(json.loads(json.dumps(c))) for c in written)
    assert relu is lm.activations.relu and mse is lm.losses.mean_squared_error
    assert binary_accuracy is lm.metrics.binary_accuracy
    assert metrics == ["accuracy", mean_pred]
    # Earlier Keras labels a built-in function with its family, where the metrics' table holds
    # the class of the same name: the function form still means the function.
    older = {"module": "keras.metrics", "class_name": "function", "config": "mean_squared_error",
             "registered_name": "mean_squared_error"}
    assert lm.saving.deserialize(older) is lm.metrics.mean_squared_error
    assert lm.metrics.deserialize(older) is lm.metrics.mean_squared_error


def test_keras_written_wrapper_and_lambda_configs_load(keras):
    y_true, y_pred = np.array([[1.0], [0.0], [1.0]], "float32"), np.array([[0.9], [0.8], [0.2]], "float32")
    keras_metric = keras.metrics.MeanMetricWrapper(keras.metrics.binary_accuracy, name="ba")
    metric = lm.metrics.deserialize({"class_name": "MeanMetricWrapper", "config": keras_metric.get_config()})
    keras_metric.update_state(y_true, y_pred)
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(float(keras_metric.result()))

    config = keras.saving.serialize_keras_object(keras.layers.Lambda(keras.activations.relu, name="fn"))
    config["config"]["dtype"] = "float32"  # the function is what this test is about
    layer = lm.saving.deserialize(json.loads(json.dumps(config)))
    assert type(layer) is lm.layers.Lambda and layer.function is lm.activations.relu
    x = np.array([[-1.0, 2.0]], "float32")
    np.testing.assert_allclose(layer(x), np.maximum(x, 0.0))


@pytest.mark.parametrize("plain", [True, False], ids=["plain name", "keras form"])
def test_wrappers_and_lambda_read_both_forms(registered, plain):
    """Wrappers and Lambda write plain names (as before); they read those and Keras's form."""
    def stored(name):
        return name if plain else {**FUNCTION_FORM, "config": name}

    loss = lm.losses.LossFunctionWrapper.from_config({"name": "l", "fn": stored(f"{PACKAGE}>half_square_error")})
    metric = lm.metrics.MeanMetricWrapper.from_config({"name": "m", "fn": stored("binary_accuracy")})
    layer = lm.layers.Lambda.from_config({"name": "fn", "function": stored(f"{PACKAGE}>doubled_relu")})
    dense = lm.layers.Dense.from_config({**lm.layers.Dense(2).get_config(), "activation": stored("relu")})
    assert loss.fn is half_square_error and metric._fn is lm.metrics.binary_accuracy
    assert layer.function is doubled_relu and dense.activation is lm.activations.relu
    x = np.array([[-1.0, 3.0]], "float32")
    np.testing.assert_allclose(layer(x), [[0.0, 6.0]])


def test_function_form_refusals_are_unchanged():
    modules_before = set(sys.modules)
    with pytest.raises(ValueError, match="module path"):
        lm.saving.deserialize({**FUNCTION_FORM, "config": "os.system"})
    with pytest.raises(ValueError, match="Unknown object function 'eval'"):
        lm.saving.deserialize({**FUNCTION_FORM, "config": "eval"})
    with pytest.raises(ValueError, match="Unknown Lambda function 'no_such_fn'"):
        lm.layers.Lambda.from_config({"name": "fn", "function": {**FUNCTION_FORM, "config": "no_such_fn"}})
    with pytest.raises(ValueError, match="'module' is 'os'"):
        lm.saving.deserialize({"module": "os", "class_name": "function", "config": "system"})
    assert set(sys.modules) == modules_before


def test_serialized_function_is_json_and_unregistered_code_is_refused():
    text = json.dumps(lm.saving.serialize([lm.activations.gelu, lm.metrics.accuracy]))
    assert json.loads(text)[1] == {**FUNCTION_FORM, "config": "accuracy"}
    with pytest.raises(ValueError, match="only named functions"):
        lm.saving.serialize(lambda x: x)


def test_a_metric_given_as_a_function_stays_that_function_after_reloading(tmp_path):
    """``metrics=[lm.metrics.accuracy]`` (exact match) must not reload as the string "accuracy"
    (which compile resolves to the accuracy that fits the loss)."""
    model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy", metrics=[lm.metrics.accuracy])
    x = y = np.eye(3, dtype="float32")
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    path = str(tmp_path / "m.lamina")
    model.save(path)
    after = lm.load_model(path).evaluate(x, y, verbose=0, return_dict=True)
    assert before["accuracy"] == after["accuracy"] == 0.0  # softmax outputs never equal one-hot labels
    np.testing.assert_allclose(after["loss"], before["loss"], rtol=1e-6)
