"""Adadelta, Adafactor, Adamax, Ftrl, Lamb, Muon and Nadam against Keras 3 (on JAX): the same weights
after each of four steps from the same gradients (with weight decay, a schedule, the shared
options), a ``fit`` whose loss falls, and the slots kept by ``.lamina`` and ``.keras`` files."""

import warnings

import numpy as np
import pytest

import lamina as lm

RTOL, ATOL = 1e-5, 1e-6
LR = 0.05
SCHEDULE = ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.5})

CASES = [
    ("Adadelta", {"learning_rate": 1.0}),
    ("Adadelta", {"learning_rate": 0.5, "rho": 0.8, "epsilon": 1e-3, "weight_decay": 0.1}),
    ("Adafactor", {"learning_rate": LR}),
    ("Adafactor", {"learning_rate": SCHEDULE, "beta_2_decay": -0.5, "clip_threshold": 0.5,
                   "epsilon_2": 0.1, "weight_decay": 0.2}),
    ("Adamax", {"learning_rate": LR}),
    ("Adamax", {"learning_rate": SCHEDULE, "beta_1": 0.8, "beta_2": 0.9, "weight_decay": 0.1}),
    ("Ftrl", {"learning_rate": LR}),
    ("Ftrl", {"learning_rate": SCHEDULE, "learning_rate_power": -0.7, "initial_accumulator_value": 0.5,
              "l1_regularization_strength": 0.05, "l2_regularization_strength": 0.1,
              "l2_shrinkage_regularization_strength": 0.02, "beta": 0.3, "weight_decay": 0.1}),
    ("Lamb", {"learning_rate": LR}),
    ("Lamb", {"learning_rate": SCHEDULE, "beta_1": 0.8, "epsilon": 1e-3, "weight_decay": 0.1}),
    ("Nadam", {"learning_rate": LR}),
    ("Nadam", {"learning_rate": SCHEDULE, "beta_2": 0.9, "weight_decay": 0.1}),
]
# The options every optimizer takes, which the base class implements once: one combination each.
OPTION_CASES = [
    ("Adadelta", {"learning_rate": 1.0, "clipnorm": 0.5, "use_ema": True, "ema_momentum": 0.5}),
    ("Adafactor", {"learning_rate": LR, "gradient_accumulation_steps": 2, "weight_decay": 0.1}),
    ("Adamax", {"learning_rate": LR, "clipvalue": 0.3, "loss_scale_factor": 4.0}),
    ("Ftrl", {"learning_rate": LR, "global_clipnorm": 1.0, "use_ema": True, "ema_overwrite_frequency": 2}),
    ("Lamb", {"learning_rate": LR, "gradient_accumulation_steps": 2, "clipnorm": 1.0}),
    ("Nadam", {"learning_rate": LR, "gradient_accumulation_steps": 2, "use_ema": True}),
]
NAMES = sorted({name for name, _ in CASES} | {"Muon"})
# Muon takes its own step for 2-D weights (one taller than wide: transposed) and AdamW for the
# vectors, the embeddings and the excluded layers: weights of each kind, named for the rules.
MUON_WEIGHTS = {"w0": (3, 4), "w1": (4, 3), "w2": (4,), "embedding_w3": (3, 4), "output_w4": (3, 4)}
MUON_CASES = [
    {"learning_rate": LR},
    {"learning_rate": SCHEDULE, "exclude_layers": ["output"], "nesterov": False, "rms_rate": None,
     "weight_decay": 0.1, "adam_weight_decay": 0.2, "adam_lr_ratio": 0.5, "ns_steps": 3, "momentum": 0.8},
]


@pytest.fixture(scope="module")
def data():
    """Two weights (Adafactor factors the one of three dimensions, not the vector) and four
    steps of gradients: normal, tiny with exact zeros, large, and normal again."""
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=s).astype("float32") for s in [(2, 3, 4), (4,)]]
    tiny = [(rng.normal(size=w.shape) * 1e-3).astype("float32") for w in weights]
    tiny[0][0, 0, :] = 0.0
    steps = [[rng.normal(size=w.shape).astype("float32") * scale for w in weights] for scale in (1.0, 3.0, 1.0)]
    return weights, [steps[0], tiny, steps[1], steps[2]]


def _build(module, name, kwargs):
    lr = kwargs.get("learning_rate")
    if isinstance(lr, tuple):
        kwargs = {**kwargs, "learning_rate": getattr(module.schedules, lr[0])(**lr[1])}
    return getattr(module, name)(**kwargs)


