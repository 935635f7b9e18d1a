"""Port of the Keras 3 guide "Transfer learning & fine-tuning".

Source: keras-team/keras-io, ``guides/keras_core/transfer_learning.py`` (the Keras 3 text; the
top-level copy mixes in TensorFlow). One test per section, with the smallest faithful change:
``keras`` -> ``lm``, TFDS "cats vs dogs" -> scikit-learn's ``load_digits`` (a binary task: odd
or even digit), ``tf.data`` pipelines -> NumPy arrays and an ``lm.data.Dataset``, far smaller
images, epochs and steps.

Changes beyond the mechanical translation:
- The end-to-end example's base model, ``keras.applications.Xception(weights="imagenet",
  include_top=False)``, needs downloaded weights; it is replaced by a small convolutional base
  with ``BatchNormalization`` layers, pre-trained here on another task (10-class digits on the
  first half of the data), so that every step of the guide -- freezing, training the top,
  un-freezing with the base kept in inference mode, fine-tuning -- runs as written.
- Images are resized to 16x16 (not 150x150) and have one channel; batches hold 16 images.
- The guide's matplotlib cells (showing images) are replaced by checks on the same arrays.
"""

import numpy as np
import pytest
from sklearn.datasets import load_digits

import lamina as lm
from lamina import layers


def test_freezing_layers_understanding_the_trainable_attribute():
    """Section "Freezing layers: understanding the `trainable` attribute"."""
    layer = lm.layers.Dense(3)
    layer.build((None, 4))
    assert (len(layer.weights), len(layer.trainable_weights), len(layer.non_trainable_weights)) == (2, 2, 0)

    layer = lm.layers.BatchNormalization()
    layer.build((None, 4))
    assert (len(layer.weights), len(layer.trainable_weights), len(layer.non_trainable_weights)) == (4, 2, 2)

    layer = lm.layers.Dense(3)
    layer.build((None, 4))
    layer.trainable = False
    assert (len(layer.weights), len(layer.trainable_weights), len(layer.non_trainable_weights)) == (2, 0, 2)

    layer1 = lm.layers.Dense(3, activation="relu")
    layer2 = lm.layers.Dense(3, activation="sigmoid")
    model = lm.Sequential([lm.Input(shape=(3,)), layer1, layer2])
    layer1.trainable = False
    initial_layer1_weights_values = layer1.get_weights()
    initial_layer2_weights_values = layer2.get_weights()
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.random.random((2, 3)), np.random.random((2, 3)), verbose=0)
    final_layer1_weights_values = layer1.get_weights()
    np.testing.assert_allclose(initial_layer1_weights_values[0], final_layer1_weights_values[0])
    np.testing.assert_allclose(initial_layer1_weights_values[1], final_layer1_weights_values[1])
    # The unfrozen layer did train (its bias always gets a gradient, even if the ReLUs are dead).
    assert any(not np.allclose(a, b) for a, b in zip(initial_layer2_weights_values, layer2.get_weights()))


def test_frozen_batchnorm_runs_in_inference_mode(keras):
    """Section "Fine-tuning", note about BatchNormalization: a frozen BN layer uses its moving
    statistics even when called with training=True, and does not update them (as in Keras)."""
    rng = np.random.default_rng(0)
    x = (3.0 + 2.0 * rng.normal(size=(16, 4))).astype("float32")
    weights = [rng.normal(size=4).astype("float32") for _ in range(2)] + [
        rng.normal(size=4).astype("float32"),
        rng.uniform(0.5, 2.0, size=4).astype("float32"),
    ]
    bn = lm.layers.BatchNormalization()
    bn.build((None, 4))
    bn.set_weights(weights)
    bn.trainable = False
    kbn = keras.layers.BatchNormalization()
    kbn.build((None, 4))
    kbn.set_weights(weights)
    kbn.trainable = False
    np.testing.assert_allclose(np.asarray(bn(x, training=True)), np.asarray(kbn(x, training=True)), rtol=1e-5, atol=1e-5)
    for before, w in zip(weights[2:], bn.weights[2:]):
        np.testing.assert_array_equal(before, w.numpy())


