"""Port of the Keras 3 guide "Making new layers and models via subclassing".

Source: keras-team/keras-io, ``guides/keras_core/making_new_layers_and_models_via_subclassing.py``
(the top-level ``guides/`` copy is the TensorFlow version). One test per section of the guide,
with the smallest faithful change: ``keras`` -> ``lm``, ``keras.ops`` -> ``jax.numpy``,
``keras.random`` -> ``lm.random``, MNIST -> scikit-learn's ``load_digits`` (8x8 images, so
64 features instead of 784), fewer epochs.

Changes beyond the mechanical translation (each one a place where a Keras user notices lamina):
- The VAE's ``Sampling`` layer draws from an ``lm.random.SeedGenerator`` held by the layer,
  as the current keras.io version of the guide does: an unseeded draw inside ``fit`` is refused
  on JAX by Keras 3 itself ("[JAX RNG] When tracing a JAX function ...") and by lamina.
- The ``ResNet`` example of "The Model class" is only sketched in the guide (``ResNetBlock`` is
  never defined); it is filled in with a two-convolution block, trained on digits, and saved
  with ``save_weights`` as the text says.

No section is left out.
"""

import jax
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


# ---------------------------------------------------------------------------------------------
# The guide's Linear layer, in its successive forms.


class LinearInInit(lm.Layer):
    def __init__(self, units=32, input_dim=32):
        super().__init__()
        self.w = self.add_weight(shape=(input_dim, units), initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(units,), initializer="zeros", trainable=True)

    def call(self, inputs):
        return jnp.matmul(inputs, self.w) + self.b


class Linear(lm.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)

    def call(self, inputs):
        return jnp.matmul(inputs, self.w) + self.b


def test_layer_class_combines_state_and_computation():
    """Section "The Layer class: the combination of state (weights) and some computation"."""
    x = jnp.ones((2, 2))
    linear_layer = LinearInInit(4, 2)
    y = linear_layer(x)
    assert y.shape == (2, 4)
    np.testing.assert_allclose(np.asarray(y), np.ones((2, 2)) @ np.asarray(linear_layer.w) + np.asarray(linear_layer.b), rtol=1e-6)
    assert linear_layer.weights == [linear_layer.w, linear_layer.b]


class ComputeSum(lm.Layer):
    def __init__(self, input_dim):
        super().__init__()
        self.total = self.add_weight(initializer="zeros", shape=(input_dim,), trainable=False)

    def call(self, inputs):
        self.total.assign_add(jnp.sum(inputs, axis=0))
        return self.total


def test_layers_can_have_non_trainable_weights():
    """Section "Layers can have non-trainable weights": the guide prints [2. 2.] then [4. 4.]."""
    x = jnp.ones((2, 2))
    my_sum = ComputeSum(2)
    y = my_sum(x)
    np.testing.assert_array_equal(y.numpy(), [2.0, 2.0])
    y = my_sum(x)
    np.testing.assert_array_equal(y.numpy(), [4.0, 4.0])
    assert len(my_sum.weights) == 1
    assert len(my_sum.non_trainable_weights) == 1
    assert my_sum.trainable_weights == []


def test_deferring_weight_creation_until_input_shape_is_known():
    """Section "Best practice: deferring weight creation until the shape of the inputs is known"."""
    x = jnp.ones((2, 2))
    linear_layer = Linear(32)
    assert not linear_layer.built and linear_layer.weights == []
    y = linear_layer(x)
    assert linear_layer.built
    assert y.shape == (2, 32)
    assert [tuple(w.shape) for w in linear_layer.weights] == [(2, 32), (32,)]


class MLPBlock(lm.Layer):
    def __init__(self):
        super().__init__()
        self.linear_1 = Linear(32)
        self.linear_2 = Linear(32)
        self.linear_3 = Linear(1)

    def call(self, inputs):
        x = self.linear_1(inputs)
        x = lm.activations.relu(x)
        x = self.linear_2(x)
        x = lm.activations.relu(x)
        return self.linear_3(x)


