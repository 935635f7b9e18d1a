"""Keras 3's optimizer options on every lamina optimizer: gradient accumulation, the moving
average of the weights (EMA, its overwrite and ``finalize_variable_values``) and loss scaling,
against Keras 3 (on JAX) from the same weights and gradients over seven steps, so that an
accumulation of 3 and an EMA overwrite every 2 iterations both happen; then configs, saving,
custom loops and ``fit``."""

import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optimizer_cases import regression_xy

import lamina as lm
import lamina.optimizers  # noqa: F401  (lm.optimizers)
from lamina.optimizers import schedules

optimizers = lm.optimizers

RTOL, ATOL = 1e-5, 1e-6  # float32 rounding of a few ulp, as in test_optimizers.py
LR = 0.1
STEPS = 7
ACCUMULATE = {"gradient_accumulation_steps": 3}
EMA = {"use_ema": True, "ema_momentum": 0.8, "ema_overwrite_frequency": 2}
EMA_ONLY = {"use_ema": True, "ema_momentum": 0.7}
SCALE = {"loss_scale_factor": 8.0}
OPTIMIZERS = [
    ("SGD", {"momentum": 0.9}),
    ("Adam", {}),
    ("AdamW", {"weight_decay": 0.1}),
    ("RMSprop", {"momentum": 0.5}),
    ("Adagrad", {}),
    ("Lion", {}),
]


@pytest.fixture(scope="module")
def data():
    """Three weights (matrix, vector, scalar) and seven steps of gradients, every third one
    large so that clipping acts."""
    rng = np.random.default_rng(1)
    weights = [rng.normal(size=s).astype("float32") for s in [(3, 4), (4,), ()]]
    steps = [[(rng.normal(size=w.shape) * (3.0 if i % 3 == 2 else 1.0)).astype("float32") for w in weights]
             for i in range(STEPS)]
    return weights, steps


def _schedule(kwargs, module):
    lr = kwargs.get("learning_rate")
    if isinstance(lr, tuple):
        return {**kwargs, "learning_rate": getattr(module, lr[0])(**lr[1])}
    return dict(kwargs)


def run_keras(keras, name, kwargs, weights, steps):
    """Keras's numbers: its own ``stateless_apply`` (the same ``apply``) under ``jax.jit``,
    which is how Keras runs on JAX and much faster than its eager gradient accumulation.
    Returns the weights after each step, the optimizer and its (updated) variables."""
    variables = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
    opt = getattr(keras.optimizers, name)(**_schedule(kwargs, keras.optimizers.schedules))
    opt.build(variables)
    apply = jax.jit(opt.stateless_apply)
    opt_values, values = [v.value for v in opt.variables], [v.value for v in variables]
    history = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about missing gradients
        for grads in steps:
            values, opt_values = apply(opt_values, grads, values)
            history.append([np.asarray(v) for v in values])
    for v, value in zip([*variables, *opt.variables], [*values, *opt_values]):
        v.assign(value)
    return history, opt, variables


def run_lamina(name, kwargs, weights, steps, compiled=False):
    variables = [lm.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
    opt = getattr(optimizers, name)(**_schedule(kwargs, schedules))

    def step(grads):
        opt.apply(grads, variables)

    step = lm.jit(step) if compiled else step
    history = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for grads in steps:
            step(grads)
            history.append([v.numpy() for v in variables])
    return history, opt, variables


def assert_close(ours, theirs, what):
    for i, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL, err_msg=f"{what}, weight {i}")


def compare(keras, name, kwargs, data, compiled=False, steps=None):
    weights, default_steps = data
    steps = steps or default_steps
    theirs, kopt, kvars = run_keras(keras, name, kwargs, weights, steps)
    ours, opt, variables = run_lamina(name, kwargs, weights, steps, compiled)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        assert_close(a, b, f"{name} {kwargs}, step {step + 1}")
    assert int(opt.iterations.value) == int(kopt.iterations)
    if kwargs.get("use_ema"):
        assert_close([a.value for a in opt._averages], [a.value for a in kopt._model_variables_moving_average],
                     "moving average")
        kopt.finalize_variable_values(kvars)
        opt.finalize_variable_values(variables)
        assert_close([v.value for v in variables], [v.value for v in kvars], "after finalize_variable_values")
    return opt, variables


