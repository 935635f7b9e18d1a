"""ReLU, LeakyReLU, PReLU, ELU and Softmax against Keras 3: the layer checker (outputs, masks,
gradients, shapes, config and weights round trip, lm.jit), Keras's arguments and configs,
Softmax's mask, mixed precision, PReLU's weight in training and in Keras files, and errors
that name the layer."""

import inspect
import json

import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm

MASK = np.array([[1, 1, 0], [1, 0, 0]], bool)  # for (2, 3, ...) inputs
# Softmax takes the input's mask as its own: one that broadcasts to the input (as in Keras).
FULL_MASK = np.random.default_rng(7).uniform(size=(2, 3, 4)) > 0.3

# (class name, constructor arguments, input shape, input mask). Values cross every kink of
# ReLU's options (random normal inputs, threshold 0.5, cap 1.0).
CASES = [
    ("ReLU", {}, (2, 3, 4), MASK),
    ("ReLU", {"max_value": 1.0, "negative_slope": 0.2, "threshold": 0.5}, (2, 3, 4), None),
    ("LeakyReLU", {"negative_slope": 0.05}, (2, 3, 4), MASK),
    ("PReLU", {"alpha_initializer": "random_normal"}, (2, 3, 4), MASK),
    ("PReLU", {"alpha_initializer": "random_uniform", "shared_axes": [1, 2]}, (2, 3, 4, 5), None),
    ("ELU", {"alpha": 0.5}, (2, 3, 4), MASK),
    ("Softmax", {}, (2, 3, 4), FULL_MASK),
    ("Softmax", {"axis": [1, 2]}, (2, 3, 4), None),
]


@pytest.mark.parametrize("name, config, input_shape, mask", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_activation_layers_pass_the_checker(keras, name, config, input_shape, mask):
    check_layer(lambda: getattr(lm.layers, name)(**config), lambda k: getattr(k.layers, name)(**config),
                input_shape=input_shape, input_masks={0: mask}, keras=keras)


def test_softmax_with_a_mask_argument_passes_the_checker(keras):
    """A mask broadcast over the queries, given as 0/1 floats (kept where above 0.5, as in
    Keras), one sample masked entirely: masked positions get probability 0 (Keras's large
    negative logit), the rest sum to 1, a fully masked row is zeros; the output carries the
    mask, as Keras's does."""
    x = random_input((2, 3, 4), seed=3) * 4
    mask = np.array([[[0.0, 1.0, 1.0, 0.0]], [[0.0, 0.0, 0.0, 0.0]]], np.float32)
    _, outputs = check_layer(lm.layers.Softmax, lambda k: k.layers.Softmax(), inputs=x,
                             call_kwargs={"mask": mask}, keras=keras)
    out = np.asarray(outputs)
    keep = np.broadcast_to(mask > 0.5, x.shape)
    assert (out[~keep] == 0).all()
    np.testing.assert_allclose(out[0].sum(axis=-1), 1.0, rtol=1e-6)
    assert (out[1] == 0).all()


def test_softmax_refuses_a_mask_that_does_not_broadcast(keras):
    """As Keras: the mask an Embedding leaves on (batch, steps) does not fit a softmax over
    (batch, steps, units); the message names the layer and both shapes."""
    softmax = lm.layers.Softmax(name="probs")
    with pytest.raises(ValueError, match=r"Softmax 'probs': the mask must broadcast.*\(2, 4, 3\).*\(2, 4\)"):
        softmax(jnp.ones((2, 4, 3)), mask=jnp.ones((2, 4), bool))
    with pytest.raises(ValueError, match="must be broadcastable"):
        keras.layers.Softmax()(np.ones((2, 4, 3), np.float32), mask=np.ones((2, 4), bool))


@pytest.mark.parametrize("name, args", [
    ("ReLU", ()), ("LeakyReLU", ()), ("PReLU", ()), ("ELU", ()), ("Softmax", ()),
    ("ReLU", (6.0, 0.1, 0.5)), ("LeakyReLU", (0.2,)), ("ELU", (0.3,)), ("Softmax", ([1, 2],)),
    ("PReLU", ("ones", "l2", "non_neg", [1])),
])
def test_arguments_and_config_are_keras(keras, name, args):
    """Keras's argument names in Keras's order and Keras's config (keys and plain values), so
    that configs and files move between the two libraries; the config survives JSON."""
    ours, theirs = getattr(lm.layers, name), getattr(keras.layers, name)

    def arguments(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "name", "kwargs")]

    assert arguments(ours) == arguments(theirs)
    mine, reference = ours(*args).get_config(), theirs(*args).get_config()
    assert set(mine) == set(reference)
    for key, value in reference.items():
        if key in ("name", "dtype"):
            continue
        if isinstance(value, dict):
            assert mine[key]["class_name"] == value["class_name"], key
        else:
            assert mine[key] == value, key
    assert ours.from_config(json.loads(json.dumps(mine))).get_config() == mine


