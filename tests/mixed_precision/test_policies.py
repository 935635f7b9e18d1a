"""Dtype policies: names, the global policy, layers' dtypes, configs and files, and the traced
program of a mixed_bfloat16 train step (what runs in bfloat16, what stays float32)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm


@pytest.fixture(autouse=True)
def float32_afterwards():
    yield
    lm.mixed_precision.set_dtype_policy("float32")


def test_policy_names_dtypes_and_aliases():
    cases = {"float32": ("float32", "float32"), "float16": ("float16", "float16"),
             "bfloat16": ("bfloat16", "bfloat16"), "mixed_float16": ("float16", "float32"),
             "mixed_bfloat16": ("bfloat16", "float32")}
    for name, (compute, variable) in cases.items():
        policy = lm.mixed_precision.DTypePolicy(name)
        assert (policy.name, policy.compute_dtype, policy.variable_dtype) == (name, compute, variable)
    assert lm.DTypePolicy is lm.mixed_precision.DTypePolicy is lm.mixed_precision.Policy
    with pytest.raises(ValueError, match="mixed_bfloat16") as error:
        lm.mixed_precision.DTypePolicy("mixed_bfloat8")
    assert "'float32'" in str(error.value) and "'mixed_float16'" in str(error.value)
    with pytest.raises(ValueError, match="Layer 'bad'.*Unknown dtype policy 'float33'"):
        lm.layers.Dense(2, dtype="float33", name="bad")


def test_global_policy_is_read_when_a_layer_is_constructed():
    assert lm.mixed_precision.dtype_policy() == lm.DTypePolicy("float32")
    lm.mixed_precision.set_dtype_policy("mixed_bfloat16")
    assert lm.mixed_precision.global_policy().name == "mixed_bfloat16"
    mixed = lm.layers.Dense(2)
    lm.mixed_precision.set_global_policy("float32")
    plain = lm.layers.Dense(2)
    assert (mixed.dtype_policy.name, plain.dtype_policy.name) == ("mixed_bfloat16", "float32")
    explicit = lm.layers.Dense(2, dtype=lm.DTypePolicy("mixed_float16"))
    from_dtype = lm.layers.Dense(2, dtype=jnp.bfloat16)
    assert (explicit.compute_dtype, explicit.variable_dtype, explicit.dtype) == ("float16", "float32", "float32")
    assert (from_dtype.compute_dtype, from_dtype.variable_dtype) == ("bfloat16", "bfloat16")


def test_mixed_layer_keeps_float32_weights_and_answers_in_bfloat16():
    dense = lm.layers.Dense(3, dtype="mixed_bfloat16")
    norm = lm.layers.LayerNormalization(dtype="mixed_bfloat16")
    x = jnp.ones((2, 4), jnp.float32)
    y = norm(dense(x))
    assert y.dtype == jnp.bfloat16
    assert {w.dtype for w in dense.weights + norm.weights} == {jnp.dtype("float32")}
    # Outside call a weight reads in its own dtype: the optimizer updates float32 values.
    assert dense.kernel.value.dtype == jnp.float32
    expected = (x.astype(jnp.bfloat16) @ dense.kernel.value.astype(jnp.bfloat16)
                + dense.bias.value.astype(jnp.bfloat16))
    np.testing.assert_array_equal(np.asarray(dense(x), np.float32), np.asarray(expected, np.float32))


def test_policy_config_round_trip_and_old_configs():
    dense = lm.layers.Dense(2, dtype="mixed_bfloat16")
    config = dense.get_config()
    assert config["dtype"] == {"class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"}}
    assert lm.layers.Dense.from_config(config).dtype_policy == lm.DTypePolicy("mixed_bfloat16")
    old = {**config, "dtype": "float32"}  # files written before policies
    assert lm.layers.Dense.from_config(old).dtype_policy.name == "float32"


def test_saved_mixed_model_loads_with_its_policies(tmp_path):
    lm.mixed_precision.set_dtype_policy("mixed_bfloat16")
    model = lm.Sequential([lm.Input((4,)), lm.layers.Dense(3), lm.layers.BatchNormalization(),
                           lm.layers.Dense(2, dtype="float32")])
    lm.mixed_precision.set_dtype_policy("float32")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    model.save(tmp_path / "m.lamina")
    loaded = lm.load_model(tmp_path / "m.lamina")
    assert [layer.dtype_policy.name for layer in loaded.layers] == ["mixed_bfloat16", "mixed_bfloat16", "float32"]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def _equations(jaxpr):
    """Every equation of ``jaxpr`` and of the jaxprs nested in it (jit, custom_jvp...)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else [param]:
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    yield from _equations(sub.jaxpr)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    yield from _equations(sub)


