"""The Layer contract (API.md "Layer", DESIGN.md 3 and 7): one behaviour per test.

The seed guide's layers live in tests/seed_layers.py; small layers written for a single test
are defined next to it.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seed_layers import (
    ActivityRegularizationLayer,
    ComputeSum,
    Linear,
    LinearAddWeight,
    LinearWithVariables,
    MLPBlock,
    OuterLayer,
)

import lamina as lm


def ids(variables):
    return [id(v) for v in variables]


# --- the seed guide, one expectation each ---------------------------------------------------

def test_seed_linear_with_variables():
    x = jnp.ones((2, 2))
    linear_layer = LinearWithVariables(4, 2)
    y = linear_layer(x)
    assert y.shape == (2, 4)
    np.testing.assert_array_equal(np.asarray(y)[0], np.asarray(y)[1])
    assert linear_layer.weights == [linear_layer.w, linear_layer.b]
    assert ids(linear_layer.weights) == ids([linear_layer.w, linear_layer.b])


def test_seed_linear_add_weight():
    x = jnp.ones((2, 2))
    linear_layer = LinearAddWeight(4, 2)
    y = linear_layer(x)
    assert y.shape == (2, 4)
    np.testing.assert_array_equal(np.asarray(y)[0], np.asarray(y)[1])
    assert linear_layer.weights == [linear_layer.w, linear_layer.b]
    assert ids(linear_layer.weights) == ids([linear_layer.w, linear_layer.b])
    np.testing.assert_array_equal(np.asarray(linear_layer.b), np.zeros(4))


def test_seed_compute_sum():
    x = jnp.ones((2, 2))
    my_sum = ComputeSum(2)
    np.testing.assert_array_equal(np.asarray(my_sum(x)), [2.0, 2.0])
    np.testing.assert_array_equal(np.asarray(my_sum(x)), [4.0, 4.0])
    assert len(my_sum.weights) == 1
    assert len(my_sum.non_trainable_weights) == 1
    assert my_sum.trainable_weights == []


def test_seed_lazy_linear_builds_on_first_call():
    linear_layer = Linear(32)
    assert not linear_layer.built
    assert linear_layer.weights == []
    y = linear_layer(jnp.ones((2, 2)))
    assert linear_layer.built
    assert linear_layer.w.shape == (2, 32)
    assert linear_layer.b.shape == (32,)
    assert y.shape == (2, 32)


def test_seed_mlp_block_weights():
    mlp = MLPBlock()
    y = mlp(jnp.ones(shape=(3, 64)))
    assert y.shape == (3, 1)
    assert len(mlp.weights) == 6
    assert len(mlp.trainable_weights) == 6


def test_seed_activity_regularization_loss_value():
    layer = ActivityRegularizationLayer(1e-2)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = layer(x)
    np.testing.assert_array_equal(np.asarray(out), x)
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), 1e-2 * x.sum(), rtol=1e-6)


def test_seed_outer_layer_collects_inner_losses():
    outer = OuterLayer()
    x = np.full((2, 2), 3.0, np.float32)
    outer(x)
    assert len(outer.losses) == 1
    np.testing.assert_allclose(float(outer.losses[0]), 1e-2 * 12.0, rtol=1e-6)
    assert len(outer.activity_reg.losses) == 1


def test_losses_reset_at_each_outermost_call():
    outer = OuterLayer()
    outer(np.ones((2, 2), np.float32))
    outer(np.full((2, 2), 2.0, np.float32))
    assert len(outer.losses) == 1  # not accumulated over calls
    np.testing.assert_allclose(float(outer.losses[0]), 1e-2 * 8.0, rtol=1e-6)
    assert len(outer.activity_reg.losses) == 1


def test_losses_of_a_layer_called_twice_in_one_call_are_both_kept():
    class Twice(lm.Layer):
        def __init__(self):
            super().__init__()
            self.reg = ActivityRegularizationLayer(1.0)

        def call(self, x):
            return self.reg(self.reg(x) * 2)

    layer = Twice()
    layer(np.ones((2,), np.float32))
    assert sorted(float(v) for v in layer.losses) == [2.0, 4.0]


# --- tracking -------------------------------------------------------------------------------

class ListHolder(lm.Layer):
    def __init__(self):
        super().__init__()
        self.blocks = []

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return x


def test_layers_appended_to_a_list_after_assignment_are_tracked():
    # TensorFlow #29073: layers appended after the list was assigned were lost.
    holder = ListHolder()
    holder.blocks.append(lm.layers.Dense(3))
    holder.blocks.append(lm.layers.Dense(2))
    holder(np.ones((1, 4), np.float32))
    assert len(holder.weights) == 4
    expected = [holder.blocks[0].kernel, holder.blocks[0].bias, holder.blocks[1].kernel, holder.blocks[1].bias]
    assert ids(holder.weights) == ids(expected)
    assert holder.count_params() == 4 * 3 + 3 + 3 * 2 + 2


def test_layers_appended_to_a_list_get_their_path_from_the_call():
    # The path must not depend on whether someone queried ``holder.weights`` first: errors
    # raised inside the appended layer name it by this path.
    holder = ListHolder()
    holder.blocks.append(lm.layers.Dense(3))
    holder(np.ones((1, 4), np.float32))
    assert holder.blocks[0].path == f"{holder.name}/blocks/0"
    assert holder.blocks[0].kernel.path == f"{holder.name}/blocks/0/kernel"


def test_variable_appended_to_a_list_is_tracked():
    holder = ListHolder()
    holder.blocks.append(lm.Variable(jnp.zeros((2,))))
    assert len(holder.weights) == 1


def test_dicts_and_nested_tuples_are_tracked():
    class Nested(lm.Layer):
        def __init__(self):
            super().__init__()
            self.v = lm.Variable(jnp.zeros((1,)), name="v")
            self.parts = {"a": lm.layers.Dense(2), "b": (lm.layers.Dense(3), [lm.Variable(jnp.ones((4,)), name="u")])}

        def call(self, x):
            return self.parts["b"][0](self.parts["a"](x))

    layer = Nested()
    layer(np.ones((1, 5), np.float32))
    dense_a, (dense_b, (u,)) = layer.parts["a"], layer.parts["b"]
    assert len(layer.weights) == 6
    assert set(ids(layer.weights)) == set(ids([layer.v, u, dense_a.kernel, dense_a.bias, dense_b.kernel, dense_b.bias]))


def test_same_variable_in_two_attributes_counted_once():
    class Alias(lm.Layer):
        def __init__(self):
            super().__init__()
            self.w = self.add_weight(shape=(3,), initializer="ones")
            self.alias = self.w
            self.both = [self.w, {"again": self.w}]

    layer = Alias()
    assert ids(layer.weights) == [id(layer.w)]
    assert len(layer.trainable_weights) == 1


def test_same_sublayer_in_two_attributes_counted_once():
    class Shared(lm.Layer):
        def __init__(self):
            super().__init__()
            self.first = lm.layers.Dense(2)
            self.second = self.first

        def call(self, x):
            return self.second(self.first(x))

    layer = Shared()
    layer(np.ones((1, 2), np.float32))
    assert len(layer.weights) == 2


def test_reassigning_a_variable_attribute_replaces_it():
    class Reassign(lm.Layer):
        def __init__(self):
            super().__init__()
            self.w = self.add_weight(shape=(2,), initializer="zeros")

    layer = Reassign()
    new = lm.Variable(jnp.ones((3,)))
    layer.w = new
    assert ids(layer.weights) == [id(new)]


def test_reassigning_a_sublayer_attribute_replaces_it():
    class Holder(lm.Layer):
        def __init__(self):
            super().__init__()
            self.sub = lm.layers.Dense(2)

        def call(self, x):
            return self.sub(x)

    layer = Holder()
    layer(np.ones((1, 3), np.float32))
    replacement = lm.layers.Dense(4)
    replacement(np.ones((1, 3), np.float32))
    layer.sub = replacement
    assert ids(layer.weights) == ids([replacement.kernel, replacement.bias])
    layer.sub = None
    assert layer.weights == []


def test_deleting_an_attribute_untracks_it():
    layer = LinearAddWeight(2, 2)
    del layer.b
    assert ids(layer.weights) == [id(layer.w)]


def test_weights_order_own_in_creation_order_then_sublayers():
    class Ordered(lm.Layer):
        def __init__(self):
            super().__init__()
            self.sub = LinearAddWeight(2, 2)  # a sublayer assigned first
            first = self.add_weight(shape=(1,), name="first")
            second = self.add_weight(shape=(1,), name="second")
            self.b_attr = second  # attribute order differs from creation order
            self.a_attr = first

    layer = Ordered()
    assert [v.name for v in layer.weights] == ["first", "second", "w", "b"]
    assert ids(layer.weights[2:]) == ids([layer.sub.w, layer.sub.b])


def test_mlp_block_weights_follow_sublayer_order():
    mlp = MLPBlock()
    mlp(jnp.ones((3, 64)))
    expected = [v for sub in (mlp.linear_1, mlp.linear_2, mlp.linear_3) for v in (sub.w, sub.b)]
    assert ids(mlp.weights) == ids(expected)


def test_names_are_snake_case_of_the_class():
    assert re.fullmatch(r"mlp_block(_\d+)?", MLPBlock().name)
    assert re.fullmatch(r"compute_sum(_\d+)?", ComputeSum(2).name)


def test_names_are_unique_per_class():
    class FreshlyNamedBlockForNaming(lm.Layer):
        def call(self, x):
            return x

    first, second, third = (FreshlyNamedBlockForNaming() for _ in range(3))
    assert first.name == "freshly_named_block_for_naming"
    assert second.name == "freshly_named_block_for_naming_1"
    assert third.name == "freshly_named_block_for_naming_2"


def test_explicit_name_is_kept():
    assert lm.layers.Dense(2, name="head").name == "head"


def test_variable_paths_use_attribute_names_below_the_root():
    mlp = MLPBlock()
    mlp(jnp.ones((3, 64)))
    root = mlp.name
    assert [v.path for v in mlp.weights] == [
        f"{root}/linear_1/w", f"{root}/linear_1/b",
        f"{root}/linear_2/w", f"{root}/linear_2/b",
        f"{root}/linear_3/w", f"{root}/linear_3/b",
    ]
    assert mlp.linear_2.path == f"{root}/linear_2"


def test_dense_variable_paths():
    class Model(lm.Layer):
        def __init__(self):
            super().__init__()
            self.head = lm.layers.Dense(2)

        def call(self, x):
            return self.head(x)

    model = Model()
    model(np.ones((1, 3), np.float32))
    assert [v.path for v in model.weights] == [f"{model.name}/head/kernel", f"{model.name}/head/bias"]


def test_variables_include_seed_generator_state_weights_do_not():
    class WithDropout(lm.Layer):
        def __init__(self):
            super().__init__()
            self.dense = lm.layers.Dense(2)
            self.drop = lm.layers.Dropout(0.5)

        def call(self, x, training=None):
            return self.drop(self.dense(x), training=training)

    layer = WithDropout()
    layer(np.ones((1, 3), np.float32))
    seed_state = layer.drop.seed_generator.state
    assert id(seed_state) in ids(layer.variables)
    assert id(seed_state) not in ids(layer.weights)
    assert id(seed_state) not in ids(layer.trainable_weights)
    assert id(seed_state) not in ids(layer.non_trainable_weights)
    assert len(layer.variables) == 3
    assert set(ids(layer.weights)) <= set(ids(layer.variables))


# --- trainable -------------------------------------------------------------------------------

def test_trainable_false_freezes_the_whole_subtree():
    mlp = MLPBlock()
    mlp(jnp.ones((3, 64)))
    mlp.trainable = False
    assert mlp.trainable_weights == []
    assert len(mlp.non_trainable_weights) == 6
    assert not mlp.linear_2.trainable
    assert mlp.linear_2.trainable_weights == []


def test_trainable_flip_back_restores():
    mlp = MLPBlock()
    mlp(jnp.ones((3, 64)))
    mlp.trainable = False
    mlp.trainable = True
    assert ids(mlp.trainable_weights) == ids(mlp.weights)
    assert mlp.non_trainable_weights == []


def test_trainable_false_on_a_sublayer_only():
    mlp = MLPBlock()
    mlp(jnp.ones((3, 64)))
    mlp.linear_1.trainable = False
    assert ids(mlp.non_trainable_weights) == ids([mlp.linear_1.w, mlp.linear_1.b])
    assert len(mlp.trainable_weights) == 4


def test_trainable_constructor_argument():
    layer = lm.layers.Dense(2, trainable=False)
    layer(np.ones((1, 2), np.float32))
    assert layer.trainable_weights == []
    assert len(layer.non_trainable_weights) == 2


# --- training propagation ---------------------------------------------------------------------

class RecordNone(lm.Layer):
    def __init__(self):
        super().__init__()
        self.seen = []

    def call(self, x, training=None):
        self.seen.append(training)
        return x


class RecordTrue(RecordNone):
    def call(self, x, training=True):
        self.seen.append(training)
        return x


class OuterPasses(lm.Layer):
    """Accepts training but does not thread it to the inner layer."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def call(self, x, training=None):
        return self.inner(x)


