"""Port of the Keras 3 guide "Customizing Saving and Serialization".

Source: keras-team/keras-io, ``guides/customizing_saving_and_serialization.py`` (a Keras 3 guide;
there is no ``keras_core`` copy). One test per section, with the smallest faithful change:
``keras`` -> ``lm``, ``keras.ops`` -> ``jax.numpy``.

Changes beyond the mechanical translation:
- ``model.save("x.keras")`` -> ``"x.lamina"`` (lamina's own file format).

No section is left out.
"""

import os

import jax.numpy as jnp
import numpy as np

import lamina as lm


@lm.utils.register_keras_serializable(package="my_custom_package")
class LayerWithCustomVariable(lm.layers.Dense):
    def __init__(self, units, **kwargs):
        super().__init__(units, **kwargs)
        self.my_variable = lm.Variable(np.random.random((units,)), name="my_variable", dtype="float32")

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["variables"] = self.my_variable.numpy()

    def load_own_variables(self, store):
        self.my_variable.assign(store["variables"])
        for i, v in enumerate(self.weights):
            v.assign(store[f"{i}"])

    def call(self, inputs):
        dense_out = super().call(inputs)
        return dense_out + self.my_variable


def test_save_own_variables_and_load_own_variables(tmp_path):
    """Section "`save_own_variables()` and `load_own_variables()`"."""
    model = lm.Sequential([LayerWithCustomVariable(1)])
    ref_input = np.random.random((8, 10)).astype("float32")
    ref_output = np.random.random((8, 10)).astype("float32")
    model.compile(optimizer="adam", loss="mean_squared_error")
    model.fit(ref_input, ref_output, verbose=0)

    path = str(tmp_path / "custom_vars_model.lamina")
    model.save(path)
    restored_model = lm.models.load_model(path)
    np.testing.assert_allclose(model.layers[0].my_variable.numpy(), restored_model.layers[0].my_variable.numpy())
    np.testing.assert_allclose(restored_model.predict(ref_input, verbose=0), model.predict(ref_input, verbose=0), rtol=1e-6)


@lm.saving.register_keras_serializable(package="my_custom_package")
class LayerWithCustomAssets(lm.layers.Dense):
    def __init__(self, vocab=None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.vocab = vocab

    def save_assets(self, inner_path):
        with open(os.path.join(inner_path, "vocabulary.txt"), "w") as f:
            f.write(self.vocab)

    def load_assets(self, inner_path):
        with open(os.path.join(inner_path, "vocabulary.txt")) as f:
            text = f.read()
        self.vocab = text.replace("<unk>", "little")


def test_save_assets_and_load_assets(tmp_path):
    """Section "`save_assets()` and `load_assets()`"."""
    model = lm.Sequential([LayerWithCustomAssets(vocab="Mary had a <unk> lamb.", units=5)])
    x = np.random.random((10, 10)).astype("float32")
    _ = model(x)
    path = str(tmp_path / "custom_assets_model.lamina")
    model.save(path)
    restored_model = lm.models.load_model(path)
    np.testing.assert_string_equal(restored_model.layers[0].vocab, "Mary had a little lamb.")


@lm.saving.register_keras_serializable(package="my_custom_package")
class LayerWithCustomBuild(lm.layers.Layer):
    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def call(self, inputs):
        return jnp.matmul(inputs, self.w) + self.b

    def get_config(self):
        return dict(units=self.units, **super().get_config())

    def build(self, input_shape, layer_init):
        super().build(input_shape)
        self._input_shape = input_shape
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer=layer_init, trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer=layer_init, trainable=True)
        self.layer_init = layer_init

    def get_build_config(self):
        build_config = {"layer_init": self.layer_init, "input_shape": self._input_shape}
        return build_config

    def build_from_config(self, config):
        self.build(config["input_shape"], config["layer_init"])


def test_get_build_config_and_build_from_config(tmp_path):
    """Section "`get_build_config()` and `build_from_config()`"."""
    custom_layer = LayerWithCustomBuild(units=16)
    custom_layer.build(input_shape=(8,), layer_init="random_normal")
    model = lm.Sequential([custom_layer, lm.layers.Dense(1, activation="sigmoid")])
    x = np.random.random((16, 8)).astype("float32")
    y = model(x)
    assert y.shape == (16, 1)

    path = str(tmp_path / "custom_build_model.lamina")
    model.save(path)
    restored_model = lm.models.load_model(path)
    np.testing.assert_equal(restored_model.layers[0].layer_init, "random_normal")
    np.testing.assert_equal(restored_model.built, True)
    np.testing.assert_allclose(np.asarray(restored_model(x)), np.asarray(y), rtol=1e-6)


@lm.saving.register_keras_serializable(package="my_custom_package")
def small_square_sum_loss(y_true, y_pred):
    loss = jnp.square(y_pred - y_true)
    loss = loss / 10.0
    loss = jnp.sum(loss, axis=1)
    return loss


@lm.saving.register_keras_serializable(package="my_custom_package")
def mean_pred(y_true, y_pred):
    return jnp.mean(y_pred)


@lm.saving.register_keras_serializable(package="my_custom_package")
class ModelWithCustomCompile(lm.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense1 = lm.layers.Dense(8, activation="relu")
        self.dense2 = lm.layers.Dense(4, activation="softmax")

    def call(self, inputs):
        x = self.dense1(inputs)
        return self.dense2(x)

    def compile(self, optimizer, loss_fn, metrics):
        super().compile(optimizer=optimizer, loss=loss_fn, metrics=metrics)
        self.model_optimizer = optimizer
        self.loss_fn = loss_fn
        self.loss_metrics = metrics

    def get_compile_config(self):
        return {"model_optimizer": self.model_optimizer, "loss_fn": self.loss_fn, "metric": self.loss_metrics}

    def compile_from_config(self, config):
        optimizer = lm.utils.deserialize_keras_object(config["model_optimizer"])
        loss_fn = lm.utils.deserialize_keras_object(config["loss_fn"])
        metrics = lm.utils.deserialize_keras_object(config["metric"])
        self.compile(optimizer=optimizer, loss_fn=loss_fn, metrics=metrics)


def test_get_compile_config_and_compile_from_config(tmp_path):
    """Section "`get_compile_config()` and `compile_from_config()`"."""
    model = ModelWithCustomCompile()
    model.compile(optimizer="SGD", loss_fn=small_square_sum_loss, metrics=["accuracy", mean_pred])
    x = np.random.random((4, 8)).astype("float32")
    y = np.random.random((4,)).astype("float32")
    history = model.fit(x, y, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss", "mean_pred"]
    pred = model.predict(x, verbose=0)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"], np.mean(np.sum((pred - y) ** 2 / 10.0, axis=1)), rtol=1e-5)
    np.testing.assert_allclose(logs["mean_pred"], np.mean(pred), rtol=1e-5)

    path = str(tmp_path / "custom_compile_model.lamina")
    model.save(path)
    restored_model = lm.models.load_model(path)
    np.testing.assert_equal(model.model_optimizer, restored_model.model_optimizer)
    np.testing.assert_equal(model.loss_fn, restored_model.loss_fn)
    np.testing.assert_equal(model.loss_metrics, restored_model.loss_metrics)
    np.testing.assert_allclose(restored_model.predict(x, verbose=0), pred, rtol=1e-6)