def test_a_keras_config_builds_the_same_layer(keras):
    """What Keras writes (its serialize form) deserializes in lamina into the same computation."""
    x = random_input((2, 3, 4), seed=5) * 3
    for reference in (keras.layers.ReLU(max_value=2.0, threshold=0.1), keras.layers.LeakyReLU(0.1),
                      keras.layers.ELU(0.7), keras.layers.Softmax(axis=[1, 2])):
        config = json.loads(json.dumps(keras.layers.serialize(reference)))
        mine = lm.layers.deserialize(config)
        assert type(mine).__name__ == type(reference).__name__
        np.testing.assert_allclose(np.asarray(mine(x)), np.asarray(reference(x)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("make, message", [
    (lambda: lm.layers.ReLU(max_value=-1.0, name="r"), r"ReLU 'r': max_value cannot be negative.*-1.0"),
    (lambda: lm.layers.ReLU(negative_slope=-0.1, name="r"), r"ReLU 'r': negative_slope .*-0.1"),
    (lambda: lm.layers.ReLU(threshold=None, name="r"), r"ReLU 'r': threshold .*None"),
    (lambda: lm.layers.LeakyReLU(negative_slope=-1, name="lr"), r"LeakyReLU 'lr': negative_slope .*-1"),
    (lambda: lm.layers.PReLU(shared_axes="1", name="p"), r"PReLU 'p': shared_axes must be an int"),
    (lambda: lm.layers.Softmax(axis="last", name="s"), r"Softmax 's': axis must be an int"),
])
def test_bad_arguments_raise_naming_the_layer(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_leaky_relu_takes_the_deprecated_alpha_with_a_warning():
    with pytest.warns(UserWarning, match="negative_slope"):
        layer = lm.layers.LeakyReLU(alpha=0.5)
    assert layer.negative_slope == 0.5


def test_prelu_input_errors_name_the_layer():
    prelu = lm.layers.PReLU(shared_axes=[1], name="act")
    prelu(jnp.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"'act' \(PReLU\).*axis 2 of size 4.*\(2, 3, 5\)"):
        prelu(jnp.ones((2, 3, 5)))
    with pytest.raises(ValueError, match=r"PReLU 'p2': shared_axes \[3\] are not axes"):
        lm.layers.PReLU(shared_axes=3, name="p2")(jnp.ones((2, 3, 4)))
    # A step axis of unknown size needs to be shared, as in Keras.
    with pytest.raises(ValueError, match=r"PReLU 'sequential\S*/p3': alpha needs the size of axes \[1\]"):
        lm.Sequential([lm.Input((None, 4)), lm.layers.PReLU(name="p3")])
    model = lm.Sequential([lm.Input((None, 4)), lm.layers.PReLU(shared_axes=1)])
    assert model.layers[0].alpha.shape == (1, 4)
    assert model(jnp.ones((2, 7, 4))).shape == (2, 7, 4)


# The elementwise ones compute in whatever dtype the (cast) input has; these two also hold a
# float32 weight or sum in float32.
@pytest.mark.parametrize("name, config", [("Softmax", {}), ("PReLU", {"alpha_initializer": "random_normal"})])
def test_mixed_precision_computes_in_bfloat16_as_keras(keras, name, config):
    x = random_input((2, 3, 4), seed=2) * 2
    mine = getattr(lm.layers, name)(dtype="mixed_bfloat16", **config)
    theirs = getattr(keras.layers, name)(dtype="mixed_bfloat16", **config)
    expected = theirs(x)
    mine(x)
    mine.set_weights(theirs.get_weights())
    out = mine(x)
    assert str(out.dtype) == str(expected.dtype) == "bfloat16"
    assert all(str(w.dtype) == "float32" for w in mine.weights)
    np.testing.assert_allclose(np.asarray(out, np.float32), np.asarray(expected, np.float32), rtol=2e-2, atol=1e-2)


def test_functional_graph_shapes_masks_and_dtypes():
    """Building a graph through the activation layers (untraced where the output follows from
    the input) gives the shapes, dtypes and masks the concrete calls give."""
    tokens = lm.Input((5,), dtype="int32")
    embedding = lm.layers.Embedding(10, 4, mask_zero=True)
    layers = [lm.layers.ReLU(6.0), lm.layers.LeakyReLU(), lm.layers.ELU(), lm.layers.PReLU(shared_axes=[1])]
    x = embedding(tokens)
    for layer in layers:
        x = layer(x)
        assert x.shape == (None, 5, 4) and str(x.dtype) == "float32"
        assert x._keras_mask is not None and x._keras_mask.shape == (None, 5)
    model = lm.Model(tokens, x)
    data = np.array([[1, 2, 0, 0, 0], [3, 4, 5, 0, 0]], np.int32)
    out, expected = model(data), embedding(data)
    for layer in layers:
        expected = layer(expected)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))
    np.testing.assert_array_equal(np.asarray(lm.layers.masking.get_mask(out)), data != 0)


def test_prelu_trains_with_its_regularizer_and_constraint_and_moves_to_keras(keras, tmp_path):
    """In fit, alpha gets gradients, its L2 penalty joins the loss (model.losses) and the
    NonNeg constraint holds after every update; the trained model goes to Keras through a
    .keras file and comes back."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = np.abs(x).sum(axis=1, keepdims=True) - x.sum(axis=1, keepdims=True)  # needs a negative slope
    prelu = lm.layers.PReLU(alpha_initializer=lm.initializers.Constant(0.5),
                            alpha_regularizer=lm.regularizers.L2(0.01), alpha_constraint="non_neg")
    model = lm.Sequential([lm.Input((4,)), lm.layers.Dense(4, kernel_initializer="identity"), prelu,
                           lm.layers.ReLU(max_value=2.0), lm.layers.Dense(3), lm.layers.Softmax()])
    model.compile(optimizer=lm.optimizers.SGD(0.05), loss="mse")
    before = np.asarray(prelu.alpha.value).copy()
    model.fit(x, np.repeat(y, 3, axis=1), batch_size=8, epochs=2, verbose=0)
    after = np.asarray(prelu.alpha.value)
    assert not np.allclose(after, before) and (after >= 0).all()
    expected = np.asarray(model(x))
    np.testing.assert_allclose(float(sum(model.losses)), 0.01 * float(np.sum(after**2)), rtol=1e-5)

    path = str(tmp_path / "ours.keras")
    model.save(path)
    theirs = keras.saving.load_model(path)
    assert [type(layer).__name__ for layer in theirs.layers] == ["Dense", "PReLU", "ReLU", "Dense", "Softmax"]
    np.testing.assert_allclose(np.asarray(theirs(x)), expected, rtol=1e-5, atol=1e-6)
    back = str(tmp_path / "theirs.keras")
    theirs.save(back)
    np.testing.assert_allclose(np.asarray(lm.load_model(back)(x)), expected, rtol=1e-6)