class OuterNoArg(OuterPasses):
    def call(self, x):
        return self.inner(x)


class OuterDefaultTrue(OuterPasses):
    def call(self, x, training=True):
        return self.inner(x)


class OuterForcesFalse(OuterPasses):
    def call(self, x, training=None):
        return self.inner(x, training=False)


X1 = np.ones((1, 1), np.float32)


def test_training_defaults_to_false():
    layer = RecordNone()
    layer(X1)
    assert layer.seen == [False]


def test_training_explicit_argument():
    layer = RecordNone()
    layer(X1, training=True)
    assert layer.seen == [True]


def test_training_signature_default_used():
    layer = RecordTrue()
    layer(X1)
    assert layer.seen == [True]


def test_training_outer_value_reaches_inner():
    inner = RecordNone()
    OuterPasses(inner)(X1, training=True)
    assert inner.seen == [True]


def test_training_outer_value_reaches_through_a_layer_without_training_arg():
    inner = RecordNone()
    OuterPasses(OuterNoArg(inner))(X1, training=True)
    assert inner.seen == [True]


def test_training_outer_value_beats_inner_signature_default():
    inner = RecordTrue()
    OuterPasses(inner)(X1, training=False)
    assert inner.seen == [False]


def test_training_explicit_inner_argument_beats_outer_value():
    inner = RecordNone()
    OuterForcesFalse(inner)(X1, training=True)
    assert inner.seen == [False]