def run_keras(keras, name, kwargs, weights, steps, names=None):
    variables = [keras.Variable(w, name=n) for w, n in zip(weights, names or [f"w{i}" for i in range(len(weights))])]
    opt = _build(keras.optimizers, name, kwargs)
    history = []
    for grads in steps:
        if opt.loss_scale_factor:
            grads = [g * opt.loss_scale_factor for g in grads]
        opt.apply_gradients(zip(grads, variables))
        history.append([np.asarray(v.value) for v in variables])
    return history, opt


def run_lamina(name, kwargs, weights, steps, names=None):
    variables = [lm.Variable(w, name=n) for w, n in zip(weights, names or [f"w{i}" for i in range(len(weights))])]
    opt = _build(lm.optimizers, name, kwargs)
    history = []
    for grads in steps:
        if opt.loss_scale_factor:
            grads = [g * opt.loss_scale_factor for g in grads]
        opt.apply(grads, variables)
        history.append([v.numpy() for v in variables])
    return history, opt


def assert_same_history(ours, theirs):
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for i, (x, y) in enumerate(zip(a, b)):
            np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL, err_msg=f"step {step + 1}, weight {i}")


@pytest.mark.parametrize("name, kwargs", CASES, ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_matches_keras_step_by_step(keras, data, name, kwargs):
    weights, steps = data
    theirs, _ = run_keras(keras, name, kwargs, weights, steps)
    ours, _ = run_lamina(name, kwargs, weights, steps)
    assert_same_history(ours, theirs)


@pytest.mark.parametrize("name, kwargs", OPTION_CASES, ids=[name for name, _ in OPTION_CASES])
def test_shared_options_match_keras(keras, data, name, kwargs):
    weights, steps = data
    theirs, kopt = run_keras(keras, name, kwargs, weights, steps)
    ours, opt = run_lamina(name, kwargs, weights, steps)
    assert_same_history(ours, theirs)
    assert int(opt.iterations.numpy()) == int(np.asarray(kopt.iterations))


@pytest.mark.parametrize("kwargs", MUON_CASES, ids=["defaults", "options"])
def test_muon_matches_keras_on_muon_and_adamw_weights(keras, kwargs):
    rng = np.random.default_rng(2)
    weights = [rng.normal(size=shape).astype("float32") for shape in MUON_WEIGHTS.values()]
    steps = [[(rng.normal(size=w.shape) * scale).astype("float32") for w in weights] for scale in (1.0, 1e-3, 3.0)]
    theirs, _ = run_keras(keras, "Muon", kwargs, weights, steps, names=list(MUON_WEIGHTS))
    ours, opt = run_lamina("Muon", kwargs, weights, steps, names=list(MUON_WEIGHTS))
    assert_same_history(ours, theirs)
    adamw = [weight.path for field, _, weight in opt.state_items() if field == "velocity"]
    expected = ["w2", "embedding_w3", "output_w4"] if kwargs.get("exclude_layers") else ["w2", "embedding_w3"]
    assert adamw == expected


# --- by name, configs, errors ---------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_get_by_name_has_keras_defaults_and_config_keys(keras, name):
    ours = lm.optimizers.get(name.lower())
    theirs = keras.optimizers.get(name.lower()) if name != "Lamb" else keras.optimizers.Lamb()
    assert type(ours) is getattr(lm.optimizers, name)
    ours_config, their_config = ours.get_config(), theirs.get_config()
    assert set(ours_config) == set(their_config)
    for key in set(their_config) - {"name"}:
        expected = their_config[key]
        if isinstance(expected, float):  # Keras keeps the learning rate float32-rounded
            expected = pytest.approx(expected, rel=1e-6)
        assert ours_config[key] == expected, key
    restored = lm.optimizers.deserialize(lm.optimizers.serialize(ours))
    assert type(restored) is type(ours) and restored.get_config() == ours_config
    # A Keras config (float32-rounded learning rate and all) builds the same optimizer.
    from_keras = getattr(lm.optimizers, name).from_config(their_config)
    assert from_keras.get_config()["learning_rate"] == pytest.approx(0.001)
    # And lamina's config builds the Keras optimizer.
    assert getattr(keras.optimizers, name).from_config(ours_config).get_config().keys() == their_config.keys()


@pytest.mark.parametrize("kwargs, message", [
    ({"initial_accumulator_value": -0.1}, "`initial_accumulator_value` needs to be positive or zero"),
    ({"learning_rate_power": 0.5}, "`learning_rate_power` needs to be negative or zero"),
    ({"l1_regularization_strength": -1.0}, "`l1_regularization_strength` needs to be positive"),
    ({"l2_shrinkage_regularization_strength": -1.0}, "`l2_shrinkage_regularization_strength` needs"),
])
def test_ftrl_refuses_bad_arguments_as_keras(kwargs, message):
    with pytest.raises(ValueError, match=f"Ftrl: {message}"):
        lm.optimizers.Ftrl(**kwargs)


# --- training and files -----------------------------------------------------------------------------

FIT_RATES = {"Adadelta": 10.0, "Adafactor": 0.05, "Adamax": 0.05, "Ftrl": 0.2, "Lamb": 0.05, "Muon": 0.05,
             "Nadam": 0.05}


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 3)).astype("float32")
    return x, (x @ rng.normal(size=(3, 2)) + 0.5).astype("float32")