def test_layers_are_recursively_composable(keras):
    """Section "Layers are recursively composable": 6 weights, 6 trainable; same numbers as Keras."""
    mlp = MLPBlock()
    x = np.random.default_rng(0).normal(size=(3, 64)).astype("float32")
    y = mlp(jnp.ones(shape=(3, 64)))
    assert y.shape == (3, 1)
    assert len(mlp.weights) == 6
    assert len(mlp.trainable_weights) == 6

    class KLinear(keras.layers.Layer):
        def __init__(self, units=32):
            super().__init__()
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")
            self.b = self.add_weight(shape=(self.units,), initializer="random_normal")

        def call(self, inputs):
            return keras.ops.matmul(inputs, self.w) + self.b

    class KMLPBlock(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.linear_1, self.linear_2, self.linear_3 = KLinear(32), KLinear(32), KLinear(1)

        def call(self, inputs):
            x = keras.activations.relu(self.linear_1(inputs))
            x = keras.activations.relu(self.linear_2(x))
            return self.linear_3(x)

    kmlp = KMLPBlock()
    kmlp(np.ones((3, 64), "float32"))
    kmlp.set_weights(mlp.get_weights())
    np.testing.assert_allclose(np.asarray(mlp(x)), np.asarray(kmlp(x)), rtol=1e-5, atol=1e-6)


class JaxLinear(Linear):
    def call(self, inputs):
        return jax.numpy.matmul(inputs, self.w) + self.b


def test_backend_specific_layer_with_jax_numpy():
    """Section "Backend-agnostic layers and backend-specific layers": the jax.numpy Linear.

    The guide shows a layer whose ``call`` uses ``jax.numpy`` directly; it must behave the same
    eagerly and inside compiled code (``lm.jit``).
    """
    layer = JaxLinear(4)
    x = np.random.default_rng(1).normal(size=(5, 3)).astype("float32")
    eager = np.asarray(layer(x))
    compiled = np.asarray(lm.jit(lambda v: layer(v))(x))
    np.testing.assert_allclose(compiled, eager, rtol=1e-6)
    np.testing.assert_allclose(eager, x @ np.asarray(layer.w) + np.asarray(layer.b), rtol=1e-5)


class ActivityRegularizationLayer(lm.Layer):
    def __init__(self, rate=1e-2):
        super().__init__()
        self.rate = rate

    def call(self, inputs):
        self.add_loss(self.rate * jnp.mean(inputs))
        return inputs


class OuterLayer(lm.Layer):
    def __init__(self):
        super().__init__()
        self.activity_reg = ActivityRegularizationLayer(1e-2)

    def call(self, inputs):
        return self.activity_reg(inputs)


class OuterLayerWithKernelRegularizer(lm.Layer):
    def __init__(self):
        super().__init__()
        self.dense = lm.layers.Dense(32, kernel_regularizer=lm.regularizers.l2(1e-3))

    def call(self, inputs):
        return self.dense(inputs)


def test_add_loss_method(keras):
    """Section "The add_loss() method": losses reset per call, regularizers, and fit() with them."""
    layer = OuterLayer()
    assert len(layer.losses) == 0
    _ = layer(jnp.zeros((1, 1)))
    assert len(layer.losses) == 1
    _ = layer(jnp.zeros((1, 1)))
    assert len(layer.losses) == 1

    layer = OuterLayerWithKernelRegularizer()
    _ = layer(jnp.zeros((1, 1)))
    # "This is `1e-3 * sum(layer.dense.kernel ** 2)`"
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), 1e-3 * np.sum(np.asarray(layer.dense.kernel) ** 2), rtol=1e-5)

    rng = np.random.default_rng(2)
    x, y = rng.random((2, 3)).astype("float32"), rng.random((2, 3)).astype("float32")
    inputs = lm.Input(shape=(3,))
    outputs = ActivityRegularizationLayer()(inputs)
    model = lm.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    with_loss = model.fit(x, y, verbose=0).history["loss"][0]
    model.compile(optimizer="adam")
    only_add_loss = model.fit(x, y, verbose=0).history["loss"][0]

    # The model has no weights, so the logged losses are plain formulas of the data.
    np.testing.assert_allclose(with_loss, np.mean((x - y) ** 2) + 1e-2 * np.mean(x), rtol=1e-5)
    np.testing.assert_allclose(only_add_loss, 1e-2 * np.mean(x), rtol=1e-5)

    class KActivityRegularizationLayer(keras.layers.Layer):
        def call(self, inputs):
            self.add_loss(1e-2 * keras.ops.mean(inputs))
            return inputs

    kin = keras.Input(shape=(3,))
    kmodel = keras.Model(kin, KActivityRegularizationLayer()(kin))
    kmodel.compile(optimizer="adam", loss="mse")
    k_with_loss = kmodel.fit(x, y, verbose=0).history["loss"][0]
    np.testing.assert_allclose(with_loss, k_with_loss, rtol=1e-5)


class LinearWithConfig(lm.Layer):
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


class LinearWithBaseConfig(lm.Layer):
    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)

    def call(self, inputs):
        return jnp.matmul(inputs, self.w) + self.b

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config


