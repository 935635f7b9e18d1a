"""Port of the Keras 3 guide "Training & evaluation with the built-in methods"
(keras-team/keras-io, guides/keras_core/training_with_built_in_methods.py).

Translation: ``keras`` -> ``lm``, ``keras.ops.X`` -> ``jnp.X`` (``ops.one_hot`` ->
``jax.nn.one_hot``), MNIST -> scikit-learn's digits (64 features instead of 784),
``tf.data.Dataset.from_tensor_slices(...).shuffle().batch()`` -> a small ``lm.data.Dataset``
subclass, ``keras.utils.PyDataset`` -> ``lm.data.PyDataset``; sizes, epochs and steps shrunk.
Each section's stated outcome is asserted, and compared with Keras 3 (same code, same
weights) where that is cheap.

Left out: "Training & evaluation using PyTorch DataLoader objects" (needs PyTorch, which is
not installed here).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

import lamina as lm

# -- data: digits instead of MNIST ----------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x = x.astype("float32") / 16.0
    y = y.astype("float32")
    # Reserve samples for validation and test, as the guide does with MNIST (whole batches
    # of 64 everywhere, so that each step function is compiled once).
    return dict(
        x_train=x[:1024], y_train=y[:1024], x_val=x[1024:1408], y_val=y[1024:1408],
        x_test=x[1408:1792], y_test=y[1408:1792],
    )


@pytest.fixture(scope="module")
def K():
    """Keras 3 on JAX (the numeric reference), shared by the module's comparisons."""
    import keras

    return keras


def get_uncompiled_model(k):
    """The guide's model; ``k`` is ``lm`` or ``keras`` (the same code builds both)."""
    inputs = k.Input(shape=(64,), name="digits")
    x = k.layers.Dense(64, activation="relu", name="dense_1")(inputs)
    x = k.layers.Dense(64, activation="relu", name="dense_2")(x)
    outputs = k.layers.Dense(10, activation="softmax", name="predictions")(x)
    return k.Model(inputs=inputs, outputs=outputs)


