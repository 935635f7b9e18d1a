"""``Layer.add_weight`` takes what Keras 3's does: no initializer for an integer weight (zeros),
``aggregation=``, and a clear error for Keras 2's name-first order; ``add_variable`` too."""

import numpy as np
import pytest

import lamina as lm


class Counter(lm.layers.Layer):
    """A layer counting its calls in an int weight, as Keras code does with add_weight."""

    def build(self, input_shape):
        self.calls = self.add_weight(shape=(), dtype="int32", trainable=False, name="calls")
        self.total = self.add_weight(shape=(input_shape[-1],), initializer="zeros", trainable=False,
                                     aggregation="sum")
        self.scale = self.add_variable((1,), "ones", name="scale")

    def call(self, inputs):
        self.calls.assign_add(1)
        self.total.assign_add(inputs.sum(axis=0))
        return inputs * self.scale


def test_default_initializer_follows_the_dtype():
    layer = Counter()
    x = np.ones((2, 3), "float32")
    layer(x)
    step = lm.jit(lambda inputs: layer(inputs))
    step(x)
    assert str(layer.calls.dtype) == "int32" and int(layer.calls.value) == 2
    np.testing.assert_array_equal(np.asarray(layer.total), [4.0, 4.0, 4.0])  # zeros, then two adds
    float_weight = lm.layers.Dense(2).add_weight(shape=(100, 100))
    assert 0.0 < float(np.asarray(float_weight).std()) < 0.2  # glorot_uniform, as before
    assert [w.name for w in layer.weights] == ["calls", "total", "scale"]


def test_bad_arguments_name_the_layer():
    layer = lm.layers.Dense(2, name="head")
    with pytest.raises(ValueError, match=r"'head'.*name as a keyword.*add_weight\(shape=\.\.\., name='kernel'\)"):
        layer.add_weight("kernel", (2, 2))
    with pytest.raises(ValueError, match=r"'head'.*aggregation.*'median'"):
        layer.add_weight(shape=(2,), aggregation="median")
    with pytest.raises(ValueError, match=r"'head'.*overwrite_with_gradient=True"):
        layer.add_weight(shape=(2,), overwrite_with_gradient=True)


def test_variables_take_and_report_keras_replica_settings(keras):
    """Keras's Variable(initializer=..., aggregation=..., synchronization=...) and what
    add_weight records; values equal Keras's."""
    ours = lm.Variable(initializer="ones", shape=(2,), aggregation="mean", synchronization="on_read", name="v")
    theirs = keras.Variable(initializer="ones", shape=(2,), aggregation="mean", synchronization="on_read", name="v")
    assert (ours.aggregation, ours.synchronization) == (theirs.aggregation, theirs.synchronization)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert lm.Variable(np.zeros(2)).aggregation == keras.Variable(np.zeros(2)).aggregation
    layer = Counter()
    layer(np.ones((1, 3), "float32"))
    assert layer.total.aggregation == "sum" and layer.calls.aggregation == "none"
    with pytest.raises(TypeError, match="initial value"):
        lm.Variable()
    with pytest.raises(ValueError, match="aggregation must be one of"):
        lm.Variable(np.zeros(2), aggregation="median")