def test_training_outer_signature_default_reaches_inner():
    inner = RecordNone()
    OuterDefaultTrue(inner)(X1)
    assert inner.seen == [True]


def test_training_inner_default_used_when_outer_has_no_value():
    # The outer call got no training value (its default is None): the inner layer's own
    # signature default applies, as in Keras.
    inner = RecordTrue()
    OuterPasses(inner)(X1)
    assert inner.seen == [True]


def test_training_inner_default_used_under_outer_without_training_arg():
    inner = RecordTrue()
    OuterNoArg(inner)(X1)
    assert inner.seen == [True]


def test_training_does_not_leak_to_the_next_call():
    inner = RecordNone()
    outer = OuterPasses(inner)
    outer(X1, training=True)
    outer(X1)
    assert inner.seen == [True, False]


# --- add_weight ------------------------------------------------------------------------------

@pytest.mark.parametrize("initializer, check", [
    ("zeros", lambda a: np.all(a == 0)),
    ("ones", lambda a: np.all(a == 1)),
    ("random_normal", lambda a: a.std() > 0),
    ("random_uniform", lambda a: a.std() > 0),
    ("glorot_uniform", lambda a: a.std() > 0 and np.abs(a).max() <= np.sqrt(6 / (8 + 6))),
])
def test_add_weight_initializer_strings(initializer, check):
    layer = lm.Layer()
    v = layer.add_weight(shape=(8, 6), initializer=initializer)
    assert isinstance(v, lm.Variable)
    assert v.shape == (8, 6) and v.dtype == jnp.float32
    assert check(np.asarray(v))
    assert ids(layer.weights) == [id(v)]


