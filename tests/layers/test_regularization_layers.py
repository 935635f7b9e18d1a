"""ActivityRegularization, GaussianNoise, GaussianDropout, AlphaDropout and SpatialDropout1D/2D/3D:
the layer checker at inference (their training draws cannot equal Keras's), the training draws
against their NumPy formulas and statistics, seeds under lm.jit and fit, Keras's arguments and
configs, the activity penalty against Keras's, and errors that name the layer."""

import inspect
import json

import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm
from lamina.layers.masking import get_mask, set_mask

MASK = np.array([[1, 1, 0], [1, 0, 0]], bool)  # for (2, 3, ...) inputs

# (class name, positional arguments, keyword arguments, input shape, input mask).
CASES = [
    ("ActivityRegularization", (), {"l1": 0.01, "l2": 0.02}, (2, 3, 4), MASK),
    ("GaussianNoise", (0.5,), {"seed": 1}, (2, 3, 4), MASK),
    ("GaussianDropout", (0.3,), {"seed": 1}, (2, 3, 4), None),
    ("AlphaDropout", (0.2,), {"noise_shape": (None, 1, 4), "seed": 1}, (2, 3, 4), MASK),
    ("SpatialDropout1D", (0.5,), {"seed": 1}, (2, 3, 4), MASK),
    ("SpatialDropout2D", (0.5,), {"data_format": "channels_first"}, (2, 3, 4, 5), None),
    ("SpatialDropout3D", (0.5,), {}, (2, 3, 2, 2, 4), None),
]


@pytest.mark.parametrize("name, args, kwargs, input_shape, mask", CASES, ids=[c[0] for c in CASES])
def test_regularization_layers_at_inference_pass_the_checker(keras, name, args, kwargs, input_shape, mask):
    """At inference each is the identity with the mask passed on (ActivityRegularization in
    any mode); training draws are tested against formulas below."""
    check_layer(lambda: getattr(lm.layers, name)(*args, **kwargs),
                lambda k: getattr(k.layers, name)(*args, **kwargs),
                input_shape=input_shape, input_masks={0: mask}, keras=keras)


@pytest.mark.parametrize("name, args, kwargs", [
    ("ActivityRegularization", (), {}), ("ActivityRegularization", (0.1, 0.2), {}),
    ("GaussianNoise", (0.2,), {}), ("GaussianNoise", (0.2, 3), {}),
    ("GaussianDropout", (0.2,), {}), ("GaussianDropout", (0.2, 4), {}),
    ("AlphaDropout", (0.2,), {}), ("AlphaDropout", (0.2, (None, 1), 5), {}),
    ("SpatialDropout1D", (0.2,), {}), ("SpatialDropout1D", (0.2, 6), {}),
    ("SpatialDropout2D", (0.2,), {}), ("SpatialDropout2D", (0.2, "channels_first", 7), {}),
    ("SpatialDropout3D", (0.2,), {}), ("SpatialDropout3D", (0.2,), {"data_format": "channels_first"}),
])
def test_arguments_and_config_are_keras(keras, name, args, kwargs):
    """Keras's argument names in Keras's order and Keras's config keys and plain values (the
    spatial dropouts have no "trainable", as in Keras), surviving JSON."""
    ours, theirs = getattr(lm.layers, name), getattr(keras.layers, name)

    def arguments(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "name", "kwargs")]

    assert arguments(ours) == arguments(theirs)
    mine, reference = ours(*args, **kwargs).get_config(), theirs(*args, **kwargs).get_config()
    assert set(mine) == set(reference)
    for key, value in reference.items():
        if key not in ("name", "dtype"):
            assert mine[key] == (list(value) if isinstance(value, tuple) else value) or mine[key] == value, key
    assert ours.from_config(json.loads(json.dumps(mine))).get_config() == ours.from_config(mine).get_config()
    # What Keras writes builds the same layer here.
    rebuilt = lm.layers.deserialize(json.loads(json.dumps(keras.layers.serialize(theirs(*args, **kwargs)))))
    assert type(rebuilt) is ours and rebuilt.get_config().keys() == mine.keys()


# --- training draws -----------------------------------------------------------------------------

N = 20_000  # draws per statistic: a mean's standard error is then std / 141


def test_gaussian_noise_adds_zero_mean_noise_of_its_stddev():
    x = jnp.asarray(random_input((N,), seed=1))
    out = np.asarray(lm.layers.GaussianNoise(0.3, seed=2)(x, training=True)) - np.asarray(x)
    assert abs(out.mean()) < 5 * 0.3 / np.sqrt(N)
    assert abs(out.std() - 0.3) < 0.01


