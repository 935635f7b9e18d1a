"""The Functional API: graphs of layer calls on lm.Input, run, trained and rebuilt from config."""

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm


def two_headed():
    inputs = lm.Input(shape=(8,), name="features")
    hidden = lm.layers.Dense(16, activation="relu", name="hidden")(inputs)
    shared = lm.layers.Dense(4, name="shared")
    first = shared(hidden)
    second = shared(lm.layers.Dense(16, name="side")(inputs))  # the same layer, a second call
    score = lm.layers.Dense(1, name="score")(first)
    return lm.Model(inputs, [score, second])


def test_symbolic_shapes_come_from_tracing():
    x = lm.Input(shape=(5, 3))
    y = lm.layers.Dense(7)(x)
    assert x.shape == (None, 5, 3) and y.shape == (None, 5, 7)


def test_model_runs_the_graph_with_shared_layers():
    model = two_headed()
    x = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
    score, second = model(x)
    hidden, shared, side, head = (model.get_layer(n) for n in ("hidden", "shared", "side", "score"))
    expected_second = shared(side(x))
    np.testing.assert_allclose(second, expected_second, rtol=1e-6)
    np.testing.assert_allclose(score, head(shared(hidden(x))), rtol=1e-6)
    assert model.output_shape == [(None, 1), (None, 4)]
    # the shared layer's weights are counted once
    assert len(model.weights) == 8


def test_config_round_trip_rebuilds_the_same_function():
    model = two_headed()
    clone = lm.models.Functional.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    x = np.ones((2, 8), np.float32)
    for a, b in zip(model(x), clone(x)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert clone.get_config() == model.get_config()


def test_intermediate_outputs_make_a_new_model_sharing_weights():
    model = two_headed()
    features = lm.Model(model.input, model.get_layer("hidden").output)
    x = np.ones((3, 8), np.float32)
    np.testing.assert_allclose(features(x), model.get_layer("hidden")(x), rtol=1e-6)
    assert features.weights[0] is model.get_layer("hidden").kernel


def test_a_model_may_start_at_tensors_that_layers_made(keras, tmp_path):
    """Keras's Model(hidden, prediction): the layers after ``hidden`` only, from a new input
    layer "<name>CLONE"; the full model still runs its whole graph, and both save and load."""
    x = lm.Input(shape=(4,))
    hidden = lm.layers.Dense(3, name="first")(x)
    skip = lm.layers.Dense(3, name="skip")(hidden)
    out = lm.layers.Add(name="sum")([hidden, lm.layers.Dense(3, name="second")(skip)])
    head = lm.Model(hidden, out)
    full = lm.Model(x, out)
    assert [type(layer).__name__ for layer in head.layers] == ["InputLayer", "Dense", "Dense", "Add"]
    assert head.layers[0].name.endswith("CLONE") and head.input_shape == (None, 3)
    assert len(head.weights) == 4 and not any(v is full.get_layer("first").kernel for v in head.weights)
    assert len(full.weights) == 6

    k_x = keras.Input(shape=(4,))
    k_hidden = keras.layers.Dense(3)(k_x)
    k_out = keras.layers.Add()([k_hidden, keras.layers.Dense(3)(keras.layers.Dense(3)(k_hidden))])
    k_head = keras.Model(k_hidden, k_out)
    k_head.set_weights(head.get_weights())
    h = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(head(h), k_head(h), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(full(np.ones((2, 4))), head(full.get_layer("first")(np.ones((2, 4)))), rtol=1e-6)
    lines = []
    head.summary(print_fn=lines.append)
    assert "CLONE[0][0]" in "\n".join(lines)

    head.save(tmp_path / "head.lamina")
    np.testing.assert_allclose(lm.load_model(tmp_path / "head.lamina")(h), head(h), rtol=1e-6)


def test_dict_inputs_and_outputs_and_multiple_inputs():
    a = lm.Input(shape=(2,), name="a")
    b = lm.Input(shape=(3,), name="b")
    merged = lm.layers.Dense(4)(a)
    out = {"left": merged, "right": lm.layers.Dense(1)(b)}
    model = lm.Model({"a": a, "b": b}, out)
    result = model({"a": np.ones((5, 2)), "b": np.ones((5, 3))})
    assert result["left"].shape == (5, 4) and result["right"].shape == (5, 1)
    with pytest.raises(ValueError, match="missing"):
        model({"a": np.ones((5, 2))})


def test_nested_model_is_a_layer():
    inner = two_headed()
    x = lm.Input(shape=(8,))
    score, _ = inner(x)
    outer = lm.Model(x, lm.layers.Dense(2)(score))
    assert outer(np.ones((3, 8))).shape == (3, 2)
    assert len(outer.weights) == len(inner.weights) + 2


def test_functional_model_trains_with_two_losses():
    model = two_headed()
    model.compile(optimizer="adam", loss=["mse", "mse"], loss_weights=[1.0, 0.5])
    x = np.random.default_rng(1).normal(size=(64, 8)).astype("float32")
    history = model.fit(x, [np.ones((64, 1)), np.zeros((64, 4))], epochs=5, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_disconnected_graph_is_reported():
    a, b = lm.Input(shape=(2,)), lm.Input(shape=(2,))
    with pytest.raises(ValueError, match="Graph disconnected"):
        lm.Model(a, lm.layers.Dense(1)(b))


def test_jnp_on_a_symbolic_tensor_explains_what_to_do():
    x = lm.Input(shape=(2,))
    with pytest.raises(TypeError, match="Lambda"):
        jnp.sum(x)


def test_sequential_with_input_first_builds_immediately():
    model = lm.Sequential([lm.Input(shape=(3,)), lm.layers.Dense(2)])
    assert model.built and [w.shape for w in model.weights] == [(3, 2), (2,)]


def test_build_takes_one_batch_in_place_of_a_shape():
    """Keras's JAX guides call ``model.build(one_batch)``: an array stands for its shape."""
    batch = np.ones((4, 3), "float32")
    inputs = lm.Input((3,))
    functional = lm.Model(inputs, lm.layers.Dense(2)(inputs))
    before = [np.asarray(w) for w in functional.weights]
    functional.build(batch)  # built when made: nothing changes
    assert all(np.array_equal(a, np.asarray(w)) for a, w in zip(before, functional.weights))

    sequential = lm.Sequential([lm.layers.Dense(2)])
    sequential.build(batch)
    assert sequential.built and sequential.layers[0].kernel.shape == (3, 2)
    assert sequential.input_shape == (None, 3)  # the batch axis stays free

    class Net(lm.Model):
        def __init__(self):
            super().__init__()
            self.dense = lm.layers.Dense(2)

        def build(self, input_shape):  # ends with super().build, as the Keras guides write it
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")
            super().build(input_shape)

        def call(self, x):
            return self.dense(x) * self.scale

    net = Net()
    net.build(batch)
    assert net.built and net.dense.kernel.shape == (3, 2) and len(net.weights) == 3
    np.testing.assert_allclose(net(batch), batch @ np.asarray(net.dense.kernel), rtol=1e-6)
    called = Net()  # built by its first call: the same build, run once
    assert called(batch).shape == (4, 2) and len(called.weights) == 3
