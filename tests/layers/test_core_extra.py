"""EinsumDense, Embedding, Identity and Lambda: the layer checker against Keras, plus masks,
initialization and (safe) configs."""

import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm
from lamina.layers.core.einsum_dense import EinsumDense
from lamina.layers.core.embedding import Embedding
from lamina.layers.core.identity import Identity
from lamina.layers.core.lambda_layer import Lambda

# --- EinsumDense -------------------------------------------------------------------------------

EINSUM_CASES = [
    # (equation, output_shape, bias_axes, activation, input_shape)
    ("...b,bc->...c", 5, "c", None, (2, 3, 4)),
    ("abc,cde->abde", (3, 2, 4), "de", "relu", (2, 3, 4)),
    ("abc,cd->abd", (3, 5), "b", "tanh", (2, 3, 4)),
    ("abc...,cd->abd...", (3, 6), "d", None, (2, 3, 4, 2)),
]


def with_random_weights(layer, input_shape):
    """``layer`` built, with random NumPy weights: cheaper than drawing them with initializers
    (every new shape compiles a random draw), and just as strong a comparison."""
    layer.build(input_shape)
    layer.set_weights([random_input(w.shape, seed=i + 5) for i, w in enumerate(layer.get_weights())])
    return layer


@pytest.mark.parametrize("equation, output_shape, bias_axes, activation, input_shape", EINSUM_CASES)
def test_einsum_dense_passes_the_checker(keras, equation, output_shape, bias_axes, activation, input_shape):
    config = dict(activation=activation, bias_axes=bias_axes, kernel_initializer="zeros")
    check_layer(
        lambda: EinsumDense(equation, output_shape, **config),
        lambda k: with_random_weights(k.layers.EinsumDense(equation, output_shape, **config), input_shape),
        input_shape=input_shape, keras=keras,
    )


def test_einsum_dense_weights_have_keras_shapes(keras):
    x = random_input((2, 3, 5))
    ours = EinsumDense("abc,cde->abde", (3, 2, 4), bias_axes="de", kernel_initializer="zeros")
    theirs = keras.layers.EinsumDense("abc,cde->abde", (3, 2, 4), bias_axes="de", kernel_initializer="zeros")
    ours(x), theirs(x)
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    assert [v.name for v in ours.weights] == ["kernel", "bias"]


def test_einsum_dense_glorot_fans_follow_the_einsum_axes():
    # kernel (c, d, e) = (8, 20, 30): fan_in 8, fan_out 600 (Keras), not (8*20, 8*30) as for convs.
    layer = EinsumDense("abc,cde->abde", (None, 20, 30), kernel_initializer=lm.initializers.GlorotUniform(seed=3))
    layer(jnp.ones((1, 2, 8)))
    kernel = layer.kernel.numpy()
    limit = np.sqrt(6 / (8 + 600))
    assert kernel.shape == (8, 20, 30)
    assert np.abs(kernel).max() <= limit and kernel.std() > limit / 3


def test_einsum_dense_compute_output_shape_and_bad_equations():
    layer = EinsumDense("abc,cd->abd", (None, 7))
    assert layer.compute_output_shape((None, 5, 3)) == (None, 5, 7)
    with pytest.raises(ValueError, match="Invalid einsum equation"):
        EinsumDense("ab->b", 3)
    with pytest.raises(ValueError, match="Bias dimension 'x'"):
        EinsumDense("ab,bc->ac", 3, bias_axes="x")(jnp.ones((2, 4)))


# --- Embedding ---------------------------------------------------------------------------------

def _ids(shape, high=10, seed=0):
    return np.random.default_rng(seed).integers(0, high, size=shape).astype("int32")


@pytest.mark.parametrize("mask_zero, shape", [(False, (4,)), (True, (3, 5)), (False, (2, 3, 4))])
def test_embedding_passes_the_checker(keras, mask_zero, shape):
    check_layer(lambda: Embedding(10, 3, mask_zero=mask_zero),
                lambda k: k.layers.Embedding(10, 3, mask_zero=mask_zero),
                inputs=_ids(shape), keras=keras)


def test_embedding_defaults_and_config(keras):
    layer = Embedding(1000, 20)
    layer(jnp.array([[1, 2]]))
    table = layer.embeddings.numpy()
    assert table.shape == (1000, 20) and np.abs(table).max() <= 0.05 and table.std() > 0.02
    config = layer.get_config()
    assert config["embeddings_initializer"]["class_name"] == "RandomUniform"
    assert config["mask_zero"] is False
    assert Embedding(7, 2).compute_output_shape((None, 5)) == (None, 5, 2)