# -- each optimizer with each option ----------------------------------------------------------------------


@pytest.mark.parametrize("option", [ACCUMULATE, EMA, EMA_ONLY], ids=["accumulate", "ema_overwrite", "ema"])
@pytest.mark.parametrize("name, base", OPTIMIZERS, ids=[n for n, _ in OPTIMIZERS])
def test_option_matches_keras(keras, data, name, base, option):
    opt, variables = compare(keras, name, {"learning_rate": LR, **base, **option}, data)
    if option is ACCUMULATE:
        # Seven calls, three per update: two updates, one gradient waiting.
        assert int(opt.iterations.value) == 2 and int(opt._accumulated_steps.value) == 1
        np.testing.assert_allclose(opt._accumulators[1].numpy(), data[1][6][1], rtol=1e-6)


@pytest.mark.parametrize("name, base", OPTIMIZERS, ids=[n for n, _ in OPTIMIZERS])
def test_loss_scale_factor_matches_keras(keras, data, name, base):
    """``apply`` divides the gradients by the factor: gradients of a scaled loss give the
    unscaled run's numbers (and Keras's)."""
    weights, steps = data
    scaled = [[g * SCALE["loss_scale_factor"] for g in grads] for grads in steps]
    kwargs = {"learning_rate": LR, **base, **SCALE}
    compare(keras, name, kwargs, data, steps=scaled)
    plain, _, _ = run_lamina(name, {"learning_rate": LR, **base}, weights, steps)
    scaled_run, _, _ = run_lamina(name, kwargs, weights, scaled)
    assert_close(scaled_run[-1], plain[-1], "scaled gradients vs plain")


# -- combinations, compiled with lm.jit ------------------------------------------------------------------

COMBINATIONS = [
    ("Adam", {**ACCUMULATE, "clipnorm": 0.5}),
    ("RMSprop", {"momentum": 0.5, "gradient_accumulation_steps": 2, "global_clipnorm": 0.8}),
    ("SGD", {"momentum": 0.9, **ACCUMULATE, **EMA}),
    ("AdamW", {"weight_decay": 0.2, **EMA}),
    ("Lion", {"weight_decay": 0.3, **EMA_ONLY, "clipvalue": 0.5}),
    ("Adam", {**ACCUMULATE, **SCALE, **EMA}),
    # Schedules follow the calls, not the updates (Keras: "real" iterations).
    ("SGD", {**ACCUMULATE, "learning_rate": ("ExponentialDecay", {"initial_learning_rate": LR, "decay_steps": 1,
                                                                  "decay_rate": 0.7})}),
]


@pytest.mark.parametrize("name, kwargs", COMBINATIONS, ids=[f"{n}-{sorted(k)}" for n, k in COMBINATIONS])
def test_combination_matches_keras_under_jit(keras, data, name, kwargs):
    compare(keras, name, {"learning_rate": LR, **kwargs}, data, compiled=True)


def test_missing_gradients_with_accumulation_and_ema_match_keras(keras, data):
    """A ``None`` gradient leaves its weight and accumulator alone; the moving average still
    follows every weight (Keras)."""
    weights, steps = data
    steps = [[None if (i + j) % 4 == 0 else g for j, g in enumerate(grads)] for i, grads in enumerate(steps)]
    compare(keras, "Adam", {"learning_rate": LR, **ACCUMULATE, **EMA}, data, steps=steps)


