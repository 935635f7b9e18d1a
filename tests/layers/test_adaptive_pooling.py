"""``AdaptiveAveragePooling1D/2D/3D`` and ``AdaptiveMaxPooling1D/2D/3D`` against Keras 3 (JAX
backend): sizes that divide the input and sizes that do not (overlapping windows), output
larger than the input, both data formats, ties in max windows."""

import inspect

import numpy as np
import pytest
from layer_checker import check_layer

import lamina as lm
from lamina.layers.pooling.adaptive_pooling import adaptive_windows


def ties(shape):
    """Few distinct values: most max windows hold equal maxima, and overlapping windows share
    elements (the gradient goes to the first maximum, as in Keras)."""
    return np.random.default_rng(0).integers(0, 3, size=shape).astype("float32")


CASES = [
    ("AdaptiveAveragePooling1D", dict(output_size=5, data_format="channels_first"), (2, 3, 3)),
    ("AdaptiveAveragePooling2D", dict(output_size=(2, 3)), (2, 8, 7, 2)),
    ("AdaptiveAveragePooling3D", dict(output_size=2, data_format="channels_first"), (1, 2, 5, 4, 3)),
    ("AdaptiveMaxPooling1D", dict(output_size=4), (2, 10, 3)),
    ("AdaptiveMaxPooling2D", dict(output_size=(3, 4), data_format="channels_first"), ties((2, 2, 7, 6))),
    ("AdaptiveMaxPooling3D", dict(output_size=(2, 3, 1)), (1, 5, 4, 3, 2)),
]


@pytest.mark.parametrize("name, config, inputs", CASES)
def test_adaptive_pooling_matches_keras(keras, name, config, inputs):
    given = dict(inputs=inputs) if isinstance(inputs, np.ndarray) else dict(input_shape=inputs)
    # An average is a constant linear map (its gradient is the same map); max's routing is compared.
    check_layer(lambda: getattr(lm.layers, name)(**config), lambda k: getattr(k.layers, name)(**config),
                keras=keras, check_grads="Max" in name, **given)


def test_windows_are_pytorch_s_floor_and_ceil_ranges():
    for length in range(1, 12):
        for size in range(1, 9):
            windows = adaptive_windows(length, size)
            for i, (start, end) in enumerate(windows):
                assert start == int(np.floor(i * length / size))
                assert end == int(np.ceil((i + 1) * length / size))
            assert windows[0][0] == 0 and windows[-1][1] == length


def test_average_equals_numpy_window_means():
    x = np.random.default_rng(1).normal(size=(2, 9, 5, 3)).astype("float32")
    out = np.asarray(lm.layers.AdaptiveAveragePooling2D((4, 3))(x))
    expected = np.empty((2, 4, 3, 3), np.float32)
    for i, (h0, h1) in enumerate(adaptive_windows(9, 4)):
        for j, (w0, w1) in enumerate(adaptive_windows(5, 3)):
            expected[:, i, j] = x[:, h0:h1, w0:w1].mean(axis=(1, 2))
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_arguments_and_config_keys_are_keras_s(keras):
    ours, theirs = lm.layers.AdaptiveMaxPooling2D, keras.layers.AdaptiveMaxPooling2D
    assert list(inspect.signature(ours.__init__).parameters) == list(inspect.signature(theirs.__init__).parameters)
    mine, reference = ours(2).get_config(), theirs(2).get_config()
    assert set(mine) == set(reference)
    assert mine["output_size"] == reference["output_size"] and mine["data_format"] == reference["data_format"]
    assert ours.from_config(mine).get_config() == mine


def test_bad_arguments_and_inputs_name_the_layer():
    with pytest.raises(TypeError, match=r"AdaptiveMaxPooling2D 'ap'.*output_size.*tuple of 2"):
        lm.layers.AdaptiveMaxPooling2D((2, 2, 2), name="ap")
    with pytest.raises(ValueError, match=r"AdaptiveAveragePooling1D 'ap1'.*tuple of 1"):
        lm.layers.AdaptiveAveragePooling1D((2, 3), name="ap1")
    with pytest.raises(ValueError, match=r"'ap3'.*positive integer.*\(2, 0, 1\)"):
        lm.layers.AdaptiveAveragePooling3D((2, 0, 1), name="ap3")
    with pytest.raises(TypeError, match=r"'ap4'.*output_size.*'2'"):
        lm.layers.AdaptiveMaxPooling1D("2", name="ap4")
    with pytest.raises(ValueError, match=r"'ap5'.*expected rank 4.*\(2, 5, 3\)"):
        lm.layers.AdaptiveAveragePooling2D(2, name="ap5")(np.ones((2, 5, 3), "float32"))
