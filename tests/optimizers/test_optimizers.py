"""Optimizers against Keras 3 (on JAX) from the same weights and gradients, plus lamina's own
behaviour: state as variables, lm.jit, constraints, wrapping optax, errors, configs."""

import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lamina as lm
import lamina.optimizers  # noqa: F401  (lm.optimizers)
from lamina.optimizers import schedules

optimizers = lm.optimizers

# Agreement with Keras: the formulas are equal up to float32 rounding (optax divides by
# ``sqrt(v_hat) + eps_t`` where Keras multiplies ``m`` by ``sqrt(1 - b2**t) / (1 - b1**t)``;
# optax uses ``rsqrt``; clipping divides in another order), a few ulp of the weights.
RTOL, ATOL = 1e-5, 1e-7


@pytest.fixture(scope="module")
def data():
    """Weights of three shapes (matrix, vector, scalar) and gradients for three steps: normal,
    tiny with exact zeros (so that epsilon matters), and large (so that clipping acts)."""
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=s).astype("float32") for s in [(3, 4), (4,), ()]]
    small = [(rng.normal(size=w.shape) * 1e-3).astype("float32") for w in weights]
    small[0][0, :] = 0.0
    steps = [
        [rng.normal(size=w.shape).astype("float32") for w in weights],
        small,
        [(rng.normal(size=w.shape) * 3.0).astype("float32") for w in weights],
    ]
    return weights, steps


def _kwargs(kwargs, module):
    """Build the schedule in ``kwargs["learning_rate"]`` (a (class_name, config) pair) with
    ``module`` (Keras's or lamina's schedules)."""
    lr = kwargs.get("learning_rate")
    if isinstance(lr, tuple):
        return {**kwargs, "learning_rate": getattr(module, lr[0])(**lr[1])}
    return dict(kwargs)


def run_keras(keras, name, kwargs, weights, steps, lr_changes=None, exclude=None):
    variables = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
    opt = getattr(keras.optimizers, name)(**_kwargs(kwargs, keras.optimizers.schedules))
    if exclude:
        opt.exclude_from_weight_decay(var_names=exclude)
    history = []
    for i, grads in enumerate(steps):
        if lr_changes and i in lr_changes:
            opt.learning_rate = lr_changes[i]
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt.apply_gradients(pairs) if len(pairs) == len(variables) else opt.apply(
                [g for g, _ in pairs], [v for _, v in pairs])
        history.append([np.asarray(v.value) for v in variables])
    return history


def run_lamina(name, kwargs, weights, steps, lr_changes=None, exclude=None):
    variables = [lm.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
    opt = getattr(optimizers, name)(**_kwargs(kwargs, schedules))
    if exclude:
        opt.exclude_from_weight_decay(var_names=exclude)
    history = []
    for i, grads in enumerate(steps):
        if lr_changes and i in lr_changes:
            opt.learning_rate = lr_changes[i]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt.apply(grads, variables)
        history.append([v.numpy() for v in variables])
    return history, opt


def assert_same_history(ours, theirs, weights, rtol=RTOL, atol=ATOL):
    for step, (a_list, b_list) in enumerate(zip(ours, theirs)):
        for i, (a, b, w0) in enumerate(zip(a_list, b_list, weights)):
            msg = f"step {step + 1}, weight {i}"
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=msg)
            # The change itself, so that a wrong update of a small step cannot hide in the
            # weight's magnitude (a difference of the weights has their rounding, ~1e-7).
            np.testing.assert_allclose(a - w0, b - w0, rtol=1e-4, atol=1e-6, err_msg=msg)