def test_gaussian_dropout_multiplies_by_one_centred_noise():
    """out / x ~ N(1, rate / (1 - rate)): the mean of the activity is kept."""
    x = jnp.asarray(np.abs(random_input((N,), seed=3)) + 1.0)
    ratio = np.asarray(lm.layers.GaussianDropout(0.2, seed=4)(x, training=True)) / np.asarray(x)
    stddev = np.sqrt(0.2 / 0.8)
    assert abs(ratio.mean() - 1.0) < 5 * stddev / np.sqrt(N)
    assert abs(ratio.std() - stddev) < 0.02


def test_alpha_dropout_keeps_a_standard_normal_input_standard(rate=0.3):
    """Each unit is a * x (kept) or a * alpha' (dropped) plus b, Keras's formula, dropped with
    probability ``rate``; a standard normal input keeps mean 0 and variance 1."""
    alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    b = -a * alpha_p * rate
    x = random_input((N,), seed=5)
    out = np.asarray(lm.layers.AlphaDropout(rate, seed=6)(jnp.asarray(x), training=True))
    dropped = np.isclose(out, a * alpha_p + b, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out[~dropped], a * x[~dropped] + b, rtol=1e-5, atol=1e-6)
    assert abs(dropped.mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / N)
    assert abs(out.mean()) < 0.04 and abs(out.var() - 1.0) < 0.05


def test_alpha_dropout_noise_shape_drops_whole_rows():
    out = np.asarray(lm.layers.AlphaDropout(0.5, noise_shape=(None, 1), seed=7)(jnp.zeros((200, 6)), training=True))
    assert (out == out[:, :1]).all()  # a zero input: each row is one value, kept or dropped
    assert len(np.unique(out.round(5))) == 2


@pytest.mark.parametrize("name, data_format, shape", [
    ("SpatialDropout1D", None, (40, 6, 50)),
    ("SpatialDropout2D", "channels_first", (40, 50, 3, 4)),
    ("SpatialDropout3D", "channels_last", (40, 2, 2, 3, 50)),
])
def test_spatial_dropout_zeroes_whole_channels_and_scales_the_rest(name, data_format, shape):
    rate = 0.3
    x = np.abs(random_input(shape, seed=8)) + 0.5  # never 0 itself
    kwargs = {} if data_format is None else {"data_format": data_format}
    out = np.asarray(getattr(lm.layers, name)(rate, seed=9, **kwargs)(jnp.asarray(x), training=True))
    channel = 1 if data_format == "channels_first" else len(shape) - 1
    spatial = tuple(a for a in range(1, len(shape)) if a != channel)
    zeroed = out == 0
    dropped = zeroed.all(axis=spatial)  # (batch, channels)
    assert (zeroed == np.expand_dims(dropped, spatial)).all(), "a channel is dropped whole or not at all"
    kept = ~zeroed
    np.testing.assert_allclose(out[kept], x[kept] / (1 - rate), rtol=1e-6)
    assert abs(dropped.mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / dropped.size)


# One of each base: GaussianDropout and AlphaDropout draw as GaussianNoise does (fit below runs all).
@pytest.mark.parametrize("make", [lambda: lm.layers.GaussianNoise(0.2), lambda: lm.layers.SpatialDropout1D(0.5)],
                         ids=["GaussianNoise", "SpatialDropout1D"])
def test_draws_are_new_each_compiled_step_and_repeat_with_the_seed(make):
    """The seed generator is layer state: each lm.jit step draws anew; lm.utils.set_random_seed
    repeats an unseeded layer's draws, eagerly and compiled alike; the input's mask passes on;
    inference is the identity."""
    x = jnp.asarray(random_input((8, 5, 6), seed=10))
    mask = jnp.asarray(random_input((8, 5), seed=11) > 0)
    lm.utils.set_random_seed(11)
    layer = make()
    step = lm.jit(lambda x: layer(x, training=True))
    first, second = np.asarray(step(x)), np.asarray(step(x))
    assert not np.allclose(first, second)
    lm.utils.set_random_seed(11)
    twin = make()
    np.testing.assert_allclose(np.asarray(twin(x, training=True)), first, rtol=1e-6, atol=1e-6)
    set_mask(x, mask)
    out = twin(x, training=True)
    np.testing.assert_allclose(np.asarray(out), second, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(get_mask(out)), np.asarray(mask))
    assert layer(x) is x and layer(x, training=False) is x


def test_mixed_precision_draws_in_bfloat16():
    """Noise is drawn in the compute dtype (as Keras draws it: ``dtype=self.compute_dtype``)."""
    x = random_input((2, 3, 4), seed=13)
    layer = lm.layers.GaussianNoise(0.1, dtype="mixed_bfloat16")
    # Compiled: one program instead of an eager one per operation.
    assert str(lm.jit(lambda x: layer(x, training=True))(x).dtype) == "bfloat16"