def test_constraints_apply_at_every_call_as_keras(keras):
    """Between updates the weights stay as they are, but Keras still applies constraints at
    every call (after the EMA overwrite): a weight that starts outside its constraint is
    projected at the first call."""
    start, grads = np.array([-1.0, 2.0, 0.5], "float32"), np.array([1.0, -3.0, 2.0], "float32")
    kwargs = {"learning_rate": 0.4, **ACCUMULATE, "use_ema": True, "ema_overwrite_frequency": 1}
    kvar = keras.Variable(start)
    kvar.constraint = keras.constraints.NonNeg()
    kopt = keras.optimizers.SGD(**kwargs)
    kopt.build([kvar])
    ours = lm.Variable(start)
    ours.constraint = lm.constraints.NonNeg()
    opt = optimizers.SGD(**kwargs)
    keras_values, opt_values = [kvar.value], [v.value for v in kopt.variables]
    for step in range(4):
        keras_values, opt_values = kopt.stateless_apply(opt_values, [grads], keras_values)
        opt.apply([grads], [ours])
        np.testing.assert_allclose(ours.numpy(), np.asarray(keras_values[0]), rtol=RTOL, atol=ATOL,
                                   err_msg=f"call {step + 1}")
    assert ours.numpy().min() >= 0.0


def test_optax_wrapper_takes_the_options(keras, data):
    """``Optimizer(optax.sgd(...))`` (a complete optax optimizer) accumulates and averages as
    Keras's SGD with the same options (the two momentum formulas agree at a fixed rate)."""
    weights, steps = data
    options = {**ACCUMULATE, **EMA}
    theirs, kopt, kvars = run_keras(keras, "SGD", {"learning_rate": LR, "momentum": 0.9, **options}, weights, steps)
    variables = [lm.Variable(w) for w in weights]
    opt = optimizers.Optimizer(optax.sgd(LR, momentum=0.9), **options)
    step = lm.jit(lambda grads: opt.apply(grads, variables))
    for grads, expected in zip(steps, theirs):
        step(grads)
        assert_close([v.value for v in variables], expected, "optax wrapper")
    assert int(opt.iterations.value) == int(kopt.iterations) == 2


def test_stateless_apply_with_the_options_matches_keras(keras, data):
    """``jax.jit(optimizer.stateless_apply)`` (Keras-on-JAX custom loops) carries the
    accumulators, the averages and the accumulation counter in ``optimizer_variables``."""
    weights, steps = data
    kwargs = {"learning_rate": LR, **ACCUMULATE, **EMA, **SCALE}
    theirs, kopt, _ = run_keras(keras, "Adam", kwargs, weights, steps)
    variables = [lm.Variable(w) for w in weights]
    opt = optimizers.Adam(**kwargs)
    opt.build(variables)
    apply = jax.jit(opt.stateless_apply)
    values, opt_values = [v.value for v in variables], [v.value for v in opt.variables]
    for grads, expected in zip(steps, theirs):
        values, opt_values = apply(opt_values, grads, values)
        assert_close(values, expected, "stateless_apply")
    assert [w.tolist() for w in weights] == [v.numpy().tolist() for v in variables]  # nothing written
    assert int(opt_values[0]) == int(kopt.iterations) == 2


def test_eager_and_compiled_agree(data):
    weights, steps = data
    kwargs = {"learning_rate": LR, **ACCUMULATE, **EMA, **SCALE, "clipnorm": 1.0}
    eager, _, _ = run_lamina("Adam", kwargs, weights, steps)
    compiled, _, _ = run_lamina("Adam", kwargs, weights, steps, compiled=True)
    for a, b in zip(eager, compiled):
        assert_close(a, b, "eager vs lm.jit")


# -- variables, configs, errors -------------------------------------------------------------------------


def test_option_variables_are_optimizer_state():
    kernel = lm.Variable(jnp.ones((2, 3)), name="dense/kernel")
    opt = optimizers.SGD(name="sgd", **ACCUMULATE, **EMA)
    opt.build([kernel])
    names = [v.name for v in opt.variables]
    assert names == ["sgd/iterations", "sgd/learning_rate", "sgd/accumulated_steps",
                     "sgd/gradient_accumulator/dense/kernel", "sgd/average/dense/kernel"]
    assert all(not v.trainable for v in opt.variables)
    plain = optimizers.SGD(name="plain")
    plain.build([kernel])
    assert [v.name for v in plain.variables] == ["plain/iterations", "plain/learning_rate"]


ALL_OPTIONS = {"use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 3, "loss_scale_factor": 32.0,
               "gradient_accumulation_steps": 4}