def test_add_weight_initializer_object_and_default():
    layer = lm.Layer()
    v = layer.add_weight(shape=(3,), initializer=lm.initializers.Constant(2.5))
    np.testing.assert_array_equal(np.asarray(v), [2.5, 2.5, 2.5])
    default = layer.add_weight(shape=(10, 10))  # glorot_uniform
    assert np.abs(np.asarray(default)).max() <= np.sqrt(6 / 20)


def test_add_weight_non_trainable_and_dtype():
    layer = lm.Layer()
    v = layer.add_weight(shape=(2,), initializer="zeros", trainable=False, dtype="int32", name="count")
    assert not v.trainable and v.dtype == jnp.int32 and v.name == "count"
    assert ids(layer.non_trainable_weights) == [id(v)]


def test_add_weight_regularizer_penalty_in_losses():
    layer = lm.Layer()
    v = layer.add_weight(shape=(3, 4), initializer="random_normal", regularizer=lm.regularizers.L1L2(l1=0.1, l2=0.2))
    a = np.asarray(v, np.float64)
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), 0.1 * np.abs(a).sum() + 0.2 * np.square(a).sum(), rtol=1e-5)


def test_add_weight_regularizer_string():
    layer = lm.Layer()
    v = layer.add_weight(shape=(5,), initializer="ones", regularizer="l2")
    np.testing.assert_allclose(float(layer.losses[0]), 0.01 * 5, rtol=1e-6)
    assert isinstance(v.regularizer, lm.regularizers.L2)


