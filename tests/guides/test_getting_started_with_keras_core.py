"""Port of the Keras 3 guide "Getting started with Keras 3"
(keras-team/keras-io, guides/keras_core/getting_started_with_keras_core.py).

Translation: ``keras`` -> ``lm``, ``keras.ops.matmul`` -> ``jnp.matmul``,
``keras.random.dropout`` -> ``lm.random.dropout`` (same signature, ``seed=`` a
``SeedGenerator``). MNIST -> random images of MNIST's shape and type (28x28x1 floats in [0, 1],
``uint8`` labels) whose label is a simple function of the image, so a convnet learns it; 96
training and 32 test samples instead of 60,000 and 10,000, convolutions 4/4/8/8 filters wide
instead of 64/64/128/128, so that the module runs in seconds. Each step's stated outcome is
asserted and, where the code maps one to one, compared with Keras 3 holding the same weights.

Changes beyond that: the convnet's validation labels contradict the training rule, so that
EarlyStopping provably stops the 20-epoch run; MyModel trains on batches of 32 (128 would be
one batch) and holds out a quarter of all 128 images; the shuffling DataLoader is seeded and
the reference fit on arrays follows its order, so the two runs can be compared exactly.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cross_framework_components import WIDTHS, MyDense, MyDropout, MyModel

import lamina as lm

NUM_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)
BATCH = 32  # for MyModel: the guide's 128 would make one batch of the 96 samples


@pytest.fixture(scope="module")
def mnist_like():
    """Images of MNIST's shape; the label is the brightest of ten horizontal bands."""
    rng = np.random.default_rng(0)
    n_train, n_test = 96, 32
    images = rng.integers(0, 256, size=(n_train + n_test, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, size=n_train + n_test).astype(np.uint8)
    for i, label in enumerate(labels):
        images[i, 2 + 2 * label:4 + 2 * label, :] = 255
    x = np.expand_dims(images.astype("float32") / 255, -1)  # the guide's scaling and channel axis
    return dict(x_train=x[:n_train], y_train=labels[:n_train], x_test=x[n_train:], y_test=labels[n_train:])


@pytest.fixture(scope="module")
def K():
    """Keras 3 on JAX (the numeric reference), shared by the module's comparisons."""
    import keras

    return keras


def make_convnet(k, widths=WIDTHS):
    """The guide's MNIST convnet; ``k`` is ``lm`` or ``keras`` (the same code builds both)."""
    return k.Sequential(
        [
            k.layers.Input(shape=INPUT_SHAPE),
            k.layers.Conv2D(widths[0], kernel_size=(3, 3), activation="relu"),
            k.layers.Conv2D(widths[1], kernel_size=(3, 3), activation="relu"),
            k.layers.MaxPooling2D(pool_size=(2, 2)),
            k.layers.Conv2D(widths[2], kernel_size=(3, 3), activation="relu"),
            k.layers.Conv2D(widths[3], kernel_size=(3, 3), activation="relu"),
            k.layers.GlobalAveragePooling2D(),
            k.layers.Dropout(0.5),
            k.layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )


def compile_like_the_guide(model, k=lm):
    model.compile(
        loss=k.losses.SparseCategoricalCrossentropy(),
        optimizer=k.optimizers.Adam(learning_rate=1e-3),
        metrics=[
            k.metrics.SparseCategoricalAccuracy(name="acc"),
        ],
    )


def early_stopping_epochs(val_losses, patience, epochs):
    """How many epochs EarlyStopping(monitor="val_loss", patience) lets run (Keras's rule)."""
    best, wait = np.inf, 0
    for epoch, value in enumerate(val_losses[:epochs]):
        if value < best:
            best, wait = value, 0
        else:
            wait += 1
            if wait >= patience and epoch > 0:
                return epoch + 1
    return epochs


# -- A first example: a MNIST convnet ----------------------------------------------------------


def test_a_first_example_a_mnist_convnet(mnist_like, K, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    x_train, y_train = mnist_like["x_train"], mnist_like["y_train"]
    x_test, y_test = mnist_like["x_test"], mnist_like["y_test"]

    lm.random.set_seed(0)
    model = make_convnet(lm)
    model.summary()
    summary = capsys.readouterr().out
    for name in ("conv2d", "max_pooling2d", "global_average_pooling2d", "dropout", "dense"):
        assert name in summary
    assert f"{model.count_params():,}" in summary

    compile_like_the_guide(model)
    batch_size = 128
    epochs = 20
    callbacks = [
        lm.callbacks.ModelCheckpoint(filepath="model_at_epoch_{epoch}.keras"),
        lm.callbacks.EarlyStopping(monitor="val_loss", patience=2),
    ]
    # The last 15% (the validation split) get labels that contradict the rule the first 85%
    # teach, so val_loss rises as training goes on and EarlyStopping has to stop the run.
    y_fit = y_train.copy()
    n_val = len(y_fit) - int(len(y_fit) * 0.85)
    y_fit[-n_val:] = (y_fit[-n_val:] + 5) % NUM_CLASSES
    history = model.fit(
        x_train,
        y_fit,
        batch_size=batch_size,
        epochs=epochs,
        validation_split=0.15,
        callbacks=callbacks,
    )
    val_losses = history.history["val_loss"]
    ran = len(history.history["loss"])
    progress = capsys.readouterr().out  # verbose="auto": a progress bar per epoch
    assert f"Epoch {ran}/{epochs}" in progress and f"Epoch {ran + 1}/" not in progress
    assert all(name in progress for name in ("loss:", "acc:", "val_loss:", "val_acc:"))
    assert ran == early_stopping_epochs(val_losses, patience=2, epochs=epochs) < epochs
    assert model.stop_training
    # One checkpoint per epoch, the epoch number (1-based) in its name.
    assert sorted(os.listdir(tmp_path)) == sorted(f"model_at_epoch_{e}.keras" for e in range(1, ran + 1))

    score = model.evaluate(x_test, y_test, verbose=0)
    assert len(score) == 2 and model.metrics_names == ["loss", "acc"]

    model.save("final_model.keras")
    predictions_before = model.predict(x_test, verbose=0)
    model = lm.saving.load_model("final_model.keras")
    # Reloaded compiled (Keras's `model.compiled`), with the same metrics.
    assert model.compiled
    np.testing.assert_allclose(model.evaluate(x_test, y_test, verbose=0), score, rtol=1e-6)
    predictions = model.predict(x_test)
    assert predictions.shape == (len(x_test), NUM_CLASSES)
    np.testing.assert_array_equal(predictions, predictions_before)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)
    # The file is a Keras 3 file. Keras, holding the same weights (and compiled from the file
    # as the guide compiles), counts the same parameters, evaluates to the same loss and
    # accuracy and predicts the same.
    twin = K.saving.load_model("final_model.keras")
    assert twin.count_params() == model.count_params()
    np.testing.assert_array_equal(np.concatenate([w.ravel() for w in twin.get_weights()]),
                                  np.concatenate([w.ravel() for w in model.get_weights()]))
    np.testing.assert_allclose(twin.evaluate(x_test, y_test, verbose=0), score, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(twin.predict(x_test, verbose=0), predictions, rtol=1e-5, atol=1e-6)
    # The last epoch's checkpoint holds the final weights.
    last = lm.saving.load_model(f"model_at_epoch_{ran}.keras")
    np.testing.assert_array_equal(last.predict(x_test, verbose=0), predictions)


# -- Writing cross-framework custom components -------------------------------------------------
# The guide's MyDense, MyDropout and MyModel are in cross_framework_components.py (shared
# with the other port of the same code).


def test_custom_dense_follows_the_formula():
    """MyDense: ``activation(x @ kernel + bias)``, GlorotNormal kernel, zero bias."""
    lm.random.set_seed(1)
    layer = MyDense(64, activation="softmax")
    x = np.random.default_rng(0).normal(size=(4, 300)).astype("float32")
    y = np.asarray(layer(x))
    assert [w.name for w in layer.weights] == ["kernel", "bias"]
    assert all(w.trainable for w in layer.weights)
    kernel, bias = (np.asarray(w) for w in layer.weights)
    assert kernel.shape == (300, 64) and not bias.any()
    # GlorotNormal: a truncated normal of stddev sqrt(2 / (fan_in + fan_out)) / .8796...
    assert 0.8 < kernel.std() / np.sqrt(2 / (300 + 64)) < 1.2
    logits = x @ kernel + bias
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(y, expected / expected.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_custom_dropout_draws_new_masks_from_its_seed_generator():
    """MyDropout: its seed generator's state is in ``layer.variables`` and advances per call."""
    layer = MyDropout(0.5)
    x = np.ones((4, 64), "float32")
    assert layer.variables == [layer.seed_generator.state] and layer.weights == []
    first, second = np.asarray(layer(x)), np.asarray(layer(x))
    for y in (first, second):
        assert set(np.unique(y)) <= {0.0, 2.0}  # dropped, or scaled by 1 / (1 - rate)
        assert 0.25 < (y == 0).mean() < 0.75
    assert (first != second).any()

    # Compiled: each run draws a new mask, because the generator's state is threaded through.
    step = lm.jit(lambda inputs: layer(inputs))
    masks = [np.asarray(step(x)) for _ in range(3)]
    assert (masks[0] != masks[1]).any() and (masks[1] != masks[2]).any()
    # The same seed gives the same stream.
    again = MyDropout(0.5)
    np.testing.assert_array_equal(np.asarray(again(x)), first)


def draws_from(generator, seed=1337, limit=100):
    """How many keys ``generator`` has handed out since it was made from ``seed``."""
    key, state = jax.random.PRNGKey(seed), np.asarray(generator.state)
    for count in range(limit):
        if np.array_equal(np.asarray(key), state):
            return count
        key = jax.random.split(key)[0]
    raise AssertionError(f"{generator} is not within {limit} draws of seed {seed}")


def test_custom_model_fits(mnist_like):
    """MyModel: compile and fit with validation_split, as the guide does."""
    # All 128 images with a quarter held out: 96 to train on and 32 to validate, the shapes
    # the data-source tests below use (their steps then come from the compilation cache).
    x_train = np.concatenate([mnist_like["x_train"], mnist_like["x_test"]])
    y_train = np.concatenate([mnist_like["y_train"], mnist_like["y_test"]])
    lm.random.set_seed(2)
    model = MyModel(num_classes=10)
    compile_like_the_guide(model)
    history = model.fit(
        x_train,
        y_train,
        batch_size=BATCH,
        epochs=1,  # For speed
        validation_split=0.25,
        verbose=0,
    )
    assert set(history.history) == {"acc", "loss", "val_acc", "val_loss"}
    assert all(len(values) == 1 and np.all(np.isfinite(values)) for values in history.history.values())
    # The guide's MyDropout ignores `training`, so it also drops in validation and predict, as
    # in Keras: one key per batch. 96 training rows are 3 batches of 32, the 32 held out 1
    # (Keras 3's SeedGenerator counter reads the same 4, then 6).
    assert draws_from(model.dp.seed_generator) == 3 + 1
    a, b = model.predict(x_train[:BATCH], verbose=0), model.predict(x_train[:BATCH], verbose=0)
    assert draws_from(model.dp.seed_generator) == 6
    assert not np.array_equal(a, b)


class TrainingAwareDropout(MyDropout):
    """The usual form of the guide's layer: drops in training only."""

    def call(self, inputs, training=False):
        if not training:
            return inputs
        return super().call(inputs)


def test_seeded_dropout_draws_new_masks_in_each_training_step_and_none_at_inference():
    class Probe(lm.Model):
        def __init__(self):
            super().__init__()
            self.dp = TrainingAwareDropout(0.5)
            self.dense = MyDense(1)

        def call(self, x, training=False):
            return self.dense(self.dp(x, training=training))

    lm.random.set_seed(4)
    model = Probe()
    model.compile(optimizer=lm.optimizers.SGD(0.0), loss="mse")  # lr 0: the weights stay put
    x, y = np.ones((4, 16), "float32"), np.zeros((4, 1), "float32")
    inference = model.predict(x, verbose=0)
    kernel, bias = (np.asarray(w) for w in model.dense.weights)
    np.testing.assert_allclose(inference, x @ kernel + bias, rtol=1e-6)  # no dropout
    assert draws_from(model.dp.seed_generator) == 0
    losses = [float(model.train_on_batch(x, y)) for _ in range(3)]
    assert draws_from(model.dp.seed_generator) == 3
    assert len(set(losses)) == 3  # a new mask at every step, inside the compiled step
    np.testing.assert_array_equal(model.predict(x, verbose=0), inference)


# -- Training models on arbitrary data sources -------------------------------------------------

def fit_my_model(x, epochs=1, validation_data=None, **kwargs):
    """A fresh MyModel, seeded, compiled as in the guide and fitted on ``x``."""
    lm.random.set_seed(3)
    model = MyModel(num_classes=10)
    compile_like_the_guide(model)
    history = model.fit(x, epochs=epochs, validation_data=validation_data, verbose=0, **kwargs)
    return model, history


@pytest.fixture(scope="module")
def torch_order(mnist_like):
    """The order a seeded shuffling DataLoader visits the training set in (its first epoch)."""
    import torch

    indices = torch.utils.data.TensorDataset(torch.arange(len(mnist_like["x_train"])))
    loader = torch.utils.data.DataLoader(indices, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0))
    return torch.cat([batch for (batch,) in loader]).numpy()


@pytest.fixture(scope="module")
def on_arrays(mnist_like, torch_order):
    """The reference: the same model fitted on NumPy arrays in the DataLoader's order."""
    x, y = mnist_like["x_train"][torch_order], mnist_like["y_train"][torch_order]
    model, history = fit_my_model(
        x, y=y, batch_size=BATCH, shuffle=False, validation_data=(mnist_like["x_test"], mnist_like["y_test"])
    )
    return [np.asarray(w) for w in model.weights], history.history


def assert_same_training(model, history, on_arrays):
    weights, logs = on_arrays
    assert set(history.history) == set(logs) == {"acc", "loss", "val_acc", "val_loss"}
    for key, values in logs.items():
        np.testing.assert_allclose(history.history[key], values, rtol=1e-5, atol=1e-6, err_msg=key)
    for got, expected in zip(model.weights, weights):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6, err_msg=got.path)


def test_training_on_pytorch_dataloaders(mnist_like, torch_order, on_arrays):
    import torch

    x_train, y_train = mnist_like["x_train"], mnist_like["y_train"]
    x_test, y_test = mnist_like["x_test"], mnist_like["y_test"]
    # Create a TensorDataset
    train_torch_dataset = torch.utils.data.TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train))
    val_torch_dataset = torch.utils.data.TensorDataset(torch.from_numpy(x_test), torch.from_numpy(y_test))
    # Create a DataLoader (seeded, so that the reference can follow its order)
    train_dataloader = torch.utils.data.DataLoader(
        train_torch_dataset, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    val_dataloader = torch.utils.data.DataLoader(val_torch_dataset, batch_size=BATCH, shuffle=False)

    model, history = fit_my_model(train_dataloader, epochs=1, validation_data=val_dataloader)
    assert_same_training(model, history, on_arrays)


def test_training_on_tf_data(mnist_like, torch_order, on_arrays):
    import tensorflow as tf

    x_train, y_train = mnist_like["x_train"][torch_order], mnist_like["y_train"][torch_order]
    x_test, y_test = mnist_like["x_test"], mnist_like["y_test"]
    train_dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(BATCH).prefetch(tf.data.AUTOTUNE)
    test_dataset = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(BATCH).prefetch(tf.data.AUTOTUNE)

    model, history = fit_my_model(train_dataset, epochs=1, validation_data=test_dataset)
    assert_same_training(model, history, on_arrays)


# -- Beyond the guide: what a user who skips a step runs into ----------------------------------


@pytest.mark.parametrize("name, args, shape", [
    ("Conv1D", (3, 3), (2, 9, 2)),
    ("Conv2D", (3, 3), (2, 9, 9, 2)),
    ("Conv3D", (3, 3), (2, 5, 5, 5, 2)),
    ("Conv2DTranspose", (3, 3), (2, 5, 5, 2)),
    ("DepthwiseConv2D", (3,), (2, 9, 9, 2)),
    ("SeparableConv2D", (3, 3), (2, 9, 9, 2)),
])
def test_convolutions_take_raw_uint8_images(name, args, shape):
    """MNIST's images are uint8: unscaled, they convolve as their float values (Keras's
    Conv1D/2D/3D promote too) instead of failing in XLA."""
    images = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    layer = getattr(lm.layers, name)(*args)
    as_float = np.asarray(layer(images.astype("float32")))
    raw = layer(images)
    assert raw.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(raw), as_float)


