"""Convolution layers against Keras 3 (JAX backend) through the shared layer checker."""

import inspect
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_arguments_and_config, check_layer

import lamina as lm
from lamina.layers import convolutional as conv

# Random initializers compile a sampler for every new weight shape (about a second each), so
# the checks build both layers with zeros and give Keras's layer random weights by hand; the
# checker copies them into lamina's layer.
ZERO_INITIALIZERS = ("kernel_initializer", "bias_initializer", "depthwise_initializer", "pointwise_initializer")


def keras_with_random_weights(keras, name, config, input_shape, seed=0):
    layer = getattr(keras.layers, name)(**config)
    layer.build(input_shape)
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in layer.get_weights()])
    return layer


def _init_arguments(layer_class):
    return inspect.signature(layer_class.__init__).parameters


def _check(name, config, input_shape, **kwargs):
    """``check_layer`` for ``lm``'s and Keras's layer ``name`` built from the same ``config``."""
    layer_class = getattr(conv, name)
    config = {**{k: "zeros" for k in ZERO_INITIALIZERS if k in _init_arguments(layer_class)}, **config}
    return check_layer(lambda: layer_class(**config),
                       lambda k: keras_with_random_weights(k, name, config, input_shape), input_shape, **kwargs)


CONV_CASES = [
    ("Conv1D", dict(filters=4, kernel_size=4, strides=2, padding="same", groups=2, activation="relu"), (2, 11, 4)),
    ("Conv1D", dict(filters=3, kernel_size=3, padding="causal", dilation_rate=2, data_format="channels_first"),
     (2, 2, 10)),
    ("Conv2D", dict(filters=4, kernel_size=3), (2, 7, 6, 3)),
    ("Conv2D", dict(filters=5, kernel_size=(3, 2), strides=(2, 1), padding="same", activation="tanh"), (2, 7, 5, 3)),
    ("Conv2D", dict(filters=4, kernel_size=3, dilation_rate=(2, 1), padding="same"), (2, 9, 7, 2)),
    ("Conv2D", dict(filters=6, kernel_size=3, groups=3, padding="same", use_bias=False), (2, 6, 5, 6)),
    ("Conv2D", dict(filters=4, kernel_size=3, strides=2, data_format="channels_first"), (2, 3, 9, 8)),
    ("Conv3D", dict(filters=2, kernel_size=(3, 1, 2), strides=2, padding="same",
                    data_format="channels_first"), (1, 2, 5, 4, 5)),
    ("Conv3D", dict(filters=4, kernel_size=2, groups=2, dilation_rate=2), (1, 5, 5, 5, 2)),
]


@pytest.mark.parametrize("name, config, input_shape", CONV_CASES)
def test_conv_matches_keras(keras, name, config, input_shape):
    _check(name, config, input_shape, keras=keras)


TRANSPOSE_CASES = [
    ("Conv2DTranspose", dict(filters=3, kernel_size=3), (2, 4, 5, 2)),
    ("Conv2DTranspose", dict(filters=3, kernel_size=3, strides=2, padding="same"), (2, 4, 5, 2)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=(2, 3), strides=(2, 3), output_padding=1), (1, 3, 4, 3)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=4, strides=3, padding="same", output_padding=(2, 0)), (1, 3, 3, 2)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=3, dilation_rate=2, padding="same", activation="relu",
                             data_format="channels_first", use_bias=False), (1, 3, 5, 4)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=3, strides=2, padding="same"), (2, 5, 2)),
    ("Conv3DTranspose", dict(filters=2, kernel_size=2, strides=(1, 2, 2)), (1, 2, 3, 2, 2)),
]


@pytest.mark.parametrize("name, config, input_shape", TRANSPOSE_CASES)
def test_conv_transpose_matches_keras(keras, name, config, input_shape):
    _check(name, config, input_shape, keras=keras)


DEPTHWISE_CASES = [
    ("DepthwiseConv2D", dict(kernel_size=3, strides=2, padding="same", depth_multiplier=2), (2, 7, 6, 3)),
    ("DepthwiseConv2D", dict(kernel_size=(2, 3), dilation_rate=2, data_format="channels_first",
                             activation="relu"), (1, 2, 7, 8)),
    ("DepthwiseConv1D", dict(kernel_size=3, depth_multiplier=3, padding="same"), (2, 7, 2)),
    ("SeparableConv2D", dict(filters=5, kernel_size=3, strides=2, padding="same", depth_multiplier=2,
                             use_bias=False), (2, 7, 6, 3)),
    ("SeparableConv2D", dict(filters=3, kernel_size=2, dilation_rate=2, data_format="channels_first"), (1, 2, 6, 7)),
    ("SeparableConv1D", dict(filters=4, kernel_size=3, padding="same", depth_multiplier=2), (2, 7, 3)),
]


