"""Per-root invalidation of compiled functions (issue 10 item 6).

A compiled function re-traces only when an object its trace consulted changed structure:
building or calling unrelated layers and models leaves it alone; a sublayer added or replaced,
a ``trainable`` flag flipped, a weight added, its optimizer built, a metric attached, a
Sequential grown or shrunk does re-trace it, and the numbers afterwards follow the change.
Traces are counted with a Python counter in the traced function (Python runs only while
tracing).
"""

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm


class Counter:
    def __init__(self):
        self.n = 0

    def __call__(self):
        self.n += 1


def _data(rows=8, features=4):
    rng = np.random.default_rng(0)
    return rng.normal(size=(rows, features)).astype("float32"), rng.normal(size=(rows, 1)).astype("float32")


def _sgd_step(model, optimizer, traces):
    @lm.jit
    def step(x, y):
        traces()

        def loss_fn():
            return jnp.mean((model(x) - y) ** 2)

        loss, grads = lm.value_and_grad(loss_fn, model.trainable_weights)()
        optimizer.apply(grads, model.trainable_weights)
        return loss

    return step


def _unrelated_work():
    """Everything a user might do with other layers and models between two steps."""
    other = lm.Sequential([lm.layers.Dense(3), lm.layers.Dense(1)])
    other(np.ones((2, 5), "float32"))
    inputs = lm.Input(shape=(5,))
    functional = lm.Model(inputs, lm.layers.Dense(2)(inputs))
    functional(np.ones((2, 5), "float32"))
    functional.layers[-1].trainable = False
    lonely = lm.layers.Dense(7)
    lonely.build((None, 3))
    lonely.extra = lm.Variable(jnp.zeros(2))
    lm.optimizers.Adam().build(other.trainable_weights)
    lm.Variable(jnp.zeros(3)).trainable = False


def test_unrelated_layers_and_models_do_not_retrace_a_train_step():
    x, y = _data()
    model = lm.Sequential([lm.layers.Dense(8, activation="relu"), lm.layers.Dense(1)])
    traces = Counter()
    step = _sgd_step(model, lm.optimizers.SGD(0.01), traces)
    step(x, y)
    step(x, y)
    after_compile = traces.n
    _unrelated_work()
    step(x, y)
    _unrelated_work()
    step(x, y)
    assert traces.n == after_compile


def test_unrelated_model_does_not_retrace_fit():
    x, y = _data(32)
    model = lm.Sequential([lm.Input(shape=(4,)), lm.layers.Dense(8), lm.layers.Dense(1)])
    model.compile(lm.optimizers.SGD(0.01), "mse", steps_per_execution=1)
    traces = Counter()
    original = model.train_step

    def counted_train_step(data):
        traces()
        return original(data)

    model.train_step = counted_train_step
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    after_first_fit = traces.n
    _unrelated_work()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert traces.n == after_first_fit


def test_lm_jit_function_is_kept_when_another_layer_is_built():
    layer = lm.layers.Dense(3)
    traces = Counter()

    @lm.jit
    def forward(x):
        traces()
        return layer(x)

    x = jnp.ones((2, 4))
    first = forward(x)
    after_compile = traces.n
    lm.layers.Dense(5)(jnp.ones((1, 2)))
    np.testing.assert_allclose(forward(x), first)
    assert traces.n == after_compile


def _trained(step, x, y, steps=2):
    for _ in range(steps):
        step(x, y)


def test_freezing_a_layer_after_a_step_retraces_and_stops_its_updates():
    x, y = _data()
    model = lm.Sequential([lm.layers.Dense(8, activation="relu"), lm.layers.Dense(1)])
    traces = Counter()
    step = _sgd_step(model, lm.optimizers.SGD(0.1), traces)
    _trained(step, x, y)
    before = traces.n
    first = model.layers[0]
    first.trainable = False
    frozen = [w.numpy() for w in first.weights]
    moving = [w.numpy() for w in model.layers[1].weights]
    _trained(step, x, y)
    assert traces.n > before
    for old, new in zip(frozen, first.weights):
        np.testing.assert_array_equal(old, new.numpy())
    assert any(not np.array_equal(old, new.numpy()) for old, new in zip(moving, model.layers[1].weights))


def test_variable_trainable_flag_retraces():
    x, y = _data()
    model = lm.Sequential([lm.layers.Dense(1)])
    traces = Counter()
    step = _sgd_step(model, lm.optimizers.SGD(0.1), traces)
    _trained(step, x, y)
    before = traces.n
    bias = model.layers[0].bias
    bias.trainable = False
    kept = bias.numpy()
    _trained(step, x, y)
    assert traces.n > before
    np.testing.assert_array_equal(bias.numpy(), kept)


class Block(lm.Layer):
    def __init__(self):
        super().__init__()
        self.inner = lm.layers.Dense(2, kernel_initializer="ones", use_bias=False)

    def call(self, x):
        out = self.inner(x)
        if hasattr(self, "scale"):
            out = out * self.scale
        return out


def test_replacing_a_sublayer_retraces_with_the_new_weights():
    block = Block()
    traces = Counter()

    @lm.jit
    def forward(x):
        traces()
        return block(x)

    x = jnp.ones((1, 3))
    np.testing.assert_allclose(forward(x), [[3.0, 3.0]])
    before = traces.n
    block.inner = lm.layers.Dense(2, kernel_initializer="zeros", use_bias=False)
    np.testing.assert_allclose(forward(x), [[0.0, 0.0]])
    assert traces.n > before