def test_regularizer_penalty_follows_the_current_value():
    layer = lm.Layer()
    v = layer.add_weight(shape=(2,), initializer="ones", regularizer=lm.regularizers.L2(1.0))
    v.assign(jnp.array([3.0, 4.0]))
    np.testing.assert_allclose(float(layer.losses[0]), 25.0)


def test_sublayer_regularizer_penalties_collected_by_parent():
    class Parent(lm.Layer):
        def __init__(self):
            super().__init__()
            self.dense = lm.layers.Dense(2, kernel_regularizer=lm.regularizers.L1(1.0))

        def call(self, x):
            return self.dense(x)

    parent = Parent()
    parent(np.ones((1, 3), np.float32))
    np.testing.assert_allclose(float(sum(parent.losses)), np.abs(np.asarray(parent.dense.kernel)).sum(), rtol=1e-6)


def test_add_weight_constraint_stored_on_variable():
    layer = lm.Layer()
    v = layer.add_weight(shape=(2, 2), constraint="non_neg")
    assert isinstance(v.constraint, lm.constraints.NonNeg)
    max_norm = lm.constraints.MaxNorm(1.5)
    w = layer.add_weight(shape=(2, 2), constraint=max_norm)
    assert w.constraint is max_norm


# --- configuration ---------------------------------------------------------------------------

def test_get_config_captures_constructor_args():
    config = Linear(units=8).get_config()
    assert config["units"] == 8
    assert {"name", "trainable", "dtype"} <= set(config)


def test_get_config_captures_positional_args():
    assert Linear(16).get_config()["units"] == 16
    assert LinearAddWeight(4, 2).get_config()["input_dim"] == 2


def test_from_config_of_captured_args_round_trip():
    layer = Linear(units=8)
    clone = Linear.from_config(layer.get_config())
    assert clone.units == 8
    assert clone.get_config() == layer.get_config()
    assert clone(np.ones((2, 3), np.float32)).shape == (2, 8)


def test_get_config_non_json_args_raise_not_implemented():
    class TakesFunction(lm.Layer):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def call(self, x):
            return self.fn(x)

    with pytest.raises(NotImplementedError, match="get_config"):
        TakesFunction(lambda x: x).get_config()


def test_dense_config_round_trip():
    layer = lm.layers.Dense(5, activation="relu", use_bias=False, kernel_regularizer="l2",
                            kernel_initializer=lm.initializers.RandomNormal(stddev=0.5, seed=3))
    config = layer.get_config()
    clone = lm.layers.Dense.from_config(config)
    assert clone.get_config() == config
    x = np.ones((2, 7), np.float32)
    assert clone(x).shape == layer(x).shape == (2, 5)
    assert [v.shape for v in clone.weights] == [v.shape for v in layer.weights]


def test_dense_config_is_json():
    import json

    config = lm.layers.Dense(3, activation="softmax", bias_regularizer=lm.regularizers.L1(0.5)).get_config()
    assert json.loads(json.dumps(config)) == config


# --- errors ------------------------------------------------------------------------------------