def get_compiled_model(k=lm):
    model = get_uncompiled_model(k)
    model.compile(
        optimizer="rmsprop",
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    return model


def keras_twin(K, model, build=get_uncompiled_model):
    """The same architecture in Keras, holding the lamina model's weights."""
    twin = build(K)
    twin.set_weights(model.get_weights())
    return twin


class ArrayBatches(lm.data.Dataset):
    """Stands in for ``tf.data.Dataset.from_tensor_slices(arrays).shuffle(...).batch(n)``."""

    def __init__(self, arrays, batch_size, shuffle=False, seed=0):
        self.arrays = arrays
        self.batch_size = batch_size
        self.order = np.arange(len(jax.tree_util.tree_leaves(arrays)[0]))
        self.rng = np.random.default_rng(seed) if shuffle else None
        self.on_epoch_begin()

    def on_epoch_begin(self):
        if self.rng is not None:
            self.rng.shuffle(self.order)

    def __len__(self):
        return -(-len(self.order) // self.batch_size)

    def __getitem__(self, i):
        rows = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        return jax.tree_util.tree_map(lambda a: a[rows], self.arrays)


class CountBatches(lm.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.per_epoch = []

    def on_epoch_begin(self, epoch, logs=None):
        self.per_epoch.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.per_epoch[-1] += 1


# -- sections --------------------------------------------------------------------------------


def test_api_overview_a_first_end_to_end_example(digits, K):
    """## API overview: a first end-to-end example."""
    d = digits
    model = get_uncompiled_model(lm)
    model.compile(
        optimizer=lm.optimizers.RMSprop(),
        loss=lm.losses.SparseCategoricalCrossentropy(),
        metrics=[lm.metrics.SparseCategoricalAccuracy()],
    )
    history = model.fit(
        d["x_train"], d["y_train"], batch_size=64, epochs=2,
        validation_data=(d["x_val"], d["y_val"]),
    )
    assert sorted(history.history) == [
        "loss", "sparse_categorical_accuracy", "val_loss", "val_sparse_categorical_accuracy",
    ]
    assert all(len(values) == 2 for values in history.history.values())
    assert history.history["loss"][1] < history.history["loss"][0]

    results = model.evaluate(d["x_test"], d["y_test"], batch_size=128)
    assert len(results) == 2  # test loss, test acc
    assert results[1] > 0.5  # chance is 0.1

    predictions = model.predict(d["x_test"][:3])
    assert predictions.shape == (3, 10)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)

    # Same weights in Keras: same evaluation numbers.
    twin = keras_twin(K, model)
    twin.compile(loss=K.losses.SparseCategoricalCrossentropy(),
                 metrics=[K.metrics.SparseCategoricalAccuracy()])
    expected = twin.evaluate(d["x_test"], d["y_test"], batch_size=128, verbose=0)
    np.testing.assert_allclose(results, expected, rtol=1e-5)
    # And one more epoch of fit() (unshuffled, so that both see the same batches) gives the
    # same logs and weights in both.
    twin.compile(optimizer=K.optimizers.RMSprop(), loss=K.losses.SparseCategoricalCrossentropy(),
                 metrics=[K.metrics.SparseCategoricalAccuracy()])
    model.compile(optimizer=lm.optimizers.RMSprop(), loss=lm.losses.SparseCategoricalCrossentropy(),
                  metrics=[lm.metrics.SparseCategoricalAccuracy()])
    ours = model.fit(d["x_train"], d["y_train"], batch_size=64, shuffle=False, verbose=0).history
    theirs = twin.fit(d["x_train"], d["y_train"], batch_size=64, shuffle=False, verbose=0).history
    for name in theirs:
        assert ours[name] == pytest.approx(theirs[name], rel=1e-4), name
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_the_compile_method_string_identifiers(digits):
    """## The compile() method: specifying a loss, metrics, and an optimizer."""
    model = get_uncompiled_model(lm)
    model.compile(
        optimizer=lm.optimizers.RMSprop(learning_rate=1e-3),
        loss=lm.losses.SparseCategoricalCrossentropy(),
        metrics=[lm.metrics.SparseCategoricalAccuracy()],
    )
    model = get_compiled_model()
    assert type(model.optimizer).__name__ == "RMSprop"
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    history = model.fit(digits["x_train"], digits["y_train"], batch_size=64, epochs=1)
    assert sorted(history.history) == ["loss", "sparse_categorical_accuracy"]
    assert model.metrics_names == ["loss", "sparse_categorical_accuracy"]


def test_many_built_in_optimizers_losses_and_metrics_are_available(K):
    """### Many built-in optimizers, losses, and metrics are available."""
    for name in ("SGD", "RMSprop", "Adam"):
        assert callable(getattr(lm.optimizers, name))
    rng = np.random.default_rng(0)
    y_true = rng.random((8, 5)).astype("float32")
    y_pred = rng.random((8, 5)).astype("float32")
    for name in ("MeanSquaredError", "KLDivergence", "CosineSimilarity"):
        ours = float(getattr(lm.losses, name)()(y_true, y_pred))
        theirs = float(getattr(K.losses, name)()(y_true, y_pred))
        assert ours == pytest.approx(theirs, rel=1e-5), name
    labels = (rng.random(32) > 0.5).astype("float32")
    scores = rng.random(32).astype("float32")
    for name in ("AUC", "Precision", "Recall"):
        ours, theirs = getattr(lm.metrics, name)(), getattr(K.metrics, name)()
        ours.update_state(labels, scores)
        theirs.update_state(labels, scores)
        assert float(ours.result()) == pytest.approx(float(theirs.result()), rel=1e-5), name


def custom_mean_squared_error(y_true, y_pred):
    return jnp.mean(jnp.square(y_true - y_pred), axis=-1)


class CustomMSE(lm.losses.Loss):
    def __init__(self, regularization_factor=0.1, name="custom_mse"):
        super().__init__(name=name)
        self.regularization_factor = regularization_factor

    def call(self, y_true, y_pred):
        mse = jnp.mean(jnp.square(y_true - y_pred), axis=-1)
        reg = jnp.mean(jnp.square(0.5 - y_pred), axis=-1)
        return mse + reg * self.regularization_factor


def test_custom_losses(digits):
    """### Custom losses (a function, and a ``Loss`` subclass with a parameter)."""
    x, y = digits["x_train"], digits["y_train"]
    # We need to one-hot encode the labels to use MSE
    y_train_one_hot = jax.nn.one_hot(y, num_classes=10)

    for loss in (custom_mean_squared_error, CustomMSE()):
        model = get_uncompiled_model(lm)
        model.compile(optimizer=lm.optimizers.Adam(), loss=loss)
        p = np.asarray(model.predict(x, verbose=0))
        t = np.asarray(y_train_one_hot)
        expected = np.mean(np.mean((t - p) ** 2, axis=-1))
        if isinstance(loss, CustomMSE):
            expected += 0.1 * np.mean(np.mean((0.5 - p) ** 2, axis=-1))
        assert model.evaluate(x, y_train_one_hot, batch_size=len(x), verbose=0) == pytest.approx(
            expected, rel=1e-5)
        history = model.fit(x, y_train_one_hot, batch_size=64, epochs=2)
        assert history.history["loss"][1] < history.history["loss"][0]


class CategoricalTruePositives(lm.metrics.Metric):
    def __init__(self, name="categorical_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = jnp.reshape(jnp.argmax(y_pred, axis=1), (-1, 1))
        values = jnp.asarray(y_true, "int32") == jnp.asarray(y_pred, "int32")
        values = jnp.asarray(values, "float32")
        if sample_weight is not None:
            sample_weight = jnp.asarray(sample_weight, "float32")
            values = jnp.multiply(values, sample_weight)
        self.true_positives.assign_add(jnp.sum(values))

    def result(self):
        return self.true_positives

    def reset_state(self):
        # The state of the metric will be reset at the start of each epoch.
        self.true_positives.assign(0.0)


def test_custom_metrics(digits):
    """### Custom metrics (``CategoricalTruePositives``)."""
    x, y = digits["x_train"], digits["y_train"]
    model = get_uncompiled_model(lm)
    model.compile(
        optimizer=lm.optimizers.RMSprop(learning_rate=1e-3),
        loss=lm.losses.SparseCategoricalCrossentropy(),
        metrics=[CategoricalTruePositives()],
    )
    history = model.fit(x, y, batch_size=64, epochs=3)
    assert sorted(history.history) == ["categorical_true_positives", "loss"]
    assert len(history.history["categorical_true_positives"]) == 3
    # Note the guide's y_true has shape (batch,) and y_pred (batch, 1): the comparison
    # broadcasts to (batch, batch), as it does in Keras; evaluate on one batch and check
    # that number against the same formula in NumPy.
    xs, ys = digits["x_test"][:50], digits["y_test"][:50]
    _, ctp = model.evaluate(xs, ys, batch_size=50, verbose=0)
    pred = np.argmax(model.predict(xs, verbose=0), axis=1).reshape(-1, 1)
    assert ctp == pytest.approx(float(np.sum(ys.astype("int32") == pred)))


class ActivityRegularizationLayer(lm.layers.Layer):
    def call(self, inputs):
        self.add_loss(jnp.sum(inputs) * 0.1)
        return inputs  # Pass-through layer.


class LogisticEndpoint(lm.layers.Layer):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.loss_fn = lm.losses.BinaryCrossentropy(from_logits=True)

    def call(self, targets, logits, sample_weights=None):
        # Compute the training-time loss value and add it
        # to the layer using `self.add_loss()`.
        loss = self.loss_fn(targets, logits, sample_weights)
        self.add_loss(loss)

        # Return the inference-time prediction tensor (for `.predict()`).
        return jax.nn.softmax(logits)


def test_handling_losses_and_metrics_that_dont_fit_the_standard_signature(digits):
    """### Handling losses and metrics that don't fit the standard signature (add_loss)."""
    x, y = digits["x_train"], digits["y_train"]
    inputs = lm.Input(shape=(64,), name="digits")
    x1 = lm.layers.Dense(64, activation="relu", name="dense_1")(inputs)
    # Insert activity regularization as a layer
    h = ActivityRegularizationLayer()(x1)
    h = lm.layers.Dense(64, activation="relu", name="dense_2")(h)
    outputs = lm.layers.Dense(10, name="predictions")(h)
    model = lm.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=lm.optimizers.RMSprop(learning_rate=1e-3),
        loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    # The displayed loss is the crossentropy plus the regularization component.
    xs, ys = x[:100], y[:100]
    logits = np.asarray(model.predict(xs, verbose=0), "float64")
    kernel, bias = model.get_layer("dense_1").get_weights()
    activity = np.maximum(xs @ kernel + bias, 0.0)
    log_softmax = logits - logits.max(1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(1, keepdims=True))
    ce = -np.mean(log_softmax[np.arange(100), ys.astype(int)])
    expected = ce + 0.1 * activity.sum()
    assert model.evaluate(xs, ys, batch_size=100, verbose=0) == pytest.approx(expected, rel=1e-4)
    model.fit(x, y, batch_size=64, epochs=1)

    # LogisticEndpoint: a model with two inputs (data and targets) and no compiled loss.
    inputs = lm.Input(shape=(3,), name="inputs")
    targets = lm.Input(shape=(10,), name="targets")
    logits = lm.layers.Dense(10)(inputs)
    predictions = LogisticEndpoint(name="predictions")(targets, logits)
    model = lm.Model(inputs=[inputs, targets], outputs=predictions)
    model.compile(optimizer="adam")  # No loss argument!
    data = {
        "inputs": np.random.random((3, 3)),
        "targets": np.random.random((3, 10)),
    }
    dense = next(layer for layer in model.layers if isinstance(layer, lm.layers.Dense))
    kernel, bias = dense.get_weights()
    z = data["inputs"] @ kernel + bias
    t = data["targets"]
    bce = np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))))
    history = model.fit(data)
    assert history.history["loss"][0] == pytest.approx(bce, rel=1e-4)


