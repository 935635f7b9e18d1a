"""Port of the Keras 3 guide "Introduction to Keras for engineers"
(keras-team/keras-io, guides/intro_to_keras_for_engineers.py).

Translation: ``keras`` -> ``lm``, ``keras.ops.matmul`` -> ``jnp.matmul``, ``keras.random`` ->
``lm.random``. The "Setup" section only sets ``KERAS_BACKEND`` (lamina has one backend: JAX).
MNIST -> scikit-learn's handwritten digits drawn at MNIST's size: each 8x8 image is scaled 3x
and padded to 28x28, uint8 in [0, 255] like ``keras.datasets.mnist.load_data()``; 128 training
and 20 test images (as many as the 15% validation split holds out, so that evaluation runs one
program); convolutions 4/4/8/8 filters wide instead of 64/64/128/128 and few epochs,
so that the module runs in seconds. Each section's stated outcome is asserted; the data
sources must train exactly as the DataLoader does (the getting-started port also compares them
with a fit on the arrays).

The guide's code is that of "Getting started with Keras 3" (ported in
test_getting_started_with_keras_core.py, on synthetic images, where Keras 3 loads the saved
file and is compared); this port runs it as the engineers' guide has it: real digit images, the
guide's batch size of 128 and validation split of 15% for the custom model, and
``PyDataset``, which the guide lists among the data sources without showing it.
"""

import numpy as np
import pytest
from cross_framework_components import WIDTHS, MyModel
from sklearn.datasets import load_digits

import lamina as lm

# Model parameters
num_classes = 10
input_shape = (28, 28, 1)
batch_size = 128


@pytest.fixture(scope="module")
def mnist_like():
    """``(x_train, y_train), (x_test, y_test)`` as ``mnist.load_data()`` returns them."""
    images, labels = load_digits(return_X_y=True)
    images = images[:148] * (255 / 16)
    images = np.kron(images.reshape(-1, 8, 8), np.ones((3, 3)))  # 24x24
    images = np.pad(images, ((0, 0), (2, 2), (2, 2))).round().astype(np.uint8)
    labels = labels[:148].astype(np.uint8)
    return (images[:128], labels[:128]), (images[128:], labels[128:])


@pytest.fixture(scope="module")
def data(mnist_like):
    (x_train, y_train), (x_test, y_test) = mnist_like
    # Scale images to the [0, 1] range
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    # Make sure images have shape (28, 28, 1)
    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
    assert x_train.shape == (128, 28, 28, 1) and y_train.shape == (128,)
    assert x_test.shape[0] == 20
    return x_train, y_train, x_test, y_test


def compile_like_the_guide(model):
    model.compile(
        loss=lm.losses.SparseCategoricalCrossentropy(),
        optimizer=lm.optimizers.Adam(learning_rate=1e-3),
        metrics=[
            lm.metrics.SparseCategoricalAccuracy(name="acc"),
        ],
    )


# -- A first example: A MNIST convnet -------------------------------------------------------------


def test_a_first_example_a_mnist_convnet(data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    x_train, y_train, x_test, y_test = data
    lm.random.set_seed(0)
    model = lm.Sequential(
        [
            lm.layers.Input(shape=input_shape),
            lm.layers.Conv2D(WIDTHS[0], kernel_size=(3, 3), activation="relu"),
            lm.layers.Conv2D(WIDTHS[1], kernel_size=(3, 3), activation="relu"),
            lm.layers.MaxPooling2D(pool_size=(2, 2)),
            lm.layers.Conv2D(WIDTHS[2], kernel_size=(3, 3), activation="relu"),
            lm.layers.Conv2D(WIDTHS[3], kernel_size=(3, 3), activation="relu"),
            lm.layers.GlobalAveragePooling2D(),
            lm.layers.Dropout(0.5),
            lm.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.summary()
    summary = capsys.readouterr().out
    # Keras's parameter count for these layers: 3x3 kernels plus biases, then the Dense.
    widths = (1, *WIDTHS)
    expected = sum(9 * a * b + b for a, b in zip(widths, widths[1:])) + WIDTHS[-1] * 10 + 10
    assert model.count_params() == expected and f"{expected:,}" in summary

    compile_like_the_guide(model)
    epochs = 2  # the guide's 20, with EarlyStopping; 2 for speed
    callbacks = [
        lm.callbacks.ModelCheckpoint(filepath="model_at_epoch_{epoch}.keras"),
        lm.callbacks.EarlyStopping(monitor="val_loss", patience=2),
    ]
    history = model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        validation_split=0.15,
        callbacks=callbacks,
    )
    progress = capsys.readouterr().out  # verbose="auto": a progress bar per epoch
    ran = len(history.history["loss"])
    assert f"Epoch {ran}/{epochs}" in progress and "val_acc:" in progress
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"model_at_epoch_{e}.keras" for e in range(1, ran + 1)]
    score = model.evaluate(x_test, y_test, verbose=0)
    assert len(score) == 2 and 0.0 <= score[1] <= 1.0

    # You can also save the model in its latest state, and reload it.
    model.save("final_model.keras")
    before = model.predict(x_test, verbose=0)
    model = lm.saving.load_model("final_model.keras")
    # Next, you can query predictions of class probabilities with `predict()`.
    predictions = model.predict(x_test)
    assert predictions.shape == (20, num_classes)
    np.testing.assert_array_equal(predictions, before)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model.evaluate(x_test, y_test, verbose=0), score, rtol=1e-6)