@pytest.mark.parametrize("cls", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Lion"])
def test_config_has_keras_keys_and_round_trips(keras, cls):
    opt = getattr(optimizers, cls)(**ALL_OPTIONS)
    config = opt.get_config()
    theirs = getattr(keras.optimizers, cls)(**ALL_OPTIONS).get_config()
    assert set(config) == set(theirs)
    assert {k: config[k] for k in ALL_OPTIONS} == {k: theirs[k] for k in ALL_OPTIONS} == ALL_OPTIONS
    for serialize, deserialize in [(optimizers.serialize, optimizers.deserialize),
                                   (lm.saving.serialize, lm.saving.deserialize)]:
        again = deserialize(json.loads(json.dumps(serialize(opt))))
        assert type(again) is type(opt) and again.get_config() == config
    # Keras's config builds a lamina optimizer, and the other way round.
    assert {k: getattr(optimizers, cls).from_config(theirs).get_config()[k] for k in ALL_OPTIONS} == ALL_OPTIONS
    assert getattr(keras.optimizers, cls).from_config(config).gradient_accumulation_steps == 4


@pytest.mark.parametrize("kwargs, message", [
    ({"gradient_accumulation_steps": 1}, r"SGD: `gradient_accumulation_steps` must be an integer >= 2.*=1"),
    ({"gradient_accumulation_steps": 2.5}, r"`gradient_accumulation_steps` must be an integer >= 2.*=2.5"),
    ({"use_ema": True, "ema_momentum": 1.5}, r"`ema_momentum` must be in the range \[0, 1\].*=1.5"),
    ({"use_ema": True, "ema_overwrite_frequency": 0}, r"`ema_overwrite_frequency` must be an integer >= 1.*=0"),
    ({"loss_scale_factor": 0.0}, r"`loss_scale_factor` must be a positive finite number.*=0.0"),
    ({"loss_scale_factor": float("inf")}, r"`loss_scale_factor` must be a positive finite number.*=inf"),
])
def test_bad_options_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        optimizers.SGD(**kwargs)


def test_scale_loss_and_finalize_without_options():
    w = lm.Variable(jnp.array([1.0]))
    opt = optimizers.SGD(learning_rate=1.0)
    assert opt.scale_loss(3.0) == 3.0
    opt.apply([jnp.array([0.5])], [w])
    opt.finalize_variable_values([w])  # no EMA: nothing changes
    assert w.numpy().tolist() == [0.5]
    ema = optimizers.SGD(use_ema=True)
    ema.apply([jnp.array([0.5])], [w])
    stranger = lm.Variable(jnp.zeros(2), name="stranger")
    with pytest.raises(ValueError, match="'stranger' is not one this optimizer was built with"):
        ema.finalize_variable_values([stranger])


# -- models: custom loop, fit, saving -------------------------------------------------------------------


@pytest.fixture(scope="module")
def xy():
    return regression_xy()


def _models(keras, optimizer_kwargs, name="Adam", steps_per_execution=1):
    """A lamina model and a Keras model with the same weights, compiled with the same
    optimizer options and MSE."""
    lm.random.set_seed(0)
    ours = lm.Sequential([lm.layers.Dense(3, activation="tanh", input_shape=(4,)), lm.layers.Dense(1)])
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1)])
    theirs.set_weights(ours.get_weights())
    ours.compile(getattr(optimizers, name)(**optimizer_kwargs), "mse", steps_per_execution=steps_per_execution)
    theirs.compile(getattr(keras.optimizers, name)(**optimizer_kwargs), "mse")
    return ours, theirs


def _same_weights(ours, theirs):
    assert_close(ours.get_weights(), theirs.get_weights(), "model weights")