def test_adding_a_weight_retraces():
    block = Block()
    traces = Counter()

    @lm.jit
    def forward(x):
        traces()
        return block(x)

    x = jnp.ones((1, 3))
    forward(x)
    before = traces.n
    block.scale = lm.Variable(jnp.full((2,), 2.0))
    np.testing.assert_allclose(forward(x), [[6.0, 6.0]])
    assert traces.n > before


def test_weight_added_to_a_nested_layer_retraces_a_step_reading_trainable_weights():
    block = Block()
    traces = Counter()
    x = jnp.ones((1, 3))
    block(x)

    @lm.jit
    def count_weights():
        traces()
        return jnp.asarray(float(len(block.trainable_weights)))

    assert float(count_weights()) == 1.0
    before = traces.n
    block.inner.add_weight(shape=(1,), initializer="ones", name="extra")
    assert float(count_weights()) == 2.0
    assert traces.n > before


def test_optimizer_built_outside_retraces_a_function_that_read_it():
    w = lm.Variable(jnp.ones(2))
    optimizer = lm.optimizers.SGD(0.1)
    traces = Counter()

    @lm.jit
    def slots():
        traces()
        return jnp.asarray(float(len(optimizer.variables)) + (10.0 if optimizer.built else 0.0))

    unbuilt = float(slots())
    before = traces.n
    optimizer.build([w])
    assert float(slots()) != unbuilt
    assert traces.n > before


def test_metric_attached_to_the_model_retraces_a_step_updating_model_metrics():
    model = lm.Sequential([lm.Input(shape=(3,)), lm.layers.Dense(1, kernel_initializer="ones")])
    model.compile("sgd", "mse")
    traces = Counter()

    @lm.jit
    def update(x):
        traces()
        for metric in model.metrics:
            if isinstance(metric, lm.metrics.Mean):
                metric.update_state(jnp.sum(model(x)))
        return jnp.zeros(())

    x = jnp.ones((2, 3))
    update(x)
    before = traces.n
    model.tracker = lm.metrics.Mean(name="tracker")
    update(x)
    assert traces.n > before
    assert float(model.tracker.result()) == pytest.approx(6.0)  # sum of [3, 3], updated once


def test_sequential_add_and_pop_retrace():
    model = lm.Sequential([lm.layers.Dense(2, kernel_initializer="ones", use_bias=False)])
    traces = Counter()

    @lm.jit
    def forward(x):
        traces()
        return model(x)

    x = jnp.ones((1, 3))
    np.testing.assert_allclose(forward(x), [[3.0, 3.0]])
    before = traces.n
    model.add(lm.layers.Dense(1, kernel_initializer="ones", use_bias=False))
    np.testing.assert_allclose(forward(x), [[6.0]])
    after_add = traces.n
    assert after_add > before
    model.pop()
    np.testing.assert_allclose(forward(x), [[3.0, 3.0]])
    assert traces.n > after_add


class Lazy(lm.Layer):
    """Creates a sublayer at its first call (inside the compiled function's trace)."""

    def call(self, x):
        if not hasattr(self, "head"):
            self.head = lm.layers.Dense(1, kernel_initializer="ones", use_bias=False)
        return self.head(x)


def test_layer_built_for_the_first_time_inside_the_function_joins_the_state():
    layer = Lazy()
    traces = Counter()
    x, y = jnp.ones((2, 3)), jnp.zeros((2, 1))
    optimizer = lm.optimizers.SGD(0.1)

    @lm.jit
    def step(x, y):
        traces()
        loss, grads = lm.value_and_grad(lambda: jnp.mean((layer(x) - y) ** 2), layer.trainable_weights)()
        optimizer.apply(grads, layer.trainable_weights)
        return loss

    first = float(step(x, y))
    assert first == pytest.approx(9.0)
    # The trace that built the layer saw an empty trainable_weights list; the structure change
    # makes the next call trace again with the new kernel, which then trains.
    losses = [float(step(x, y)) for _ in range(3)]
    assert losses[-1] < first
    settled = traces.n
    step(x, y)
    assert traces.n == settled


def test_a_branch_taken_only_for_a_new_input_shape_is_tracked_too():
    small, large = lm.layers.Dense(1, kernel_initializer="ones"), lm.layers.Dense(1, kernel_initializer="ones")
    optimizers = {}
    for layer in (small, large):  # everything built up front: no structure changes in a trace
        layer(jnp.ones((1, 3)))
        optimizers[id(layer)] = lm.optimizers.SGD(0.1)
        optimizers[id(layer)].build(layer.trainable_weights)
    traces = Counter()

    @lm.jit
    def step(x):
        traces()
        layer = large if x.shape[0] > 2 else small  # discovery (2 rows) never sees `large`
        optimizer = optimizers[id(layer)]
        loss, grads = lm.value_and_grad(lambda: jnp.mean(layer(x) ** 2), layer.trainable_weights)()
        optimizer.apply(grads, layer.trainable_weights)
        return loss

    step(jnp.ones((2, 3)))
    step(jnp.ones((4, 3)))  # jax.jit traces the other branch for the new shape
    before = traces.n
    large.trainable = False
    kept = [w.numpy() for w in large.weights]
    step(jnp.ones((4, 3)))
    assert traces.n > before
    for old, new in zip(kept, large.weights):
        np.testing.assert_array_equal(old, new.numpy())
