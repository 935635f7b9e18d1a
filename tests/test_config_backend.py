"""lm.config and lm.backend: Keras 3's global settings and backend helpers, checked against
Keras 3 (each setting is put back after its test: they are process-wide)."""

import numpy as np
import pytest

import lamina as lm
from lamina.core import settings
from lamina.mixed_precision import policy as policy_module
from lamina.saving import safe_mode


@pytest.fixture
def restore_settings():
    """Each test starts with no global dtype policy (an earlier test in the worker may have set
    one, e.g. back to "float32") and leaves every process-wide setting as it found it."""
    saved, saved_policy = dict(settings._values), policy_module._global["policy"]
    policy_module._global["policy"] = None
    yield
    settings._values.update(saved)
    policy_module._global["policy"] = saved_policy
    safe_mode._unsafe_everywhere["on"] = False


def test_defaults_equal_keras(keras, restore_settings):
    for name in ("backend", "floatx", "epsilon", "image_data_format"):
        assert getattr(lm.config, name)() == getattr(keras.config, name)(), name
        assert getattr(lm.backend, name)() == getattr(keras.backend, name)(), name
    assert lm.config.dtype_policy().name == keras.config.dtype_policy().name == "float32"


def test_set_floatx_sets_the_dtype_of_new_layers(restore_settings):
    # As in a fresh Keras process; Keras then fixes its default policy at its first use, so a
    # later set_floatx changes nothing there: lamina reads floatx while no policy was set.
    lm.config.set_floatx("float16")
    layer = lm.layers.Dense(2)
    layer.build((None, 3))
    assert layer.kernel.dtype == np.float16 and layer.compute_dtype == "float16"
    assert lm.config.dtype_policy().name == "float16"
    lm.mixed_precision.set_dtype_policy("mixed_bfloat16")  # an explicit policy wins
    try:
        assert lm.layers.Dense(2).compute_dtype == "bfloat16"
    finally:
        lm.mixed_precision.set_dtype_policy(None)
    lm.config.set_floatx("float32")
    assert lm.layers.Dense(2).compute_dtype == "float32"
    with pytest.raises(ValueError, match="Unknown `floatx`"):
        lm.config.set_floatx("int8")
    with pytest.raises(ValueError, match="jax_enable_x64"):  # never silently float32
        lm.config.set_floatx("float64")


def test_set_epsilon_changes_the_clipping_of_losses_as_in_keras(keras, restore_settings):
    y_true, y_pred = np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]])
    lm.config.set_epsilon(0.05)
    keras.config.set_epsilon(0.05)
    try:
        ours = float(lm.losses.BinaryCrossentropy()(y_true, y_pred))
        theirs = float(keras.losses.BinaryCrossentropy()(y_true, y_pred))
    finally:
        keras.config.set_epsilon(1e-7)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    np.testing.assert_allclose(ours, -np.log(0.95), rtol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        lm.config.set_epsilon(0)


def test_image_data_format_is_the_default_of_image_layers(keras, restore_settings):
    lm.config.set_image_data_format("channels_first")
    layers = [lm.layers.Conv2D(2, 3), lm.layers.MaxPooling2D(), lm.layers.GlobalAveragePooling2D()]
    assert [layer.data_format for layer in layers] == ["channels_first"] * 3
    conv = layers[0]
    assert conv(np.ones((1, 5, 8, 8), np.float32)).shape == (1, 2, 6, 6)
    assert lm.layers.Conv2D(2, 3, data_format="channels_last").data_format == "channels_last"
    with pytest.raises(ValueError, match="data_format"):
        lm.config.set_image_data_format("NHWC")


def test_enable_unsafe_deserialization_loads_lambda_layers_like_safe_mode_false(tmp_path, restore_settings):
    model = lm.Sequential([lm.Input((4,)), lm.layers.Lambda(lm.activations.relu, name="fn")])
    model.save(tmp_path / "lambda.lamina")
    with pytest.raises(ValueError, match="safe_mode=False"):
        lm.load_model(tmp_path / "lambda.lamina")
    lm.config.enable_unsafe_deserialization()
    assert lm.load_model(tmp_path / "lambda.lamina").layers[0].function is lm.activations.relu


def test_backend_helpers_equal_keras(keras):
    import jax.numpy as jnp

    for dtype in [None, "int", int, float, bool, "bool", np.int8, "float16", jnp.bfloat16, np.dtype("float64")]:
        assert lm.backend.standardize_dtype(dtype) == keras.backend.standardize_dtype(dtype), dtype
    for pair in [("int32", "float16"), ("int8", "uint8"), ("float16", "bfloat16"), ("bool", "int8")]:
        assert lm.backend.result_type(*pair) == keras.backend.result_type(*pair), pair
    for dtype in ["bfloat16", "float32", "int8", "uint16", "bool"]:
        assert lm.backend.is_float_dtype(dtype) == keras.backend.is_float_dtype(dtype), dtype
        assert lm.backend.is_int_dtype(dtype) == keras.backend.is_int_dtype(dtype), dtype
    first = lm.backend.get_uid("test_config_backend")
    assert lm.backend.get_uid("test_config_backend") == first + 1
    assert lm.backend.is_keras_tensor(lm.Input((2,))) and not lm.backend.is_keras_tensor(np.ones(2))
    lm.backend.clear_session()
    assert lm.layers.Dense(1).name == "dense"
