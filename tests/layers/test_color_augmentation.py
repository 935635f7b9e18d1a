"""Colour augmentation layers against Keras 3.

Each goes through the layer checker at inference and in training with factors that make the
draw deterministic (``RandomBrightness((0.2, 0.2))``, ``AutoContrast``, ...); the random
transformations are compared with Keras's ``transform_images`` for a transformation chosen
here, and the draws against their documented distributions, eagerly, under ``lm.jit`` and in
``fit``.
"""


import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_arguments_and_config, check_layer, check_seeded_draws

import lamina as lm

RNG = np.random.default_rng(7)
IMAGES = RNG.uniform(0, 255, size=(2, 5, 6, 3)).astype(np.float32)
UNIT = IMAGES / 255.0

# (layer, config, inputs): one checker case each, in training with factors that make the draw
# deterministic (at inference the random ones return their input: see the jit test).
CHECKER_CASES = [
    ("RandomBrightness", dict(factor=(-0.3, -0.3), value_range=(0, 1)), UNIT[0]),  # one image
    ("RandomGrayscale", dict(factor=1.0, data_format="channels_first"), IMAGES.transpose(0, 3, 1, 2)),
    ("RandomInvert", dict(factor=(1.0, 1.0), value_range=(0, 1)), UNIT),
    ("Solarization", dict(), IMAGES),  # threshold 0: every pixel inverted
    ("RandomSaturation", dict(factor=(0.7, 0.7), value_range=(0, 1)), UNIT),
    ("RandomHue", dict(factor=(0.0, 0.0), data_format="channels_first"), IMAGES.transpose(0, 3, 1, 2)),
    ("RandomColorDegeneration", dict(factor=(0.6, 0.6)), IMAGES),
    ("RandomSharpness", dict(factor=(0.9, 0.9), data_format="channels_first"), IMAGES.transpose(0, 3, 1, 2)),
    ("RandomPosterization", dict(factor=(3, 3), value_range=(0, 1)), UNIT),
    ("AutoContrast", dict(value_range=(0, 1)), UNIT * 0.5),
    ("Equalization", dict(bins=4), IMAGES[..., :1]),
    ("RandomColorJitter", dict(value_range=(0, 1), brightness_factor=(0.1, 0.1), saturation_factor=(0.7, 0.7)),
     UNIT),
    ("ContrastLimitedAdaptiveHistogramEqualization", dict(tile_grid_size=(2, 3), clip_limit=2.0,
                                                       data_format="channels_first", value_range=(0, 1)),
     UNIT.transpose(0, 3, 1, 2)),
]


@pytest.mark.parametrize("name, config, inputs", CHECKER_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CHECKER_CASES)])
def test_color_layers_pass_the_checker(keras, name, config, inputs):
    check_layer(lambda: getattr(lm.layers, name)(**config), lambda k: getattr(k.layers, name)(**config),
                inputs=inputs, training=True, keras=keras, rtol=1e-5, atol=1e-4, check_grads=False)


# --- random transformations chosen here give Keras's pixels ----------------------------------------

B = np.array
TRANSFORM_CASES = [
    ("RandomGrayscale", dict(), B([True, False]).reshape(2, 1, 1, 1), None),
    ("RandomInvert", dict(value_range=(-1, 3)), {"apply_inversion": B([False, True])}, None),
    ("Solarization", dict(value_range=(0, 1)),
     {"additions": B([10.0, 60.0], np.float32).reshape(2, 1, 1, 1),
      "thresholds": B([128.0, 200.0], np.float32).reshape(2, 1, 1, 1)}, "unit"),
    ("RandomSaturation", dict(factor=0.5), {"factor": B([0.3, 2.5], np.float32)}, None),
    ("RandomHue", dict(factor=1.0), {"factor": B([-0.37, 0.21], np.float32)}, None),
    ("RandomHue", dict(factor=1.0, data_format="channels_first"), {"factor": B([0.45, -0.1], np.float32)}, "first"),
    ("RandomColorDegeneration", dict(factor=1.0), {"factor": B([-0.4, 0.8], np.float32).reshape(2, 1, 1, 1)}, None),
    ("RandomSharpness", dict(factor=1.0), {"factor": B([0.1, 0.95], np.float32)}, None),
    ("RandomPosterization", dict(factor=8), {"shift_factor": B([7, 2], np.uint8)}, None),
    ("RandomBrightness", dict(factor=1.0), {"rgb_delta": B([-40.0, 90.0], np.float32).reshape(2, 1, 1, 1)}, None),
]


