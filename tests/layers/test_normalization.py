"""BatchNormalization, LayerNormalization, GroupNormalization and UnitNormalization against
Keras 3 through the layer checker, plus BatchNormalization's moving statistics (eager, lm.jit,
after several training calls, frozen) and masks."""

import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm
from lamina.layers.core.embedding import Embedding
from lamina.layers.normalization import (
    BatchNormalization,
    GroupNormalization,
    LayerNormalization,
    UnitNormalization,
)

# Non-default statistics and affine weights, so inference mode is a real test.
BN_INIT = dict(gamma_initializer="random_normal", beta_initializer="random_normal",
               moving_mean_initializer="random_uniform", moving_variance_initializer="ones")

RENORM = dict(renorm=True, renorm_clipping={"rmax": 1.5, "rmin": 0.5, "dmax": 0.5}, renorm_momentum=0.5)

BN_CASES = [
    # (config, input_shape, training). All on one shape: eager JAX compiles per shape.
    ({}, (2, 3, 4), False),
    (dict(momentum=0.9), (2, 3, 4), True),
    (dict(axis=1, center=False, scale=False, epsilon=1e-2), (2, 3, 4), True),
    (RENORM, (2, 3, 4), False),  # renorm in training: see the test of several calls below
]


@pytest.mark.parametrize("config, input_shape, training", BN_CASES)
def test_batch_normalization_passes_the_checker(keras, config, input_shape, training):
    full = {**BN_INIT, **config}
    check_layer(lambda: BatchNormalization(**full), lambda k: k.layers.BatchNormalization(**full),
                input_shape=input_shape, training=training, keras=keras, rtol=1e-4, atol=1e-5)


def test_batch_normalization_renorm_in_training_equals_keras_call_after_call(keras):
    # The training output with renorm depends on the renorm statistics before the call, which
    # the checker's single call then moves; so compare call after call from equal weights.
    batches = [random_input((8, 4), seed=s) * (1 + s) + s for s in range(3)]
    theirs = keras.layers.BatchNormalization(**RENORM)
    ours = BatchNormalization(**RENORM)
    theirs(batches[0]), ours(batches[0])
    ours.set_weights(theirs.get_weights())
    for x in batches:
        np.testing.assert_allclose(np.asarray(ours(x, training=True)), np.asarray(theirs(x, training=True)),
                                   rtol=1e-4, atol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_batch_normalization_weights_in_keras_order(keras):
    ours = BatchNormalization(renorm=True)
    ours(jnp.ones((2, 3)))
    theirs = keras.layers.BatchNormalization(renorm=True)
    theirs(np.ones((2, 3), np.float32))
    assert [v.name for v in ours.weights] == [v.name for v in theirs.weights]
    assert [v.name for v in ours.trainable_weights] == ["gamma", "beta"]


@pytest.mark.parametrize("config", [{}, dict(momentum=0.5, axis=1)])
def test_batch_normalization_moving_statistics_equal_keras_after_n_training_calls(keras, config):
    batches = [random_input((8, 3, 4), seed=s) * (s + 1) + s for s in range(4)]
    theirs = keras.layers.BatchNormalization(**config)
    ours = BatchNormalization(**config)
    for x in batches:
        expected = np.asarray(theirs(x, training=True))
        np.testing.assert_allclose(np.asarray(ours(x, training=True)), expected, rtol=1e-4, atol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(ours.moving_mean.numpy(), 0)
    x = batches[0]  # inference now uses the moved statistics, as in Keras
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x, training=False)), rtol=1e-4, atol=1e-5)


def test_batch_normalization_moving_statistics_in_jit_equal_eager():
    batches = [jnp.asarray(random_input((6, 4), seed=s) + s) for s in range(3)]
    eager, compiled_layer = BatchNormalization(momentum=0.8), BatchNormalization(momentum=0.8)
    eager(batches[0]), compiled_layer(batches[0])
    compiled_layer.set_weights(eager.get_weights())
    step = lm.jit(lambda x: compiled_layer(x, training=True))
    for x in batches:
        np.testing.assert_allclose(np.asarray(step(x)), np.asarray(eager(x, training=True)), rtol=1e-5, atol=1e-6)
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(getattr(compiled_layer, name).numpy(), getattr(eager, name).numpy(), rtol=1e-6)
    assert not np.allclose(eager.moving_variance.numpy(), 1)


def test_batch_normalization_inference_and_frozen_layers_leave_statistics_alone():
    x = jnp.asarray(random_input((5, 3)) + 4)
    bn = BatchNormalization()
    bn(x)  # inference by default
    np.testing.assert_array_equal(bn.moving_mean.numpy(), np.zeros(3))
    bn.trainable = False
    frozen = np.asarray(bn(x, training=True))  # a frozen BN runs in inference mode (Keras)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), np.zeros(3))
    np.testing.assert_allclose(frozen, np.asarray(x) / np.sqrt(1 + 1e-3), rtol=1e-6)