def test_optionally_enable_serialization_on_your_layers():
    """Section "You can optionally enable serialization on your layers"."""
    layer = LinearWithConfig(64)
    config = layer.get_config()
    assert config == {"units": 64}
    new_layer = LinearWithConfig.from_config(config)
    assert new_layer.units == 64

    layer = LinearWithBaseConfig(64, name="my_linear")
    config = layer.get_config()
    assert config["units"] == 64
    assert config["name"] == "my_linear"
    assert config["trainable"] is True
    new_layer = LinearWithBaseConfig.from_config(config)
    assert new_layer.units == 64 and new_layer.name == "my_linear"
    assert new_layer(np.ones((2, 3), "float32")).shape == (2, 64)


class CustomDropout(lm.Layer):
    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, inputs, training=None):
        if training:
            return lm.random.dropout(inputs, rate=self.rate)
        return inputs


def test_privileged_training_argument():
    """Section "Privileged `training` argument in the `call()` method"."""
    x = np.ones((50, 40), "float32")
    layer = CustomDropout(0.5)
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    dropped = np.asarray(layer(x, training=True))
    assert set(np.unique(dropped)) <= {0.0, 2.0}
    assert 0.35 < np.mean(dropped == 0.0) < 0.65

    # `training` given to an outer model reaches the inner layer that did not get it.
    model = lm.Sequential([lm.layers.Dense(40, kernel_initializer="identity", use_bias=False), CustomDropout(0.5)])
    outer = np.asarray(model(x, training=True))
    assert np.mean(outer == 0.0) > 0.35
    np.testing.assert_allclose(np.asarray(model(x)), x)


