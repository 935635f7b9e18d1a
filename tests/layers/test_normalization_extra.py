"""RMSNormalization and SpectralNormalization against Keras 3 (JAX backend) and NumPy formulas:
the checker at inference, SpectralNormalization's training update against Keras's and against
the spectral norm, training in ``fit``, mixed precision and errors."""

import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm

RMS_CASES = {"last-axis": {}, "two-axes-epsilon": {"axis": [1, 2], "epsilon": 1e-3}}


@pytest.mark.parametrize("case", list(RMS_CASES))
def test_rms_normalization_passes_the_checker(keras, case):
    config = RMS_CASES[case]
    mask = np.array([[1, 1, 0], [1, 0, 0]], bool)  # dropped, as by Keras
    layer, outputs = check_layer(lambda: lm.layers.RMSNormalization(**config),
                                 lambda k: k.layers.RMSNormalization(**config), input_shape=(2, 3, 4),
                                 input_masks={0: mask}, keras=keras)
    x = random_input((2, 3, 4), seed=0)  # the checker's input
    axes = tuple(config.get("axis", [-1]))
    scale = np.asarray(layer.scale.value).reshape([x.shape[a] if a in axes or a - 3 in axes else 1
                                                   for a in range(3)])
    formula = x / np.sqrt(np.mean(x ** 2, axis=axes, keepdims=True) + config.get("epsilon", 1e-6)) * scale
    np.testing.assert_allclose(np.asarray(outputs), formula, rtol=1e-5, atol=1e-6)


def test_rms_normalization_under_mixed_precision_keeps_float32_statistics():
    x = jnp.asarray(random_input((4, 64), seed=1) * 100)
    layer = lm.layers.RMSNormalization(dtype="mixed_bfloat16")
    y = layer(x)
    assert y.dtype == jnp.bfloat16 and layer.scale.dtype == jnp.float32
    expected = np.asarray(x) / np.sqrt(np.mean(np.asarray(x) ** 2, -1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(np.asarray(y, np.float32), expected, rtol=1e-2, atol=1e-2)
    with pytest.raises(ValueError, match=r"RMSNormalization 'rms': axis 3 is out of bounds for input shape \(2, 3\)"):
        lm.layers.RMSNormalization(axis=3, name="rms")(jnp.ones((2, 3)))


# --- SpectralNormalization -------------------------------------------------------------------------

def test_spectral_normalization_passes_the_checker_at_inference(keras):
    # In training the layer rewrites its kernel and u (compared with Keras below).
    layer, _ = check_layer(lambda: lm.layers.SpectralNormalization(lm.layers.Conv2D(2, 3), power_iterations=2),
                           lambda k: k.layers.SpectralNormalization(k.layers.Conv2D(2, 3), power_iterations=2),
                           input_shape=(2, 5, 5, 3), keras=keras)
    # Keras's weights: the kernel (also the wrapper's own), vector_u, then the bias.
    assert [w.name for w in layer.weights] == ["kernel", "vector_u", "bias"]
    assert [w.name for w in layer.non_trainable_weights] == ["vector_u"]


def test_spectral_normalization_training_step_matches_keras_and_the_spectral_norm(keras):
    x = random_input((3, 4), seed=2)
    ours = lm.layers.SpectralNormalization(lm.layers.Dense(5), power_iterations=3)
    theirs = keras.layers.SpectralNormalization(keras.layers.Dense(5), power_iterations=3)
    ours(jnp.asarray(x))
    theirs(x)
    ours.set_weights(theirs.get_weights())
    for _ in range(2):  # the second call starts from the first one's u and normalized kernel
        np.testing.assert_allclose(np.asarray(ours(jnp.asarray(x), training=True)),
                                   np.asarray(theirs(x, training=True)), rtol=1e-5, atol=1e-6)
    for mine, reference in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(mine, reference, rtol=1e-5, atol=1e-6)
    # Power iteration converges to the top singular vectors: then the kernel's spectral norm is 1.
    for _ in range(10):
        ours(jnp.asarray(x), training=True)
    assert np.linalg.svd(np.asarray(ours.kernel.value), compute_uv=False)[0] == pytest.approx(1.0, abs=1e-4)
    frozen = np.asarray(ours.kernel.value)
    ours(jnp.asarray(x))  # inference leaves the kernel alone
    np.testing.assert_array_equal(np.asarray(ours.kernel.value), frozen)


def test_spectral_normalization_trains_in_fit_and_updates_u():
    lm.random.set_seed(0)
    # (Dense(5) on 4 features, as above: the eager power iterations compile once per file.)
    model = lm.Sequential([lm.Input((4,)), lm.layers.SpectralNormalization(lm.layers.Dense(5)),
                           lm.layers.Dense(1)])
    sn = model.layers[0]
    u_before = np.asarray(sn.vector_u.value).copy()
    model.compile("adam", "mse")
    x, y = random_input((6, 4), seed=3), random_input((6, 1), seed=4)
    history = model.fit(x, y, batch_size=3, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.allclose(np.asarray(sn.vector_u.value), u_before)
    # Inference runs the wrapped Dense with the kernel as the last step left it.
    dense = sn.layer
    expected = x @ np.asarray(dense.kernel.value) + np.asarray(dense.bias.value)
    np.testing.assert_allclose(np.asarray(sn(jnp.asarray(x))), expected, rtol=1e-5, atol=1e-5)


def test_spectral_normalization_of_an_all_zero_kernel_keeps_it_and_has_finite_gradients():
    layer = lm.layers.SpectralNormalization(lm.layers.Dense(5, kernel_initializer="zeros"))
    x = jnp.ones((3, 4))
    layer(x)

    def loss():
        return jnp.sum(layer(x, training=True) ** 2)

    value, grads = lm.value_and_grad(loss, layer.trainable_weights)()
    assert all(np.isfinite(np.asarray(g)).all() for g in grads)
    assert not np.asarray(layer.kernel.value).any()


def test_spectral_normalization_errors_name_the_layer():
    with pytest.raises(ValueError, match="'sn': the wrapped layer Activation 'relu_layer' has neither a `kernel`"):
        lm.layers.SpectralNormalization(lm.layers.Activation("relu", name="relu_layer"), name="sn")(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="power_iterations must be a positive integer; got 0"):
        lm.layers.SpectralNormalization(lm.layers.Dense(2), power_iterations=0)
    with pytest.raises(ValueError, match="must be a lamina Layer"):
        lm.layers.SpectralNormalization("dense")


def test_spectral_normalization_of_an_embedding_normalizes_its_table_and_keeps_float_outputs():
    layer = lm.layers.SpectralNormalization(lm.layers.Embedding(6, 4), power_iterations=30)
    y = layer(jnp.array([[1, 2, 5]]), training=True)
    assert y.dtype == jnp.float32 and y.shape == (1, 3, 4)  # (Keras casts it to the ids' dtype)
    table = np.asarray(layer.layer.embeddings.value)
    assert np.linalg.svd(table, compute_uv=False)[0] == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(np.asarray(y[0]), table[[1, 2, 5]], rtol=1e-6)