# -- Writing cross-framework custom components -------------------------------------------------------
# The guide's MyDense, MyDropout and MyModel are in cross_framework_components.py (shared
# with the other port of the same code).


def new_model():
    lm.random.set_seed(1)
    model = MyModel(num_classes=10)
    compile_like_the_guide(model)
    return model


def test_writing_cross_framework_custom_components(data):
    x_train, y_train, _, _ = data
    model = new_model()
    history = model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=1,  # For speed
        validation_split=0.15,
        verbose=0,
    )
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert all(np.isfinite(v[0]) for v in history.history.values())
    # validation_split takes the last 15% (20 of 128 images): 108 rows train in one batch.
    assert int(model.optimizer.iterations) == 1
    assert any(v is model.dp.seed_generator.state for v in model.variables)
    # The guide's MyDropout ignores `training`: predictions are random, as in Keras.
    assert not np.array_equal(model.predict(x_train[:8], verbose=0), model.predict(x_train[:8], verbose=0))


# -- Training models on arbitrary data sources --------------------------------------------------------


def fitted_on(train, validation):
    model = new_model()
    history = model.fit(train, epochs=1, validation_data=validation, verbose=0)
    return [np.asarray(w) for w in model.weights], history.history


@pytest.fixture(scope="module")
def on_dataloaders(data):
    """The guide's first source, a PyTorch DataLoader; the other sources must train the same."""
    import torch

    x_train, y_train, x_test, y_test = data
    # Create a TensorDataset
    train_torch_dataset = torch.utils.data.TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train))
    val_torch_dataset = torch.utils.data.TensorDataset(torch.from_numpy(x_test), torch.from_numpy(y_test))
    # Create a DataLoader (unshuffled here, so that the other sources can follow its order)
    train_dataloader = torch.utils.data.DataLoader(train_torch_dataset, batch_size=batch_size, shuffle=False)
    val_dataloader = torch.utils.data.DataLoader(val_torch_dataset, batch_size=batch_size, shuffle=False)
    return fitted_on(train_dataloader, val_dataloader)


def assert_same_training(got, expected):
    (weights, logs), (expected_weights, expected_logs) = got, expected
    assert set(logs) == set(expected_logs) == {"loss", "acc", "val_loss", "val_acc"}
    for key, values in expected_logs.items():
        np.testing.assert_allclose(logs[key], values, rtol=1e-5, atol=1e-6, err_msg=key)
    for got_weight, want in zip(weights, expected_weights, strict=True):
        np.testing.assert_allclose(got_weight, want, rtol=1e-5, atol=1e-6)


def test_pytorch_dataloaders(on_dataloaders):
    weights, logs = on_dataloaders
    assert set(logs) == {"loss", "acc", "val_loss", "val_acc"}
    assert all(len(v) == 1 and np.isfinite(v[0]) for v in logs.values())
    # The guide's MyDropout drops in evaluation too, so val_loss is that of one random mask;
    # the weights are what the other sources are held to.
    assert all(np.isfinite(w).all() for w in weights)


def test_tf_data(data, on_dataloaders):
    import tensorflow as tf

    x_train, y_train, x_test, y_test = data
    train_dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    test_dataset = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    assert_same_training(fitted_on(train_dataset, test_dataset), on_dataloaders)


class DigitsPyDataset(lm.data.PyDataset):
    """The guide lists ``PyDataset`` among the sources: batches by index."""

    def __init__(self, x, y, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y = x, y

    def __len__(self):
        return -(-len(self.x) // batch_size)

    def __getitem__(self, index):
        rows = slice(index * batch_size, (index + 1) * batch_size)
        return self.x[rows], self.y[rows]


def test_pydataset(data, on_dataloaders):
    x_train, y_train, x_test, y_test = data
    assert_same_training(fitted_on(DigitsPyDataset(x_train, y_train), DigitsPyDataset(x_test, y_test)),
                         on_dataloaders)