def test_the_convnet_takes_mnist_as_loaded(mnist_like):
    """Without the guide's scaling and ``expand_dims``: (n, 28, 28) uint8 images into
    ``Input((28, 28, 1))`` get the channel axis and the float dtype at the model's entry,
    as in Keras 3 (a missing or extra trailing axis of size 1 is fixed there)."""
    lm.random.set_seed(5)
    model = make_convnet(lm)
    raw = (mnist_like["x_test"][:4, :, :, 0] * 255).astype(np.uint8)
    expected = np.asarray(model(raw.astype("float32")[..., None]))
    np.testing.assert_array_equal(np.asarray(model(raw)), expected)
    np.testing.assert_allclose(model.predict(raw, verbose=0), expected, rtol=1e-5, atol=1e-7)

    inputs = lm.Input(shape=(1,))
    regression = lm.Model(inputs, lm.layers.Dense(2)(inputs))
    column = np.arange(5, dtype=np.int32)  # one feature, given as a flat column of ints
    expected = np.asarray(regression(column.astype("float32")[:, None]))
    np.testing.assert_array_equal(np.asarray(regression(column)), expected)
    inputs = lm.Input(shape=(3,))
    flat = lm.Model(inputs, lm.layers.Dense(2)(inputs))
    x = np.ones((2, 3), "float32")
    np.testing.assert_array_equal(np.asarray(flat(x[..., None])), np.asarray(flat(x)))
    with pytest.raises(ValueError, match="dense"):  # other shapes still fail, naming the layer
        flat(np.ones((2, 4), "float32"))
