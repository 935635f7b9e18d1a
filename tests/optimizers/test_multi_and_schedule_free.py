"""Keras 3's ``ScheduleFreeAdamW``, ``MultiOptimizer`` and ``OptimizerMap``: Keras's arguments,
configs and numbers (same weights, same steps), and their state kept by saved files."""

import jax.numpy as jnp
import pytest
from optimizer_cases import READ_BACK, assert_close, regression_xy, reload_three_ways, weights_and_steps

import lamina as lm
from lamina.saving.keras_files.config_out import to_keras


@pytest.fixture(scope="module")
def data():
    return weights_and_steps()


@pytest.fixture(scope="module")
def xy():
    return regression_xy()


def _models(keras, ours_opt, keras_opt):
    lm.random.set_seed(0)
    ours = lm.Sequential([lm.layers.Dense(3, activation="tanh", input_shape=(4,), name="encoder"),
                          lm.layers.Dense(1, name="head")], name="net")
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh", name="encoder"),
                               keras.layers.Dense(1, name="head")], name="net")
    theirs.set_weights(ours.get_weights())
    ours.compile(ours_opt, "mse")
    theirs.compile(keras_opt, "mse")
    return ours, theirs


# -- ScheduleFreeAdamW ----------------------------------------------------------------------------------

SF_CASES = [{"learning_rate": 0.05},
            {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.9, "epsilon": 1e-3, "warmup_steps": 3,
             "weight_decay": 0.1, "use_ema": True}]