@pytest.mark.parametrize("name, config, transformation, images", TRANSFORM_CASES)
def test_given_transformations_give_keras_pixels(keras, name, config, transformation, images):
    images = {None: IMAGES, "first": IMAGES.transpose(0, 3, 1, 2), "unit": UNIT}[images]
    mine = getattr(lm.layers, name)(**config).transform_images(jnp.asarray(images), transformation, training=True)
    theirs = getattr(keras.layers, name)(**config).transform_images(keras.ops.convert_to_tensor(images),
                                                                      transformation, training=True)
    np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-5, atol=1e-4)


def test_the_formulas_hold_on_known_pixels():
    """Independent of Keras: the documented formulas on hand-computed pixels."""
    pixel = jnp.array([[[[10.0, 20.0, 30.0]]]])
    gray = 0.2989 * 10 + 0.5870 * 20 + 0.1140 * 30
    np.testing.assert_allclose(lm.layers.RandomGrayscale(1.0)(pixel)[0, 0, 0], [gray] * 3, rtol=1e-6)
    np.testing.assert_allclose(lm.layers.RandomInvert((1.0, 1.0))(pixel)[0, 0, 0], [245, 235, 225])
    solar = lm.layers.Solarization(threshold_factor=(0.1, 0.1))  # threshold 25.5
    np.testing.assert_allclose(solar(pixel)[0, 0, 0], [10, 20, 225])
    posterized = lm.layers.RandomPosterization((1, 1))(jnp.array([[[[127.0, 128.0, 255.0]]]]))
    np.testing.assert_array_equal(np.asarray(posterized[0, 0, 0]), [0, 128, 128])
    column = jnp.array([[[[50.0]], [[100.0]], [[150.0]]]])  # one channel, 3 x 1
    np.testing.assert_allclose(lm.layers.AutoContrast()(column)[0, :, 0, 0], [0, 127.5, 255])
    np.testing.assert_allclose(lm.layers.AutoContrast()(jnp.full((1, 2, 2, 1), 7.0)), 7.0)  # flat: unchanged
    # Equalization: the cumulative histogram's rank, scaled to 255 (4 values, 4 levels).
    np.testing.assert_allclose(lm.layers.Equalization()(jnp.array([[[[0.0]], [[50.0]], [[50.0]], [[90.0]]]]))
                               [0, :, 0, 0], [0, 170, 170, 255])
    # RandomSharpness: f = 0 is the smoothing filter (1/13 around, 5/13 in the middle, zero-padded).
    dot = jnp.zeros((1, 3, 3, 1)).at[0, 1, 1, 0].set(130.0)
    np.testing.assert_allclose(lm.layers.RandomSharpness((0.0, 0.0))(dot)[0, :, :, 0],
                               [[10, 10, 10], [10, 50, 10], [10, 10, 10]], rtol=1e-5)


# --- draws: documented distributions, new every step, reproducible -------------------------------------

MANY = jnp.zeros((4000, 1, 1, 3))


def _spans(values, low, high, slack):
    values = np.asarray(values, np.float64)
    assert values.min() >= low - 1e-4 and values.max() <= high + 1e-4, (values.min(), values.max(), low, high)
    assert values.min() < low + slack and values.max() > high - slack, (values.min(), values.max(), low, high)