LR = 0.1  # large enough that an error in the update shows in the weights
CASES = [
    ("SGD", {}),
    ("SGD", {"learning_rate": LR}),
    ("SGD", {"learning_rate": LR, "momentum": 0.9}),
    ("SGD", {"learning_rate": LR, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"learning_rate": LR, "momentum": 0.5, "weight_decay": 0.1}),
    ("Adam", {}),
    ("Adam", {"learning_rate": LR}),
    ("Adam", {"learning_rate": LR, "beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3}),
    ("Adam", {"learning_rate": LR, "amsgrad": True}),
    ("Adam", {"learning_rate": LR, "amsgrad": True, "epsilon": 1e-3}),
    ("AdamW", {}),
    ("AdamW", {"learning_rate": LR, "weight_decay": 0.1, "amsgrad": True}),
    ("RMSprop", {}),
    ("RMSprop", {"learning_rate": LR, "rho": 0.8}),
    ("RMSprop", {"learning_rate": LR, "momentum": 0.5}),
    ("RMSprop", {"learning_rate": LR, "centered": True, "epsilon": 1e-3}),
    ("RMSprop", {"learning_rate": LR, "centered": True, "momentum": 0.9}),
    ("Adagrad", {}),
    ("Adagrad", {"learning_rate": LR, "initial_accumulator_value": 0.0, "epsilon": 1e-3}),
    ("Lion", {}),
    ("Lion", {"learning_rate": LR, "beta_1": 0.5, "beta_2": 0.9, "weight_decay": 0.2}),
    # Clipping (Keras semantics): each kind, on optimizers with and without state.
    ("SGD", {"learning_rate": LR, "momentum": 0.9, "clipnorm": 0.5}),
    ("SGD", {"learning_rate": LR, "clipvalue": 0.2}),
    ("Adam", {"learning_rate": LR, "clipnorm": 0.5}),
    ("Adam", {"learning_rate": LR, "clipvalue": 0.2}),
    ("Adam", {"learning_rate": LR, "global_clipnorm": 1.0}),
    ("RMSprop", {"learning_rate": LR, "momentum": 0.5, "global_clipnorm": 0.3}),
    # Schedules, evaluated at `iterations` before each step.
    ("SGD", {"learning_rate": ("ExponentialDecay", {"initial_learning_rate": LR, "decay_steps": 1, "decay_rate": 0.5}),
             "momentum": 0.9}),
    ("Adam", {"learning_rate": ("PiecewiseConstantDecay", {"boundaries": [0, 1], "values": [0.1, 0.01, 0.3]})}),
    ("AdamW", {"learning_rate": ("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 4,
                                                 "warmup_target": 0.2, "warmup_steps": 2})}),
]


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_matches_keras(keras, data, name, kwargs):
    weights, steps = data
    theirs = run_keras(keras, name, kwargs, weights, steps)
    ours, opt = run_lamina(name, kwargs, weights, steps)
    assert_same_history(ours, theirs, weights)
    assert int(opt.iterations.value) == 3


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", {"learning_rate": LR, "momentum": 0.9}),  # optax.sgd would rescale the momentum
    ("RMSprop", {"learning_rate": LR, "momentum": 0.7}),
    ("Adam", {"learning_rate": LR}),
    ("AdamW", {"learning_rate": LR, "weight_decay": 0.3}),
])
def test_changing_learning_rate_matches_keras(keras, data, name, kwargs):
    weights, steps = data
    changes = {1: 0.02, 2: 0.5}
    theirs = run_keras(keras, name, kwargs, weights, steps, lr_changes=changes)
    ours, opt = run_lamina(name, kwargs, weights, steps, lr_changes=changes)
    assert_same_history(ours, theirs, weights)
    assert float(opt.learning_rate) == pytest.approx(0.5)


def test_missing_gradients_match_keras(keras, data):
    """A None gradient skips its variable (weights and slots), as in Keras."""
    weights, steps = data
    steps = [steps[0], [None, steps[1][1], steps[1][2]], [steps[2][0], None, steps[2][2]]]
    kwargs = {"learning_rate": LR, "momentum": 0.5}
    theirs = run_keras(keras, "RMSprop", kwargs, weights, steps)
    ours, opt = run_lamina("RMSprop", kwargs, weights, steps)
    assert_same_history(ours, theirs, weights)


def test_exclude_from_weight_decay_matches_keras(keras, data):
    weights, steps = data
    kwargs = {"learning_rate": LR, "weight_decay": 0.5}
    theirs = run_keras(keras, "AdamW", kwargs, weights, steps, exclude=["w1"])
    ours, _ = run_lamina("AdamW", kwargs, weights, steps, exclude=["w1"])
    assert_same_history(ours, theirs, weights)
    plain, _ = run_lamina("Adam", {"learning_rate": LR}, weights, steps)
    np.testing.assert_allclose(ours[-1][1], plain[-1][1], rtol=RTOL, atol=ATOL)  # not decayed


def test_subset_and_reordered_variables(keras, data):
    """After building, apply() takes any subset of the variables, in any order."""
    weights, steps = data
    variables = [lm.Variable(w) for w in weights]
    opt = optimizers.Adam(learning_rate=LR)
    opt.apply(steps[0], variables)
    opt.apply([steps[1][2], steps[1][0]], [variables[2], variables[0]])
    kv = [keras.Variable(w) for w in weights]
    kopt = keras.optimizers.Adam(learning_rate=LR)
    kopt.apply_gradients(zip(steps[0], kv))
    kopt.apply_gradients([(steps[1][2], kv[2]), (steps[1][0], kv[0])])
    for ours, theirs in zip(variables, kv):
        np.testing.assert_allclose(ours.numpy(), np.asarray(theirs.value), rtol=RTOL, atol=ATOL)