# --- ActivityRegularization -------------------------------------------------------------------------

def test_activity_penalty_equals_keras_in_losses_and_evaluate(keras):
    """The penalty (divided by the batch size, as Keras 3) is in ``losses`` after a call and
    in the loss evaluate reports, equal to Keras's for the same weights."""
    x = random_input((8, 3), seed=14)
    y = random_input((8, 2), seed=15)
    models = []
    for library in (lm, keras):
        model = library.Sequential([library.Input((3,)), library.layers.Dense(2),
                                    library.layers.ActivityRegularization(l1=0.01, l2=0.05)])
        model.compile(optimizer="sgd", loss="mse")
        models.append(model)
    ours, theirs = models
    ours.set_weights(theirs.get_weights())
    ours(x), theirs(x)
    np.testing.assert_allclose([float(v) for v in ours.losses], [float(v) for v in theirs.losses], rtol=1e-5)
    np.testing.assert_allclose(ours.evaluate(x, y, batch_size=4, verbose=0),
                               theirs.evaluate(x, y, batch_size=4, verbose=0), rtol=1e-5)


# --- in a model ---------------------------------------------------------------------------------------

def test_a_model_with_every_layer_trains_with_fit_and_saves(keras, tmp_path):
    """fit draws new noise at each step (every seed generator advances once per step), predict
    is noise-free, and Keras loads the model from a .keras file (configs and weights)."""
    rng = np.random.default_rng(16)
    x = rng.normal(size=(16, 6, 4)).astype(np.float32)
    y = x.sum(axis=(1, 2))[:, None]
    random_layers = [lm.layers.GaussianNoise(0.1, seed=1), lm.layers.GaussianDropout(0.1, seed=2),
                     lm.layers.AlphaDropout(0.1, seed=3), lm.layers.SpatialDropout1D(0.1, seed=4)]
    model = lm.Sequential([lm.Input((6, 4)), lm.layers.Dense(4), *random_layers,
                           lm.layers.ActivityRegularization(l2=1e-3), lm.layers.Flatten(), lm.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for layer, seed in zip(random_layers, (1, 2, 3, 4)):
        expected = lm.random.SeedGenerator(seed)
        expected.next(), expected.next()  # two steps, one draw each
        np.testing.assert_array_equal(np.asarray(layer.seed_generator.state.value), np.asarray(expected.state.value))
    states = [np.asarray(layer.seed_generator.state.value) for layer in random_layers]
    predictions = model.predict(x, verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), predictions)  # no draw at inference
    for layer, before in zip(random_layers, states):
        np.testing.assert_array_equal(np.asarray(layer.seed_generator.state.value), before)
    path = str(tmp_path / "noisy.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert [type(layer).__name__ for layer in restored.layers][1:6] == [
        "GaussianNoise", "GaussianDropout", "AlphaDropout", "SpatialDropout1D", "ActivityRegularization"]
    for mine, theirs in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(mine, np.asarray(theirs))


# --- errors ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda: lm.layers.GaussianNoise(1.5, name="n"), r"GaussianNoise 'n': stddev must be a number in \[0, 1\].*1.5"),
    (lambda: lm.layers.GaussianDropout(-0.1, name="g"), r"GaussianDropout 'g': rate must be .*-0.1"),
    (lambda: lm.layers.AlphaDropout("0.5", name="a"), r"AlphaDropout 'a': rate must be .*'0.5'"),
    (lambda: lm.layers.SpatialDropout1D(2, name="s"), r"SpatialDropout1D 's': rate must be a number in \[0, 1\].*2"),
    (lambda: lm.layers.SpatialDropout2D(0.1, data_format="NHWC", name="s2"),
     r"SpatialDropout2D 's2': `data_format` must be one of"),
])
def test_bad_arguments_raise_naming_the_layer(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_inputs_raise_naming_the_layer():
    with pytest.raises(ValueError, match=r"'drop' \(SpatialDropout2D\).*expected rank 4.*\(2, 3, 4\)"):
        lm.layers.SpatialDropout2D(0.5, name="drop")(jnp.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"AlphaDropout 'ad': noise_shape \(None, 1\) must have one entry per"):
        lm.layers.AlphaDropout(0.5, noise_shape=(None, 1), name="ad")(jnp.ones((2, 3, 4)), training=True)
    with pytest.raises(ValueError, match=r"GaussianDropout 'gd': rate=1 makes the noise's standard deviation"):
        lm.layers.GaussianDropout(1.0, name="gd")(jnp.ones((2, 3)), training=True)
    assert lm.layers.GaussianDropout(1.0)(jnp.ones((2, 3))).shape == (2, 3)  # inference still works
