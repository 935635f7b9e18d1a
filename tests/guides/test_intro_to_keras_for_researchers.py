"""Port of the guide "Introduction to Keras for Researchers"
(keras-team/keras-io, guides/intro_to_keras_for_researchers.py).

keras-io holds only the TensorFlow form of this guide (``import tensorflow as tf``, ``from
tensorflow import keras``); no Keras 3 form exists. It is ported the way a Keras 3 user on JAX
writes it: ``tf.constant``/``tf.ones``/``tf.square``... -> ``jnp``; ``tf.random.X`` ->
``lm.random.X``; ``tf.Variable`` -> ``lm.Variable``; ``tf.GradientTape`` -> ``lm.value_and_grad``
(``jax.grad`` for a plain array); ``tf.function`` -> ``lm.jit``; ``tf.keras``/``keras`` -> ``lm``.
MNIST -> scikit-learn's digits (64 features instead of 784); ``tf.data`` pipelines -> shuffled
NumPy batches, except for ``fit``/``predict``/``evaluate``, which get the guide's ``tf.data``
pipeline; a few steps instead of an epoch. Numbers are checked against NumPy formulas, and
against Keras 3 holding the same weights where the code maps one to one.

Changes a Keras 3 port needs anyway (each marked where it happens): the random draws inside
compiled code take a ``SeedGenerator`` (an unseeded draw under ``lm.jit``, as under Keras 3's
JAX tracing, raises); ``Metric.reset_states`` is ``reset_state``; the functional VAE's KL term
is added by a layer, since symbolic tensors carry no values; the hypernetwork sets the main
network's weights through ``stateless_call`` (Keras 3's ``Dense.kernel`` has no setter).
``add_metric`` (prose only in the guide) is gone from Keras 3 and from lamina.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

import lamina as lm

BATCH = 64


@pytest.fixture(scope="module")
def K():
    import keras

    return keras


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    # The guide's x_train.reshape(60000, 784).astype("float32") / 255: digits' pixels are 0..16.
    return x.astype("float32") / 16, y.astype("uint8")


def dataset(x, y=None, batch_size=BATCH, steps=None, seed=0):
    """Stands in for ``from_tensor_slices(...).shuffle(buffer_size=1024).batch(batch_size)``."""
    order = np.random.default_rng(seed).permutation(len(x))
    starts = range(0, len(x), batch_size)
    for step, start in enumerate(starts):
        if steps is not None and step >= steps:
            return
        rows = order[start:start + batch_size]
        yield (x[rows], y[rows]) if y is not None else x[rows]


def softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sparse_ce(labels, logits):
    return float(np.mean(-np.log(softmax(logits)[np.arange(len(labels)), labels])))


# -- Tensors -------------------------------------------------------------------------------------


def test_tensors():
    x = jnp.array([[5, 2], [1, 3]])
    np.testing.assert_array_equal(np.asarray(x), [[5, 2], [1, 3]])
    assert x.dtype == jnp.int32 and x.shape == (2, 2)
    np.testing.assert_array_equal(jnp.ones(shape=(2, 1)), [[1.0], [1.0]])
    np.testing.assert_array_equal(jnp.zeros(shape=(2, 1)), [[0.0], [0.0]])

    lm.random.set_seed(0)
    x = lm.random.normal(shape=(2, 2), mean=0.0, stddev=1.0)
    assert x.shape == (2, 2) and x.dtype == jnp.float32
    # tf.random.uniform(..., dtype="int32"): Keras 3's uniform draws floats only and says so;
    # integers come from randint.
    with pytest.raises(ValueError, match=r"lm\.random\.uniform draws floating.*int32.*randint"):
        lm.random.uniform(shape=(2, 2), minval=0, maxval=10, dtype="int32")
    x = lm.random.randint(shape=(2, 2), minval=0, maxval=10, dtype="int32")
    assert x.dtype == jnp.int32 and 0 <= int(x.min()) and int(x.max()) < 10


# -- Variables -----------------------------------------------------------------------------------


def test_variables():
    lm.random.set_seed(1)
    initial_value = lm.random.normal(shape=(2, 2))
    a = lm.Variable(initial_value)
    assert "shape=(2, 2)" in repr(a) and "float32" in repr(a)

    new_value = lm.random.normal(shape=(2, 2))
    a.assign(new_value)
    for i in range(2):
        for j in range(2):
            assert a[i, j] == new_value[i, j]

    added_value = lm.random.normal(shape=(2, 2))
    a.assign_add(added_value)
    for i in range(2):
        for j in range(2):
            assert a[i, j] == new_value[i, j] + added_value[i, j]


# -- Doing math ----------------------------------------------------------------------------------


def test_doing_math():
    lm.random.set_seed(2)
    a = lm.random.normal(shape=(2, 2))
    b = lm.random.normal(shape=(2, 2))
    c = a + b
    d = jnp.square(c)
    e = jnp.exp(d)
    np.testing.assert_allclose(e, np.exp(np.square(np.asarray(a) + np.asarray(b))), rtol=1e-6)


# -- Gradients -----------------------------------------------------------------------------------


def test_gradients():
    lm.random.set_seed(3)
    a = lm.random.normal(shape=(2, 2))
    b = lm.random.normal(shape=(2, 2))
    a_np, b_np = np.asarray(a), np.asarray(b)
    first = a_np / np.sqrt(a_np**2 + b_np**2)  # d/da sqrt(a^2 + b^2)
    second = b_np**2 / (a_np**2 + b_np**2) ** 1.5

    # tape.watch(a) on a plain tensor: the gradient of a function of it. GradientTape sums a
    # non-scalar target, hence jnp.sum.
    dc_da = jax.grad(lambda a: jnp.sum(jnp.sqrt(jnp.square(a) + jnp.square(b))))(a)
    np.testing.assert_allclose(dc_da, first, rtol=1e-5)

    # Variables are "watched" by naming them.
    a = lm.Variable(a)

    def c_fn():
        return jnp.sum(jnp.sqrt(jnp.square(a) + jnp.square(b)))

    c, (dc_da,) = lm.value_and_grad(c_fn, [a])()
    np.testing.assert_allclose(dc_da, first, rtol=1e-5)
    np.testing.assert_allclose(c, np.sqrt(a_np**2 + b_np**2).sum(), rtol=1e-6)

    # Nested tapes: higher-order derivatives.
    def dc_da_fn():
        _, (dc_da,) = lm.value_and_grad(c_fn, [a])()
        return jnp.sum(dc_da)

    _, (d2c_da2,) = lm.value_and_grad(dc_da_fn, [a])()
    np.testing.assert_allclose(d2c_da2, second, rtol=1e-4)


# -- Keras layers ----------------------------------------------------------------------------------


class LinearInInit(lm.layers.Layer):
    """y = w.x + b (the guide's first Linear: variables made in __init__)."""

    def __init__(self, units=32, input_dim=32):
        super().__init__()
        # tf.random_normal_initializer(): mean 0, stddev 0.05, like lm's RandomNormal.
        w_init = lm.initializers.RandomNormal()
        self.w = lm.Variable(
            initial_value=w_init(shape=(input_dim, units), dtype="float32"),
            trainable=True,
        )
        b_init = lm.initializers.Zeros()
        self.b = lm.Variable(initial_value=b_init(shape=(units,), dtype="float32"), trainable=True)

    def call(self, inputs):
        return jnp.matmul(inputs, self.w) + self.b


def test_keras_layers():
    lm.random.set_seed(4)
    # Instantiate our layer.
    linear_layer = LinearInInit(units=4, input_dim=2)
    # The layer can be treated as a function.
    y = linear_layer(jnp.ones((2, 2)))
    assert y.shape == (2, 4)
    # The weight variables (created in `__init__`) are automatically tracked.
    assert linear_layer.weights == [linear_layer.w, linear_layer.b]
    w, b = (np.asarray(v) for v in linear_layer.weights)
    np.testing.assert_allclose(y, np.ones((2, 2)) @ w + b, rtol=1e-6)
    assert not b.any() and 0 < w.std() < 0.2  # stddev 0.05


# -- Layer weight creation ---------------------------------------------------------------------------


class Linear(lm.layers.Layer):
    """y = w.x + b"""

    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer="random_normal",
            trainable=True,
        )
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)

    def call(self, inputs):
        return jnp.matmul(inputs, self.w) + self.b