def test_embedding_weights_argument_and_float_indices():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    layer = Embedding(4, 3, weights=[table])
    np.testing.assert_array_equal(np.asarray(layer(np.array([[3.0, 1.0]]))), table[[[3, 1]]])


def test_embedding_mask_zero_reaches_the_next_layers_mask_argument():
    seen = []

    class Recorder(lm.Layer):
        def call(self, inputs, mask=None):
            seen.append(mask)
            return inputs

    ids = jnp.array([[4, 2, 0, 0], [1, 0, 0, 0]])
    embedding, recorder = Embedding(5, 3, mask_zero=True), Recorder()
    recorder(embedding(ids))
    np.testing.assert_array_equal(np.asarray(seen[-1]), np.asarray(ids) != 0)

    lm.jit(lambda x: recorder(embedding(x)))(ids)  # the mask flows inside compiled code too
    assert seen[-1] is not None and seen[-1].shape == ids.shape

    plain = Embedding(5, 3)
    recorder(plain(ids))
    assert seen[-1] is None


# --- Identity ----------------------------------------------------------------------------------

def test_identity_passes_the_checker(keras):
    check_layer(Identity, lambda k: k.layers.Identity(), input_shape=(2, 3, 4), keras=keras)


def test_identity_keeps_the_mask():
    from lamina.layers.masking import get_mask

    ids = jnp.array([[3, 0]])
    out = Identity()(Embedding(4, 2, mask_zero=True)(ids))
    np.testing.assert_array_equal(np.asarray(get_mask(out)), [[True, False]])


# --- Lambda ------------------------------------------------------------------------------------

@lm.saving.register_serializable(package="test_core_extra")
def cube_plus(x, offset=0.0):
    return x ** 3 + offset


def test_lambda_with_a_builtin_function_passes_the_checker(keras):
    layer, _ = check_layer(lambda: Lambda(lm.activations.tanh), lambda k: k.layers.Lambda(k.activations.tanh),
                           input_shape=(2, 3, 4), keras=keras)
    assert layer.get_config()["function"] == "tanh"


def test_lambda_with_a_registered_function_and_arguments_passes_the_checker(keras):
    layer, _ = check_layer(lambda: Lambda(cube_plus, arguments={"offset": 0.5}),
                           lambda k: k.layers.Lambda(lambda x, offset: x ** 3 + offset, arguments={"offset": 0.5}),
                           input_shape=(2, 3, 4), keras=keras)
    assert layer.get_config()["function"] == "test_core_extra>cube_plus"


def test_lambda_round_trips_a_registered_function():
    layer = Lambda(cube_plus, output_shape=(3,), arguments={"offset": 1.0}, name="cubes")
    config = layer.get_config()
    assert config["function"] == "test_core_extra>cube_plus" and config["output_shape"] == [3]
    rebuilt = Lambda.from_config(config)
    assert rebuilt.function is cube_plus and rebuilt.get_config() == config
    x = jnp.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(np.asarray(rebuilt(x)), np.asarray(x) ** 3 + 1.0)
    assert rebuilt.compute_output_shape((None, 3)) == (None, 3)


def test_lambda_marks_unregistered_code_and_from_config_refuses_it():
    def local_fn(x):
        return x + 1

    for fn in (lambda x: x * 2, local_fn):
        config = Lambda(fn).get_config()
        assert config["function"]["class_name"] == "__lambda__"
        assert "code" not in config["function"]["config"]  # never bytecode
        with pytest.raises(ValueError, match="register_serializable"):
            Lambda.from_config(config)


def test_lambda_output_shape_traced_given_or_a_function():
    assert Lambda(lambda x: x[:, :2]).compute_output_shape((None, 5)) == (None, 2)
    assert Lambda(lambda x: x, output_shape=(7,)).compute_output_shape((None, 5)) == (None, 7)
    assert Lambda(lambda x: x, output_shape=lambda s: s[:1]).compute_output_shape((None, 5)) == (None,)
    assert Lambda(lambda xs: xs[0] + xs[1]).compute_output_shape([(None, 3), (None, 3)]) == (None, 3)


def test_lambda_mask_argument_and_function_parameters():
    from lamina.layers.masking import get_mask

    keep_first = Lambda(lambda x: x, mask=lambda inputs, mask: inputs[..., 0] > 0)
    out = keep_first(jnp.array([[[1.0, 0.0], [-1.0, 0.0]]]))
    np.testing.assert_array_equal(np.asarray(get_mask(out)), [[True, False]])

    got = {}

    def spy(x, mask=None, training=None):
        got.update(mask=mask, training=training)
        return x

    Lambda(spy)(Embedding(3, 2, mask_zero=True)(jnp.array([[1, 0]])), training=True)
    np.testing.assert_array_equal(np.asarray(got["mask"]), [[True, False]])
    assert got["training"] is True
