"""Model.get_state_tree / set_state_tree (Keras 3's structure) and Model.run_eagerly."""

import jax
import numpy as np
import pytest

import lamina as lm


def _shapes(tree):
    return {k: _shapes(v) if isinstance(v, dict) else tuple(np.shape(v)) for k, v in tree.items()}


def _models(lib):
    """The same three architectures (Sequential, Functional, subclassed) in Keras or lamina."""
    layers = lib.layers
    seq = lib.Sequential([lib.Input((3,)), layers.Dense(4, name="d1"), layers.BatchNormalization(name="bn"),
                          layers.Dense(2, name="d2")], name="seq")
    inputs = lib.Input((3,), name="inp")
    func = lib.Model(inputs, layers.Dense(2, name="f2")(layers.Dense(4, name="f1")(inputs)), name="func")

    class Block(lib.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = layers.Dense(2, name="inner_dense")

        def call(self, x):
            return self.inner(x)

    class Net(lib.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.first = layers.Dense(4, name="d1")
            self.block = Block(name="blk")

        def call(self, x):
            return self.block(self.first(x))

    sub = Net(name="sub")
    sub(np.ones((2, 3), "float32"))
    for model, optimizer in ((seq, "adam"), (func, "adam"), (sub, "rmsprop")):
        opt = lib.optimizers.get({"class_name": optimizer, "config": {"name": optimizer}})
        model.compile(optimizer=opt, loss="mse")
        model.optimizer.build(model.trainable_variables)
    return [seq, func, sub]


def test_state_tree_has_the_keys_and_nesting_of_keras(keras):
    for theirs, ours in zip(_models(keras), _models(lm)):
        assert _shapes(ours.get_state_tree()) == _shapes(theirs.get_state_tree()), ours.name


@pytest.fixture(scope="module")
def trained():
    lm.random.set_seed(0)
    model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(4, name="d1"), lm.layers.BatchNormalization(name="bn"),
                           lm.layers.Dense(2, name="d2")], name="seq")
    model.compile(optimizer=lm.optimizers.Adam(0.05, name="adam"), loss="mse")
    x, y = np.linspace(-1, 1, 24, dtype="float32").reshape(8, 3), np.ones((8, 2), "float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    return model, x, y


def test_state_tree_values_and_formats(trained):
    model, _, _ = trained
    tree = model.get_state_tree()
    kernel = tree["trainable_variables"]["seq"]["d1"]["kernel"]
    assert isinstance(kernel, jax.Array)
    np.testing.assert_array_equal(kernel, model.get_layer("d1").kernel.numpy())
    numpy_tree = model.get_state_tree(value_format="numpy_array")
    assert isinstance(numpy_tree["non_trainable_variables"]["seq"]["bn"]["moving_mean"], np.ndarray)
    assert int(numpy_tree["optimizer_variables"]["adam"]["iteration"]) == 2
    assert float(numpy_tree["metrics_variables"]["loss"]["count"]) > 0
    with pytest.raises(ValueError, match="value_format"):
        model.get_state_tree(value_format="torch")


def test_set_state_tree_round_trip_continues_training_identically(trained):
    model, x, y = trained
    saved = model.get_state_tree(value_format="numpy_array")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    after_one_more = [w.copy() for w in model.get_weights()]
    model.set_state_tree(saved)  # back to the saved state: weights, statistics, Adam's slots and step
    np.testing.assert_array_equal(model.get_state_tree("numpy_array")["optimizer_variables"]["adam"]["iteration"], 2)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    for again, before in zip(model.get_weights(), after_one_more):
        np.testing.assert_allclose(again, before, rtol=1e-6, atol=1e-7)


def test_set_state_tree_refuses_unknown_paths_and_shapes_and_changes_nothing(trained):
    model, _, _ = trained
    kernel = model.get_layer("d1").kernel.numpy()
    with pytest.raises(ValueError, match="unknown state tree group"):
        model.set_state_tree({"weights": {}})
    bad = {"trainable_variables": {"seq": {"d1": {"kernel": np.zeros((3, 4)), "bias": np.zeros((5,))},
                                           "nope": {"kernel": np.zeros(1)}}}}
    with pytest.raises(ValueError, match="2 problem") as error:
        model.set_state_tree(bad)
    assert "'seq/d1/bias' has shape (4,), the tree gives (5,)" in str(error.value)
    assert "no variable at 'seq/nope/kernel'" in str(error.value)
    np.testing.assert_array_equal(model.get_layer("d1").kernel.numpy(), kernel)
    model.set_state_tree({"trainable_variables": {"seq": {"d1": {"kernel": np.zeros((3, 4), "float32")}}}})
    np.testing.assert_array_equal(model.get_layer("d1").kernel.numpy(), np.zeros((3, 4)))


class _Counting(lm.Model):
    """Counts how often ``call``'s Python runs: once per batch eagerly, only while tracing compiled."""

    def __init__(self):
        super().__init__()
        self.dense = lm.layers.Dense(1)
        self.calls = 0

    def call(self, x):
        self.calls += 1
        return self.dense(x)


def test_run_eagerly_reflects_compile_and_overrides_it():
    model = _Counting()
    x, y = np.ones((16, 2), "float32"), np.ones((16, 1), "float32")
    model(x[:1])  # built, so that fit's calls are the steps' alone
    assert model.run_eagerly is False
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True, steps_per_execution=1)
    assert model.run_eagerly is True and not model.jit_compile
    model.calls = 0
    model.fit(x, y, batch_size=4, verbose=0)
    assert model.calls == 4  # four batches, each run eagerly
    model.run_eagerly = False
    assert model.run_eagerly is False and model.jit_compile
    model.calls = 0
    model.fit(x, y, batch_size=4, verbose=0)
    assert 1 <= model.calls <= 2  # traced (once or twice), not run per batch
    model.run_eagerly = True
    model.calls = 0
    model.fit(x, y, batch_size=4, verbose=0)
    assert model.calls == 4
    model.compile(optimizer="sgd", loss="mse", jit_compile=False)  # a new compile() decides again
    assert model.run_eagerly is False and not model.jit_compile