@pytest.mark.parametrize("name, config, input_shape", DEPTHWISE_CASES)
def test_depthwise_and_separable_match_keras(keras, name, config, input_shape):
    _check(name, config, input_shape, keras=keras)


@pytest.mark.parametrize("name, config, names", [
    ("Conv2D", dict(filters=2, kernel_size=3), ["kernel", "bias"]),
    ("Conv2DTranspose", dict(filters=2, kernel_size=3), ["kernel", "bias"]),
    ("DepthwiseConv2D", dict(kernel_size=3), ["kernel", "bias"]),
    ("SeparableConv2D", dict(filters=2, kernel_size=3), ["depthwise_kernel", "pointwise_kernel", "bias"]),
])
def test_weights_in_keras_order(keras, name, config, names):
    x = np.zeros((1, 5, 5, 3), np.float32)
    config = {**config, **{k: "zeros" for k in ZERO_INITIALIZERS if k in _init_arguments(getattr(conv, name))}}
    ours, theirs = getattr(conv, name)(**config), getattr(keras.layers, name)(**config)
    ours(x), theirs(x)
    assert [v.name for v in ours.weights] == names
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]


def _transpose_configs():
    for kernel, stride, padding in itertools.product((1, 2, 3, 4), (1, 2, 3), ("valid", "same")):
        for dilation in (1, 2) if stride == 1 else (1,):  # Keras refuses strides > 1 with dilation > 1
            for output_padding in (None, *range(stride)):  # output_padding must be < stride
                yield dict(filters=1, kernel_size=kernel, strides=stride, padding=padding,
                           output_padding=output_padding, dilation_rate=dilation)


def test_conv2d_transpose_output_shapes_equal_keras(keras):
    """Every (kernel, stride, padding, output_padding, dilation) combination: Keras's output shape."""
    x = np.zeros((1, 5, 4, 1), np.float32)
    for config in _transpose_configs():
        kernel = np.zeros((config["kernel_size"],) * 2 + (1, 1), np.float32)
        expected = jax.eval_shape(lambda x, k, c=config: keras.ops.conv_transpose(
            x, k, c["strides"], c["padding"], c["output_padding"], dilation_rate=c["dilation_rate"]), x, kernel).shape
        layer = conv.Conv2DTranspose(**config, kernel_initializer="zeros")
        assert jax.eval_shape(layer, x).shape == tuple(expected), config
        assert layer.compute_output_shape((None, 5, 4, 1)) == (None, *expected[1:]), config


def test_causal_conv1d_does_not_see_the_future():
    layer = conv.Conv1D(2, 3, padding="causal", dilation_rate=2, kernel_initializer="zeros")
    x = np.random.default_rng(0).normal(size=(1, 12, 3)).astype(np.float32)
    layer(x)
    layer.set_weights([np.random.default_rng(1).normal(size=(3, 3, 2)), np.zeros(2)])
    y = np.asarray(layer(x))
    x_changed = x.copy()
    x_changed[:, 7:] += 1.0
    np.testing.assert_array_equal(np.asarray(layer(x_changed))[:, :7], y[:, :7])


def test_compute_output_shape_keeps_unknown_sizes():
    assert conv.Conv2D(4, 3, strides=2, padding="same").compute_output_shape((None, None, 9, 3)) == (None, None, 5, 4)
    assert conv.Conv2DTranspose(4, 3, strides=2).compute_output_shape((None, 5, None, 3)) == (None, 11, None, 4)
    assert conv.DepthwiseConv2D(3, depth_multiplier=2).compute_output_shape((None, 5, 5, 3)) == (None, 3, 3, 6)


def _cheap(class_name, *args, **config):
    """A layer with zeros initializers (random ones compile a sampler per weight shape)."""
    layer_class = getattr(conv, class_name)
    return layer_class(*args, **config, **{k: "zeros" for k in ZERO_INITIALIZERS if k in _init_arguments(layer_class)})