def test_automatically_setting_apart_a_validation_holdout_set(digits):
    """### Automatically setting apart a validation holdout set (validation_split)."""
    x, y = digits["x_train"], digits["y_train"]
    model = get_compiled_model()
    counter = CountBatches()
    history = model.fit(x, y, batch_size=64, validation_split=0.2, epochs=1, callbacks=[counter])
    # The last 20% of the samples (before shuffling) are the validation data.
    n_train = int(np.floor(len(x) * (1 - 0.2)))  # Keras: floor, the rest validates
    assert counter.per_epoch == [int(np.ceil(n_train / 64))]
    val_loss, val_acc = model.evaluate(x[n_train:], y[n_train:], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(val_loss, rel=1e-5)
    assert history.history["val_sparse_categorical_accuracy"][0] == pytest.approx(val_acc, rel=1e-5)


def test_training_and_evaluation_using_datasets(digits):
    """## Training & evaluation using tf.data Datasets (here: ``lm.data.Dataset``)."""
    d = digits
    model = get_compiled_model()
    train_dataset = ArrayBatches((d["x_train"], d["y_train"]), 64, shuffle=True)
    test_dataset = ArrayBatches((d["x_test"], d["y_test"]), 64)
    history = model.fit(train_dataset, epochs=3)
    assert len(history.history["loss"]) == 3
    result = model.evaluate(test_dataset)
    logs = dict(zip(model.metrics_names, result))
    assert sorted(logs) == ["loss", "sparse_categorical_accuracy"]
    assert logs["sparse_categorical_accuracy"] > 0.5

    # steps_per_epoch: only that many batches per epoch (the guide starts from a fresh model
    # each time; one model keeps the test quick).
    counter = CountBatches()
    model.fit(train_dataset, epochs=3, steps_per_epoch=5, callbacks=[counter])
    assert counter.per_epoch == [5, 5, 5]

    # A Dataset as validation_data, whole and limited by validation_steps.
    val_dataset = ArrayBatches((d["x_val"], d["y_val"]), 64)
    history = model.fit(train_dataset, epochs=1, validation_data=val_dataset)
    assert history.history["val_loss"][0] == pytest.approx(
        model.evaluate(d["x_val"], d["y_val"], verbose=0)[0], rel=1e-5)
    history = model.fit(train_dataset, epochs=1, validation_data=val_dataset, validation_steps=2)
    # Only the first 2 batches (128 samples) of the validation data are used.
    assert history.history["val_loss"][0] == pytest.approx(
        model.evaluate(d["x_val"][:128], d["y_val"][:128], verbose=0)[0], rel=1e-5)


def make_py_dataset_class():
    class ExamplePyDataset(lm.data.PyDataset):
        def __init__(self, x, y, batch_size, **kwargs):
            super().__init__(**kwargs)
            self.x = x
            self.y = y
            self.batch_size = batch_size

        def __len__(self):
            return int(np.ceil(len(self.x) / float(self.batch_size)))

        def __getitem__(self, idx):
            batch_x = self.x[idx * self.batch_size : (idx + 1) * self.batch_size]
            batch_y = self.y[idx * self.batch_size : (idx + 1) * self.batch_size]
            return batch_x, batch_y

    return ExamplePyDataset


def test_training_and_evaluation_using_pydataset_instances(digits):
    """## Training & evaluation using PyDataset instances (with and without workers=4)."""
    d = digits
    ExamplePyDataset = make_py_dataset_class()
    train_py_dataset = ExamplePyDataset(d["x_train"], d["y_train"], batch_size=32)
    val_py_dataset = ExamplePyDataset(d["x_val"], d["y_val"], batch_size=32)
    model = get_compiled_model()
    history = model.fit(train_py_dataset, batch_size=64, validation_data=val_py_dataset, epochs=1)
    assert "val_sparse_categorical_accuracy" in history.history
    loss, acc = model.evaluate(val_py_dataset)
    assert loss == pytest.approx(history.history["val_loss"][0], rel=1e-5)

    # A 4-thread, non-multiprocessed example: same batches, same results.
    train_py_dataset = ExamplePyDataset(d["x_train"], d["y_train"], batch_size=32, workers=4)
    val_py_dataset = ExamplePyDataset(d["x_val"], d["y_val"], batch_size=32, workers=4)
    assert model.evaluate(val_py_dataset) == pytest.approx([loss, acc], rel=1e-5)
    history = model.fit(train_py_dataset, batch_size=64, validation_data=val_py_dataset, epochs=1)
    assert len(history.history["val_loss"]) == 1


CLASS_WEIGHT = {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0,
                # Set weight "2" for class "5",
                # making this class 2x more important
                5: 2.0, 6: 1.0, 7: 1.0, 8: 1.0, 9: 1.0}


def test_class_weights(digits, K):
    """### Class weights: one step equals Keras's (loss and updated weights)."""
    x, y = digits["x_train"][:64], digits["y_train"][:64]
    model = get_compiled_model()
    twin = keras_twin(K, model)
    twin.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                 metrics=["sparse_categorical_accuracy"])
    ours = model.train_on_batch(x, y, class_weight=CLASS_WEIGHT)
    theirs = twin.train_on_batch(x, y, class_weight=CLASS_WEIGHT)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    model.fit(digits["x_train"], digits["y_train"], class_weight=CLASS_WEIGHT, batch_size=64, epochs=1)