# -- state as variables ---------------------------------------------------------------------


def test_variables_names_and_order():
    kernel = lm.Variable(jnp.ones((2, 3)), name="dense/kernel")
    bias = lm.Variable(jnp.zeros((3,)), name="dense/bias")
    opt = optimizers.Adam(learning_rate=0.01, name="adam")
    assert [v.name for v in opt.variables] == ["adam/iterations", "adam/learning_rate"]
    opt.build([kernel, bias])
    assert [v.name for v in opt.variables] == [
        "adam/iterations", "adam/learning_rate", "adam/count",
        "adam/mu/dense/kernel", "adam/mu/dense/bias", "adam/nu/dense/kernel", "adam/nu/dense/bias",
    ]
    assert all(not v.trainable for v in opt.variables)
    assert opt.iterations.dtype == jnp.int32 and opt.variables[1].dtype == jnp.float32
    assert [v.shape for v in opt.variables[3:]] == [(2, 3), (3,), (2, 3), (3,)]
    # Chain positions appear only where names would collide (RMSprop centered + momentum).
    opt = optimizers.RMSprop(centered=True, momentum=0.5, name="rms")
    opt.build([kernel])
    assert [v.name for v in opt.variables[2:]] == ["rms/mu/dense/kernel", "rms/nu/dense/kernel",
                                                   "rms/trace/dense/kernel"]
    # Variables with the same path still get unique names.
    twins = [lm.Variable(jnp.ones(2)), lm.Variable(jnp.ones(2))]
    opt = optimizers.SGD(momentum=0.9, name="sgd")
    opt.build(twins)
    names = [v.name for v in opt.variables]
    assert len(set(names)) == len(names) == 4


def test_layer_holding_optimizer_keeps_its_state_out_of_variables():
    # As in Keras 3: an optimizer held in an attribute is not layer state; its variables
    # are listed by the optimizer (and saved by the model file under optimizer/...).
    class Holder(lm.Layer):
        def __init__(self):
            super().__init__()
            self.w = self.add_weight(shape=(2,), initializer="ones", name="w")
            self.optimizer = optimizers.SGD(momentum=0.9)

    holder = Holder()
    opt = holder.optimizer
    opt.apply([jnp.ones(2)], [holder.w])
    assert len(opt.variables) == 3
    assert [id(v) for v in holder.variables] == [id(holder.w)]
    assert holder.trainable_weights == [holder.w]
    assert opt.iterations.path == f"{opt.name}/iterations"