def test_draws_follow_the_documented_distributions():
    _spans(lm.layers.RandomBrightness((-0.1, 0.3), value_range=(0, 2), seed=1)
           .get_random_transformation(MANY)["rgb_delta"], -0.2, 0.6, 0.01)
    assert 0.27 < float(np.mean(lm.layers.RandomGrayscale(0.3, seed=2).get_random_transformation(MANY))) < 0.33
    # each image draws p in factor, then inverts with probability p: P = mean of the range
    inverted = lm.layers.RandomInvert((0.2, 0.6), seed=3).get_random_transformation(MANY)["apply_inversion"]
    assert 0.37 < float(np.mean(inverted)) < 0.43
    solar = lm.layers.Solarization((0.1, 0.2), (0.5, 0.9), seed=4).get_random_transformation(MANY)
    _spans(solar["additions"], 25.5, 51.0, 1.0)
    _spans(solar["thresholds"], 127.5, 229.5, 1.0)
    f = np.asarray(lm.layers.RandomSaturation((0.2, 0.6), seed=5).get_random_transformation(MANY)["factor"])
    _spans(f / (1 + f), 0.2, 0.6, 0.01)  # the multiplier is f / (1 - f)
    shifts = np.asarray(lm.layers.RandomHue((0.2, 0.8), seed=6).get_random_transformation(MANY)["factor"])
    _spans(np.abs(shifts), 0.1, 0.4, 0.01)
    assert 0.45 < float(np.mean(shifts > 0)) < 0.55
    _spans(lm.layers.RandomColorDegeneration(0.4, seed=7).get_random_transformation(MANY)["factor"], -0.4, 0.4, 0.01)
    _spans(lm.layers.RandomSharpness((0.2, 0.7), seed=8).get_random_transformation(MANY)["factor"], 0.2, 0.7, 0.01)
    shift = np.asarray(lm.layers.RandomPosterization((2, 5), seed=9).get_random_transformation(MANY)["shift_factor"])
    assert set(np.unique(8 - shift.astype(int))) == {2, 3, 4, 5}
    jitter = lm.layers.RandomColorJitter(brightness_factor=0.5, hue_factor=0.5, seed=10)
    drawn = jitter.get_random_transformation(MANY)
    assert set(drawn) == {"brightness", "hue"}
    _spans(drawn["brightness"]["rgb_delta"], -127.5, 127.5, 2.0)


def _color_layers(seed):
    return [lm.layers.RandomBrightness(0.3, seed=seed), lm.layers.RandomGrayscale(seed=seed + 1),
            lm.layers.RandomInvert(seed=seed + 2), lm.layers.Solarization(0.2, 0.5, seed=seed + 3),
            lm.layers.RandomSaturation(0.6, seed=seed + 4), lm.layers.RandomHue(0.5, seed=seed + 5),
            lm.layers.RandomColorDegeneration(0.5, seed=seed + 6), lm.layers.RandomSharpness(0.8, seed=seed + 7),
            lm.layers.RandomPosterization((2, 7), seed=seed + 8),
            lm.layers.RandomColorJitter(brightness_factor=0.2, contrast_factor=0.3, saturation_factor=0.4,
                                        hue_factor=0.2, seed=seed + 9)]


X = jnp.asarray(RNG.uniform(0, 255, size=(8, 4, 4, 3)).astype(np.float32))


def test_training_under_jit_draws_anew_and_repeats_with_the_seed():
    """One compiled step over all the random colour layers: each call draws new parameters
    (the seed generators are state), the same seed states repeat the draws, inference returns
    the images, and ``lm.utils.set_random_seed`` repeats unseeded layers."""
    layers = _color_layers(11)
    check_seeded_draws(layers, X)
    for layer in layers:
        np.testing.assert_array_equal(np.asarray(layer(X, training=False)), np.asarray(X), err_msg=layer.name)
    outputs = []
    for _ in range(2):
        lm.utils.set_random_seed(5)
        outputs.append(np.asarray(lm.layers.RandomBrightness(0.5)(X)))
    np.testing.assert_array_equal(*outputs)
    assert not np.allclose(outputs[0], np.asarray(X))