def test_dense_wrong_input_dim_names_layer_expected_and_received():
    layer = lm.layers.Dense(4)
    layer(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError) as info:
        layer(np.ones((2, 5), np.float32))
    message = str(info.value)
    assert layer.path in message
    assert "3" in message
    assert "(2, 5)" in message


def test_nested_dense_wrong_input_names_the_inner_path():
    class Holder(lm.Layer):
        def __init__(self):
            super().__init__()
            self.head = lm.layers.Dense(4)

        def call(self, x):
            return self.head(x)

    holder = Holder()
    holder(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError) as info:
        holder(np.ones((2, 5), np.float32))
    assert f"{holder.name}/head" in str(info.value) + " ".join(getattr(info.value, "__notes__", []))


def test_custom_layer_error_notes_name_path_and_built_shape():
    mlp = MLPBlock()
    mlp(np.ones((3, 64), np.float32))
    with pytest.raises(Exception) as info:
        mlp(np.ones((3, 10), np.float32))
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert f"{mlp.name}/linear_1" in notes
    assert "(3, 64)" in notes  # the shape it was built for
    assert "(3, 10)" in notes  # the shape it got


def test_custom_linear_matmul_mismatch_note():
    layer = Linear(4)
    layer(np.ones((2, 3), np.float32))
    with pytest.raises(Exception) as info:
        layer(np.ones((2, 6), np.float32))
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert layer.path in notes
    assert "(2, 3)" in notes


def test_set_weights_reports_all_mismatches_and_changes_nothing():
    layer = lm.layers.Dense(3)
    layer(np.ones((1, 2), np.float32))
    before = layer.get_weights()
    with pytest.raises(ValueError) as info:
        layer.set_weights([np.ones((2, 4)), np.ones((4,))])
    message = str(info.value)
    assert "kernel" in message and "bias" in message
    assert "(2, 3)" in message and "(2, 4)" in message
    assert "(3,)" in message and "(4,)" in message
    for old, new in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_set_weights_wrong_count_changes_nothing():
    layer = lm.layers.Dense(3)
    layer(np.ones((1, 2), np.float32))
    before = layer.get_weights()
    with pytest.raises(ValueError, match="2"):
        layer.set_weights([np.zeros((2, 3))])
    np.testing.assert_array_equal(layer.get_weights()[0], before[0])


def test_set_weights_round_trip():
    mlp = MLPBlock()
    mlp(np.ones((3, 64), np.float32))
    values = [np.full(v.shape, i, np.float32) for i, v in enumerate(mlp.weights)]
    mlp.set_weights(values)
    for value, got in zip(values, mlp.get_weights()):
        np.testing.assert_array_equal(value, got)


# --- stateless_call ---------------------------------------------------------------------------

def test_stateless_call_returns_new_values_and_changes_nothing():
    layer = ComputeSum(2)
    layer(np.ones((2, 2), np.float32))  # total is now [2, 2]
    outputs, new_values = layer.stateless_call([], [jnp.array([10.0, 20.0])], jnp.ones((3, 2)))
    np.testing.assert_array_equal(np.asarray(outputs), [13.0, 23.0])
    assert len(new_values) == 1
    np.testing.assert_array_equal(np.asarray(new_values[0]), [13.0, 23.0])
    np.testing.assert_array_equal(np.asarray(layer.total), [2.0, 2.0])


def test_stateless_call_under_jax_jit():
    layer = ComputeSum(2)
    layer(np.ones((2, 2), np.float32))
    fn = jax.jit(lambda values, x: layer.stateless_call([], values, x))
    outputs, new_values = fn([jnp.zeros(2)], jnp.ones((4, 2)))
    np.testing.assert_array_equal(np.asarray(new_values[0]), [4.0, 4.0])
    np.testing.assert_array_equal(np.asarray(layer.total), [2.0, 2.0])


def test_stateless_call_uses_the_given_trainable_values():
    layer = LinearAddWeight(3, 2)
    layer(np.ones((1, 2), np.float32))  # stateless_call needs a built layer, as in Keras
    w = jnp.ones((2, 3))
    b = jnp.arange(3.0)
    outputs, _ = layer.stateless_call([w, b], [], jnp.ones((1, 2)))
    np.testing.assert_allclose(np.asarray(outputs), [[2.0, 3.0, 4.0]])