def test_first_apply_inside_jit_creates_concrete_slots_and_equals_eager(data):
    weights, steps = data
    compiled_vars = [lm.Variable(w) for w in weights]
    eager_vars = [lm.Variable(w) for w in weights]
    compiled_opt = optimizers.Adam(learning_rate=LR, amsgrad=True, clipnorm=1.0)
    eager_opt = optimizers.Adam(learning_rate=LR, amsgrad=True, clipnorm=1.0)
    traces = []

    @lm.jit
    def step(grads):
        traces.append(1)
        compiled_opt.apply(grads, compiled_vars)

    for grads in steps:
        step([jnp.asarray(g) for g in grads])
        eager_opt.apply(grads, eager_vars)
    assert compiled_opt.built and len(compiled_opt.variables) == 3 + 3 * len(weights)  # count; mu, nu, nu_max
    for slot in compiled_opt.variables:
        assert not isinstance(slot._stored_value(), jax.core.Tracer)
    assert int(compiled_opt.iterations.value) == 3
    for a, b in zip(compiled_vars, eager_vars):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    for a, b in zip(compiled_opt.variables, eager_opt.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    assert {id(v) for v in compiled_opt.variables} <= {id(v) for v in step.variables}

    # A new learning rate takes effect at the next call without tracing again.
    n_traces = len(traces)
    compiled_opt.learning_rate = 0.0
    before = [v.numpy() for v in compiled_vars]
    step([jnp.asarray(g) for g in steps[0]])
    assert len(traces) == n_traces
    for a, b in zip(compiled_vars, before):
        np.testing.assert_array_equal(a.numpy(), b)
    assert int(compiled_opt.iterations.value) == 4


def test_schedule_inside_jit_follows_iterations():
    w = lm.Variable(jnp.zeros(()))
    opt = optimizers.SGD(learning_rate=schedules.PiecewiseConstantDecay([0, 1], [1.0, 10.0, 100.0]))
    step = lm.jit(lambda g: opt.apply([g], [w]))
    for _ in range(4):
        step(jnp.float32(-1.0))
    assert float(w.value) == pytest.approx(1.0 + 10.0 + 100.0 + 100.0)
    assert float(opt.learning_rate) == pytest.approx(100.0)
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.1


def test_optax_schedule_and_zero_argument_function_as_learning_rate():
    w = lm.Variable(jnp.zeros(()))
    opt = optimizers.SGD(learning_rate=optax.piecewise_constant_schedule(1.0, {1: 10.0}))
    step = lm.jit(lambda g: opt.apply([g], [w]))
    for _ in range(3):
        step(jnp.float32(-1.0))
    assert float(w.value) == pytest.approx(1.0 + 10.0 + 10.0)
    opt = optimizers.SGD(learning_rate=lambda: 0.5)
    opt.apply([jnp.float32(-1.0)], [w])
    assert float(w.value) == pytest.approx(21.5)


def test_constraints_applied_after_update():
    w = lm.Variable(jnp.array([1.0, -1.0]), constraint=lm.constraints.NonNeg())
    v = lm.Variable(jnp.array([[3.0], [4.0]]), constraint=lm.constraints.MaxNorm(1.0))
    free = lm.Variable(jnp.array([1.0]))
    opt = optimizers.SGD(learning_rate=1.0)
    opt.apply([jnp.array([2.0, -3.0]), jnp.zeros((2, 1)), jnp.array([2.0])], [w, v, free])
    np.testing.assert_allclose(w.numpy(), [0.0, 2.0])
    np.testing.assert_allclose(np.linalg.norm(v.numpy()), 1.0, rtol=1e-6)
    np.testing.assert_allclose(free.numpy(), [-1.0])

    compiled = lm.jit(lambda g: opt.apply([g], [w]))
    compiled(jnp.array([5.0, 0.0]))
    np.testing.assert_allclose(w.numpy(), [0.0, 2.0])


def test_iterations_counts_and_empty_grads_are_a_no_op():
    w = lm.Variable(jnp.ones(3))
    opt = optimizers.Adagrad()
    opt.apply([], [])
    assert int(opt.iterations.value) == 0 and not opt.built
    for i in range(1, 4):
        opt.apply_gradients([(jnp.ones(3), w)])
        assert int(opt.iterations.value) == i


def test_missing_gradient_leaves_weight_and_slots_unchanged():
    a, b = lm.Variable(jnp.ones(2), name="a"), lm.Variable(jnp.ones(2), name="b")
    opt = optimizers.Adam(learning_rate=0.1, name="adam")
    opt.apply([jnp.ones(2), jnp.ones(2)], [a, b])
    slots_b = {v.name: v.numpy() for v in opt.variables if v.name.endswith("/b")}
    b_before, a_before = b.numpy(), a.numpy()
    with pytest.warns(UserWarning, match="'b'"):
        opt.apply([jnp.ones(2), None], [a, b])
    np.testing.assert_array_equal(b.numpy(), b_before)
    assert not np.array_equal(a.numpy(), a_before)
    for v in opt.variables:
        if v.name in slots_b:
            np.testing.assert_array_equal(v.numpy(), slots_b[v.name])
    with pytest.raises(ValueError, match="No gradients"):
        opt.apply([None, None], [a, b])


# -- wrapping optax ----------------------------------------------------------------------------


def _optax_reference(transform, weights, steps):
    params = [jnp.asarray(w) for w in weights]
    opt_state = transform.init(params)
    history = []
    for grads in steps:
        updates, opt_state = transform.update([jnp.asarray(g) for g in grads], opt_state, params)
        params = optax.apply_updates(params, updates)
        history.append([np.asarray(p) for p in params])
    return history


@pytest.mark.parametrize("make", [
    lambda: optax.adabelief(1e-2),
    lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-2, weight_decay=0.1)),
    lambda: optax.lamb(1e-2),
], ids=["adabelief", "chain-adamw", "lamb"])
def test_wraps_any_optax_transformation(data, make):
    weights, steps = data
    variables = [lm.Variable(w) for w in weights]
    opt = optimizers.Optimizer(make())
    compiled = lm.jit(lambda grads: opt.apply(grads, variables))
    for grads in steps:
        compiled([jnp.asarray(g) for g in grads])
    expected = _optax_reference(make(), weights, steps)[-1]
    for v, e in zip(variables, expected):
        np.testing.assert_allclose(v.numpy(), e, rtol=1e-6, atol=1e-7)
    assert int(opt.iterations.value) == 3
    assert opt.learning_rate is None
    with pytest.raises(TypeError, match="optax"):
        opt.learning_rate = 0.1
    with pytest.raises(NotImplementedError, match="cannot be serialized"):
        opt.get_config()