def test_color_augmentation_in_front_of_a_model_trains_with_fit():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(16, 4, 4, 3)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 127).astype(np.int32)
    brightness, hue = lm.layers.RandomBrightness(0.2, seed=1), lm.layers.RandomHue(0.3, seed=2)
    model = lm.Sequential([lm.Input((4, 4, 3)), brightness, hue, lm.layers.AutoContrast(),
                           lm.layers.GlobalAveragePooling2D(), lm.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for layer, seed in ((brightness, 1), (hue, 2)):  # two steps, one draw each
        expected = lm.random.SeedGenerator(seed)
        expected.next(), expected.next()
        np.testing.assert_array_equal(np.asarray(layer.seed_generator.state.value), np.asarray(expected.state.value))
    plain = lm.Sequential([model.layers[2], model.layers[3], model.layers[4]])  # AutoContrast applies at inference
    np.testing.assert_allclose(model.predict(x, verbose=0), np.asarray(plain(x)), rtol=1e-5, atol=1e-6)


# --- arguments, configs, dtypes and errors -------------------------------------------------------------

CONFIG_CASES = [
    ("RandomBrightness", ((0.1, 0.3),), {"value_range": (0, 1), "seed": 2}),
    ("RandomGrayscale", (0.3,), {}),
    ("RandomInvert", (0.4,), {"value_range": (-1, 1)}),
    ("Solarization", (0.2, (0.1, 0.3)), {"seed": 1}),
    ("RandomSaturation", (0.3,), {}),
    ("RandomHue", ((0.1, 0.2),), {}),
    ("RandomColorDegeneration", (0.3,), {"data_format": "channels_first"}),
    ("RandomSharpness", (0.3,), {}),
    ("RandomPosterization", (3,), {}),
    ("AutoContrast", ((0, 1),), {}),
    ("Equalization", (), {"bins": 64}),
    ("ContrastLimitedAdaptiveHistogramEqualization", ((0, 1), 2.0, (4, 2)), {}),
    ("RandomColorJitter", (), {"brightness_factor": 0.2, "hue_factor": (0.1, 0.3), "seed": 4}),
]


@pytest.mark.parametrize("name, args, kwargs", CONFIG_CASES)
def test_arguments_and_config_are_keras(keras, name, args, kwargs):
    """Keras's argument names in Keras's order and Keras's config (keys and values), so that
    configs move between the two libraries; RandomGrayscale's also keeps its seed."""
    ours = getattr(lm.layers, name)
    mine, reference = check_arguments_and_config(
        ours, getattr(keras.layers, name), args, kwargs, extra_keys={"seed"} if name == "RandomGrayscale" else (),
        compare_dicts=True)
    assert ours.from_config(reference).get_config() == {**mine, "name": reference["name"]}


# One layer of each dtype behaviour (the others share their code path with one of these).
DTYPE_CASES = [("RandomGrayscale", (1.0,)), ("RandomInvert", ()), ("Solarization", ()), ("RandomPosterization", (3,)),
               ("AutoContrast", ()), ("ContrastLimitedAdaptiveHistogramEqualization", ((0, 255), 2.0, (1, 2)))]


def test_integer_images_come_out_in_the_dtype_keras_gives(keras):
    """Floats in training; at inference uint8 passes unchanged except through the layers
    that cast first (Solarization, RandomSharpness, AutoContrast), as in Keras; CLAHE keeps
    the input's dtype in both."""
    images = np.random.default_rng(0).integers(0, 256, size=(2, 3, 4, 3)).astype(np.uint8)
    for name, args in DTYPE_CASES:
        args = tuple((0, 255) if a is None else a for a in args)
        for training in (True, False):
            mine = getattr(lm.layers, name)(*args)(images, training=training)
            theirs = getattr(keras.layers, name)(*args)(images, training=training)
            assert str(mine.dtype) == str(theirs.dtype), (name, training)


def test_integer_images_where_keras_breaks_come_out_as_floats(keras):
    """Keras 3.15 adds RandomBrightness's float offset to uint8 images in uint8 (negative
    offsets wrap around) and refuses uint8 in RandomSaturation: here both give floats."""
    images = np.full((1, 2, 2, 3), 100, np.uint8)
    darker = lm.layers.RandomBrightness((-0.2, -0.2))(images)
    assert darker.dtype == jnp.float32 and np.allclose(np.asarray(darker), 49.0)
    assert lm.layers.RandomSaturation((0.5, 0.5))(images).dtype == jnp.float32


def test_mixed_precision_computes_in_the_policy_dtype():
    assert lm.layers.RandomBrightness(0.2, seed=1, dtype="mixed_bfloat16")(X).dtype == jnp.bfloat16
    assert lm.layers.AutoContrast(dtype="bfloat16")(X).dtype == jnp.bfloat16


def test_bad_arguments_and_inputs_raise_naming_the_layer():
    with pytest.raises(ValueError, match=r"RandomBrightness 'b': `factor` must be .* in \[-1, 1\], got 1.5"):
        lm.layers.RandomBrightness(1.5, name="b")
    with pytest.raises(ValueError, match=r"RandomHue 'h': `factor` must be .* in \[0, 1\]"):
        lm.layers.RandomHue((-0.1, 0.2), name="h")
    with pytest.raises(ValueError, match=r"RandomPosterization .*`factor` must be .* in \[1, 8\], got 9"):
        lm.layers.RandomPosterization(9)
    with pytest.raises(ValueError, match=r"Solarization .*`threshold_factor`"):
        lm.layers.Solarization(threshold_factor=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match=r"RandomGrayscale .*`factor` must be a number in \[0, 1\]"):
        lm.layers.RandomGrayscale(2)
    with pytest.raises(ValueError, match=r"RandomInvert .*`value_range` must be a pair"):
        lm.layers.RandomInvert(value_range=(0, 255, 1))
    with pytest.raises(ValueError, match=r"Equalization .*`bins` must be an int"):
        lm.layers.Equalization(bins=1.5)
    with pytest.raises(ValueError, match=r"RandomGrayscale 'gray'.*3 channels.*shape \(2, 4, 4, 4\)"):
        lm.layers.RandomGrayscale(1.0, name="gray")(np.zeros((2, 4, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"RandomColorDegeneration 'fade'.*3 channels"):
        lm.layers.RandomColorDegeneration(0.2, name="fade").compute_output_shape((None, 4, 4, 2))
    with pytest.raises(ValueError, match=r"auto_contrast.*rank >= 3 and rank <= 4"):
        lm.layers.AutoContrast(name="auto_contrast")(np.zeros((4, 4), np.float32))


def test_a_keras_file_moves_between_the_libraries(keras, tmp_path):
    model = lm.Sequential([lm.Input((4, 4, 3)), lm.layers.RandomBrightness(0.2, seed=1), lm.layers.AutoContrast(),
                           lm.layers.RandomColorJitter(brightness_factor=0.1, hue_factor=0.2, seed=3),
                           lm.layers.Conv2D(2, 3), lm.layers.GlobalAveragePooling2D()])
    x = np.asarray(X)
    model.save(str(tmp_path / "m.keras"))
    theirs = keras.saving.load_model(str(tmp_path / "m.keras"))
    assert [type(layer).__name__ for layer in theirs.layers[:3]] == ["RandomBrightness", "AutoContrast",
                                                                      "RandomColorJitter"]
    np.testing.assert_allclose(theirs.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    theirs.save(str(tmp_path / "k.keras"))
    back = lm.load_model(str(tmp_path / "k.keras"))
    assert back.layers[2].get_config()["hue_factor"] == 0.2 and back.layers[0].seed == 1
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_clahe_with_one_tile_and_no_clip_is_plain_equalization():
    """Independent of Keras: one tile, no clipping: each level maps to its cumulative share."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(6, 7, 1)).astype(np.float32)
    out = lm.layers.ContrastLimitedAdaptiveHistogramEqualization(clip_limit=0, tile_grid_size=(1, 1))(image)
    levels = image.astype(int).ravel()
    cdf = np.cumsum(np.bincount(levels, minlength=256))
    expected = (cdf[levels] - cdf[0]) * 255.0 / (levels.size - cdf[0])
    np.testing.assert_allclose(np.asarray(out).ravel(), expected, rtol=1e-5, atol=1e-4)
