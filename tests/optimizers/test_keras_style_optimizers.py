"""Optimizers written the Keras 3 way (``build`` + ``update_step``) run unchanged in lamina: the
same code subclassing ``keras.optimizers.Optimizer`` and ``lm.optimizers.Optimizer`` gives the
same numbers eagerly, in an ``lm.jit`` loop, through ``stateless_apply`` and in ``fit``, with
Keras's variable order; its slots survive ``.lamina`` and ``.keras`` files both ways."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from optimizer_cases import READ_BACK, momentum_sgd, regression_xy, reload_three_ways, weights_and_steps
from optimizer_cases import assert_close as _assert_close

import lamina as lm

assert_close = functools.partial(_assert_close, rtol=1e-6, atol=1e-6)


def anchored_adam(base):
    """Slots of two kinds made one by one, one set to the weights in ``build`` (a write that must
    survive a first step inside ``lm.jit``), an optimizer-wide slot, ``iterations`` read."""

    class AnchoredAdam(base):
        def __init__(self, learning_rate=0.01, pull=0.1, **kwargs):
            super().__init__(learning_rate=learning_rate, **kwargs)
            self.pull = pull

        def build(self, var_list):
            if self.built:
                return
            super().build(var_list)
            self.anchors = [self.add_variable_from_reference(v, "anchor") for v in var_list]
            self.velocities = [self.add_variable_from_reference(v, "velocity", initializer="ones")
                               for v in var_list]
            self.total = self.add_variable((), name="total")
            for anchor, v in zip(self.anchors, var_list):
                self.assign(anchor, v + 0.0)  # Keras would share v's buffer (and donate it twice)

        def update_step(self, gradient, variable, learning_rate):
            i = self._get_variable_index(variable)
            velocity, anchor = self.velocities[i], self.anchors[i]
            step = (self.iterations + 1) * 1.0
            self.assign(velocity, 0.9 * velocity + 0.1 * gradient * gradient)
            update = learning_rate * gradient / ((velocity / (1 - 0.9 ** step)) ** 0.5 + 1e-3)
            self.assign_sub(variable, update + self.pull * learning_rate * (variable - anchor))
            self.assign_add(self.total, (update * update).sum())

    return AnchoredAdam


FACTORIES = {"momentum_sgd": momentum_sgd, "anchored_adam": anchored_adam}
SCHEDULE = ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.5})
CASES = [
    ("momentum_sgd", {"learning_rate": 0.1}),
    ("momentum_sgd", {"learning_rate": 0.1, "weight_decay": 0.1, "clipnorm": 0.5}),
    ("momentum_sgd", {"learning_rate": SCHEDULE, "use_ema": True, "ema_momentum": 0.5,
                      "ema_overwrite_frequency": 2}),
    ("momentum_sgd", {"learning_rate": 0.1, "gradient_accumulation_steps": 2, "loss_scale_factor": 4.0}),
    ("anchored_adam", {"learning_rate": 0.05, "global_clipnorm": 1.0}),
    ("anchored_adam", {"learning_rate": 0.05, "clipvalue": 0.2, "weight_decay": 0.2, "use_ema": True}),
]


@pytest.fixture(scope="module")
def classes():
    import keras

    return {name: (make(lm.optimizers.Optimizer), make(keras.optimizers.Optimizer))
            for name, make in FACTORIES.items()}


@pytest.fixture(scope="module")
def data():
    return weights_and_steps()


def _make(cls, module, kwargs):
    lr = kwargs.get("learning_rate")
    if isinstance(lr, tuple):
        kwargs = {**kwargs, "learning_rate": getattr(module.optimizers.schedules, lr[0])(**lr[1])}
    return cls(**kwargs)


def _keras_run(keras, cls, kwargs, weights, steps):
    variables = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
    opt = _make(cls, keras, kwargs)
    history = []
    for grads in steps:
        scale = opt.loss_scale_factor or 1.0
        opt.apply([g * scale for g in grads], variables)
        history.append([np.asarray(v.value) for v in variables])
    return opt, history


def _lamina_weights(weights):
    return [lm.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{sorted(k)}" for n, k in CASES])
def test_eager_apply_matches_keras(keras, classes, data, name, kwargs):
    """Every step's weights, and the optimizer's variables in Keras's order (iterations, learning
    rate, EMA averages, then the slots as created), equal Keras 3's on JAX."""
    weights, steps = data
    ours_cls, keras_cls = classes[name]
    kopt, history = _keras_run(keras, keras_cls, kwargs, weights, steps)
    variables = _lamina_weights(weights)
    opt = _make(ours_cls, lm, kwargs)
    for i, grads in enumerate(steps):
        scale = opt.loss_scale_factor or 1.0
        opt.apply([g * scale for g in grads], variables)
        assert_close([v.value for v in variables], history[i], f"step {i}")
    if not kwargs.get("gradient_accumulation_steps"):  # lamina counts updates, Keras calls there
        assert [v.shape for v in opt.variables] == [tuple(v.shape) for v in kopt.variables]
        assert_close(opt.get_weights(), [v.value for v in kopt.variables], "optimizer variables")
    if kwargs.get("use_ema"):
        opt.finalize_variable_values(variables)
        kopt.finalize_variable_values(kopt._trainable_variables)
        assert_close([v.value for v in variables], [v.value for v in kopt._trainable_variables], "finalized")