def test_sample_weights(digits, K):
    """### Sample weights: NumPy ``sample_weight=`` and a Dataset yielding (x, y, w)."""
    x, y = digits["x_train"], digits["y_train"]
    sample_weight = np.ones(shape=(len(y),))
    sample_weight[y == 5] = 2.0
    model = get_compiled_model()
    twin = keras_twin(K, model)
    twin.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                 metrics=["sparse_categorical_accuracy"])
    ours = model.train_on_batch(x[:64], y[:64], sample_weight=sample_weight[:64])
    theirs = twin.train_on_batch(x[:64], y[:64], sample_weight=sample_weight[:64])
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    model.fit(x, y, sample_weight=sample_weight, batch_size=64, epochs=1)

    # Here's a matching Dataset example (3rd element: the sample weights).
    train_dataset = ArrayBatches((x, y, sample_weight), 64, shuffle=True)
    model = get_compiled_model()
    history = model.fit(train_dataset, epochs=1)
    assert len(history.history["loss"]) == 1
    # The weights count: a batch's weighted loss equals the NumPy formula.
    xs, ys, ws = x[:64], y[:64], sample_weight[:64]
    p = np.asarray(model.predict(xs, verbose=0), "float64")
    ce = -np.log(p[np.arange(64), ys.astype(int)])
    loss = model.evaluate(ArrayBatches((xs, ys, ws), 64), verbose=0)[0]
    assert loss == pytest.approx(np.sum(ce * ws) / 64, rel=1e-4)