def _optimizer_values(optimizer):
    return {(field, None if weight is None else weight.path): np.asarray(variable.numpy())
            for field, variable, weight in optimizer.state_items()}


@pytest.mark.parametrize("name", NAMES)
def test_fit_then_files_keep_the_slots_and_continue_identically(keras, xy, name, tmp_path):
    x, y = xy
    model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
    model.compile(optimizer=getattr(lm.optimizers, name)(learning_rate=FIT_RATES[name]), loss="mse")
    losses = model.fit(x, y, batch_size=8, epochs=3, verbose=0).history["loss"]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])) and losses[-1] < 0.9 * losses[0], losses
    assert int(model.optimizer.iterations.numpy()) == 12

    paths = [tmp_path / "model.lamina", tmp_path / "model.keras"]
    for path in paths:
        model.save(path)
    slots = _optimizer_values(model.optimizer)
    copies = [lm.load_model(path) for path in paths]
    for copy in copies:
        assert type(copy.optimizer) is type(model.optimizer)
        assert copy.optimizer.get_config() == model.optimizer.get_config()
        loaded = _optimizer_values(copy.optimizer)
        assert loaded.keys() == slots.keys()
        for key in slots:
            np.testing.assert_array_equal(loaded[key], slots[key], err_msg=str(key))

    # Keras reads the slots of the .keras file lamina wrote, in its own order and names.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras warns when it skips an optimizer's state
        keras_optimizer = keras.saving.load_model(paths[1]).optimizer
    assert type(keras_optimizer).__name__ == name
    assert int(np.asarray(keras_optimizer.iterations)) == 12
    for variable in keras_optimizer.variables[2:]:
        matches = [key for key, value in slots.items() if value.shape == variable.shape
                   and np.array_equal(value, np.asarray(variable))]
        assert matches, f"Keras's {variable.path} {variable.shape} is none of lamina's slots"
    assert len(keras_optimizer.variables) == 2 + sum(key[1] is not None or key[0] == "u_product" for key in slots)

    # One more step on each: the same weights, so the slots meant the same thing. (The copies
    # find fit's step in the compilation cache; two compilations of a step may round an element
    # differently, by an ulp: RMSprop's too.)
    for m in (model, *copies):
        m.fit(x[:8], y[:8], batch_size=8, verbose=0)
    for copy in copies:
        for ours, theirs in zip(copy.weights, model.weights):
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7)


def test_a_keras_nadam_state_goes_on_identically_in_lamina(keras, tmp_path):
    """Keras's file to lamina: the slots, the step counter and Nadam's ``u_product`` (a
    scalar after every weight's slots) are read, so the next step is Keras's next step."""
    rng = np.random.default_rng(3)
    keras_model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    keras_model.compile(optimizer=keras.optimizers.Nadam(learning_rate=0.05), loss="mse")
    steps = [[rng.normal(size=w.shape).astype("float32") for w in keras_model.trainable_weights] for _ in range(3)]
    for grads in steps[:2]:
        keras_model.optimizer.apply_gradients(zip(grads, keras_model.trainable_weights))
    keras_model.save(tmp_path / "keras.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = lm.load_model(tmp_path / "keras.keras")
    assert int(model.optimizer.iterations.numpy()) == 2
    u_product = next(v for field, v, _ in model.optimizer.state_items() if field == "u_product")
    np.testing.assert_array_equal(u_product.numpy(), np.asarray(keras_model.optimizer.variables[-1]))
    keras_model.optimizer.apply_gradients(zip(steps[2], keras_model.trainable_weights))
    model.optimizer.apply(steps[2], model.trainable_weights)
    for ours, theirs in zip(model.weights, keras_model.weights):
        np.testing.assert_allclose(ours.numpy(), np.asarray(theirs), rtol=RTOL, atol=ATOL)
