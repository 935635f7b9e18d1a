"""The layer checker itself, on the layers that exist from the start."""

import lamina as lm
from layer_checker import check_layer


def test_dense_passes_the_checker(keras):
    check_layer(lambda: lm.layers.Dense(3, activation="relu"), lambda k: k.layers.Dense(3, activation="relu"),
                input_shape=(4, 5), keras=keras)


def test_dense_on_3d_input_passes_the_checker(keras):
    check_layer(lambda: lm.layers.Dense(2, use_bias=False), lambda k: k.layers.Dense(2, use_bias=False),
                input_shape=(2, 3, 4), keras=keras)


def test_activation_passes_the_checker(keras):
    check_layer(lambda: lm.layers.Activation("gelu"), lambda k: k.layers.Activation("gelu"),
                input_shape=(3, 4), keras=keras)