def build_multi_io_model(k):
    image_input = k.Input(shape=(8, 8, 3), name="img_input")
    timeseries_input = k.Input(shape=(None, 10), name="ts_input")
    x1 = k.layers.Conv2D(3, 3)(image_input)
    x1 = k.layers.GlobalMaxPooling2D()(x1)
    x2 = k.layers.Conv1D(3, 3)(timeseries_input)
    x2 = k.layers.GlobalMaxPooling1D()(x2)
    x = k.layers.concatenate([x1, x2])
    score_output = k.layers.Dense(1, name="score_output")(x)
    class_output = k.layers.Dense(5, name="class_output")(x)
    return k.Model(inputs=[image_input, timeseries_input], outputs=[score_output, class_output])


def test_passing_data_to_multi_input_multi_output_models_plot(tmp_path):
    """## Passing data to multi-input, multi-output models: the plot of the model."""
    model = build_multi_io_model(lm)
    try:
        lm.utils.plot_model(model, str(tmp_path / "multi_input_and_output_model.png"), show_shapes=True)
        assert (tmp_path / "multi_input_and_output_model.png").exists()
    except ImportError as error:  # pydot / Graphviz are an optional extra
        assert "lamina[plot]" in str(error)


def test_passing_data_to_multi_input_multi_output_models(K):
    """## Passing data to multi-input, multi-output models (lists, dicts, loss_weights)."""
    model = build_multi_io_model(lm)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 1), (None, 5)]

    rng = np.random.default_rng(0)
    img_data = rng.random((40, 8, 8, 3)).astype("float32")
    ts_data = rng.random((40, 6, 10)).astype("float32")
    score_targets = rng.random((40, 1)).astype("float32")
    class_targets = rng.random((40, 5)).astype("float32")

    def compile_both(kwargs):
        """compile(**kwargs(module)) on the lamina model and its Keras twin."""
        model.compile(optimizer=lm.optimizers.RMSprop(1e-3), **kwargs(lm))
        twin = keras_twin(K, model, build_multi_io_model)
        twin.compile(optimizer=K.optimizers.RMSprop(1e-3), **kwargs(K))
        return twin

    def check(twin, x, y):
        ours = model.evaluate(x, y, batch_size=40, verbose=0, return_dict=True)
        theirs = twin.evaluate(x, y, batch_size=40, verbose=0, return_dict=True)
        assert sorted(ours) == sorted(theirs)
        for name in theirs:
            assert ours[name] == pytest.approx(theirs[name], rel=1e-4), name

    lists = ([img_data, ts_data], [score_targets, class_targets])
    dicts = ({"img_input": img_data, "ts_input": ts_data},
             {"score_output": score_targets, "class_output": class_targets})
    # Losses as a list, metrics as a list of lists.
    twin = compile_both(lambda k: dict(
        loss=[k.losses.MeanSquaredError(), k.losses.CategoricalCrossentropy()],
        metrics=[[k.metrics.MeanAbsolutePercentageError(), k.metrics.MeanAbsoluteError()],
                 [k.metrics.CategoricalAccuracy()]],
    ))
    check(twin, *lists)
    # Per-output losses, metrics and loss weights as dicts keyed by output name.
    twin = compile_both(lambda k: dict(
        loss={"score_output": k.losses.MeanSquaredError(),
              "class_output": k.losses.CategoricalCrossentropy()},
        metrics={"score_output": [k.metrics.MeanAbsolutePercentageError(),
                                  k.metrics.MeanAbsoluteError()],
                 "class_output": [k.metrics.CategoricalAccuracy()]},
        loss_weights={"score_output": 2.0, "class_output": 1.0},
    ))
    check(twin, *dicts)
    check(twin, *lists)
    # No loss for an output meant for prediction only (list and dict versions).
    twin = compile_both(lambda k: dict(loss=[None, k.losses.CategoricalCrossentropy()]))
    check(twin, *lists)
    class_only = model.evaluate(*lists, batch_size=40, verbose=0, return_dict=True)
    # (Keras 3.15 compiles the dict version but its evaluate() then refuses targets for both
    # outputs, so this one is compared with the list version above.)
    model.compile(optimizer=lm.optimizers.RMSprop(1e-3),
                  loss={"class_output": lm.losses.CategoricalCrossentropy()})
    ours = model.evaluate(*dicts, batch_size=40, verbose=0, return_dict=True)
    assert ours["loss"] == pytest.approx(class_only["loss"], rel=1e-6)

    # fit on lists, on dicts, and on a Dataset of dicts.
    model.compile(optimizer=lm.optimizers.RMSprop(1e-3),
                  loss=[lm.losses.MeanSquaredError(), lm.losses.CategoricalCrossentropy()])
    # (One batch of 40 per epoch, so that each input structure compiles one step.)
    model.fit(*lists, batch_size=40, epochs=1)
    model.fit(*dicts, batch_size=40, epochs=1)
    train_dataset = ArrayBatches(dicts, 40, shuffle=True)
    history = model.fit(train_dataset, epochs=1)
    assert sorted(history.history) == ["class_output_loss", "loss", "score_output_loss"]


