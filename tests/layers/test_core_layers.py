"""Dense, Dropout and Activation against Keras 3 (JAX backend) and NumPy formulas.

Each comparison builds the Keras layer and the lamina layer with the same configuration,
copies the Keras weights in with ``set_weights(keras_layer.get_weights())`` and compares.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

RTOL = 1e-5
ATOL = 1e-6


def random_input(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def paired_dense(keras, x, **config):
    """A Keras Dense and a lamina Dense of the same config, with the Keras weights."""
    theirs = keras.layers.Dense(**config)
    theirs(x)
    ours = lm.layers.Dense(**{k: v for k, v in config.items() if not k.endswith("regularizer")},
                           **{k: _lm_reg(v) for k, v in config.items() if k.endswith("regularizer")})
    ours(x)
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def _lm_reg(keras_regularizer):
    if keras_regularizer is None or isinstance(keras_regularizer, str):
        return keras_regularizer
    return lm.regularizers.get({"class_name": type(keras_regularizer).__name__,
                                "config": keras_regularizer.get_config()})


# --- Dense -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5), (2, 2, 3, 5)])
@pytest.mark.parametrize("activation", [None, "relu", "tanh", "softmax"])
def test_dense_equals_keras(keras, shape, activation):
    x = random_input(shape, seed=len(shape))
    theirs, ours = paired_dense(keras, x, units=3, activation=activation)
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), rtol=RTOL, atol=ATOL)


def test_dense_no_bias_equals_keras(keras):
    x = random_input((4, 6))
    theirs, ours = paired_dense(keras, x, units=2, use_bias=False)
    assert len(ours.weights) == 1 and ours.bias is None
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), rtol=RTOL, atol=ATOL)


def test_dense_weights_in_keras_order_and_shapes(keras):
    x = random_input((2, 4))
    theirs, ours = paired_dense(keras, x, units=3)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    assert [v.name for v in ours.weights] == ["kernel", "bias"]
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_dense_default_initializers_like_keras(keras):
    ours = lm.layers.Dense(50)
    ours(np.ones((1, 40), np.float32))
    limit = np.sqrt(6 / (40 + 50))  # glorot_uniform
    kernel = ours.kernel.numpy()
    assert np.abs(kernel).max() <= limit and kernel.std() > limit / 3
    np.testing.assert_array_equal(ours.bias.numpy(), np.zeros(50))


@pytest.mark.parametrize("kind", ["kernel", "bias", "both"])
def test_dense_regularizer_losses_equal_keras(keras, kind):
    x = random_input((3, 4))
    config = {"units": 5, "bias_initializer": "random_normal"}
    if kind in ("kernel", "both"):
        config["kernel_regularizer"] = keras.regularizers.L2(0.05)
    if kind in ("bias", "both"):
        config["bias_regularizer"] = keras.regularizers.L1(0.3)
    theirs, ours = paired_dense(keras, x, **config)
    theirs(x), ours(x)
    assert len(ours.losses) == len(theirs.losses)
    np.testing.assert_allclose([float(v) for v in ours.losses], [float(v) for v in theirs.losses], rtol=RTOL)


def test_dense_activity_regularizer_loss_equals_keras(keras):
    x = random_input((3, 4))
    theirs, ours = paired_dense(keras, x, units=5, kernel_regularizer="l2",
                                activity_regularizer=keras.regularizers.L1(0.1))
    theirs(x), ours(x)
    assert len(ours.losses) == len(theirs.losses) == 2
    np.testing.assert_allclose(sorted(float(v) for v in ours.losses),
                               sorted(float(v) for v in theirs.losses), rtol=RTOL)


def test_dense_activity_regularizer_not_accumulated(keras):
    x = random_input((3, 4))
    ours = lm.layers.Dense(2, activity_regularizer=lm.regularizers.L2(1.0))
    ours(x)
    ours(x)
    assert len(ours.losses) == 1


def _keras_grads(keras_layer, x):
    tv = [v.value for v in keras_layer.trainable_variables]
    ntv = [v.value for v in keras_layer.non_trainable_variables]

    def f(tv, x):
        return jnp.sum(keras_layer.stateless_call(tv, ntv, x)[0])

    return jax.grad(f, argnums=(0, 1))(tv, jnp.asarray(x))


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5)])
@pytest.mark.parametrize("activation", [None, "tanh"])
def test_dense_gradients_equal_keras_via_stateless_call(keras, shape, activation):
    x = random_input(shape, seed=3)
    theirs, ours = paired_dense(keras, x, units=3, activation=activation)
    (k_kernel, k_bias), k_x = _keras_grads(theirs, x)
    tv = [v.value for v in ours.trainable_weights]

    def f(tv, x):
        return jnp.sum(ours.stateless_call(tv, [], x)[0])

    (l_kernel, l_bias), l_x = jax.grad(f, argnums=(0, 1))(tv, jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(l_x), np.asarray(k_x), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np.asarray(l_kernel), np.asarray(k_kernel), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np.asarray(l_bias), np.asarray(k_bias), rtol=RTOL, atol=ATOL)


def test_dense_kernel_gradient_with_value_and_grad_equals_formula(keras):
    x = random_input((2, 3, 4), seed=5)
    ours = lm.layers.Dense(3)
    ours(x)
    _, (g_kernel, g_bias) = lm.value_and_grad(lambda: jnp.sum(ours(x)), [ours.kernel, ours.bias])()
    # d sum(x @ W + b) / dW = sum over batch axes of x^T 1
    flat = x.reshape(-1, 4)
    np.testing.assert_allclose(np.asarray(g_kernel), flat.T @ np.ones((flat.shape[0], 3)), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np.asarray(g_bias), np.full(3, flat.shape[0]), rtol=RTOL)


def test_dense_input_gradient_with_jax_grad_equals_formula():
    x = random_input((4, 5), seed=6)
    ours = lm.layers.Dense(3)
    ours(x)
    g = jax.grad(lambda x: jnp.sum(ours(x)))(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(g), np.tile(ours.kernel.numpy().sum(axis=1), (4, 1)), rtol=RTOL, atol=ATOL)


def test_dense_jit_equals_eager(keras):
    x = random_input((4, 5))
    ours = lm.layers.Dense(3, activation="relu")
    eager = np.asarray(ours(x))
    np.testing.assert_allclose(np.asarray(lm.jit(lambda x: ours(x))(jnp.asarray(x))), eager, rtol=RTOL, atol=ATOL)


def test_dense_rejects_bad_units():
    with pytest.raises(ValueError, match="units"):
        lm.layers.Dense(0)


def test_dense_compute_output_shape():
    assert lm.layers.Dense(7).compute_output_shape((None, 3, 5)) == (None, 3, 7)


# --- Dropout ---------------------------------------------------------------------------------

def test_dropout_identity_when_not_training():
    x = random_input((50, 40))
    drop = lm.layers.Dropout(0.5)
    np.testing.assert_array_equal(np.asarray(drop(x, training=False)), x)
    np.testing.assert_array_equal(np.asarray(drop(x)), x)  # default: inference


def test_dropout_identity_like_keras_in_inference(keras):
    x = random_input((8, 6))
    np.testing.assert_array_equal(np.asarray(lm.layers.Dropout(0.3)(x)),
                                  np.asarray(keras.layers.Dropout(0.3)(x, training=False)))


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.7])
def test_dropout_training_zeroes_rate_and_scales_the_rest(rate):
    x = np.ones((200, 100), np.float32)
    out = np.asarray(lm.layers.Dropout(rate)(x, training=True))
    zeroed = out == 0
    assert abs(zeroed.mean() - rate) < 0.02  # 20000 draws: std <= 0.0036
    np.testing.assert_allclose(out[~zeroed], 1.0 / (1.0 - rate), rtol=1e-6)


def test_dropout_keeps_values_scaled():
    x = random_input((100, 50)) + 10.0
    out = np.asarray(lm.layers.Dropout(0.25)(x, training=True))
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.75, rtol=1e-6)


def test_dropout_statistics_like_keras(keras):
    x = np.ones((200, 100), np.float32)
    ours = np.asarray(lm.layers.Dropout(0.4)(x, training=True))
    theirs = np.asarray(keras.layers.Dropout(0.4)(x, training=True))
    assert abs((ours == 0).mean() - (theirs == 0).mean()) < 0.03
    assert set(np.unique(ours)) == set(np.unique(theirs))


def test_dropout_different_mask_each_call():
    x = np.ones((40, 40), np.float32)
    drop = lm.layers.Dropout(0.5)
    first, second = np.asarray(drop(x, training=True)), np.asarray(drop(x, training=True))
    assert not np.array_equal(first, second)


def test_dropout_different_mask_each_compiled_step():
    x = jnp.ones((40, 40))
    drop = lm.layers.Dropout(0.5)
    step = lm.jit(lambda x: drop(x, training=True))
    masks = [np.asarray(step(x)) for _ in range(3)]
    assert not np.array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[1], masks[2])
    for m in masks:
        assert 0.4 < (m == 0).mean() < 0.6


def test_dropout_inside_a_model_different_mask_each_compiled_step():
    class Net(lm.Layer):
        def __init__(self):
            super().__init__()
            self.dense = lm.layers.Dense(30, kernel_initializer="ones")
            self.drop = lm.layers.Dropout(0.5)

        def call(self, x, training=None):
            return self.drop(self.dense(x))  # training reaches drop from the outer call

    net = Net()
    step = lm.jit(lambda x: net(x, training=True))
    x = jnp.ones((20, 4))
    first, second = np.asarray(step(x)), np.asarray(step(x))
    assert (first == 0).any() and not np.array_equal(first, second)
    np.testing.assert_array_equal(np.asarray(net(x)), np.full((20, 30), 4.0))


def test_dropout_repeatable_after_set_seed():
    x = np.ones((30, 30), np.float32)
    lm.random.set_seed(1234)
    a = lm.layers.Dropout(0.5)
    first = [np.asarray(a(x, training=True)) for _ in range(2)]
    lm.random.set_seed(1234)
    b = lm.layers.Dropout(0.5)
    second = [np.asarray(b(x, training=True)) for _ in range(2)]
    for m1, m2 in zip(first, second):
        np.testing.assert_array_equal(m1, m2)


def test_dropout_seed_argument_repeatable():
    x = np.ones((30, 30), np.float32)
    a, b = lm.layers.Dropout(0.5, seed=7), lm.layers.Dropout(0.5, seed=7)
    np.testing.assert_array_equal(np.asarray(a(x, training=True)), np.asarray(b(x, training=True)))


def test_dropout_noise_shape_broadcasts():
    x = np.ones((50, 20), np.float32)
    out = np.asarray(lm.layers.Dropout(0.5, noise_shape=(None, 1))(x, training=True))
    rows_zero = (out == 0).all(axis=1)
    rows_kept = (out == 2.0).all(axis=1)
    assert (rows_zero | rows_kept).all()
    assert rows_zero.any() and rows_kept.any()


def test_dropout_rate_bounds():
    x = np.ones((4, 4), np.float32)
    np.testing.assert_array_equal(np.asarray(lm.layers.Dropout(0.0)(x, training=True)), x)
    with pytest.raises(ValueError, match="rate"):
        lm.layers.Dropout(1.5)


def test_dropout_config_round_trip():
    layer = lm.layers.Dropout(0.3, noise_shape=(None, 1), seed=4)
    clone = lm.layers.Dropout.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


# --- Activation --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["relu", "softmax", "gelu", "sigmoid", "tanh"])
def test_activation_equals_keras(keras, name):
    x = random_input((3, 4, 5), seed=9) * 3
    ours = lm.layers.Activation(name)(x)
    theirs = keras.layers.Activation(name)(x)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=RTOL, atol=ATOL)


def test_activation_callable():
    x = random_input((2, 3))
    np.testing.assert_allclose(np.asarray(lm.layers.Activation(jnp.tanh)(x)), np.tanh(x), rtol=RTOL, atol=ATOL)


def test_activation_has_no_weights_and_config_round_trip():
    layer = lm.layers.Activation("gelu")
    layer(np.ones((1, 2), np.float32))
    assert layer.weights == []
    clone = lm.layers.Activation.from_config(layer.get_config())
    x = random_input((2, 3))
    np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(layer(x)))