def test_recursive_setting_of_the_trainable_attribute():
    """Section "Recursive setting of the `trainable` attribute"."""
    inner_model = lm.Sequential([lm.Input(shape=(3,)), lm.layers.Dense(3, activation="relu"), lm.layers.Dense(3, activation="relu")])
    model = lm.Sequential([lm.Input(shape=(3,)), inner_model, lm.layers.Dense(3, activation="sigmoid")])
    model.trainable = False
    assert inner_model.trainable == False  # noqa: E712 -- the guide's own assertion
    assert inner_model.layers[0].trainable == False  # noqa: E712
    assert model.trainable_weights == []


# ---------------------------------------------------------------------------------------------
# The end-to-end example. "Pre-trained" base: a small convnet trained on the 10-class task.

IMAGE_SIZE = 16


def make_base_model():
    """Stands in for Xception(include_top=False). Its last convolution leaves a 1x1 map, so the
    guide's GlobalAveragePooling2D keeps every feature; BatchNormalization uses momentum=0.9 so
    that its moving statistics catch up within the few pre-training steps (with Keras's 0.99,
    Keras and lamina alike classify at chance in inference mode after so short a training)."""
    inputs = lm.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1))
    x = inputs
    for filters, size in ((16, 3), (32, 3), (64, 5)):
        x = layers.Conv2D(filters, size, use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.Activation("relu")(x)
        if filters == 16:
            x = layers.MaxPooling2D(2)(x)
    return lm.Model(inputs, x, name="base_model")


@pytest.fixture(scope="module")
def cats_vs_dogs():
    """Digits as 0..255 images: the first half pre-trains the base (10 classes), the second
    half is the new binary task (odd digit = "dog", 1), split 60/20/20 as train/val/test."""
    x, y = load_digits(return_X_y=True)
    images = (x.reshape(-1, 8, 8, 1) * (255.0 / 16.0)).astype("float32")
    half = len(images) // 2
    new_x, new_y = images[half:], (y[half:] % 2).astype("float32")
    n = len(new_x)
    a, b = int(0.6 * n), int(0.8 * n)
    return {
        "pretrain": (images[:half], y[:half].astype("int32")),
        "train": (new_x[:a], new_y[:a]),
        "validation": (new_x[a:b], new_y[a:b]),
        "test": (new_x[b:], new_y[b:]),
    }


@pytest.fixture(scope="module")
def pretrained_base(cats_vs_dogs):
    lm.random.set_seed(7)  # initial weights, dropout and augmentation draws: a repeatable run
    resize_fn = lm.layers.Resizing(IMAGE_SIZE, IMAGE_SIZE)
    x, y = cats_vs_dogs["pretrain"]
    base = make_base_model()
    inputs = lm.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1))
    h = lm.layers.Rescaling(scale=1 / 127.5, offset=-1)(inputs)
    h = layers.GlobalAveragePooling2D()(base(h))
    classifier = lm.Model(inputs, layers.Dense(10)(h))
    classifier.compile(optimizer=lm.optimizers.Adam(3e-3), loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = classifier.fit(np.asarray(resize_fn(x)), y, epochs=2, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.8
    return base


def test_getting_and_standardizing_the_data(cats_vs_dogs, keras):
    """Sections "Getting the data" and "Standardizing the data": Resizing in the pipeline."""
    x, y = cats_vs_dogs["train"]
    assert set(np.unique(y)) == {0.0, 1.0}
    resize_fn = lm.layers.Resizing(IMAGE_SIZE, IMAGE_SIZE)
    resized = np.asarray(resize_fn(x[:4]))
    assert resized.shape == (4, IMAGE_SIZE, IMAGE_SIZE, 1)
    expected = np.asarray(keras.layers.Resizing(IMAGE_SIZE, IMAGE_SIZE)(x[:4]))
    np.testing.assert_allclose(resized, expected, rtol=1e-5, atol=1e-3)


@pytest.fixture(scope="module")
def data_augmentation():
    """The guide's ``augmentation_layers`` and ``data_augmentation(x)``."""
    augmentation_layers = [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)]

    def data_augmentation(x):
        for layer in augmentation_layers:
            x = layer(x)
        return x

    return data_augmentation


class TrainDataset(lm.data.Dataset):
    """The guide's ``train_ds.map(resize).map(augment).batch(batch_size)``, batch by batch."""

    def __init__(self, x, y, batch_size, augment):
        self.x, self.y, self.batch_size, self.augment = x, y, batch_size, augment
        self.resize_fn = lm.layers.Resizing(IMAGE_SIZE, IMAGE_SIZE)

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return np.asarray(self.augment(self.resize_fn(self.x[sl]))), self.y[sl]


def test_using_random_data_augmentation(cats_vs_dogs, data_augmentation):
    """Section "Using random data augmentation": each call gives a different random transform."""
    x, _ = cats_vs_dogs["train"]
    first_image = np.asarray(lm.layers.Resizing(IMAGE_SIZE, IMAGE_SIZE)(x[:1]))[0]
    augmented = [np.asarray(data_augmentation(np.expand_dims(first_image, 0)))[0] for _ in range(9)]
    assert all(a.shape == first_image.shape for a in augmented)
    assert any(not np.allclose(a, first_image) for a in augmented)
    assert len({a.tobytes() for a in augmented}) > 1  # the seed state advances between calls


def _build_model(base_model):
    inputs = lm.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1))
    scale_layer = lm.layers.Rescaling(scale=1 / 127.5, offset=-1)
    x = scale_layer(inputs)
    x = base_model(x, training=False)
    x = lm.layers.GlobalAveragePooling2D()(x)
    x = lm.layers.Dropout(0.2)(x)
    outputs = lm.layers.Dense(1)(x)
    return lm.Model(inputs, outputs)