def test_using_callbacks_early_stopping_and_a_loss_history(digits):
    """## Using callbacks (EarlyStopping on val_loss) and ### Writing your own callback."""
    x, y = digits["x_train"], digits["y_train"]
    model = get_compiled_model()
    callbacks = [
        lm.callbacks.EarlyStopping(
            # Stop training when `val_loss` is no longer improving
            monitor="val_loss",
            # "no longer improving" being defined as "no better than 1e-2 less"
            min_delta=1e-2,
            # "no longer improving" being further defined as "for at least 2 epochs"
            patience=2,
            verbose=1,
        )
    ]
    history = model.fit(x, y, epochs=20, batch_size=64, callbacks=callbacks, validation_split=0.2)
    # Keras's rule, replayed on the logged values: an epoch improves when val_loss is below
    # the best so far by more than min_delta; stop after `patience` epochs without one.
    val, best, wait, expected_epochs = history.history["val_loss"], np.inf, 0, 20
    for epoch, value in enumerate(val):
        if value < best - 1e-2:
            best, wait = value, 0
        else:
            wait += 1
            if wait >= 2:
                expected_epochs = epoch + 1
                break
    assert len(val) == expected_epochs

    class LossHistory(lm.callbacks.Callback):
        def on_train_begin(self, logs):
            self.per_batch_losses = []

        def on_batch_end(self, batch, logs):
            self.per_batch_losses.append(logs.get("loss"))

    loss_history = LossHistory()
    model = get_compiled_model()
    history = model.fit(x, y, epochs=1, batch_size=64, callbacks=[loss_history])
    assert len(loss_history.per_batch_losses) == 16
    # The last batch's log is the epoch's running mean.
    assert float(loss_history.per_batch_losses[-1]) == pytest.approx(history.history["loss"][0], rel=1e-5)