@pytest.mark.parametrize("kwargs", SF_CASES, ids=["defaults", "options"])
def test_schedule_free_adamw_matches_keras(keras, data, kwargs):
    weights, steps = data
    kvars = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
    ours_vars = [lm.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
    kopt, opt = keras.optimizers.ScheduleFreeAdamW(**kwargs), lm.optimizers.ScheduleFreeAdamW(**kwargs)
    for i, grads in enumerate(steps):
        kopt.apply(grads, kvars)
        opt.apply(grads, ours_vars)
        assert_close([v.value for v in ours_vars], [v.value for v in kvars], f"step {i}")
    assert_close(opt.get_weights(), [v.value for v in kopt.variables], "optimizer variables")


def test_schedule_free_adamw_config_and_defaults_are_keras(keras):
    ours, theirs = lm.optimizers.ScheduleFreeAdamW(), keras.optimizers.ScheduleFreeAdamW()
    want = theirs.get_config()
    got = ours.get_config()
    assert set(got) == set(want)
    for key in set(want) - {"name"}:
        assert got[key] == pytest.approx(want[key]) if isinstance(want[key], float) else got[key] == want[key], key
    again = lm.optimizers.deserialize(lm.optimizers.serialize(ours))
    assert type(again) is lm.optimizers.ScheduleFreeAdamW and again.get_config() == got
    from_keras = lm.optimizers.deserialize(keras.optimizers.serialize(keras.optimizers.ScheduleFreeAdamW(warmup_steps=7)))
    assert from_keras.warmup_steps == 7
    assert type(lm.optimizers.get("schedulefreeadamw")) is lm.optimizers.ScheduleFreeAdamW


def test_schedule_free_adamw_fit_and_files(keras, tmp_path, xy):
    """``fit`` builds the slots inside the compiled step (``momentum`` starts at the weights):
    Keras's weights; ``.lamina`` and ``.keras`` files resume the same next step."""
    x, y = xy
    kwargs = {"learning_rate": 0.05, "warmup_steps": 2}
    ours, theirs = _models(keras, lm.optimizers.ScheduleFreeAdamW(**kwargs),
                           keras.optimizers.ScheduleFreeAdamW(**kwargs))
    got = ours.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"]
    want = theirs.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"]
    assert got == pytest.approx(want, rel=1e-5)
    assert_close(ours.get_weights(), theirs.get_weights(), "weights after fit")
    assert_close(ours.optimizer.get_weights(), [v.value for v in theirs.optimizer.variables], "slots after fit")

    reloaded = reload_three_ways(keras, ours, theirs, tmp_path)
    for model in [ours, theirs, *reloaded]:
        model.train_on_batch(x[:4], y[:4])
    for model, what in zip(reloaded, READ_BACK):
        assert_close(model.get_weights(), theirs.get_weights(), what)


def test_schedule_free_adamw_first_built_inside_a_compiled_loss_scaled_step(data):
    """Wrapped for loss scaling and built by a first step inside ``lm.jit``: ``momentum`` still
    starts at the weights (the build's writes are real), so the steps equal eager ones."""
    weights, steps = data
    eager_vars = [lm.Variable(w) for w in weights]
    eager = lm.optimizers.ScheduleFreeAdamW(0.05)
    jitted_vars = [lm.Variable(w) for w in weights]
    wrapped = lm.optimizers.LossScaleOptimizer(lm.optimizers.ScheduleFreeAdamW(0.05), initial_scale=8.0)
    step = lm.jit(lambda grads: wrapped.apply(grads, jitted_vars))
    for grads in steps[:3]:
        eager.apply(grads, eager_vars)
        step([jnp.asarray(g) * 8.0 for g in grads])
    assert_close([v.value for v in jitted_vars], [v.value for v in eager_vars], "compiled, loss-scaled")


# -- OptimizerMap and MultiOptimizer ------------------------------------------------------------------------


def test_optimizer_map_lookup_rules():
    sgd, adam, rms = lm.optimizers.SGD(), lm.optimizers.Adam(), lm.optimizers.RMSprop()
    opt_map = lm.optimizers.OptimizerMap(default_optimizer=rms)
    opt_map["encoder/layer_0/dense"] = adam
    opt_map["encoder/.*"] = sgd
    opt_map["decoder"] = adam
    assert opt_map["encoder/layer_0/dense"] is adam  # an exact key before the patterns
    assert opt_map["encoder/layer_0/attention/query"] is sgd
    assert opt_map["decoder"] is adam and opt_map["decoder/dense"] is rms  # patterns match whole paths
    assert opt_map(lm.Variable(jnp.zeros(()), name="encoder/x")) is sgd
    assert len(opt_map) == 3 and list(opt_map) == ["encoder/layer_0/dense", "encoder/.*", "decoder"]
    opt_map[".*/dense"] = sgd
    with pytest.raises(ValueError, match="Multiple optimizers assigned to variable encoder/layer_1/dense"):
        opt_map["encoder/layer_1/dense"]
    with pytest.raises(ValueError, match="already exists"):
        opt_map["decoder"] = sgd
    with pytest.raises(ValueError, match="cannot be a LossScaleOptimizer"):
        opt_map["head"] = lm.optimizers.LossScaleOptimizer(lm.optimizers.SGD())
    with pytest.raises(TypeError, match="default_optimizer must be"):
        lm.optimizers.OptimizerMap("adam")
    with pytest.raises(ValueError, match="do not nest"):
        lm.optimizers.MultiOptimizer(lm.optimizers.OptimizerMap(
            lm.optimizers.MultiOptimizer(lm.optimizers.OptimizerMap(sgd))))


def _keras_multi(keras):
    opt_map = keras.optimizers.OptimizerMap(keras.optimizers.RMSprop(0.01),
                                            {"net/encoder/.*": keras.optimizers.Adam(0.05)})
    return keras.optimizers.MultiOptimizer(opt_map, name="multi")


def _ours_multi():
    opt_map = lm.optimizers.OptimizerMap(lm.optimizers.RMSprop(0.01),
                                         {"net/encoder/.*": lm.optimizers.Adam(0.05)})
    return lm.optimizers.MultiOptimizer(opt_map, name="multi")


def test_multi_optimizer_fit_matches_keras_and_resumes_from_file(keras, tmp_path, xy):
    x, y = xy
    ours, theirs = _models(keras, _ours_multi(), _keras_multi(keras))
    got = ours.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"]
    want = theirs.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"]
    assert got == pytest.approx(want, rel=1e-5)
    assert_close(ours.get_weights(), theirs.get_weights(), "weights after fit")
    opt = ours.optimizer
    adam, rms = opt.optimizers  # the map's values first, then the default: Keras's order
    assert isinstance(adam, lm.optimizers.Adam) and isinstance(rms, lm.optimizers.RMSprop)
    assert [int(o.iterations.value) for o in (opt, adam, rms)] == [4, 4, 4]
    assert [v.name for v in opt.variables[:2]] == ["multi/iterations", "multi/learning_rate"]
    assert len(opt.variables) == 2 + len(adam.variables) + len(rms.variables)

    reloaded = reload_three_ways(keras, ours, theirs, tmp_path)
    assert type(reloaded[0].optimizer) is lm.optimizers.MultiOptimizer
    assert_close(reloaded[0].optimizer.get_weights(), opt.get_weights(), "optimizer state read back")
    for model in [ours, theirs, *reloaded]:
        model.train_on_batch(x[:4], y[:4])
    for model, what in zip(reloaded, READ_BACK):
        assert_close(model.get_weights(), theirs.get_weights(), what)


def test_multi_optimizer_function_map_eager_and_stateless(keras, data):
    """A function choosing by variable (each variable its own new optimizer here), eager
    ``apply`` against Keras, then ``stateless_apply`` from the same start."""
    weights, steps = data

    def make_selector(module):
        def selector(variable):
            return module.optimizers.Adam(0.05) if "w0" in variable.path else module.optimizers.SGD(0.1)
        return selector

    kvars = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
    ours_vars = [lm.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
    kopt = keras.optimizers.MultiOptimizer(make_selector(keras), loss_scale_factor=4.0)
    opt = lm.optimizers.MultiOptimizer(make_selector(lm), loss_scale_factor=4.0)
    for grads in steps[:2]:
        kopt.apply([g * 4.0 for g in grads], kvars)
        opt.apply([g * 4.0 for g in grads], ours_vars)
    assert_close([v.value for v in ours_vars], [v.value for v in kvars], "function map")
    assert [o.loss_scale_factor for o in opt.optimizers] == [4.0, 4.0]
    assert float(opt.scale_loss(jnp.float32(2.0))) == 8.0
    fresh = lm.optimizers.MultiOptimizer(make_selector(lm), loss_scale_factor=4.0)
    start = [lm.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
    fresh.build(start)
    values, opt_values = [v.value for v in start], [v.value for v in fresh.variables]
    for grads in steps[:2]:
        values, opt_values = fresh.stateless_apply(opt_values, [g * 4.0 for g in grads], values)
    assert_close(values, [v.value for v in kvars], "stateless_apply")
    with pytest.raises(AttributeError, match="sub-optimizers"):
        opt.learning_rate  # noqa: B018
    with pytest.raises(AttributeError, match="sub-optimizers"):
        opt.learning_rate = 0.1


def test_multi_optimizer_configs_round_trip_with_keras(keras):
    """Keras's config (an OptimizerMap inside) builds the same MultiOptimizer in lamina, and
    lamina's config has Keras's keys and loads in Keras."""
    keras_config = keras.optimizers.serialize(_keras_multi(keras))
    ours = lm.optimizers.deserialize(keras_config)
    assert type(ours) is lm.optimizers.MultiOptimizer and ours.name == "multi"
    mapped = ours.get_config()["optimizer_map"]
    assert mapped["class_name"] == "OptimizerMap"
    assert mapped["config"]["default_optimizer"]["class_name"] == "RMSprop"
    assert list(mapped["config"]["optimizer_map"]) == ["net/encoder/.*"]
    assert sorted(ours.get_config()) == sorted(keras_config["config"])
    # What a .keras file holds: lamina's config in Keras's envelope (module, registered_name).
    back = keras.optimizers.deserialize(to_keras(lm.optimizers.serialize(ours)))
    assert [type(o).__name__ for o in back.optimizers] == ["Adam", "RMSprop"]
    assert back.optimizers[1].get_config()["learning_rate"] == pytest.approx(0.01)