def test_batch_normalization_in_fit_moves_its_statistics():
    x = random_input((32, 3)) * 2 + 5
    model = lm.Sequential([BatchNormalization(momentum=0.5), lm.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros((32, 1), np.float32), batch_size=32, epochs=3, verbose=0)
    bn = model.layers[0]
    np.testing.assert_allclose(bn.moving_mean.numpy(), x.mean(0) * (1 - 0.5 ** 3), rtol=1e-4)


def test_batch_normalization_mask_matches_keras_and_flows_from_embedding(keras):
    ids = np.array([[3, 1, 0, 0], [2, 4, 4, 0]], np.int32)
    table = random_input((5, 3))
    mask = ids != 0
    theirs = keras.layers.BatchNormalization(momentum=0.5)
    expected = np.asarray(theirs(table[ids], training=True, mask=mask))

    embedding = Embedding(5, 3, mask_zero=True, weights=[table])
    ours = BatchNormalization(momentum=0.5)
    out = ours(embedding(jnp.asarray(ids)), training=True)  # the mask arrives on its own
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-4, atol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    masked_mean = table[ids[mask]].mean(0) * 0.5
    np.testing.assert_allclose(ours.moving_mean.numpy(), masked_mean, rtol=1e-4)
    with pytest.raises(ValueError, match="one dimension less"):
        ours(jnp.ones((2, 4, 3)), mask=jnp.ones((2, 4, 3), bool), training=True)


def test_batch_normalization_rejects_a_mismatched_input():
    bn = BatchNormalization()
    bn(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="batch_normalization"):
        bn(jnp.ones((2, 4)))
    assert bn.compute_output_shape((None, 3)) == (None, 3)


# --- LayerNormalization ------------------------------------------------------------------------

LN_CASES = [
    ({}, (2, 3, 4)),
    (dict(axis=[1, 2], gamma_initializer="random_normal", scale=True), (2, 3, 4)),
    (dict(axis=1, center=False, epsilon=1e-5), (2, 3, 4)),
    (dict(rms_scaling=True, gamma_initializer="random_normal"), (2, 3, 4)),
]


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize("config, input_shape", LN_CASES)
def test_layer_normalization_passes_the_checker(keras, config, input_shape):
    config = {"beta_initializer": "random_normal", **config}
    check_layer(lambda: LayerNormalization(**config), lambda k: k.layers.LayerNormalization(**config),
                input_shape=input_shape, keras=keras, rtol=1e-4, atol=1e-5)


def test_layer_normalization_weights_and_shapes():
    ln = LayerNormalization(axis=[1, 2], rms_scaling=True)
    ln(jnp.ones((2, 3, 4)))
    assert [(v.name, v.shape) for v in ln.weights] == [("gamma", (3, 4))]
    with pytest.raises(ValueError, match="out of bounds"):
        LayerNormalization(axis=3).compute_output_shape((None, 3))


# --- GroupNormalization ------------------------------------------------------------------------

GN_CASES = [
    (dict(groups=2), (2, 3, 4)),
    (dict(groups=-1, axis=1, epsilon=1e-5, center=False), (2, 3, 4)),
]


@pytest.mark.parametrize("config, input_shape", GN_CASES)
def test_group_normalization_passes_the_checker(keras, config, input_shape):
    config = {"gamma_initializer": "random_normal", "beta_initializer": "random_normal", **config}
    check_layer(lambda: GroupNormalization(**config), lambda k: k.layers.GroupNormalization(**config),
                input_shape=input_shape, keras=keras, rtol=1e-4, atol=1e-5)


def test_group_normalization_rejects_bad_groups():
    with pytest.raises(ValueError, match="groups"):
        GroupNormalization(groups=0)
    with pytest.raises(ValueError, match="must divide"):
        GroupNormalization(groups=3)(jnp.ones((2, 4)))
    assert GroupNormalization(groups=-1).get_config()["groups"] == -1  # not rewritten by build


# --- UnitNormalization -------------------------------------------------------------------------

@pytest.mark.parametrize("axis, input_shape", [([1, 2], (2, 3, 4))])
def test_unit_normalization_passes_the_checker(keras, axis, input_shape):
    check_layer(lambda: UnitNormalization(axis=axis), lambda k: k.layers.UnitNormalization(axis=axis),
                input_shape=input_shape, keras=keras)


def test_unit_normalization_norm_is_one_and_zero_stays_zero():
    x = jnp.asarray(np.vstack([random_input((1, 6)), np.zeros((1, 6), np.float32)]))
    out = np.asarray(UnitNormalization()(x))
    np.testing.assert_allclose(np.linalg.norm(out[0]), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(out[1], 0)