def test_checkpointing_models(digits, tmp_path, monkeypatch):
    """## Checkpointing models (ModelCheckpoint, then make_or_restore_model)."""
    monkeypatch.chdir(tmp_path)
    x, y = digits["x_train"], digits["y_train"]
    model = get_compiled_model()
    callbacks = [
        lm.callbacks.ModelCheckpoint(
            # Path where to save the model
            # The two parameters below mean that we will overwrite
            # the current checkpoint if and only if
            # the `val_loss` score has improved.
            # The saved model name will include the current epoch.
            filepath="mymodel_{epoch}.lamina",
            save_best_only=True,  # Only save a model if `val_loss` has improved.
            monitor="val_loss",
            verbose=1,
        )
    ]
    model.fit(x, y, epochs=2, batch_size=64, callbacks=callbacks, validation_split=0.2)
    assert sorted(os.listdir(tmp_path)) == ["mymodel_1.lamina", "mymodel_2.lamina"]
    restored = lm.models.load_model("mymodel_2.lamina")
    np.testing.assert_allclose(restored.predict(x[:5]), model.predict(x[:5]), rtol=1e-6)

    # Prepare a directory to store all the checkpoints.
    checkpoint_dir = "./ckpt"
    if not os.path.exists(checkpoint_dir):
        os.makedirs(checkpoint_dir)

    messages = []

    def make_or_restore_model():
        # Either restore the latest model, or create a fresh one
        # if there is no checkpoint available.
        checkpoints = [checkpoint_dir + "/" + name for name in os.listdir(checkpoint_dir)]
        if checkpoints:
            latest_checkpoint = max(checkpoints, key=os.path.getctime)
            messages.append(("Restoring from", latest_checkpoint))
            return lm.models.load_model(latest_checkpoint)
        messages.append(("Creating a new model",))
        return get_compiled_model()

    model = make_or_restore_model()
    callbacks = [
        # This callback saves the model every 10 batches.
        # We include the training loss in the saved model name.
        lm.callbacks.ModelCheckpoint(
            filepath=checkpoint_dir + "/model-loss={loss:.2f}.lamina", save_freq=10
        )
    ]
    model.fit(x, y, epochs=1, callbacks=callbacks)  # 32 batches: saves after 10, 20, 30
    saved = os.listdir(checkpoint_dir)
    assert 1 <= len(saved) <= 3 and all(name.startswith("model-loss=") for name in saved)
    model = make_or_restore_model()
    assert messages[0] == ("Creating a new model",) and messages[1][0] == "Restoring from"
    assert model.evaluate(x, y, verbose=0)[1] > 0.5  # restored, trained and compiled


