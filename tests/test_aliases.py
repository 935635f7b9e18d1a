"""Keras's lower-case function aliases in lm.regularizers / lm.initializers, used the way the
guides use them (``kernel_regularizer=keras.regularizers.l2(1e-4)``), against Keras 3."""

import numpy as np
import pytest

import lamina as lm

REGULARIZERS = {"l1": "L1", "l2": "L2", "l1_l2": "L1L2", "orthogonal_regularizer": "OrthogonalRegularizer"}
INITIALIZERS = {
    "zeros": "Zeros", "ones": "Ones", "constant": "Constant", "identity": "Identity",
    "random_normal": "RandomNormal", "truncated_normal": "TruncatedNormal", "random_uniform": "RandomUniform",
    "variance_scaling": "VarianceScaling", "orthogonal": "Orthogonal", "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal", "he_normal": "HeNormal", "he_uniform": "HeUniform",
    "lecun_normal": "LecunNormal", "lecun_uniform": "LecunUniform",
    "IdentityInitializer": "Identity", "OrthogonalInitializer": "Orthogonal",
}


@pytest.mark.parametrize("alias, cls", sorted(REGULARIZERS.items()))
def test_regularizer_aliases_are_the_classes_as_in_keras(keras, alias, cls):
    assert getattr(keras.regularizers, alias) is getattr(keras.regularizers, cls)
    assert getattr(lm.regularizers, alias) is getattr(lm.regularizers, cls)


@pytest.mark.parametrize("alias, cls", sorted(INITIALIZERS.items()))
def test_initializer_aliases_are_the_classes_as_in_keras(keras, alias, cls):
    assert getattr(keras.initializers, alias) is getattr(keras.initializers, cls)
    assert getattr(lm.initializers, alias) is getattr(lm.initializers, cls)
    assert type(lm.initializers.get(alias)).__name__ == cls


@pytest.mark.parametrize("make", [
    lambda r: r.l2(1e-3), lambda r: r.l1(0.02), lambda r: r.l1_l2(l1=0.01, l2=0.03),
    lambda r: r.l1_l2(), lambda r: r.orthogonal_regularizer(0.1),
])
def test_regularizer_aliases_give_keras_penalties(keras, make):
    w = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(float(make(lm.regularizers)(w)), float(make(keras.regularizers)(w)), rtol=1e-5)


def test_l2_alias_in_a_dense_layer_adds_keras_penalty(keras):
    ours = lm.layers.Dense(3, kernel_regularizer=lm.regularizers.l2(1e-2))
    theirs = keras.layers.Dense(3, kernel_regularizer=keras.regularizers.l2(1e-2))
    x = np.ones((2, 4), "float32")
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(float(sum(ours.losses)), float(sum(theirs.losses)), rtol=1e-5)


@pytest.mark.parametrize("make", [
    lambda i: i.constant(0.5), lambda i: i.identity(gain=2.0), lambda i: i.zeros(), lambda i: i.ones(),
])
def test_deterministic_initializer_aliases_give_keras_values(keras, make):
    np.testing.assert_allclose(np.asarray(make(lm.initializers)((3, 3))), np.asarray(make(keras.initializers)((3, 3))))


@pytest.mark.parametrize("alias", ["glorot_uniform", "he_normal", "lecun_uniform", "truncated_normal"])
def test_seeded_random_initializer_aliases_repeat_and_keep_their_class(alias):
    make = getattr(lm.initializers, alias)
    first, second = make(seed=3), make(seed=3)
    np.testing.assert_array_equal(np.asarray(first((4, 5))), np.asarray(second((4, 5))))
    assert lm.saving.serialize(first)["class_name"] == make.__name__
