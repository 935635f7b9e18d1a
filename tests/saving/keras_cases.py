"""Small Keras 3 models, trained a step in Keras, and their lamina twins, for the Keras-file tests.

Each case gives a Keras model built and fitted (a couple of steps, so that weights and
BatchNorm statistics are not their initial values), its input batch, and where it helps a
function building the same architecture in lamina code (to move weights both ways).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

import lamina as lm  # noqa: E402

CASES = ("mlp", "convnet", "lstm_masking", "multi_input", "transformer", "custom_layer")


def keras_module():
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError("These tests compare against Keras on JAX: run them with KERAS_BACKEND=jax.")
    return keras


def register_keras_custom(keras):
    """``kt>ScaledDense`` in Keras: own trainable and non-trainable weights plus a sublayer."""
    if keras.saving.get_registered_object("kt>ScaledDense") is not None:
        return keras.saving.get_registered_object("kt>ScaledDense")

    @keras.saving.register_keras_serializable(package="kt")
    class ScaledDense(keras.layers.Layer):
        def __init__(self, units, scale=2.0, **kwargs):
            super().__init__(**kwargs)
            self.units, self.scale = units, scale
            self.inner = keras.layers.Dense(units)

        def build(self, input_shape):
            self.gain = self.add_weight(shape=(self.units,), initializer="ones", name="gain")
            self.offset = self.add_weight(shape=(), initializer="zeros", trainable=False, name="offset")
            self.inner.build(input_shape)

        def call(self, x):
            return self.inner(x) * self.gain * self.scale + self.offset

        def get_config(self):
            return {**super().get_config(), "units": self.units, "scale": self.scale}

    return ScaledDense


@lm.saving.register_serializable(package="kt")
class ScaledDense(lm.Layer):
    """The lamina twin of Keras's ``kt>ScaledDense``, registered under the same name."""

    def __init__(self, units, scale=2.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.scale = units, scale
        self.inner = lm.layers.Dense(units)

    def build(self, input_shape):
        self.gain = self.add_weight(shape=(self.units,), initializer="ones", name="gain")
        self.offset = self.add_weight(shape=(), initializer="zeros", trainable=False, name="offset")
        self.inner.build(input_shape)

    def call(self, x):
        return self.inner(x) * self.gain * self.scale + self.offset

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale}


def build_keras(case: str, keras, seed: int = 0, train: bool = True):
    """``(Keras model, x)`` for ``case``, trained two steps unless ``train=False``."""
    L = keras.layers
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    if case == "mlp":
        model = keras.Sequential([keras.Input((6,)), L.Dense(8, activation="relu"), L.Dropout(0.2), L.Dense(3)])
        x, y = rng.normal(size=(16, 6)).astype("float32"), rng.normal(size=(16, 3)).astype("float32")
        model.compile("adam", "mse")
    elif case == "convnet":
        inputs = keras.Input((8, 8, 3))
        h = L.Conv2D(4, 3, padding="same")(inputs)
        h = L.Activation("relu")(L.BatchNormalization()(h))
        h = L.GlobalAveragePooling2D()(L.MaxPooling2D()(h))
        model = keras.Model(inputs, L.Dense(2, activation="softmax")(h))
        x, y = rng.normal(size=(16, 8, 8, 3)).astype("float32"), rng.integers(0, 2, 16)
        model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    elif case == "lstm_masking":
        model = keras.Sequential([keras.Input((5,), dtype="int32"), L.Embedding(20, 4, mask_zero=True),
                                  L.LSTM(3), L.Dense(1)])
        x = rng.integers(1, 20, (16, 5))
        x[:8, 3:] = 0  # padded rows: the mask must reach the LSTM for the outputs to agree
        y = rng.normal(size=(16, 1)).astype("float32")
        model.compile("rmsprop", "mse")
    elif case == "multi_input":
        a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
        shared = L.Dense(5, activation="tanh", name="shared")
        ha, hb = shared(a), shared(b)
        first = L.Dense(1, name="first")(L.Concatenate()([ha, hb]))
        second = L.Dense(2, name="second")(L.Add()([ha, hb]))
        model = keras.Model([a, b], [first, second])
        x = [rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=(16, 4)).astype("float32")]
        y = [rng.normal(size=(16, 1)).astype("float32"), rng.normal(size=(16, 2)).astype("float32")]
        model.compile("adam", ["mse", "mse"])
    elif case == "transformer":
        inputs = keras.Input((6, 8))
        attention = L.MultiHeadAttention(num_heads=2, key_dim=4)(inputs, inputs)
        h = L.LayerNormalization()(L.Add()([inputs, attention]))
        ffn = L.Dense(8)(L.Dense(16, activation="gelu")(h))
        h = L.LayerNormalization()(L.Add()([h, ffn]))
        model = keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling1D()(h)))
        x, y = rng.normal(size=(16, 6, 8)).astype("float32"), rng.normal(size=(16, 2)).astype("float32")
        model.compile("adamw", "mse")
    elif case == "custom_layer":
        keras_scaled = register_keras_custom(keras)
        inputs = keras.Input((4,))
        model = keras.Model(inputs, keras_scaled(3, scale=0.5)(inputs))
        x, y = rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=(16, 3)).astype("float32")
        model.compile("adam", "mse")
    else:
        raise ValueError(case)
    if train:
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # two steps
    return model, x


def build_lamina(case: str):
    """The same architecture as ``build_keras(case)``, written with lamina (built, untrained)."""
    L = lm.layers
    if case == "convnet":
        inputs = lm.Input((8, 8, 3))
        h = L.Conv2D(4, 3, padding="same")(inputs)
        h = L.Activation("relu")(L.BatchNormalization()(h))
        h = L.GlobalAveragePooling2D()(L.MaxPooling2D()(h))
        return lm.Model(inputs, L.Dense(2, activation="softmax")(h))
    if case == "multi_input":
        a, b = lm.Input((4,), name="a"), lm.Input((4,), name="b")
        shared = L.Dense(5, activation="tanh", name="shared")
        ha, hb = shared(a), shared(b)
        first = L.Dense(1, name="first")(L.Concatenate()([ha, hb]))
        second = L.Dense(2, name="second")(L.Add()([ha, hb]))
        return lm.Model([a, b], [first, second])
    if case == "lstm_masking":
        return lm.Sequential([lm.Input((5,), dtype="int32"), L.Embedding(20, 4, mask_zero=True), L.LSTM(3),
                              L.Dense(1)])
    raise ValueError(case)


def as_list(outputs) -> list:
    return [np.asarray(o) for o in outputs] if isinstance(outputs, (list, tuple)) else [np.asarray(outputs)]


def register_keras_subclassed(keras):
    """``kt>TwoDense`` in Keras: a subclassed model (no graph), sublayers in attributes."""
    if keras.saving.get_registered_object("kt>TwoDense") is not None:
        return keras.saving.get_registered_object("kt>TwoDense")

    @keras.saving.register_keras_serializable(package="kt")
    class TwoDense(keras.Model):
        def __init__(self, units=3, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.first = keras.layers.Dense(units, activation="relu")
            self.second = keras.layers.Dense(1)  # Keras saves it under "layers/dense_1": "layers" < "second"

        def call(self, x):
            return self.second(self.first(x))

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    return TwoDense


@lm.saving.register_serializable(package="kt")
class TwoDense(lm.Model):
    """The lamina twin of Keras's ``kt>TwoDense``."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.first = lm.layers.Dense(units, activation="relu")
        self.second = lm.layers.Dense(1)

    def call(self, x):
        return self.second(self.first(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}