def test_custom_loop_with_scale_loss_matches_keras(keras, xy):
    """A loop written the Keras way (differentiate ``optimizer.scale_loss(loss)``, then
    ``apply``) gives Keras's weights, and the loss itself is unscaled."""
    x, y = xy
    kwargs = {"learning_rate": 0.05, **SCALE, **ACCUMULATE}
    ours, theirs = _models(keras, kwargs)
    opt, kopt = ours.optimizer, theirs.optimizer

    @lm.jit
    def step(x, y):
        def loss_fn():
            loss = jnp.mean((ours(x, training=True) - y) ** 2)
            return opt.scale_loss(loss), loss

        (_, loss), grads = lm.value_and_grad(loss_fn, ours.trainable_weights, has_aux=True)()
        opt.apply(grads, ours.trainable_weights)
        return loss

    kopt.build(theirs.trainable_variables)

    @jax.jit
    def keras_step(trainable, opt_values, x, y):
        def loss_fn(trainable):
            y_pred, _ = theirs.stateless_call(trainable, [], x, training=True)
            loss = jnp.mean((y_pred - y) ** 2)
            return kopt.scale_loss(loss), loss

        (_, loss), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        trainable, opt_values = kopt.stateless_apply(opt_values, grads, trainable)
        return loss, trainable, opt_values

    trainable, opt_values = [v.value for v in theirs.trainable_variables], [v.value for v in kopt.variables]
    for i in range(STEPS):
        batch = slice(2 * i, 2 * i + 2)
        loss = step(x[batch], y[batch])
        keras_loss, trainable, opt_values = keras_step(trainable, opt_values, x[batch], y[batch])
        assert float(loss) == pytest.approx(float(keras_loss), rel=1e-5)
    assert_close(ours.trainable_weights, trainable, "custom loop")
    assert int(opt.iterations.value) == 2


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_fit_with_use_ema_ends_with_keras_ema_weights(keras, xy, steps_per_execution):
    """``fit`` finishes by copying the moving averages into the weights, as Keras's fit."""
    x, y = xy
    ours, theirs = _models(keras, {"learning_rate": 0.05, **EMA_ONLY}, steps_per_execution=steps_per_execution)
    ours.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    theirs.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    _same_weights(ours, theirs)
    assert_close(ours.trainable_weights, [a.value for a in ours.optimizer._averages], "weights are the averages")
    assert int(ours.optimizer.iterations.value) == 8


def test_fit_with_accumulation_and_loss_scale_matches_keras(keras, xy):
    """Loss scaled in the train step, gradients unscaled, accumulated over 3 batches, with
    3 steps per compiled call: Keras's weights and Keras's (unscaled) loss history."""
    x, y = xy
    kwargs = {"learning_rate": 0.05, **SCALE, **ACCUMULATE, **EMA}
    ours, theirs = _models(keras, kwargs, name="RMSprop", steps_per_execution=3)
    got = ours.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    want = theirs.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    _same_weights(ours, theirs)
    assert got == pytest.approx(want, rel=1e-5)
    assert int(ours.optimizer.iterations.value) == int(theirs.optimizer.iterations) == 2


def test_save_and_load_keep_accumulators_and_averages(tmp_path, xy):
    """The new optimizer state is saved with the model; a reloaded model continues exactly."""
    x, y = xy
    lm.random.set_seed(0)
    model = lm.Sequential([lm.layers.Dense(2, input_shape=(4,)), lm.layers.Dense(1)])
    model.compile(optimizers.Adam(learning_rate=0.05, **ACCUMULATE, **EMA), "mse")
    for i in range(4):  # one update done, one gradient waiting
        model.train_on_batch(x[4 * i:4 * i + 4], y[4 * i:4 * i + 4])
    path = tmp_path / "m.lamina"
    model.save(path)
    loaded = lm.load_model(path)
    assert loaded.optimizer.get_config() == {**model.optimizer.get_config(), "name": loaded.optimizer.name}
    keys = list(lm.saving.weights.saved_variables(model)[0])
    assert "optimizer/accumulated_steps" in keys
    for field in ("gradient_accumulator", "average"):  # one per weight
        assert len([k for k in keys if k.startswith(f"optimizer/{field}/")]) == 4, keys
    for _ in range(2):  # the second call completes the accumulation: an update, an overwrite
        for m in (model, loaded):
            m.train_on_batch(x[:4], y[:4])
    assert_close(loaded.get_weights(), model.get_weights(), "continued after loading")
    assert_close([v.value for v in loaded.optimizer.variables], [v.value for v in model.optimizer.variables],
                 "optimizer state")
    assert int(loaded.optimizer.iterations.value) == 2