@pytest.fixture(scope="module")
def mixed_model():
    lm.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        model = lm.Sequential([lm.Input((6,)), lm.layers.Dense(8, activation="relu"),
                               lm.layers.BatchNormalization(), lm.layers.Dense(3, activation="softmax")])
    finally:
        lm.mixed_precision.set_dtype_policy("float32")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(1).normal(size=(16, 6)).astype("float32")
    y = np.arange(16, dtype="int32") % 3
    return model, x, y


def test_traced_train_step_runs_matmuls_in_bfloat16_and_statistics_and_loss_in_float32(mixed_model):
    model, x, y = mixed_model
    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]
    metric_values = [v.value for v in model.metrics_variables]

    def loss_fn(tv):
        loss, _ = model.compute_loss_and_updates(tv, frozen, metric_values, x, y, None, training=True)
        return loss

    forward = jax.make_jaxpr(loss_fn)(trainable)
    step = jax.make_jaxpr(jax.value_and_grad(loss_fn))(trainable)
    dots = [e for e in _equations(step.jaxpr) if e.primitive.name == "dot_general"]
    # Two layers: two forward products, two kernel gradients, one input gradient (the second
    # layer's; the data needs none).
    assert len(dots) == 5
    assert all(v.aval.dtype == jnp.bfloat16 for e in dots for v in e.invars)
    # Every reduction of the forward pass (BatchNorm mean and variance, softmax, the loss) is
    # float32, and so is the loss and every gradient.
    reductions = [e for e in _equations(forward.jaxpr) if e.primitive.name.startswith("reduce_")]
    assert {e.primitive.name for e in reductions} >= {"reduce_sum", "reduce_max"}
    assert all(v.aval.dtype == jnp.float32 for e in reductions for v in e.invars)
    assert [v.dtype for v in step.out_avals] == [jnp.float32] * (1 + len(trainable))
    assert all(v.dtype == jnp.float32 for v in model.weights + model.optimizer.variables[1:])


def test_digits_accuracy_mixed_bfloat16_within_half_a_point_of_float32_with_float32_state():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    train, test = slice(0, 1408), slice(1408, None)  # 22 full batches of 64: one program
    accuracy = {}
    # Ten epochs: both reach their plateau (about 99%); five leave them a few samples apart.
    for policy in ("float32", "mixed_bfloat16"):
        lm.utils.set_random_seed(0)
        model = lm.Sequential([lm.Input((64,)), lm.layers.Dense(64, activation="relu", dtype=policy),
                               lm.layers.Dense(10, activation="softmax", dtype=policy)])
        model.compile(lm.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"],
                      steps_per_execution=22)
        model.fit(x[train], y[train], batch_size=64, epochs=10, verbose=0)
        accuracy[policy] = model.evaluate(x[test], y[test], batch_size=389, verbose=0, return_dict=True)["accuracy"]
    # After fit under mixed_bfloat16: outputs bfloat16, every piece of state float32.
    assert model.predict(x[:4], verbose=0).dtype == jnp.bfloat16
    state = model.weights + model.metrics_variables + [v for v in model.optimizer.variables if v.dtype != jnp.int32]
    assert all(v.dtype == jnp.float32 for v in state)
    assert accuracy["float32"] > 0.95
    assert abs(accuracy["mixed_bfloat16"] - accuracy["float32"]) <= 0.005