def _snapshot(layer_list):
    return [w.numpy().copy() for w in layer_list]


def test_end_to_end_build_train_top_layer_and_fine_tune(pretrained_base, cats_vs_dogs, data_augmentation, capsys):
    """Sections "Build a model", "Train the top layer" and "Do a round of fine-tuning of the
    entire model" (then the test-set evaluation)."""
    base_model = pretrained_base
    base_model.trainable = False
    model = _build_model(base_model)
    model.summary(show_trainable=True)
    assert "Trainable" in capsys.readouterr().out
    assert len(model.trainable_weights) == 2  # only the new Dense layer

    resize_fn = lm.layers.Resizing(IMAGE_SIZE, IMAGE_SIZE)
    train_ds = TrainDataset(*cats_vs_dogs["train"], batch_size=16, augment=data_augmentation)
    val_x, val_y = cats_vs_dogs["validation"]
    validation_ds = (np.asarray(resize_fn(val_x)), val_y)
    test_x, test_y = cats_vs_dogs["test"]

    base_before = _snapshot(base_model.weights)
    model.compile(optimizer=lm.optimizers.Adam(), loss=lm.losses.BinaryCrossentropy(from_logits=True), metrics=[lm.metrics.BinaryAccuracy()])
    untrained_val_loss = model.evaluate(*validation_ds, verbose=0)[0]
    history = model.fit(train_ds, epochs=4, validation_data=validation_ds, verbose=0)
    assert sorted(history.history) == ["binary_accuracy", "loss", "val_binary_accuracy", "val_loss"]
    assert history.history["val_loss"][-1] < untrained_val_loss
    for before, w in zip(base_before, base_model.weights):
        np.testing.assert_array_equal(before, w.numpy())

    base_model.trainable = True
    model.summary(show_trainable=True)
    capsys.readouterr()
    assert len(model.trainable_weights) == len(base_model.trainable_weights) + 2
    moving_stats = [w for w in base_model.weights if "moving" in w.name]
    assert len(moving_stats) == 6
    stats_before = _snapshot(moving_stats)
    kernels_before = _snapshot(base_model.trainable_weights)
    model.compile(optimizer=lm.optimizers.Adam(1e-5), loss=lm.losses.BinaryCrossentropy(from_logits=True), metrics=[lm.metrics.BinaryAccuracy()])
    model.fit(train_ds, epochs=1, validation_data=validation_ds, verbose=0)
    # The base model is trainable again but runs in inference mode (training=False when it was
    # called): its kernels move, its batch-norm statistics do not.
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(kernels_before, base_model.trainable_weights))
    for before, w in zip(stats_before, moving_stats):
        np.testing.assert_array_equal(before, w.numpy())

    loss, accuracy = model.evaluate(np.asarray(resize_fn(test_x)), test_y, verbose=0)
    assert accuracy > 0.6  # chance is 0.5