@pytest.mark.parametrize("make, bad_shape", [
    (lambda: _cheap("Conv2D", 2, 3), (2, 8, 3)),
    (lambda: _cheap("Conv1D", 2, 3), (2, 8, 8, 3)),
    (lambda: _cheap("Conv3D", 2, 2), (2, 4, 4, 3)),
    (lambda: _cheap("Conv2DTranspose", 2, 3), (2, 8, 3)),
    (lambda: _cheap("DepthwiseConv2D", 3), (2, 8)),
    (lambda: _cheap("SeparableConv2D", 2, 3), (2, 8, 8, 3, 1)),
])
def test_bad_rank_raises_naming_the_layer_path(make, bad_shape):
    class Block(lm.Layer):
        def __init__(self):
            super().__init__(name="block")
            self.inner = make()

        def call(self, x):
            return self.inner(x)

    block = Block()
    with pytest.raises(ValueError, match=r"'block/inner'.*expected rank"):
        block(jnp.zeros(bad_shape))  # unbuilt: refused in build
    good = list(bad_shape)
    rank = block.inner.rank + 2
    good = (good + [3] * rank)[:rank]
    good[-1] = 3
    block(jnp.zeros(good))
    with pytest.raises(ValueError, match=r"'block/inner'.*expected rank"):
        block(jnp.zeros(bad_shape))  # built: refused by the input spec


def test_bad_channel_count_after_build_raises():
    layer = _cheap("Conv2D", 2, 3, name="c")
    layer(jnp.zeros((1, 5, 5, 3)))
    with pytest.raises(ValueError, match=r"'c'.*axis -1 of size 3"):
        layer(jnp.zeros((1, 5, 5, 4)))


@pytest.mark.parametrize("make, message", [
    (lambda: conv.Conv2D(0, 3), "filters"),
    (lambda: conv.Conv2D(3, 3, groups=2), "divisible"),
    (lambda: conv.Conv2D(2, (3, 3, 3)), "kernel_size"),
    (lambda: conv.Conv2D(2, 3, padding="causal"), "padding"),
    (lambda: conv.Conv2D(2, 3, strides=2, dilation_rate=2), "dilation_rate"),
    (lambda: conv.Conv2D(2, 3, data_format="NHWC"), "data_format"),
    (lambda: conv.Conv2DTranspose(2, 3, strides=2, output_padding=2), "output_padding"),
    (lambda: conv.DepthwiseConv2D(3, depth_multiplier=0), "depth_multiplier"),
])
def test_bad_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_groups_must_divide_input_channels():
    with pytest.raises(ValueError, match="divisible by `groups`"):
        _cheap("Conv2D", 4, 3, groups=2)(jnp.zeros((1, 5, 5, 3)))


def test_input_smaller_than_kernel_raises():
    with pytest.raises(ValueError, match="spatial size <= 0"):
        _cheap("Conv2D", 4, 5)(jnp.zeros((1, 4, 8, 3)))


def test_regularizers_add_losses(keras):
    x = np.random.default_rng(1).normal(size=(2, 5, 5, 3)).astype(np.float32)
    zeros = {k: "zeros" for k in ZERO_INITIALIZERS[1:]}
    ours = conv.SeparableConv2D(2, 3, depthwise_regularizer=lm.regularizers.L2(0.1),
                                pointwise_regularizer=lm.regularizers.L1(0.2), bias_regularizer="l2", **zeros)
    theirs = keras_with_random_weights(keras, "SeparableConv2D", dict(
        filters=2, kernel_size=3, depthwise_regularizer=keras.regularizers.L2(0.1),
        pointwise_regularizer=keras.regularizers.L1(0.2), bias_regularizer="l2", **zeros), x.shape)
    ours(x)
    ours.set_weights(theirs.get_weights())
    ours(x), theirs(x)
    np.testing.assert_allclose(sorted(float(v) for v in ours.losses), sorted(float(v) for v in theirs.losses),
                               rtol=1e-5)


@pytest.mark.parametrize("name, config", [
    ("Conv2D", dict(filters=3, kernel_size=3, strides=2, padding="same", groups=3)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2, padding="same")),
    ("SeparableConv2D", dict(filters=2, kernel_size=3, depth_multiplier=2)),
])
def test_gradient_under_jit_equals_eager(name, config):
    """The compiled train step differentiates inside jit; the checker compares eager gradients only."""
    layer = getattr(conv, name)(**config, **{k: "ones" for k in ZERO_INITIALIZERS if k in _init_arguments(
        getattr(conv, name))})
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 7, 6, 3)), jnp.float32)
    layer(x)
    frozen = [v.value for v in layer.non_trainable_variables]

    def objective(weights, v):
        return jnp.sum(jnp.sin(layer.stateless_call(weights, frozen, v)[0]))

    weights = [v.value for v in layer.trainable_variables]
    compiled = jax.jit(jax.grad(objective, argnums=(0, 1)))(weights, x)
    eager = jax.grad(objective, argnums=(0, 1))(weights, x)
    for a, b in zip(jax.tree_util.tree_leaves(compiled), jax.tree_util.tree_leaves(eager)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in conv.__all__ if not n.startswith("Base")])
def test_arguments_and_config_match_keras(keras, name):
    check_arguments_and_config(getattr(conv, name), getattr(keras.layers, name))