def test_wrapped_transform_with_lamina_learning_rate(data):
    """With learning_rate, the transform is the rate-free part; lamina scales by -lr."""
    weights, steps = data
    variables = [lm.Variable(w) for w in weights]
    opt = optimizers.Optimizer(optax.scale_by_adam(), learning_rate=0.01, global_clipnorm=1.0)
    for grads in steps:
        opt.apply(grads, variables)
    expected = _optax_reference(optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.01)), weights, steps)[-1]
    for v, e in zip(variables, expected):
        np.testing.assert_allclose(v.numpy(), e, rtol=1e-6, atol=1e-7)
    opt.learning_rate = 0.5
    assert float(opt.learning_rate) == 0.5


# -- errors ------------------------------------------------------------------------------------


def test_misaligned_gradients_name_the_variable():
    kernel = lm.Variable(jnp.ones((2, 3)), name="dense/kernel")
    bias = lm.Variable(jnp.ones((3,)), name="dense/bias")
    opt = optimizers.Adam()
    with pytest.raises(ValueError, match=r"'dense/kernel'.*\(3, 2\).*\(2, 3\)"):
        opt.apply([jnp.ones((3, 2)), jnp.ones(3)], [kernel, bias])
    with pytest.raises(ValueError, match=r"1 gradients for 2 variables.*'dense/bias'"):
        opt.apply([jnp.ones((2, 3))], [kernel, bias])
    with pytest.raises(ValueError, match=r"'dense/bias'.*\(2, 3\).*\(3,\)"):
        opt.apply([jnp.ones((2, 3)), jnp.ones((2, 3))], [kernel, bias])
    opt.apply([jnp.ones((2, 3)), jnp.ones(3)], [kernel, bias])
    stranger = lm.Variable(jnp.ones(1), name="stranger")
    with pytest.raises(ValueError, match="Unknown variable 'stranger'"):
        opt.apply([jnp.ones(1)], [stranger])
    with pytest.raises(ValueError, match="must already be built"):
        optimizers.SGD().apply([jnp.ones(1)])


def test_argument_errors():
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.Adam(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.AdamW(weight_decay=None)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="beta_1"):
        optimizers.Lion(beta_1=0.0)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate="fast")
    with pytest.raises(ValueError, match="optax transformation"):
        optimizers.Optimizer()
    with pytest.raises(TypeError, match="GradientTransformation"):
        optimizers.Optimizer(lambda g: g)


# -- configs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, cls", [("sgd", "SGD"), ("adam", "Adam"), ("adamw", "AdamW"),
                                       ("rmsprop", "RMSprop"), ("adagrad", "Adagrad"), ("lion", "Lion"),
                                       ("Adam", "Adam")])
def test_get_resolves_names_with_keras_defaults(keras, name, cls):
    opt = optimizers.get(name)
    assert type(opt).__name__ == cls
    ours = opt.get_config()
    theirs = getattr(keras.optimizers, cls)().get_config()
    for key, value in ours.items():
        if key != "name":
            assert value == pytest.approx(theirs[key]) if isinstance(value, float) else value == theirs[key], key


def test_get_serialize_deserialize_round_trip():
    sched = schedules.CosineDecay(0.1, decay_steps=100, warmup_target=0.5, warmup_steps=10)
    opt = optimizers.SGD(learning_rate=sched, momentum=0.9, nesterov=True, clipnorm=2.0, name="mine")
    config = json.loads(json.dumps(optimizers.serialize(opt)))
    assert config["class_name"] == "SGD"
    again = optimizers.deserialize(config)
    assert type(again) is optimizers.SGD and again.get_config() == opt.get_config()
    assert isinstance(again._learning_rate, schedules.CosineDecay)
    assert optimizers.get(opt) is opt
    assert type(optimizers.get(optimizers.Lion)) is optimizers.Lion
    adamw = optimizers.AdamW(learning_rate=0.003, weight_decay=0.1, amsgrad=True)
    assert optimizers.get(optimizers.serialize(adamw)).get_config() == adamw.get_config()
    assert optimizers.AdamW.from_config(adamw.get_config()).get_config() == adamw.get_config()
    assert adamw.get_config()["learning_rate"] == 0.003
    with pytest.raises(ValueError, match="Unknown optimizer"):
        optimizers.get("adamax_plus")