def test_jit_loop_and_stateless_apply_match_keras(keras, classes, data):
    """The first step (which builds the slots, one set from the weights) inside ``lm.jit``, the
    rest too; and ``stateless_apply`` under ``jax.jit`` from a fresh built optimizer."""
    weights, steps = data
    kwargs = {"learning_rate": 0.05, "weight_decay": 0.1, "use_ema": True}
    ours_cls, keras_cls = classes["anchored_adam"]
    _, history = _keras_run(keras, keras_cls, kwargs, weights, steps)

    variables = _lamina_weights(weights)
    opt = ours_cls(**kwargs)
    step = lm.jit(lambda grads: opt.apply(grads, variables))
    for i, grads in enumerate(steps):
        step([jnp.asarray(g) for g in grads])
        assert_close([v.value for v in variables], history[i], f"lm.jit step {i}")
    assert int(opt.iterations.value) == len(steps)

    fresh = _lamina_weights(weights)
    stateless = ours_cls(**kwargs)
    stateless.build(fresh)
    apply = jax.jit(stateless.stateless_apply)
    values, opt_values = [v.value for v in fresh], [v.value for v in stateless.variables]
    for i, grads in enumerate(steps):
        values, opt_values = apply(opt_values, [jnp.asarray(g) for g in grads], values)
        assert_close(values, history[i], f"stateless step {i}")
    assert_close([v.value for v in fresh], weights, "stateless_apply changed nothing")
    assert_close(opt_values, opt.get_weights(), "stateless optimizer values")


@pytest.fixture(scope="module")
def xy():
    return regression_xy()


def _models(keras, classes, name, kwargs):
    lm.random.set_seed(0)
    ours = lm.Sequential([lm.layers.Dense(3, activation="tanh", input_shape=(4,)), lm.layers.Dense(1)])
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1)])
    theirs.set_weights(ours.get_weights())
    ours_cls, keras_cls = classes[name]
    ours.compile(ours_cls(**kwargs), "mse")
    theirs.compile(keras_cls(**kwargs), "mse")
    return ours, theirs


def test_fit_and_files_match_keras(keras, tmp_path, classes, xy):
    """``fit`` (the slots built inside the compiled step) gives Keras's losses and weights; then
    ``.lamina`` and ``.keras`` files written by lamina, and Keras's own ``.keras`` file (the
    class registered under one name in both libraries), resume with Keras's next step."""
    x, y = xy
    ours_cls, keras_cls = classes["anchored_adam"]
    lm.saving.register_serializable(package="P1Files", name="AnchoredAdam")(ours_cls)
    keras.saving.register_keras_serializable(package="P1Files", name="AnchoredAdam")(keras_cls)
    # (Not use_ema: Keras's fit then leaves each weight sharing its average's buffer, and its
    # next step fails donating both.)
    ours, theirs = _models(keras, classes, "anchored_adam", {"learning_rate": 0.05, "weight_decay": 0.1})
    got = ours.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    want = theirs.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    assert got == pytest.approx(want, rel=1e-5)
    assert_close(ours.get_weights(), theirs.get_weights(), "weights after fit")
    assert_close(ours.optimizer.get_weights(), [v.value for v in theirs.optimizer.variables], "slots after fit")
    keys = list(lm.saving.weights.saved_variables(ours)[0])
    assert len([k for k in keys if k.startswith("optimizer/anchor/")]) == 4, keys

    reloaded = reload_three_ways(keras, ours, theirs, tmp_path)
    assert type(reloaded[0].optimizer) is ours_cls
    assert reloaded[0].optimizer.get_config() == ours.optimizer.get_config()
    for model in [theirs, *reloaded]:
        model.train_on_batch(x[:8], y[:8])
    for model, what in zip(reloaded, READ_BACK):
        assert_close(model.get_weights(), theirs.get_weights(), f"next step: {what}")


def test_weights_api_and_errors(classes):
    cls = classes["momentum_sgd"][0]
    w = [lm.Variable(jnp.ones((2,)), name="w"), lm.Variable(jnp.ones(()), name="b")]
    opt = cls(0.1)  # Keras's base takes the learning rate first
    assert float(opt.learning_rate.value) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="built"):
        opt.set_weights([])
    opt.build(w)
    assert [v.name for v in opt.variables] == ["momentum_sgd/iterations", "momentum_sgd/learning_rate",
                                               "momentum_sgd/w_momentum", "momentum_sgd/b_momentum"]
    store = {}
    opt.set_weights([np.int32(3), np.float32(0.5), np.full((2,), 2.0), np.float32(-1.0)])
    opt.save_own_variables(store)
    assert sorted(store) == ["0", "1", "2", "3"] and store["2"].tolist() == [2.0, 2.0]
    other = cls(0.3)
    other.build(w)
    other.load_own_variables(store)
    assert_close(other.get_weights(), opt.get_weights(), "load_own_variables")
    with pytest.warns(UserWarning, match="Skipping variable loading"):
        cls(0.3).load_own_variables(store)
    with pytest.raises(ValueError, match="momentum_sgd/w_momentum.*shape"):
        opt.set_weights([3, 0.5, np.zeros(3), 0.0])
    with pytest.raises(KeyError, match="'stranger' is not one it was built with"):
        opt._get_variable_index(lm.Variable(jnp.ones(()), name="stranger"))

    class Positional(lm.optimizers.Optimizer):
        def __init__(self, learning_rate=0.5):
            super().__init__(learning_rate)  # Keras's base takes it first

        def update_step(self, gradient, variable, learning_rate):
            self.assign_sub(variable, learning_rate * gradient)

    v = lm.Variable(jnp.ones(()))
    Positional().apply([jnp.float32(1.0)], [v])
    assert float(v.value) == 0.5

    class Incomplete(lm.optimizers.Optimizer):
        def build(self, var_list):
            super().build(var_list)

    with pytest.raises(NotImplementedError, match="Incomplete .* neither update_step"):
        Incomplete(learning_rate=0.1)
