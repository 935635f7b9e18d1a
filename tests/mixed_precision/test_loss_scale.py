"""LossScaleOptimizer: skipped non-finite steps (bit-unchanged state), halving and growth of
the scale, compile's wrapping under mixed_float16, custom lm.jit loops, saving."""

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm


@pytest.fixture(autouse=True)
def float32_afterwards():
    yield
    lm.mixed_precision.set_dtype_policy("float32")


def _model(policy="mixed_float16"):
    lm.utils.set_random_seed(0)
    return lm.Sequential([lm.Input((4,)), lm.layers.Dense(8, activation="relu", dtype=policy),
                          lm.layers.Dense(1, dtype=policy)])


def _data(n=16):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


def _snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


def test_compile_wraps_only_under_mixed_float16():
    lm.mixed_precision.set_dtype_policy("mixed_float16")
    model = lm.Sequential([lm.Input((4,)), lm.layers.Dense(1)])
    model.compile(lm.optimizers.Adam(0.01), "mse")
    assert isinstance(model.optimizer, lm.optimizers.LossScaleOptimizer)
    assert isinstance(model.optimizer.inner_optimizer, lm.optimizers.Adam)
    given = lm.optimizers.LossScaleOptimizer(lm.optimizers.SGD(), initial_scale=4.0)
    model.compile(given, "mse")
    assert model.optimizer is given  # not wrapped twice
    lm.mixed_precision.set_dtype_policy("mixed_bfloat16")
    bf16 = lm.Sequential([lm.Input((4,)), lm.layers.Dense(1)])
    bf16.compile("adam", "mse")
    assert type(bf16.optimizer) is lm.optimizers.Adam


def test_non_finite_step_in_fit_leaves_weights_and_optimizer_state_bit_unchanged():
    lm.mixed_precision.set_dtype_policy("mixed_float16")
    model = _model()
    model.compile(lm.optimizers.Adam(0.01), "mse")
    optimizer = model.optimizer
    x, y = _data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # one finite step: slots are non-zero
    assert int(optimizer.iterations) == 1 and float(optimizer.dynamic_scale) == 2.0**15
    weights, state = _snapshot(model.weights), _snapshot(optimizer.inner_optimizer.variables)
    bad = x.copy()
    bad[3, 1] = np.inf  # the gradients of this batch are not finite
    model.fit(bad, y, batch_size=16, epochs=1, verbose=0)
    for before, after in zip(weights + state, _snapshot(model.weights + optimizer.inner_optimizer.variables)):
        np.testing.assert_array_equal(before, after)
    assert int(optimizer.iterations) == 1
    assert float(optimizer.dynamic_scale) == 2.0**14 and int(optimizer.step_counter) == 0


def test_scale_grows_after_the_growth_steps_and_gradients_are_unscaled():
    w = lm.Variable(jnp.array([1.0, 2.0]))
    plain_w = lm.Variable(jnp.array([1.0, 2.0]))
    optimizer = lm.optimizers.LossScaleOptimizer(lm.optimizers.SGD(0.1), initial_scale=64.0, dynamic_growth_steps=3)
    plain = lm.optimizers.SGD(0.1)
    for step in range(1, 7):
        grad = jnp.array([0.5, -0.25]) * step
        optimizer.apply([grad * optimizer.dynamic_scale.value if optimizer.built else grad * 64.0], [w])
        plain.apply([grad], [plain_w])
        expected_scale = 64.0 * 2 ** (step // 3)
        assert float(optimizer.dynamic_scale) == expected_scale
        assert int(optimizer.step_counter) == step % 3
    # The inner optimizer saw the unscaled gradients (powers of two: exact).
    np.testing.assert_array_equal(w.numpy(), plain_w.numpy())
    assert int(optimizer.iterations) == 6


def test_custom_jit_loop_with_scale_loss_and_stateless_apply():
    model = _model("mixed_float16")
    optimizer = lm.optimizers.LossScaleOptimizer(lm.optimizers.SGD(0.1), initial_scale=1024.0)
    x, y = _data()

    @lm.jit
    def train_step(x, y):
        def loss_fn():
            loss = jnp.mean((model(x).astype("float32") - y) ** 2)
            return optimizer.scale_loss(loss), loss

        (_, loss), grads = lm.value_and_grad(loss_fn, model.trainable_weights, has_aux=True)()
        optimizer.apply(grads, model.trainable_weights)
        return loss

    losses = [float(train_step(x, y)) for _ in range(5)]
    assert losses[-1] < losses[0] and int(optimizer.iterations) == 5
    # stateless_apply with a non-finite gradient: the same values come back, scale halved.
    values = [v.value for v in model.trainable_variables]
    grads = [jnp.full(v.shape, jnp.nan) for v in model.trainable_variables]
    new_values, new_state = optimizer.stateless_apply([v.value for v in optimizer.variables], grads, values)
    for old, new in zip(values, new_values):
        np.testing.assert_array_equal(np.asarray(old), np.asarray(new))
    assert float(new_state[1]) == 512.0 and float(optimizer.dynamic_scale) == 1024.0


def test_loss_scale_optimizer_state_and_config_are_saved(tmp_path):
    lm.mixed_precision.set_dtype_policy("mixed_float16")
    model = _model()
    model.compile(lm.optimizers.LossScaleOptimizer(lm.optimizers.Adam(0.01), initial_scale=256.0,
                                                   dynamic_growth_steps=2), "mse")
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)  # four steps: the scale grew twice
    assert float(model.optimizer.dynamic_scale) == 1024.0
    model.save(tmp_path / "m.lamina")
    loaded = lm.load_model(tmp_path / "m.lamina")
    assert isinstance(loaded.optimizer, lm.optimizers.LossScaleOptimizer)
    assert loaded.optimizer.dynamic_growth_steps == 2
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert lm.optimizers.get(lm.optimizers.serialize(model.optimizer)).get_config() == model.optimizer.get_config()


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="wraps an lm.optimizers.Optimizer"):
        lm.optimizers.LossScaleOptimizer("adam")
    with pytest.raises(ValueError, match="dynamic_growth_steps must be an integer >= 1"):
        lm.optimizers.LossScaleOptimizer(lm.optimizers.SGD(), dynamic_growth_steps=0)
    with pytest.raises(ValueError, match="does not support `clipnorm`"):
        lm.optimizers.LossScaleOptimizer(lm.optimizers.SGD(), clipnorm=1.0)