def test_stateless_call_with_random_state_returns_the_advanced_seed():
    # As in Keras, non_trainable_variables follow layer.non_trainable_variables, which hold
    # the seed generator's state; the advanced state comes back, the layer is unchanged.
    drop = lm.layers.Dropout(0.5, seed=1)
    x = jnp.ones((8, 8))
    drop(x)
    assert len(drop.non_trainable_variables) == 1
    before = drop.seed_generator.state.numpy()
    outputs, new_values = drop.stateless_call([], [v.value for v in drop.non_trainable_variables], x, training=True)
    assert (np.asarray(outputs) == 0).any()
    assert len(new_values) == 1 and not np.array_equal(np.asarray(new_values[0]), before)
    np.testing.assert_array_equal(drop.seed_generator.state.numpy(), before)


# --- shapes and sizes --------------------------------------------------------------------------

def test_compute_output_shape_default_traces_with_none_batch():
    layer = Linear(7)
    assert layer.compute_output_shape((None, 5)) == (None, 7)
    assert layer.built
    assert layer.w.shape == (5, 7)


def test_compute_output_shape_default_does_not_change_state():
    layer = ComputeSum(3)
    assert layer.compute_output_shape((None, 3)) == (3,)
    np.testing.assert_array_equal(np.asarray(layer.total), np.zeros(3))


def test_compute_output_shape_of_mlp_block():
    assert MLPBlock().compute_output_shape((None, 64)) == (None, 1)


def test_count_params():
    mlp = MLPBlock()
    mlp(np.ones((3, 64), np.float32))
    assert mlp.count_params() == (64 * 32 + 32) + (32 * 32 + 32) + (32 * 1 + 1)


def test_count_params_unbuilt_raises():
    with pytest.raises(ValueError, match="built"):
        lm.layers.Dense(3).count_params()


# --- building inside compiled code (DESIGN.md 7) ----------------------------------------------

def test_build_inside_lm_jit_gives_concrete_variables_updated_by_the_step():
    mlp = MLPBlock()

    def loss_fn(x):
        return jnp.mean(jnp.square(mlp(x)))

    @lm.jit
    def step(x):
        loss, grads = lm.value_and_grad(loss_fn, mlp.trainable_weights)(x)
        for v, g in zip(mlp.trainable_weights, grads):
            v.assign_sub(0.1 * g)
        return loss

    x = jnp.linspace(-1.0, 1.0, 3 * 64).reshape(3, 64)
    step(x)  # builds mlp during the first trace
    assert len(mlp.weights) == 6
    for v in mlp.weights:
        assert not isinstance(v.value, jax.core.Tracer)
        assert isinstance(v.value, jax.Array)
        np.asarray(v)  # readable
    before = [v.numpy() for v in mlp.trainable_weights]
    # Reference: one eager SGD step from ``before``.
    _, grads = lm.value_and_grad(loss_fn, mlp.trainable_weights)(x)
    expected = [b - 0.1 * np.asarray(g) for b, g in zip(before, grads)]
    step(x)
    for want, v in zip(expected, mlp.trainable_weights):
        np.testing.assert_allclose(v.numpy(), want, rtol=1e-5, atol=1e-6)


def test_build_inside_jax_jit_gives_concrete_variables():
    layer = Linear(4)
    jax.jit(lambda x: layer(x))(jnp.ones((2, 3)))
    assert layer.built
    assert not isinstance(layer.w.value, jax.core.Tracer)
    np.asarray(layer.w)


def test_add_loss_visible_inside_value_and_grad():
    outer = OuterLayer()
    x = jnp.full((2, 2), 2.0)
    scale = lm.Variable(jnp.ones(()))

    def fn():
        y = outer(x * scale)
        return jnp.sum(y) * 0.0 + sum(outer.losses)

    loss, (grad,) = lm.value_and_grad(fn, [scale])()
    np.testing.assert_allclose(float(loss), 0.08, rtol=1e-6)
    np.testing.assert_allclose(float(grad), 0.08, rtol=1e-6)  # d/ds of 0.01 * sum(2 s)


# --- inputs ------------------------------------------------------------------------------------

class RecordInput(lm.Layer):
    def call(self, x):
        self.got = x
        return x