def test_using_learning_rate_schedules(digits, K):
    """## Using learning rate schedules (ExponentialDecay and the other built-in ones)."""
    initial_learning_rate = 0.1
    lr_schedule = lm.optimizers.schedules.ExponentialDecay(
        initial_learning_rate, decay_steps=100000, decay_rate=0.96, staircase=True
    )
    optimizer = lm.optimizers.RMSprop(learning_rate=lr_schedule)
    keras_schedule = K.optimizers.schedules.ExponentialDecay(
        initial_learning_rate, decay_steps=100000, decay_rate=0.96, staircase=True
    )
    for step in (0, 99999, 100000, 250000):
        assert float(lr_schedule(step)) == pytest.approx(float(keras_schedule(step)), rel=1e-6)
    others = {
        "PiecewiseConstantDecay": ([10, 20], [1.0, 0.5, 0.1]),
        "PolynomialDecay": (0.1, 100),
        "InverseTimeDecay": (0.1, 10, 0.5),
    }
    for name, args in others.items():
        ours, theirs = (getattr(m.optimizers.schedules, name)(*args) for m in (lm, K))
        for step in (0, 5, 15, 50, 150):
            assert float(ours(step)) == pytest.approx(float(theirs(step)), rel=1e-5), (name, step)
    model = get_uncompiled_model(lm)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    model.fit(digits["x_train"], digits["y_train"], epochs=1, batch_size=64)
    assert int(optimizer.iterations) == 16


def test_visualizing_loss_and_metrics_during_training_with_tensorboard(digits, tmp_path):
    """### Using the TensorBoard callback (event files need the ``tensorboard`` extra)."""
    try:
        callback = lm.callbacks.TensorBoard(
            log_dir=str(tmp_path / "logs"),
            histogram_freq=0,  # How often to log histogram visualizations
            embeddings_freq=0,  # How often to log embedding visualizations
            update_freq="epoch",
        )  # How often to write logs (default: once per epoch)
    except ImportError as error:  # tensorboardX is an optional extra
        assert "lamina[tensorboard]" in str(error)
        return
    model = get_compiled_model()
    model.fit(digits["x_train"], digits["y_train"], epochs=1, callbacks=[callback])
    assert any(files for _, _, files in os.walk(tmp_path / "logs"))