def test_layer_weight_creation():
    lm.random.set_seed(5)
    # Instantiate our lazy layer.
    linear_layer = Linear(4)
    assert linear_layer.weights == [] and not linear_layer.built
    # This will also call `build(input_shape)` and create the weights.
    y = linear_layer(jnp.ones((2, 2)))
    assert linear_layer.built and [v.shape for v in linear_layer.weights] == [(2, 4), (4,)]
    w, b = (np.asarray(v) for v in linear_layer.weights)
    assert b.any()  # "random_normal" for the bias too
    np.testing.assert_allclose(y, np.ones((2, 2)) @ w + b, rtol=1e-6)


# -- Layer gradients -----------------------------------------------------------------------------------


def test_layer_gradients(digits):
    x_train, y_train = digits
    lm.random.set_seed(6)
    # Instantiate our linear layer (defined above) with 10 units.
    linear_layer = Linear(10)
    # Instantiate a logistic loss function that expects integer targets.
    loss_fn = lm.losses.SparseCategoricalCrossentropy(from_logits=True)
    # Instantiate an optimizer.
    optimizer = lm.optimizers.SGD(learning_rate=1e-3)

    batches = list(dataset(x_train, y_train, steps=3))

    # A GradientTape reads `trainable_weights` after the forward pass that built the layer;
    # lm.value_and_grad is given them before it, so an unbuilt layer would get no gradient:
    # that is refused, and the layer is built first (as Keras 3 on JAX needs too).
    def forward_on_first_batch():
        return loss_fn(batches[0][1], linear_layer(batches[0][0]))

    with pytest.raises(ValueError, match=r"no variables to differentiate.*linear(_\d+)?/w.*Build the model first"):
        lm.value_and_grad(forward_on_first_batch, linear_layer.trainable_weights)()
    assert linear_layer.built and int(optimizer.iterations) == 0
    expected_w, expected_b = (np.asarray(v, dtype="float64") for v in linear_layer.weights)

    for x, y in batches:
        # Open a GradientTape: the forward pass inside the function differentiated.
        def forward(x, y):
            logits = linear_layer(x)
            return loss_fn(y, logits)

        # Get gradients of the loss wrt the weights.
        loss, gradients = lm.value_and_grad(forward, linear_layer.trainable_weights)(x, y)
        # Update the weights of our linear layer.
        optimizer.apply_gradients(zip(gradients, linear_layer.trainable_weights))

        # The same step in NumPy: softmax cross-entropy's gradient is x^T (p - onehot) / n.
        logits = x @ expected_w + expected_b
        assert float(loss) == pytest.approx(sparse_ce(y, logits), rel=1e-5)
        delta = (softmax(logits) - np.eye(10)[y]) / len(y)
        expected_w -= 1e-3 * x.T @ delta
        expected_b -= 1e-3 * delta.sum(0)
    np.testing.assert_allclose(linear_layer.w, expected_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(linear_layer.b, expected_b, rtol=1e-5, atol=1e-6)
    assert int(optimizer.iterations) == len(batches)


# -- Trainable and non-trainable weights -----------------------------------------------------------


class ComputeSum(lm.layers.Layer):
    """Returns the sum of the inputs."""

    def __init__(self, input_dim):
        super().__init__()
        # Create a non-trainable weight.
        self.total = lm.Variable(initial_value=jnp.zeros((input_dim,)), trainable=False)

    def call(self, inputs):
        self.total.assign_add(jnp.sum(inputs, axis=0))
        return self.total


def test_trainable_and_non_trainable_weights():
    my_sum = ComputeSum(2)
    x = jnp.ones((2, 2))

    y = my_sum(x)
    np.testing.assert_array_equal(y.numpy(), [2.0, 2.0])
    y = my_sum(x)
    np.testing.assert_array_equal(y.numpy(), [4.0, 4.0])

    assert my_sum.weights == [my_sum.total]
    assert my_sum.non_trainable_weights == [my_sum.total]
    assert my_sum.trainable_weights == []

    # Compiled, the running total goes on from where the eager calls left it.
    step = lm.jit(lambda inputs: my_sum(inputs))
    step(x)
    np.testing.assert_array_equal(np.asarray(step(x)), [8.0, 8.0])
    np.testing.assert_array_equal(my_sum.total.numpy(), [8.0, 8.0])


# -- Layers that own layers --------------------------------------------------------------------------


class MLP(lm.layers.Layer):
    """Simple stack of Linear layers."""

    def __init__(self):
        super().__init__()
        self.linear_1 = Linear(32)
        self.linear_2 = Linear(32)
        self.linear_3 = Linear(10)

    def call(self, inputs):
        x = self.linear_1(inputs)
        x = jax.nn.relu(x)
        x = self.linear_2(x)
        x = jax.nn.relu(x)
        return self.linear_3(x)


def test_layers_that_own_layers(digits):
    lm.random.set_seed(7)
    mlp = MLP()
    # The first call to the `mlp` object will create the weights (on 64 digits instead of the
    # guide's tf.ones((3, 64)): the batch shape other sections use).
    x = digits[0][:BATCH]
    y = mlp(x)
    # Weights are recursively tracked.
    assert len(mlp.weights) == 6
    assert [v.path for v in mlp.weights[:2]] == [f"{mlp.name}/linear_1/w", f"{mlp.name}/linear_1/b"]  # "mlp" in a fresh process

    # ... equivalent to the built-in option:
    sequential = lm.Sequential(
        [
            lm.layers.Dense(32, activation=jax.nn.relu),
            lm.layers.Dense(32, activation=jax.nn.relu),
            lm.layers.Dense(10),
        ]
    )
    sequential.build((None, 64))
    sequential.set_weights(mlp.get_weights())
    np.testing.assert_allclose(sequential(x), y, rtol=1e-5, atol=1e-6)


# -- Tracking losses created by layers -----------------------------------------------------------------


class ActivityRegularization(lm.layers.Layer):
    """Layer that creates an activity sparsity regularization loss."""

    def __init__(self, rate=1e-2):
        super().__init__()
        self.rate = rate

    def call(self, inputs):
        # We use `add_loss` to create a regularization loss
        # that depends on the inputs.
        self.add_loss(self.rate * jnp.sum(inputs))
        return inputs


class SparseMLP(lm.layers.Layer):
    """Stack of Linear layers with a sparsity regularization loss."""

    def __init__(self):
        super().__init__()
        self.linear_1 = Linear(32)
        self.regularization = ActivityRegularization(1e-2)
        self.linear_3 = Linear(10)

    def call(self, inputs):
        x = self.linear_1(inputs)
        x = jax.nn.relu(x)
        x = self.regularization(x)
        return self.linear_3(x)


def sparse_mlp_penalty(mlp, x):
    w, b = (np.asarray(v) for v in mlp.linear_1.weights)
    return 1e-2 * np.maximum(x @ w + b, 0).sum()


def test_tracking_losses_created_by_layers(digits):
    lm.random.set_seed(8)
    mlp = SparseMLP()
    mlp(jnp.ones((10, 10)))
    assert len(mlp.losses) == 1  # a list containing one float32 scalar
    assert mlp.losses[0].shape == () and mlp.losses[0].dtype == jnp.float32
    np.testing.assert_allclose(mlp.losses[0], sparse_mlp_penalty(mlp, np.ones((10, 10))), rtol=1e-5)
    mlp(2 * jnp.ones((10, 10)))
    assert len(mlp.losses) == 1  # No accumulation: the last forward pass's.
    np.testing.assert_allclose(mlp.losses[0], sparse_mlp_penalty(mlp, 2 * np.ones((10, 10))), rtol=1e-5)

    # Let's demonstrate how to use these losses in a training loop.
    x_train, y_train = digits
    mlp = SparseMLP()
    mlp(x_train[:1])  # the weights exist before they are named (see test_layer_gradients)
    loss_fn = lm.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = lm.optimizers.SGD(learning_rate=1e-3)

    for step, (x, y) in enumerate(dataset(x_train, y_train, steps=3)):

        def forward(x, y):
            # Forward pass.
            logits = mlp(x)
            # External loss value for this batch.
            loss = loss_fn(y, logits)
            # Add the losses created during the forward pass.
            loss += sum(mlp.losses)
            return loss, logits

        before = [np.asarray(v) for v in mlp.trainable_weights] if step else None
        (loss, logits), gradients = lm.value_and_grad(forward, mlp.trainable_weights, has_aux=True)(x, y)
        # The loss includes the penalty of this very pass (read after the tape, as in Keras).
        assert len(mlp.losses) == 1
        expected = sparse_ce(y, np.asarray(logits)) + sparse_mlp_penalty(mlp, x)
        assert float(loss) == pytest.approx(expected, rel=1e-5)
        optimizer.apply_gradients(zip(gradients, mlp.trainable_weights))
        if before is not None:  # plain SGD: each weight moved by -lr * its gradient
            for old, new, g in zip(before, mlp.trainable_weights, gradients):
                np.testing.assert_allclose(new, old - 1e-3 * np.asarray(g), rtol=1e-5, atol=1e-7)


# -- Keeping track of training metrics ---------------------------------------------------------------


def test_keeping_track_of_training_metrics(digits):
    x_train, y_train = digits
    lm.random.set_seed(9)
    # Instantiate a metric object
    accuracy = lm.metrics.SparseCategoricalAccuracy()
    # Prepare our layer, loss, and optimizer.
    model = lm.Sequential(
        [
            lm.layers.Dense(32, activation="relu"),
            lm.layers.Dense(32, activation="relu"),
            lm.layers.Dense(10),
        ]
    )
    model.build((None, 64))  # the weights exist before they are named (see test_layer_gradients)
    loss_fn = lm.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = lm.optimizers.Adam(learning_rate=1e-3)

    for epoch in range(2):
        hits = []
        # Iterate over the batches of a dataset.
        for x, y in dataset(x_train, y_train, steps=2, seed=epoch):

            def forward(x, y):
                logits = model(x)
                # Compute the loss value for this batch.
                return loss_fn(y, logits), logits

            (loss_value, logits), gradients = lm.value_and_grad(forward, model.trainable_weights, has_aux=True)(x, y)
            # Update the state of the `accuracy` metric.
            accuracy.update_state(y, logits)
            hits.extend(np.argmax(np.asarray(logits), -1) == y)
            # Update the weights of the model to minimize the loss value.
            optimizer.apply_gradients(zip(gradients, model.trainable_weights))
            # The total running accuracy so far.
            assert float(accuracy.result()) == pytest.approx(np.mean(hits), abs=1e-6)
        # Reset the metric's state at the end of an epoch (Keras 3: reset_state).
        accuracy.reset_state()
        assert float(accuracy.result()) == 0.0
    assert int(optimizer.iterations) == 4


class F1Score(lm.metrics.Metric):
    def __init__(self, name="f1_score", dtype="float32", threshold=0.5, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.threshold = 0.5
        self.true_positives = self.add_weight(name="tp", dtype=dtype, initializer="zeros")
        self.false_positives = self.add_weight(name="fp", dtype=dtype, initializer="zeros")
        self.false_negatives = self.add_weight(name="fn", dtype=dtype, initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        # jnp.asarray: the guide passes Python lists, which tf ops (and keras.ops) convert and
        # jax.numpy functions refuse.
        y_pred = jnp.greater_equal(jnp.asarray(y_pred), self.threshold)
        y_true = jnp.asarray(y_true).astype(bool)
        y_pred = y_pred.astype(bool)

        true_positives = (y_true & y_pred).astype(self.dtype)
        false_positives = (~y_true & y_pred).astype(self.dtype)
        false_negatives = (y_true & ~y_pred).astype(self.dtype)

        if sample_weight is not None:
            sample_weight = jnp.asarray(sample_weight, self.dtype)
            true_positives *= sample_weight
            false_positives *= sample_weight
            false_negatives *= sample_weight

        self.true_positives.assign_add(jnp.sum(true_positives))
        self.false_positives.assign_add(jnp.sum(false_positives))
        self.false_negatives.assign_add(jnp.sum(false_negatives))

    def result(self):
        precision = self.true_positives / (self.true_positives + self.false_positives)
        recall = self.true_positives / (self.true_positives + self.false_negatives)
        return precision * recall * 2.0 / (precision + recall)

    def reset_state(self):
        self.true_positives.assign(0)
        self.false_positives.assign(0)
        self.false_negatives.assign(0)


def keras_f1_score(K):
    """The same metric written for Keras 3 with ``keras.ops``."""

    class KerasF1Score(K.metrics.Metric):
        def __init__(self, name="f1_score", dtype="float32"):
            super().__init__(name=name, dtype=dtype)
            self.tp = self.add_weight(name="tp", initializer="zeros")
            self.fp = self.add_weight(name="fp", initializer="zeros")
            self.fn = self.add_weight(name="fn", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            ops = K.ops
            y_pred = ops.greater_equal(y_pred, 0.5)
            y_true = ops.cast(y_true, "bool")
            w = 1.0 if sample_weight is None else ops.cast(sample_weight, "float32")
            self.tp.assign_add(ops.sum(ops.cast(y_true & y_pred, "float32") * w))
            self.fp.assign_add(ops.sum(ops.cast(~y_true & y_pred, "float32") * w))
            self.fn.assign_add(ops.sum(ops.cast(y_true & ~y_pred, "float32") * w))

        def result(self):
            precision = self.tp / (self.tp + self.fp)
            recall = self.tp / (self.tp + self.fn)
            return precision * recall * 2.0 / (precision + recall)

    return KerasF1Score()


def test_custom_f1_score_metric(K):
    m = F1Score()
    reference = keras_f1_score(K)
    # tp 1, fp 2, fn 0: precision 1/3, recall 1, F1 0.5.
    m.update_state([0, 1, 0, 0], [0.3, 0.5, 0.8, 0.9])
    reference.update_state(np.array([0, 1, 0, 0]), np.array([0.3, 0.5, 0.8, 0.9]))
    assert float(m.result()) == pytest.approx(0.5) == float(reference.result())
    # tp 3, fp 2, fn 2: precision = recall = 0.6.
    m.update_state([1, 1, 1, 1], [0.1, 0.7, 0.6, 0.0])
    reference.update_state(np.array([1, 1, 1, 1]), np.array([0.1, 0.7, 0.6, 0.0]))
    assert float(m.result()) == pytest.approx(0.6) == pytest.approx(float(reference.result()))
    assert [v.name for v in m.variables] == ["tp", "fp", "fn"]

    # Sample weights, then the update compiled: the state still lands in the variables.
    update = lm.jit(lambda t, p, w: m.update_state(t, p, sample_weight=w))
    update(np.array([1, 0]), np.array([0.9, 0.9]), np.array([2.0, 1.0]))
    reference.update_state(np.array([1, 0]), np.array([0.9, 0.9]), np.array([2.0, 1.0]))
    np.testing.assert_allclose([float(v) for v in m.variables], [5.0, 3.0, 2.0])
    assert float(m.result()) == pytest.approx(float(reference.result()), rel=1e-6)
    m.reset_state()
    assert [float(v) for v in m.variables] == [0.0, 0.0, 0.0]


# -- Compiled functions ---------------------------------------------------------------------------------


def make_mlp(seed):
    lm.random.set_seed(seed)
    model = lm.Sequential(
        [
            lm.layers.Dense(32, activation="relu"),
            lm.layers.Dense(32, activation="relu"),
            lm.layers.Dense(10),
        ]
    )
    model.build((None, 64))  # the weights exist before they are named (see test_layer_gradients)
    return model


def test_compiled_functions(digits):
    x_train, y_train = digits
    batches = list(dataset(x_train, y_train, steps=2))

    def train(compiled):
        # Prepare our layer, loss, and optimizer.
        model = make_mlp(10)
        loss_fn = lm.losses.SparseCategoricalCrossentropy(from_logits=True)
        optimizer = lm.optimizers.Adam(learning_rate=1e-3)

        # Create a training step function.
        def train_on_batch(x, y):
            def forward():
                logits = model(x)
                return loss_fn(y, logits)

            loss, gradients = lm.value_and_grad(forward, model.trainable_weights)()
            optimizer.apply_gradients(zip(gradients, model.trainable_weights))
            return loss

        if compiled:
            train_on_batch = lm.jit(train_on_batch)  # Make it fast.
        losses = [float(train_on_batch(x, y)) for x, y in batches]
        return losses, [np.asarray(v) for v in model.weights], int(optimizer.iterations)

    compiled, eager = train(True), train(False)
    # Eager and compiled runs give the same numbers; the compiled one wrote its state back.
    np.testing.assert_allclose(compiled[0], eager[0], rtol=1e-5)
    for a, b in zip(compiled[1], eager[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert compiled[2] == eager[2] == len(batches)


# -- Training mode & inference mode ---------------------------------------------------------------------


class Dropout(lm.layers.Layer):
    def __init__(self, rate):
        super().__init__()
        self.rate = rate

    def call(self, inputs, training=None):
        if training:
            # tf.nn.dropout: an unseeded draw, from lamina's global stream (eager calls only).
            return lm.random.dropout(inputs, rate=self.rate)
        return inputs


class MLPWithDropout(lm.layers.Layer):
    def __init__(self):
        super().__init__()
        self.linear_1 = Linear(32)
        self.dropout = Dropout(0.5)
        self.linear_3 = Linear(10)

    def call(self, inputs, training=None):
        x = self.linear_1(inputs)
        x = jax.nn.relu(x)
        x = self.dropout(x, training=training)
        return self.linear_3(x)


def test_training_mode_and_inference_mode():
    lm.random.set_seed(11)
    mlp = MLPWithDropout()
    y_train = mlp(jnp.ones((2, 2)), training=True)
    y_test = mlp(jnp.ones((2, 2)), training=False)
    (w1, b1), (w3, b3) = ([np.asarray(v) for v in layer.weights] for layer in (mlp.linear_1, mlp.linear_3))
    hidden = np.maximum(np.ones((2, 2)) @ w1 + b1, 0)
    np.testing.assert_allclose(y_test, hidden @ w3 + b3, rtol=1e-5, atol=1e-6)
    assert not np.allclose(y_train, y_test)
    # Inference is the default.
    np.testing.assert_array_equal(mlp(jnp.ones((2, 2))), y_test)


# -- The Functional API for model-building -----------------------------------------------------------


def test_the_functional_api():
    lm.random.set_seed(12)
    # We use an `Input` object to describe the shape and dtype of the inputs.
    inputs = lm.Input(shape=(16,), dtype="float32")
    # We call layers on these "type" objects and they return updated types.
    x = Linear(32)(inputs)  # We are reusing the Linear layer we defined earlier.
    x = Dropout(0.5)(x)  # We are reusing the Dropout layer we defined earlier.
    outputs = Linear(10)(x)
    assert tuple(outputs.shape) == (None, 10)

    # A functional `Model` can be defined by specifying inputs and outputs.
    model = lm.Model(inputs, outputs)
    # A functional model already has weights, before being called on any data.
    assert len(model.weights) == 4

    # Let's call our model on some data, for fun.
    y = model(jnp.ones((2, 16)))
    assert y.shape == (2, 10)
    (w1, b1, w2, b2) = (np.asarray(v) for v in model.weights)
    np.testing.assert_allclose(y, (np.ones((2, 16)) @ w1 + b1) @ w2 + b2, rtol=1e-5, atol=1e-6)
    # A `training` argument in `__call__` is passed down to the Dropout layer.
    y = model(jnp.ones((2, 16)), training=True)
    assert y.shape == (2, 10) and not np.allclose(y, model(jnp.ones((2, 16))))


def guide_tf_dataset(x, y, batch_size=BATCH):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    return ds.shuffle(buffer_size=1024, seed=0).batch(batch_size)


def functional_mlp(k):
    inputs = k.Input(shape=(64,), dtype="float32")
    x = k.layers.Dense(32, activation="relu")(inputs)
    x = k.layers.Dense(32, activation="relu")(x)
    outputs = k.layers.Dense(10)(x)
    return inputs, outputs


def test_built_in_training_loops(digits):
    x_train, y_train = digits[0][:256], digits[1][:256]
    dataset = guide_tf_dataset(x_train, y_train)
    lm.random.set_seed(13)
    model = lm.Model(*functional_mlp(lm))
    # Specify the loss, optimizer, and metrics with `compile()`.
    model.compile(
        loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=lm.optimizers.Adam(learning_rate=1e-3),
        metrics=[lm.metrics.SparseCategoricalAccuracy()],
    )
    # Train the model with the dataset for 2 epochs.
    history = model.fit(dataset, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "sparse_categorical_accuracy"}
    assert len(history.history["loss"]) == 2 and history.history["loss"][1] < history.history["loss"][0]
    assert int(model.optimizer.iterations) == 2 * 4  # 256 rows in batches of 64, twice

    predictions = model.predict(dataset, verbose=0)  # the targets in the batches are ignored
    assert predictions.shape == (256, 10)
    # The dataset reshuffles on each pass; sorted rows compare regardless of the order.
    expected = np.asarray(model(x_train))
    np.testing.assert_allclose(np.sort(predictions.sum(1)), np.sort(expected.sum(1)), rtol=1e-4, atol=1e-5)
    score = model.evaluate(dataset, verbose=0)
    logits = expected
    np.testing.assert_allclose(score, [sparse_ce(y_train, logits), np.mean(logits.argmax(-1) == y_train)],
                               rtol=1e-4)


class CustomModel(lm.Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = lm.metrics.Mean(name="loss")
        self.accuracy = lm.metrics.SparseCategoricalAccuracy()
        self.loss_fn = lm.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.optimizer = lm.optimizers.Adam(learning_rate=1e-3)

    def train_step(self, data):
        # Unpack the data. Its structure depends on your model and
        # on what you pass to `fit()`.
        x, y = data

        def forward():
            y_pred = self(x, training=True)  # Forward pass
            return self.loss_fn(y, y_pred), y_pred

        (loss, y_pred), gradients = lm.value_and_grad(forward, self.trainable_weights, has_aux=True)()
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        # Update metrics (includes the metric that tracks the loss)
        self.loss_tracker.update_state(loss)
        self.accuracy.update_state(y, y_pred)
        # Return a dict mapping metric names to current value
        return {"loss": self.loss_tracker.result(), "accuracy": self.accuracy.result()}

    @property
    def metrics(self):
        # We list our `Metric` objects here so that `reset_state()` can be
        # called automatically at the start of each epoch.
        return [self.loss_tracker, self.accuracy]


def test_custom_train_step(digits):
    x_train, y_train = digits[0][:256], digits[1][:256]
    lm.random.set_seed(14)
    model = CustomModel(*functional_mlp(lm))
    assert isinstance(model, CustomModel)
    model.compile()
    # compile() without an optimizer takes the default ("adam" in lamina, "rmsprop" in Keras 3).
    assert isinstance(model.optimizer, lm.optimizers.Adam)
    history = model.fit(guide_tf_dataset(x_train, y_train), epochs=2, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    # The trackers are reset at each epoch: the second epoch's mean loss is its own.
    first, second = history.history["loss"]
    assert second < first
    assert int(model.optimizer.iterations) == 2 * 4
    assert 0.0 <= history.history["accuracy"][1] <= 1.0


# -- End-to-end experiment example 1: variational autoencoders ----------------------------------------


class Sampling(lm.layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # tf.keras.backend.random_normal is unseeded; compiled code needs a seed generator
        # held by the layer (lamina and Keras 3 on JAX both refuse an unseeded traced draw).
        self.seed_generator = lm.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = z_mean.shape[0]
        dim = z_mean.shape[1]
        epsilon = lm.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + jnp.exp(0.5 * z_log_var) * epsilon


class Encoder(lm.layers.Layer):
    """Maps MNIST digits to a triplet (z_mean, z_log_var, z)."""

    def __init__(self, latent_dim=32, intermediate_dim=64, **kwargs):
        super().__init__(**kwargs)
        self.dense_proj = lm.layers.Dense(intermediate_dim, activation=jax.nn.relu)
        self.dense_mean = lm.layers.Dense(latent_dim)
        self.dense_log_var = lm.layers.Dense(latent_dim)
        self.sampling = Sampling()

    def call(self, inputs):
        x = self.dense_proj(inputs)
        z_mean = self.dense_mean(x)
        z_log_var = self.dense_log_var(x)
        z = self.sampling((z_mean, z_log_var))
        return z_mean, z_log_var, z


class Decoder(lm.layers.Layer):
    """Converts z, the encoded digit vector, back into a readable digit."""

    def __init__(self, original_dim, intermediate_dim=64, **kwargs):
        super().__init__(**kwargs)
        self.dense_proj = lm.layers.Dense(intermediate_dim, activation=jax.nn.relu)
        self.dense_output = lm.layers.Dense(original_dim, activation=jax.nn.sigmoid)

    def call(self, inputs):
        x = self.dense_proj(inputs)
        return self.dense_output(x)


class VariationalAutoEncoder(lm.layers.Layer):
    """Combines the encoder and decoder into an end-to-end model for training."""

    def __init__(self, original_dim, intermediate_dim=64, latent_dim=32, **kwargs):
        super().__init__(**kwargs)
        self.original_dim = original_dim
        self.encoder = Encoder(latent_dim=latent_dim, intermediate_dim=intermediate_dim)
        self.decoder = Decoder(original_dim, intermediate_dim=intermediate_dim)

    def call(self, inputs):
        z_mean, z_log_var, z = self.encoder(inputs)
        reconstructed = self.decoder(z)
        # Add KL divergence regularization loss.
        kl_loss = -0.5 * jnp.mean(z_log_var - jnp.square(z_mean) - jnp.exp(z_log_var) + 1)
        self.add_loss(kl_loss)
        return reconstructed


def kl_of(encoder, x):
    """The KL term computed in NumPy from the encoder's weights."""
    (wp, bp), (wm, bm), (wv, bv) = ([np.asarray(v) for v in d.weights]
                                    for d in (encoder.dense_proj, encoder.dense_mean, encoder.dense_log_var))
    h = np.maximum(x @ wp + bp, 0)
    mean, log_var = h @ wm + bm, h @ wv + bv
    return -0.5 * np.mean(log_var - mean**2 - np.exp(log_var) + 1)


def test_variational_autoencoder_subclassed(digits):
    x_train = digits[0]
    lm.random.set_seed(15)
    # Our model.
    vae = VariationalAutoEncoder(original_dim=64, intermediate_dim=16, latent_dim=4)
    # Loss and optimizer.
    loss_fn = lm.losses.MeanSquaredError()
    optimizer = lm.optimizers.Adam(learning_rate=1e-3)

    @lm.jit
    def training_step(x):
        def forward():
            reconstructed = vae(x)  # Compute input reconstruction.
            # Compute loss.
            loss = loss_fn(x, reconstructed)
            loss += sum(vae.losses)  # Add KLD term.
            return loss

        # Update the weights of the VAE.
        loss, grads = lm.value_and_grad(forward, vae.trainable_weights)()
        optimizer.apply_gradients(zip(grads, vae.trainable_weights))
        return loss

    batches = list(dataset(x_train, batch_size=32, steps=2))
    generator = vae.encoder.sampling.seed_generator
    vae(batches[0])  # the weights exist before they are named (see test_layer_gradients)
    losses = []  # Keep track of the losses over time.
    for x in batches:
        # The same pass run eagerly, from the same weights and noise, as the reference.
        weights, key = [np.asarray(v) for v in vae.weights], np.asarray(generator.state)
        reconstructed = np.asarray(vae(x))
        assert len(vae.losses) == 1
        kl = float(vae.losses[0])
        assert kl == pytest.approx(kl_of(vae.encoder, x), rel=1e-4, abs=1e-6)
        expected = np.mean((x - reconstructed) ** 2) + kl
        generator.state.assign(key)

        loss = training_step(x)
        # Logging.
        losses.append(float(loss))
        assert losses[-1] == pytest.approx(expected, rel=1e-4)
        # The weights moved, and the seed generator advanced past the key it used.
        assert any(not np.array_equal(a, b) for a, b in zip(weights, vae.weights))
        assert not np.array_equal(np.asarray(generator.state), key)
    assert int(optimizer.iterations) == len(batches)


class UnseededSampling(lm.layers.Layer):
    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = lm.random.normal(shape=z_mean.shape)
        return z_mean + jnp.exp(0.5 * z_log_var) * epsilon


class KLDivergenceLoss(lm.layers.Layer):
    """The functional VAE's ``vae.add_loss(kl_loss)`` on symbolic tensors, as a layer that passes
    ``z`` through: lamina's symbolic tensors carry shapes, not values (docs/guide.md, "Models")."""

    def call(self, inputs):
        z_mean, z_log_var, z = inputs
        self.add_loss(-0.5 * jnp.mean(z_log_var - jnp.square(z_mean) - jnp.exp(z_log_var) + 1))
        return z


def test_variational_autoencoder_functional(digits):
    x_train = digits[0][:256]
    lm.random.set_seed(16)
    original_dim = 64
    intermediate_dim = 16
    latent_dim = 4

    # Define encoder model.
    original_inputs = lm.Input(shape=(original_dim,), name="encoder_input")
    x = lm.layers.Dense(intermediate_dim, activation="relu")(original_inputs)
    z_mean = lm.layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = lm.layers.Dense(latent_dim, name="z_log_var")(x)
    # The guide's Sampling draws unseeded (tf.keras.backend.random_normal): tracing it to build
    # the graph is refused, with the way out; the seeded one above is what works.
    with pytest.raises(ValueError, match=r"functional model.*SeedGenerator"):
        UnseededSampling()((z_mean, z_log_var))
    z = Sampling()((z_mean, z_log_var))
    encoder = lm.Model(inputs=original_inputs, outputs=z, name="encoder")
    assert tuple(encoder.output.shape) == (None, latent_dim)

    # Define decoder model.
    latent_inputs = lm.Input(shape=(latent_dim,), name="z_sampling")
    x = lm.layers.Dense(intermediate_dim, activation="relu")(latent_inputs)
    outputs = lm.layers.Dense(original_dim, activation="sigmoid")(x)
    decoder = lm.Model(inputs=latent_inputs, outputs=outputs, name="decoder")

    # Define VAE model.
    outputs = decoder(z)
    vae = lm.Model(inputs=original_inputs, outputs=outputs, name="vae")
    # Add KL divergence regularization loss: jax.numpy cannot run on symbolic tensors.
    with pytest.raises(TypeError, match="Lambda"):
        -0.5 * jnp.mean(z_log_var - jnp.square(z_mean) - jnp.exp(z_log_var) + 1)
    z = KLDivergenceLoss()((z_mean, z_log_var, z))
    vae = lm.Model(inputs=original_inputs, outputs=decoder(z), name="vae")

    # Loss and optimizer.
    loss_fn = lm.losses.MeanSquaredError()
    optimizer = lm.optimizers.Adam(learning_rate=1e-3)
    # Use x_train as both inputs & targets.
    vae.compile(optimizer, loss=loss_fn)
    history = vae.fit(x_train, x_train, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # The epoch's loss is the reconstruction error plus the KL term.
    vae(x_train[:32])
    assert len(vae.losses) == 1
    assert int(optimizer.iterations) == 8


# -- End-to-end experiment example 2: hypernetworks -----------------------------------------------------


def test_hypernetwork(digits):
    x_train, y_train = digits
    input_dim = 64
    classes = 10
    hidden = 8
    lm.random.set_seed(17)

    # This is the main network we'll actually use to predict labels.
    main_network = lm.Sequential([lm.layers.Dense(hidden, activation=jax.nn.relu), lm.layers.Dense(classes)])
    main_network.build((None, input_dim))
    # This is the number of weight coefficients to generate. Each layer in the
    # main network requires output_dim * input_dim + output_dim coefficients.
    num_weights_to_generate = (classes * hidden + classes) + (hidden * input_dim + hidden)
    assert num_weights_to_generate == main_network.count_params()

    # This is the hypernetwork that generates the weights of the `main_network` above.
    hypernetwork = lm.Sequential(
        [
            lm.layers.Dense(16, activation=jax.nn.relu),
            lm.layers.Dense(num_weights_to_generate, activation=jax.nn.sigmoid),
        ]
    )

    # Loss and optimizer.
    loss_fn = lm.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = lm.optimizers.Adam(learning_rate=1e-4)

    shapes = [(input_dim, hidden), (hidden,), (hidden, classes), (classes,)]

    def split(weights_pred):
        # Reshape them to the expected shapes for w and b for the outer model.
        start_index, out = 0, []
        for shape in shapes:
            size = int(np.prod(shape))
            out.append(jnp.reshape(weights_pred[:, start_index:start_index + size], shape))
            start_index += size
        return out

    @lm.jit
    def train_step(x, y):
        def forward():
            # Predict weights for the outer model.
            weights_pred = hypernetwork(x)
            # The guide assigns them to `main_network.layers[i].kernel`; Keras 3's and lamina's
            # Dense keep `kernel` a variable, so the predicted values go in through
            # stateless_call, which runs the main network on them.
            preds, _ = main_network.stateless_call(split(weights_pred), [], x)
            return loss_fn(y, preds), preds

        # Train only inner model.
        (loss, preds), grads = lm.value_and_grad(forward, hypernetwork.trainable_weights, has_aux=True)()
        optimizer.apply_gradients(zip(grads, hypernetwork.trainable_weights))
        return loss, preds

    main_before = [np.asarray(v) for v in main_network.weights]
    losses = []  # Keep track of the losses over time.
    # We'll use a batch size of 1 for this experiment.
    for x, y in dataset(x_train, y_train, batch_size=1, steps=2):
        weights = [np.asarray(w) for w in split(hypernetwork(x))]
        loss, preds = train_step(x, y)
        # The main network ran on the predicted weights.
        h = np.maximum(x @ weights[0] + weights[1], 0)
        np.testing.assert_allclose(preds, h @ weights[2] + weights[3], rtol=1e-4, atol=1e-5)
        losses.append(float(loss))
    assert all(np.isfinite(losses))
    # Only the hypernetwork trained; the main network's own variables are untouched.
    for before, after in zip(main_before, main_network.weights):
        np.testing.assert_array_equal(before, after)
    assert int(optimizer.iterations) == 2