def test_numpy_input_is_converted_to_a_jax_array():
    layer = RecordInput()
    layer(np.ones((2, 3), np.float32))
    assert isinstance(layer.got, jax.Array)
    assert layer.got.shape == (2, 3)


def test_nested_list_input_is_converted():
    layer = RecordInput()
    layer([[1.0, 2.0], [3.0, 4.0]])
    assert isinstance(layer.got, jax.Array)
    assert layer.got.shape == (2, 2) and layer.got.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(layer.got), [[1, 2], [3, 4]])


def test_float64_numpy_input_is_cast_to_float32():
    layer = RecordInput()
    layer(np.ones((2, 2), np.float64))
    assert layer.got.dtype == jnp.float32


def test_integer_input_is_kept_integer():
    layer = RecordInput()
    layer(np.arange(4, dtype=np.int32))
    assert jnp.issubdtype(layer.got.dtype, jnp.integer)


def test_dense_accepts_lists_and_float64():
    layer = lm.layers.Dense(2)
    out = layer(np.ones((3, 4), np.float64))
    assert out.dtype == jnp.float32
    assert layer([[1.0, 2.0, 3.0, 4.0]]).shape == (1, 2)


# --- Dense against the formula, over random shapes ---------------------------------------------

@settings(max_examples=15, deadline=None)
@given(
    batch=st.lists(st.integers(1, 4), min_size=1, max_size=2),
    in_dim=st.integers(1, 6),
    units=st.integers(1, 5),
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_dense_matches_numpy_formula(batch, in_dim, units, use_bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(*batch, in_dim)).astype(np.float32)
    layer = lm.layers.Dense(units, use_bias=use_bias, activation="relu")
    layer(x)
    weights = [rng.normal(size=v.shape).astype(np.float32) for v in layer.weights]
    layer.set_weights(weights)
    expected = x @ weights[0] + (weights[1] if use_bias else 0.0)
    np.testing.assert_allclose(np.asarray(layer(x)), np.maximum(expected, 0.0), rtol=1e-5, atol=1e-6)


def test_direct_build_marks_the_layer_built_so_weights_set_after_it_are_used():
    """Keras: ``layer.build(shape)`` builds for good; the first call must not build again."""

    class Linear(lm.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 2), initializer="random_normal")

        def call(self, x):
            return x @ self.w

    layer = Linear()
    layer.build((None, 3))
    assert layer.built
    layer.set_weights([np.ones((3, 2))])
    np.testing.assert_allclose(layer(jnp.ones((1, 3))), np.full((1, 2), 3.0))
    assert len(layer.weights) == 1

    dense = lm.layers.Dense(2)
    dense.build((None, 3))
    dense.set_weights([np.ones((3, 2)), np.zeros(2)])
    np.testing.assert_allclose(dense(jnp.ones((1, 3))), np.full((1, 2), 3.0))

    class Plain(lm.Layer):  # no build of its own: the base build marks it built too
        def call(self, x):
            return x

    plain = Plain()
    plain.build((None, 3))
    assert plain.built


def test_input_spec_takes_keras_arguments_and_round_trips_its_config(keras):
    """Keras's InputSpec(dtype, shape, ndim, ..., allow_last_axis_squeeze, name, optional):
    the same config keys, and a layer whose spec fixes a shape names the axis that differs."""
    ours = lm.layers.InputSpec(shape=(None, 4), dtype="float32")
    theirs = keras.layers.InputSpec(shape=(None, 4), dtype="float32")
    assert ours.get_config() == theirs.get_config()
    assert lm.layers.InputSpec.from_config(ours.get_config()).get_config() == ours.get_config()

    class Fixed(lm.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.input_spec = lm.layers.InputSpec(shape=(None, 4))

        def call(self, x):
            return x * 2

    layer = Fixed(name="fixed")
    assert layer(np.ones((3, 4))).shape == (3, 4)
    with pytest.raises(ValueError, match=r"fixed.*expected shape \(None, 4\).*got input of shape \(3, 5\)"):
        layer(np.ones((3, 5)))
    squeezable = lm.layers.InputSpec(shape=(None, 4), allow_last_axis_squeeze=True)
    assert squeezable.problem((2, 4, 1)) is None and squeezable.problem((2, 5)) == "axis 1"