class MaskReporter(lm.Layer):
    """Returns its mask (as floats) and notes, for every call, whether it received one."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.received_mask = []

    def call(self, inputs, mask=None):
        self.received_mask.append(mask is not None)
        if mask is None:
            return jnp.full(inputs.shape[:2], -1.0)
        return mask.astype("float32")


def test_privileged_mask_argument():
    """Section "Privileged `mask` argument in the `call()` method".

    "Keras will automatically pass the correct mask argument to __call__() for layers that
    support it, when a mask is generated by a prior layer" (Embedding with mask_zero=True) --
    in eager calls and in a Functional model built from lm.Input.
    """
    tokens = np.array([[3, 5, 0, 0], [1, 0, 0, 0]], "int32")
    expected = (tokens != 0).astype("float32")
    embedding = lm.layers.Embedding(10, 4, mask_zero=True)
    reporter = MaskReporter()
    np.testing.assert_array_equal(np.asarray(reporter(embedding(tokens))), expected)

    inputs = lm.Input(shape=(None,), dtype="int32")
    reporter = MaskReporter()
    outputs = reporter(lm.layers.Embedding(10, 4, mask_zero=True)(inputs))
    # Also while the model is defined from lm.Input (the symbolic call).
    assert reporter.received_mask and all(reporter.received_mask)
    model = lm.Model(inputs, outputs)
    np.testing.assert_array_equal(np.asarray(model(tokens)), expected)
    assert all(reporter.received_mask)


class ResNetBlock(lm.Layer):
    def __init__(self, filters=8):
        super().__init__()
        self.conv_1 = layers.Conv2D(filters, 3, padding="same", activation="relu")
        self.conv_2 = layers.Conv2D(filters, 3, padding="same")

    def call(self, inputs):
        x = self.conv_1(inputs)
        return lm.activations.relu(self.conv_2(x) + x)


class ResNet(lm.Model):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.block_1 = ResNetBlock()
        self.block_2 = ResNetBlock()
        self.global_pool = layers.GlobalAveragePooling2D()
        self.classifier = layers.Dense(num_classes)

    def call(self, inputs):
        x = self.block_1(inputs)
        x = self.block_2(x)
        x = self.global_pool(x)
        return self.classifier(x)


def test_model_class(digits, tmp_path):
    """Section "The `Model` class": a subclassed model trained with fit() and saved with save_weights()."""
    x, y = digits
    images = x[:512].reshape(-1, 8, 8, 1)
    labels = y[:512]
    resnet = ResNet(num_classes=10)
    resnet.compile(optimizer="adam", loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = resnet.fit(images, labels, epochs=3, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert [type(layer).__name__ for layer in resnet.layers] == ["ResNetBlock", "ResNetBlock", "GlobalAveragePooling2D", "Dense"]

    path = str(tmp_path / "resnet.safetensors")
    resnet.save_weights(path)
    restored = ResNet(num_classes=10)
    restored(images[:1])
    restored.load_weights(path)
    np.testing.assert_allclose(restored.predict(images[:64], verbose=0), resnet.predict(images[:64], verbose=0), rtol=1e-5, atol=1e-6)


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = lm.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = jnp.shape(z_mean)[0]
        dim = jnp.shape(z_mean)[1]
        epsilon = lm.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + jnp.exp(0.5 * z_log_var) * epsilon


class Encoder(layers.Layer):
    """Maps digits to a triplet (z_mean, z_log_var, z)."""

    def __init__(self, latent_dim=32, intermediate_dim=64, name="encoder", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dense_proj = layers.Dense(intermediate_dim, activation="relu")
        self.dense_mean = layers.Dense(latent_dim)
        self.dense_log_var = layers.Dense(latent_dim)
        self.sampling = Sampling()

    def call(self, inputs):
        x = self.dense_proj(inputs)
        z_mean = self.dense_mean(x)
        z_log_var = self.dense_log_var(x)
        z = self.sampling((z_mean, z_log_var))
        return z_mean, z_log_var, z


class Decoder(layers.Layer):
    """Converts z, the encoded digit vector, back into a readable digit."""

    def __init__(self, original_dim, intermediate_dim=64, name="decoder", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dense_proj = layers.Dense(intermediate_dim, activation="relu")
        self.dense_output = layers.Dense(original_dim, activation="sigmoid")

    def call(self, inputs):
        x = self.dense_proj(inputs)
        return self.dense_output(x)


class VariationalAutoEncoder(lm.Model):
    """Combines the encoder and decoder into an end-to-end model for training."""

    def __init__(self, original_dim, intermediate_dim=64, latent_dim=32, name="autoencoder", **kwargs):
        super().__init__(name=name, **kwargs)
        self.original_dim = original_dim
        self.encoder = Encoder(latent_dim=latent_dim, intermediate_dim=intermediate_dim)
        self.decoder = Decoder(original_dim, intermediate_dim=intermediate_dim)

    def call(self, inputs):
        z_mean, z_log_var, z = self.encoder(inputs)
        reconstructed = self.decoder(z)
        kl_loss = -0.5 * jnp.mean(z_log_var - jnp.square(z_mean) - jnp.exp(z_log_var) + 1)
        self.add_loss(kl_loss)
        return reconstructed


def test_end_to_end_example_vae(digits, keras):
    """Section "Putting it all together: an end-to-end example" (the VAE, trained with fit())."""
    x_train, _ = digits
    original_dim = 64
    vae = VariationalAutoEncoder(original_dim, 64, 32)
    optimizer = lm.optimizers.Adam(learning_rate=1e-3)
    vae.compile(optimizer, loss=lm.losses.MeanSquaredError())
    history = vae.fit(x_train, x_train, epochs=2, batch_size=64, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 2 and np.all(np.isfinite(losses)) and losses[1] < losses[0]
    assert len(vae.weights) == 10  # 5 Dense layers; the seed state is not a weight.

    # The KL term added with add_loss does not depend on the random draw: compare it, with
    # the trained weights, to Keras running the same model.
    batch = x_train[:16]
    vae(batch)
    assert len(vae.losses) == 1
    z_mean = np.asarray(vae.encoder.dense_mean(vae.encoder.dense_proj(batch)))
    z_log_var = np.asarray(vae.encoder.dense_log_var(vae.encoder.dense_proj(batch)))
    expected_kl = -0.5 * np.mean(z_log_var - z_mean**2 - np.exp(z_log_var) + 1)
    np.testing.assert_allclose(float(vae.losses[0]), expected_kl, rtol=1e-4)

    kin = keras.Input(shape=(original_dim,))
    h = keras.layers.Dense(64, activation="relu")(kin)
    kmean, klogvar = keras.layers.Dense(32)(h), keras.layers.Dense(32)(h)
    kencoder = keras.Model(kin, [kmean, klogvar])
    kencoder.set_weights(
        [np.asarray(w) for layer in (vae.encoder.dense_proj, vae.encoder.dense_mean, vae.encoder.dense_log_var) for w in layer.weights]
    )
    k_mean, k_log_var = (np.asarray(t) for t in kencoder(batch))
    keras_kl = float(-0.5 * keras.ops.mean(k_log_var - keras.ops.square(k_mean) - keras.ops.exp(k_log_var) + 1))
    np.testing.assert_allclose(float(vae.losses[0]), keras_kl, rtol=1e-4)
