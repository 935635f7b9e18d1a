"""lm.jit and lm.value_and_grad: stateful code compiled, state threaded and written back."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from seed_layers import ComputeSum, Linear, MLPBlock, OuterLayer

import lamina as lm


def sgd_step(model, x, y, lr=0.05):
    """A plain SGD train step written statefully, as a user would before optimizers exist."""
    def loss_fn():
        return jnp.mean((model(x) - y) ** 2) + sum(model.losses, 0.0)

    loss, grads = lm.value_and_grad(loss_fn, model.trainable_weights)()
    for variable, grad in zip(model.trainable_weights, grads):
        variable.assign_sub(lr * grad)
    return loss


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.normal(size=(8, 4)), jnp.float32), jnp.asarray(rng.normal(size=(8, 1)), jnp.float32)


def test_assign_add_across_100_compiled_calls_counts_exactly():
    layer = ComputeSum(2)
    step = lm.jit(lambda x: layer(x))
    for _ in range(100):
        out = step(jnp.ones((3, 2)))
    np.testing.assert_array_equal(layer.total.numpy(), [300.0, 300.0])
    np.testing.assert_array_equal(out, [300.0, 300.0])


def test_eager_and_compiled_training_give_the_same_numbers(data):
    x, y = data
    lm.random.set_seed(1)
    eager_model = MLPBlock()
    eager_model(x)
    compiled_model = MLPBlock()
    compiled_model(x)
    compiled_model.set_weights(eager_model.get_weights())
    compiled_step = lm.jit(lambda x, y: sgd_step(compiled_model, x, y))
    for _ in range(3):
        eager_loss = sgd_step(eager_model, x, y)
        compiled_loss = compiled_step(x, y)
        np.testing.assert_allclose(compiled_loss, eager_loss, rtol=1e-5)
    for a, b in zip(compiled_model.get_weights(), eager_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_compiled_sgd_matches_a_hand_written_jax_step(data):
    x, y = data
    model = Linear(1)
    model(x)
    w, b = (jnp.asarray(a) for a in model.get_weights())
    step = lm.jit(lambda x, y: sgd_step(model, x, y, lr=0.1))
    step(x, y)
    grads = jax.grad(lambda p: jnp.mean((x @ p[0] + p[1] - y) ** 2))((w, b))
    np.testing.assert_allclose(model.w.numpy(), w - 0.1 * grads[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.b.numpy(), b - 0.1 * grads[1], rtol=1e-5, atol=1e-7)


def test_variables_are_readable_after_compiled_steps_despite_donation(data):
    x, y = data
    model = MLPBlock()
    model(x)
    step = lm.jit(lambda x, y: sgd_step(model, x, y))
    before = [v.numpy() for v in model.weights]
    for _ in range(3):
        step(x, y)
        for v in model.weights:  # every stored buffer is live: none is a donated one
            assert not v.value.is_deleted()
            np.asarray(v)
    assert any(not np.allclose(a, v.numpy()) for a, v in zip(before, model.weights))


def test_add_loss_of_nested_layers_under_jit():
    outer = OuterLayer()

    @lm.jit
    def forward(x):
        outer(x)
        return sum(outer.losses)

    np.testing.assert_allclose(forward(jnp.ones((2, 2))), 0.04, rtol=1e-6)
    np.testing.assert_allclose(forward(2 * jnp.ones((2, 2))), 0.08, rtol=1e-6)


def test_add_loss_counts_in_the_gradient():
    class Penalized(lm.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(), initializer="ones")

        def call(self, x):
            self.add_loss(3.0 * self.w * self.w)
            return x * self.w

    layer = Penalized()
    layer(jnp.ones(()))
    loss, (grad,) = lm.jit(lambda: lm.value_and_grad(lambda: layer(jnp.ones(())) + sum(layer.losses), [layer.w])())()
    assert float(loss) == 4.0 and float(grad) == 7.0  # d/dw (w + 3w^2) at w = 1


def test_dropout_masks_differ_at_each_compiled_step_and_repeat_under_set_seed():
    def masks():
        lm.random.set_seed(7)
        drop = lm.layers.Dropout(0.5)
        step = lm.jit(lambda x: drop(x, training=True))
        return [np.asarray(step(jnp.ones((64,)))) for _ in range(3)]

    first, again = masks(), masks()
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[1], first[2])
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_layer_first_built_inside_jit_gets_concrete_weights_that_train(data):
    x, y = data
    model = MLPBlock()
    step = lm.jit(lambda x, y: sgd_step(model, x, y))
    first_loss = step(x, y)
    assert len(model.weights) == 6
    assert all(not isinstance(v.value, jax.core.Tracer) for v in model.weights)
    for _ in range(20):
        loss = step(x, y)
    assert float(loss) < float(first_loss)


def test_freezing_a_layer_after_compiling_rebuilds_the_step(data):
    x, y = data
    model = MLPBlock()
    model(x)
    step = lm.jit(lambda x, y: sgd_step(model, x, y))
    step(x, y)
    model.linear_1.trainable = False
    frozen = [v.numpy() for v in model.linear_1.weights]
    moving = model.linear_3.w.numpy()
    step(x, y)
    for a, v in zip(frozen, model.linear_1.weights):
        np.testing.assert_array_equal(a, v.numpy())
    assert not np.array_equal(moving, model.linear_3.w.numpy())


def test_rediscovers_variables_touched_only_by_a_new_trace():
    a = lm.Variable(np.zeros(()), name="a")
    b = lm.Variable(np.zeros(()), name="b")

    @lm.jit
    def bump(x, which):
        (a if which == "a" else b).assign_add(x)
        return x

    bump(1.0, "a")
    bump(2.0, "b")  # a static argument changes the trace, which now writes `b`
    bump(3.0, "b")
    assert (float(a.value), float(b.value)) == (1.0, 5.0)


def test_variable_passed_as_argument_is_updated():
    counter = lm.Variable(np.zeros(()), trainable=False)
    inc = lm.jit(lambda v, n: v.assign_add(n))
    inc(counter, 2.0)
    inc(counter, 3.0)
    assert float(counter.value) == 5.0


def test_variables_sharing_one_buffer_can_both_be_updated():
    a = lm.Variable(np.ones(3, np.float32))
    b = lm.Variable(np.zeros(3, np.float32))
    b.assign(a.value)  # now both hold the same array

    @lm.jit
    def update():
        a.assign_add(jnp.ones(3))
        b.assign_sub(jnp.ones(3))

    update()
    np.testing.assert_array_equal(a.numpy(), 2 * np.ones(3))
    np.testing.assert_array_equal(b.numpy(), np.zeros(3))


def test_a_donated_buffer_passed_as_an_argument_is_copied_not_refused():
    a = lm.Variable(np.ones(3, np.float32))

    @lm.jit
    def add(x):
        a.assign(a.value + x)

    add(jnp.ones(3))
    held = add._compiled.values[0]  # the very buffer the next call donates
    add(held)  # XLA refuses f(donate(a), a): the shared buffer is found and copied
    np.testing.assert_array_equal(a.numpy(), 4 * np.ones(3))
    assert add._compiled.unshare


def test_non_array_arguments_are_static():
    v = lm.Variable(np.zeros(()))

    @lm.jit
    def f(x, mode, scale=1.0):
        v.assign(x * scale if mode == "scale" else x)
        return v.value

    assert float(f(jnp.array(2.0), "scale", scale=3.0)) == 6.0
    assert float(f(jnp.array(2.0), "plain")) == 2.0
    assert float(f(np.float32(4.0), mode="plain")) == 4.0


def test_a_leaf_that_changes_kind_between_calls_is_split_again():
    """A batch structure seen before is split with one flatten; a leaf in the same place
    that is now a string, a Variable or a Python number must still be static or traced as
    on a first call (the fast path remembers only all-array structures)."""
    total = lm.Variable(np.zeros((), np.float32), trainable=False)

    @lm.jit
    def f(pair):
        first, second = pair
        if isinstance(second, str):
            return first * (10.0 if second == "ten" else -1.0)
        if isinstance(second, lm.Variable):
            second.assign_add(jnp.sum(first))
            return second.value
        return first + second

    x = np.ones(2, np.float32)
    np.testing.assert_array_equal(f((x, np.full(2, 2.0, np.float32))), [3.0, 3.0])
    np.testing.assert_array_equal(f((x, np.full(2, 5.0, np.float32))), [6.0, 6.0])
    np.testing.assert_array_equal(f((x, "ten")), [10.0, 10.0])
    np.testing.assert_array_equal(f((x, "minus")), [-1.0, -1.0])
    assert float(f((x, total))) == 2.0
    assert float(f((x, total))) == 4.0  # the variable itself was threaded, and updated
    np.testing.assert_array_equal(f((x, 3.0)), [4.0, 4.0])
    np.testing.assert_array_equal(f((x, np.full(2, 7.0, np.float32))), [8.0, 8.0])


def test_value_and_grad_eager_matches_jax_grad_and_aligns_with_variables():
    w = lm.Variable(np.array([1.0, -2.0], np.float32))
    b = lm.Variable(np.array(0.5, np.float32))
    x = jnp.array([3.0, 4.0])
    (loss, aux), (gb, gw) = lm.value_and_grad(lambda x: (jnp.sum(w * x) ** 2 + b, "aux"), [b, w], has_aux=True)(x)
    expected = jax.grad(lambda w, b: jnp.sum(w * x) ** 2 + b, argnums=(0, 1))(w.value, b.value)
    np.testing.assert_allclose(gw, expected[0])
    np.testing.assert_allclose(gb, expected[1])
    assert aux == "aux" and float(loss) == 25.5


def test_value_and_grad_applies_writes_made_inside_the_loss_once():
    w = lm.Variable(np.array(2.0, np.float32))
    calls = lm.Variable(np.zeros(()), trainable=False)

    def loss_fn():
        calls.assign_add(1.0)
        return w * w

    _, (g,) = lm.value_and_grad(loss_fn, [w])()
    assert float(g) == 4.0 and float(calls.value) == 1.0
    lm.jit(lambda: lm.value_and_grad(loss_fn, [w])())()
    assert float(calls.value) == 2.0


def test_losses_added_inside_value_and_grad_are_visible_after_it():
    outer = OuterLayer()
    lm.value_and_grad(lambda: jnp.sum(outer(jnp.ones((2, 2)))), [])()
    np.testing.assert_allclose(outer.losses, [0.04], rtol=1e-6)


def test_compiled_function_exposes_the_variables_it_threads():
    layer = ComputeSum(2)
    f = lm.jit(lambda x: layer(x))
    f(jnp.ones((1, 2)))
    assert f.variables == [layer.total]


def test_arrays_a_user_holds_survive_later_compiled_steps():
    given = jnp.ones(2)
    v = lm.Variable(np.zeros(2, np.float32))
    v.assign(given)  # the user still holds `given`
    step = lm.jit(lambda: v.assign_add(1.0))
    step()
    held = v.value  # read between steps
    step()
    step()
    np.testing.assert_array_equal(given, [1.0, 1.0])
    np.testing.assert_array_equal(held, [2.0, 2.0])
    np.testing.assert_array_equal(v.numpy(), [4.0, 4.0])


def test_eager_writes_between_compiled_steps_are_seen():
    v = lm.Variable(np.zeros(()), trainable=False)
    step = lm.jit(lambda: v.assign_add(1.0))
    step()
    v.assign(10.0)
    step()
    assert float(v.value) == 11.0


def test_two_compiled_functions_sharing_variables_stay_consistent():
    v = lm.Variable(np.zeros(()), trainable=False)
    add_one = lm.jit(lambda: v.assign_add(1.0))
    double = lm.jit(lambda: v.assign(v * 2.0))
    add_one()
    double()
    add_one()
    double()
    assert float(v.value) == 6.0


def test_unrelated_structure_changes_do_not_recompile():
    traces = []
    v = lm.Variable(np.zeros(()), trainable=False)

    @lm.jit
    def bump(x):
        traces.append(1)  # runs once per Python trace
        v.assign_add(x)

    bump(1.0)
    first = len(traces)  # discovery + compilation
    lm.layers.Dropout(0.5)  # a new layer with state: the global structure version moves
    bump(1.0)
    assert len(traces) == first  # the function never consulted the new layer: no re-trace
    assert float(v.value) == 2.0


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the scheduler option is for XLA:CPU")
def test_compiled_step_uses_the_memory_optimized_xla_schedule_on_cpu():
    # The schedule shows in the size of XLA's temporary buffer: lm.jit's executable must match
    # a jax.jit of the same program with the memory-optimized scheduler, not the default one.
    ws = [lm.Variable(np.ones((256, 256), np.float32)) for _ in range(3)]
    x = jnp.ones((512, 256))
    loss_and_grads = lm.value_and_grad(lambda x: jnp.sum(jnp.tanh(jnp.tanh(x @ ws[0]) @ ws[1]) @ ws[2]), ws)

    @lm.jit
    def step(x):
        loss, grads = loss_and_grads(x)
        for w, g in zip(ws, grads):
            w.assign_sub(0.1 * g)
        return loss

    step(x)
    compiled = step._compiled
    args = (compiled.values, compiled.read_values, (x,), None)

    def temp_bytes(jitted):
        return jitted.lower(*args).compile().memory_analysis().temp_size_in_bytes

    def jit_with(options):
        return jax.jit(compiled.jitted.__wrapped__, static_argnums=(3,), donate_argnums=(0,), compiler_options=options)

    memory_optimized = temp_bytes(jit_with({"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}))
    assert memory_optimized != temp_bytes(jit_with(None))  # the two schedules differ here
    assert temp_bytes(compiled.jitted) == memory_optimized
