"""Image preprocessing and augmentation layers against Keras 3.

Resizing and CenterCrop go through the layer checker. The random layers go through it at
inference; in training their draws cannot match Keras's (different generators), so their pixels
are compared with Keras's ``transform_images`` for a transformation chosen here, their draws
are checked against the documented ranges, and their randomness is checked under ``lm.jit``
and ``fit``.
"""

import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_arguments_and_config, check_layer, random_input

import lamina as lm

# --- Resizing and CenterCrop -------------------------------------------------------------------

RESIZING_CASES = [
    (dict(height=4, width=5), (2, 6, 8, 3)),
    (dict(height=9, width=7, interpolation="nearest"), (2, 6, 8, 2)),
    (dict(height=9, width=11, interpolation="bicubic"), (1, 6, 8, 2)),
    (dict(height=4, width=3, interpolation="lanczos3"), (1, 6, 8, 2)),
    (dict(height=10, width=12, interpolation="lanczos5"), (1, 6, 8, 2)),
    (dict(height=3, width=4, antialias=True), (2, 7, 9, 2)),
    (dict(height=4, width=4, crop_to_aspect_ratio=True), (2, 6, 9, 2)),
    (dict(height=5, width=3, crop_to_aspect_ratio=True), (2, 6, 9, 2)),
    (dict(height=4, width=4, pad_to_aspect_ratio=True, fill_value=0.5), (2, 5, 9, 2)),
    (dict(height=6, width=3, pad_to_aspect_ratio=True), (2, 5, 9, 2)),
    (dict(height=4, width=5, data_format="channels_first"), (2, 3, 6, 8)),
    (dict(height=4, width=4, crop_to_aspect_ratio=True, data_format="channels_first"), (1, 2, 6, 9)),
    (dict(height=4, width=5), (6, 8, 3)),  # one image
]


@pytest.mark.parametrize("config, input_shape", RESIZING_CASES)
def test_resizing_passes_the_checker(keras, config, input_shape):
    check_layer(lambda: lm.layers.Resizing(**config), lambda k: k.layers.Resizing(**config), input_shape,
                keras=keras, rtol=1e-5, atol=1e-5)


def test_resizing_integer_images_keep_their_dtype_as_in_keras(keras):
    images = np.random.default_rng(0).integers(0, 256, size=(2, 5, 7, 3)).astype(np.uint8)
    mine = lm.layers.Resizing(8, 3)(images)
    theirs = keras.layers.Resizing(8, 3)(images)
    assert mine.dtype == jnp.uint8 and str(theirs.dtype) == "uint8"
    np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))


CENTER_CROP_CASES = [
    (dict(height=3, width=4), (2, 6, 9, 2)),
    (dict(height=3, width=4), (6, 9, 2)),
    (dict(height=3, width=4, data_format="channels_first"), (2, 2, 6, 9)),
    (dict(height=8, width=4), (2, 6, 9, 2)),  # taller than the image: aspect crop, then resize
]


@pytest.mark.parametrize("config, input_shape", CENTER_CROP_CASES)
def test_center_crop_passes_the_checker(keras, config, input_shape):
    check_layer(lambda: lm.layers.CenterCrop(**config), lambda k: k.layers.CenterCrop(**config), input_shape,
                keras=keras, rtol=1e-5, atol=1e-5)


# --- the random layers at inference --------------------------------------------------------------

INFERENCE_CASES = [
    ("RandomFlip", dict(mode="horizontal", seed=1)),
    ("RandomFlip", dict(seed=1, data_format="channels_first")),
    ("RandomRotation", dict(factor=0.2, seed=1)),
    ("RandomZoom", dict(height_factor=0.2, width_factor=(-0.1, 0.3), seed=1)),
    ("RandomTranslation", dict(height_factor=0.2, width_factor=0.1, seed=1)),
    ("RandomContrast", dict(factor=0.3, value_range=(-5, 5), seed=1)),
]


@pytest.mark.parametrize("name, config", INFERENCE_CASES)
def test_random_layers_at_inference_pass_the_checker(keras, name, config):
    """``training=False``: the identity, as Keras (the checker calls both with it)."""
    check_layer(lambda: getattr(lm.layers, name)(**config), lambda k: getattr(k.layers, name)(**config),
                (2, 5, 6, 3), keras=keras)


@pytest.mark.parametrize("config, input_shape", [
    (dict(height=3, width=4), (2, 6, 9, 2)),
    (dict(height=8, width=4), (2, 6, 9, 2)),
    (dict(height=3, width=4, data_format="channels_first"), (2, 2, 6, 9)),
])
def test_random_crop_at_inference_passes_the_checker(keras, config, input_shape):
    """RandomCrop at inference cuts the largest centred window of the target's aspect ratio
    and resizes it, as Keras documents; Keras 3.15's RandomCrop returns its input unchanged
    there (keras-team/keras#21868), so the reference is Keras's own aspect-ratio crop."""
    check_layer(lambda: lm.layers.RandomCrop(seed=1, **config),
                lambda k: k.layers.Resizing(crop_to_aspect_ratio=True, **config),
                input_shape, keras=keras, rtol=1e-5, atol=1e-5)


# --- the random layers with a given transformation equal Keras's pixels -------------------------

IMAGES = random_input((2, 7, 9, 2), seed=3)
FILL_MODES = ["reflect", "wrap", "constant", "nearest"]
INTERPOLATIONS = ["bilinear", "nearest"]


def _same_pixels(keras, mine_layer, keras_layer, images, transformation, keras_transformation=None):
    mine = mine_layer.transform_images(jnp.asarray(images), transformation, training=True)
    theirs = keras_layer.transform_images(keras.ops.convert_to_tensor(images),
                                          keras_transformation or transformation, training=True)
    assert mine.shape == tuple(theirs.shape)
    np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-5, atol=1e-5)
    return mine


def _keras_rotation(keras, layer, angles, height, width):
    batch = len(angles)
    zeros, ones = np.zeros(batch, np.float32), np.ones(batch, np.float32)
    matrix = layer._compute_affine_matrix(0.5, 0.5, keras.ops.convert_to_tensor(angles), zeros, zeros, ones,
                                          zeros, zeros, height, width)
    return {"angle": angles, "rotation_matrix": matrix}


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_rotation_pixels_equal_keras(keras, fill_mode, interpolation):
    config = dict(factor=0.5, fill_mode=fill_mode, interpolation=interpolation, fill_value=0.7)
    angles = np.array([23.7, -131.2], np.float32)
    _same_pixels(keras, lm.layers.RandomRotation(**config), k_layer := keras.layers.RandomRotation(**config), IMAGES,
                 {"angle": angles}, _keras_rotation(keras, k_layer, angles, 7, 9))


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_zoom_pixels_equal_keras(keras, fill_mode, interpolation):
    config = dict(height_factor=0.5, width_factor=0.5, fill_mode=fill_mode, interpolation=interpolation,
                  fill_value=-0.3)
    transformation = {"height_zoom": np.array([[0.63], [1.37]], np.float32),
                      "width_zoom": np.array([[1.21], [0.77]], np.float32)}
    _same_pixels(keras, lm.layers.RandomZoom(**config), keras.layers.RandomZoom(**config), IMAGES, transformation)


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_translation_pixels_equal_keras(keras, fill_mode, interpolation):
    config = dict(height_factor=0.5, width_factor=0.5, fill_mode=fill_mode, interpolation=interpolation,
                  fill_value=2.0)
    transformation = {"translations": np.array([[2.3, -1.2], [-3.7, 2.9]], np.float32)}  # (dx, dy) pixels
    _same_pixels(keras, lm.layers.RandomTranslation(**config), keras.layers.RandomTranslation(**config), IMAGES,
                 transformation)


@pytest.mark.parametrize("name, config, transformation", [
    ("RandomRotation", dict(factor=0.3, fill_mode="constant"), {"angle": np.array([31.3, 77.7], np.float32)}),
    ("RandomZoom", dict(height_factor=0.3, fill_mode="wrap"),
     {"height_zoom": np.array([[0.8], [1.2]], np.float32), "width_zoom": np.array([[1.1], [0.9]], np.float32)}),
    ("RandomTranslation", dict(height_factor=0.3, width_factor=0.3, interpolation="nearest"),
     {"translations": np.array([[1.2, -2.3], [0.4, 1.7]], np.float32)}),
])
def test_channels_first_pixels_equal_keras(keras, name, config, transformation):
    config = dict(config, data_format="channels_first")
    images = np.transpose(IMAGES, (0, 3, 1, 2))
    keras_layer = getattr(keras.layers, name)(**config)
    expected = transformation
    if name == "RandomRotation":
        expected = _keras_rotation(keras, keras_layer, transformation["angle"], 7, 9)
    mine = _same_pixels(keras, getattr(lm.layers, name)(**config), keras_layer, images, transformation, expected)
    # ... and equal the channels_last result, transposed.
    last = getattr(lm.layers, name)(**{k: v for k, v in config.items() if k != "data_format"})
    np.testing.assert_allclose(np.asarray(mine), np.transpose(np.asarray(last.transform_images(IMAGES, transformation)),
                                                              (0, 3, 1, 2)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
def test_flip_pixels_equal_keras(keras, mode):
    transformation = {"flips": np.array([True, False]).reshape(2, 1, 1, 1)}
    mine = _same_pixels(keras, lm.layers.RandomFlip(mode), keras.layers.RandomFlip(mode), IMAGES, transformation)
    np.testing.assert_array_equal(np.asarray(mine[1]), IMAGES[1])  # not drawn: unchanged
    expected = IMAGES[0]
    if mode != "vertical":
        expected = expected[:, ::-1]
    if mode != "horizontal":
        expected = expected[::-1]
    np.testing.assert_array_equal(np.asarray(mine[0]), expected)


def test_contrast_pixels_equal_keras(keras):
    images = np.random.default_rng(4).uniform(0, 255, size=(2, 5, 6, 3)).astype(np.float32)
    transformation = {"contrast_factor": np.array([0.6, 1.45], np.float32).reshape(2, 1, 1, 1)}
    config = dict(factor=0.5, value_range=(0, 255))
    mine = _same_pixels(keras, lm.layers.RandomContrast(**config), keras.layers.RandomContrast(**config), images,
                        transformation)
    mean = images.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(np.asarray(mine), np.clip((images - mean) * transformation["contrast_factor"] + mean,
                                                         0, 255), rtol=1e-5, atol=1e-4)


def test_random_crop_window_equals_keras(keras):
    mine = _same_pixels(keras, lm.layers.RandomCrop(3, 4), keras.layers.RandomCrop(3, 4), IMAGES, (2, 5))
    np.testing.assert_array_equal(np.asarray(mine), IMAGES[:, 2:5, 5:9])


def test_random_crop_of_a_smaller_image_resizes_in_training_too(keras):
    """Smaller than the target: the documented aspect-ratio crop and resize, as at inference."""
    layer = lm.layers.RandomCrop(8, 4, seed=0)
    expected = np.asarray(keras.layers.Resizing(8, 4, crop_to_aspect_ratio=True)(IMAGES))
    np.testing.assert_allclose(np.asarray(layer(IMAGES, training=True)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(layer(IMAGES, training=False)), expected, rtol=1e-5, atol=1e-5)


# --- draws: documented ranges, new every step, reproducible ---------------------------------------

MANY = np.zeros((4000, 10, 20, 1), np.float32)


def _spans(values, low, high, slack):
    values = np.asarray(values)
    assert values.min() >= low - 1e-5 and values.max() <= high + 1e-5, (values.min(), values.max(), low, high)
    assert values.min() < low + slack and values.max() > high - slack, (values.min(), values.max(), low, high)


def test_draws_stay_in_the_documented_ranges():
    _spans(lm.layers.RandomRotation((-0.1, 0.2), seed=1).get_random_transformation(MANY)["angle"], -36.0, 72.0, 1.0)
    _spans(lm.layers.RandomRotation(0.05, seed=1).get_random_transformation(MANY)["angle"], -18.0, 18.0, 0.5)
    zoom = lm.layers.RandomZoom((-0.3, 0.2), (0.1, 0.4), seed=2).get_random_transformation(MANY)
    _spans(zoom["height_zoom"], 0.7, 1.2, 0.01)
    _spans(zoom["width_zoom"], 1.1, 1.4, 0.01)
    same = lm.layers.RandomZoom(0.25, seed=2).get_random_transformation(MANY)
    _spans(same["height_zoom"], 0.75, 1.25, 0.01)
    np.testing.assert_array_equal(np.asarray(same["width_zoom"]), np.asarray(same["height_zoom"]))
    shifts = np.asarray(lm.layers.RandomTranslation((-0.2, 0.1), 0.3, seed=3).get_random_transformation(MANY)
                        ["translations"])
    _spans(shifts[:, 1], -2.0, 1.0, 0.05)   # height 10
    _spans(shifts[:, 0], -6.0, 6.0, 0.05)   # width 20
    _spans(lm.layers.RandomContrast(0.3, seed=4).get_random_transformation(MANY)["contrast_factor"], 0.7, 1.3, 0.01)
    _spans(lm.layers.RandomContrast((0.1, 0.5), seed=4).get_random_transformation(MANY)["contrast_factor"],
           0.9, 1.5, 0.01)
    flips = np.asarray(lm.layers.RandomFlip(seed=5).get_random_transformation(MANY)["flips"])
    assert flips.shape == (4000, 1, 1, 1) and 0.45 < flips.mean() < 0.55
    crop = lm.layers.RandomCrop(7, 16, seed=6)
    corners = np.array([[int(v) for v in crop.get_random_transformation(MANY)] for _ in range(300)])
    assert set(corners[:, 0]) == {0, 1, 2, 3} and set(corners[:, 1]) == {0, 1, 2, 3, 4}
    # An image exactly as tall as the crop is still cut at random widthwise (Keras 3.15 centres
    # it whenever one side is not strictly larger, keras-team/keras#21868).
    full_height = lm.layers.RandomCrop(10, 16, seed=6)
    corners = np.array([[int(v) for v in full_height.get_random_transformation(MANY)] for _ in range(100)])
    assert set(corners[:, 0]) == {0} and set(corners[:, 1]) == {0, 1, 2, 3, 4}


def test_factor_arguments_are_checked():
    with pytest.raises(ValueError, match="RandomRotation 'bad_rotation': `factor` must be"):
        lm.layers.RandomRotation(1.5, name="bad_rotation")
    with pytest.raises(ValueError, match=r"`height_factor` must be .* in \(-1.0, 1.0\]"):
        lm.layers.RandomZoom(-1.0)
    with pytest.raises(ValueError, match="`width_factor`"):
        lm.layers.RandomTranslation(0.1, (0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match=r"`factor` must be .* in \[0, 1\]"):
        lm.layers.RandomContrast(-0.2)
    with pytest.raises(ValueError, match="`fill_mode` must be one of"):
        lm.layers.RandomRotation(0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="`mode` must be one of"):
        lm.layers.RandomFlip("diagonal")
    with pytest.raises(ValueError, match="`interpolation` must be one of"):
        lm.layers.Resizing(2, 2, interpolation="area")
    with pytest.raises(ValueError, match="only one of"):
        lm.layers.Resizing(2, 2, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)


@pytest.mark.parametrize("make", [
    lambda: lm.layers.RandomFlip(), lambda: lm.layers.RandomRotation(0.1), lambda: lm.layers.Resizing(2, 2),
    lambda: lm.layers.CenterCrop(1, 1), lambda: lm.layers.RandomCrop(1, 1),
])
def test_wrong_rank_raises_naming_the_layer(make):
    layer = make()
    with pytest.raises(ValueError, match=rf"{layer.name}.*rank >= 3 and rank <= 4"):
        layer(jnp.ones((4, 5)))


@pytest.mark.parametrize("name, args", [
    ("RandomFlip", ()), ("RandomRotation", (0.2,)), ("RandomZoom", (0.2,)), ("RandomTranslation", (0.2, 0.2)),
    ("RandomContrast", (0.2,)), ("CenterCrop", (3, 3)),
])
@pytest.mark.parametrize("training", [True, False])
def test_integer_images_come_out_in_the_dtype_keras_gives(keras, name, args, training):
    """Float in both modes, except RandomContrast at inference, which passes them unchanged."""
    images = np.random.default_rng(0).integers(0, 256, size=(2, 5, 6, 3)).astype(np.uint8)
    mine = getattr(lm.layers, name)(*args)(images, training=training)
    theirs = getattr(keras.layers, name)(*args)(images, training=training)
    assert str(mine.dtype) == str(theirs.dtype)


CONFIG_CASES = [
    ("Resizing", (3, 4), {}), ("CenterCrop", (3, 4), {}), ("RandomFlip", (), {"seed": 2}),
    ("RandomRotation", ((-0.1, 0.3),), {"fill_mode": "wrap"}), ("RandomZoom", (0.2, (-0.1, 0.3)), {}),
    ("RandomTranslation", ((-0.1, 0.2), 0.3), {"interpolation": "nearest"}), ("RandomCrop", (3, 4), {"seed": 5}),
    ("RandomContrast", ((0.1, 0.4),), {"value_range": (0, 1)}),
]


@pytest.mark.parametrize("name, args, kwargs", CONFIG_CASES)
def test_arguments_and_config_are_keras(keras, name, args, kwargs):
    """Keras's argument names in Keras's order, and Keras's config (keys and values), so that
    configs move between the two libraries."""
    extra = ["data_format"] if name == "RandomContrast" else []  # Keras: via **kwargs
    check_arguments_and_config(getattr(lm.layers, name), getattr(keras.layers, name), args, kwargs,
                               extra_arguments=extra, compare_dicts=True)


def test_dict_inputs_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match=r"RandomFlip 'flip' takes images .* got a dict with keys \['images'\]"):
        lm.layers.RandomFlip(name="flip")({"images": np.zeros((2, 4, 4, 3), np.float32)})


RANDOM_LAYERS = [
    lambda seed: lm.layers.RandomFlip(seed=seed),
    lambda seed: lm.layers.RandomRotation(0.3, seed=seed),
    lambda seed: lm.layers.RandomZoom(0.3, seed=seed),
    lambda seed: lm.layers.RandomTranslation(0.3, 0.3, seed=seed),
    lambda seed: lm.layers.RandomContrast(0.5, seed=seed),
    lambda seed: lm.layers.RandomCrop(5, 6, seed=seed),
]
X = jnp.asarray(np.random.default_rng(1).uniform(0, 255, size=(4, 8, 9, 3)).astype(np.float32))


@pytest.mark.parametrize("make", RANDOM_LAYERS)
def test_training_under_jit_draws_new_transformations_every_call(make):
    layer = make(7)
    step = lm.jit(lambda x: layer(x, training=True))
    before = np.asarray(layer.seed_generator.state.value)
    first, second = np.asarray(step(X)), np.asarray(step(X))
    assert not np.allclose(first, second)
    assert not np.array_equal(np.asarray(layer.seed_generator.state.value), before)
    # the same seed gives the same draws, eagerly and compiled
    twin = make(7)
    np.testing.assert_allclose(np.asarray(twin(X, training=True)), first, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(np.asarray(twin(X, training=True)), second, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("make", RANDOM_LAYERS)
def test_one_image_and_config_round_trip(make):
    layer = make(3)
    out = layer(X[0], training=True)
    assert out.shape == layer.compute_output_shape(X[0].shape) and out.dtype == jnp.float32
    config = layer.get_config()
    import json

    rebuilt = type(layer).from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    np.testing.assert_allclose(np.asarray(rebuilt(X, training=True)), np.asarray(make(3)(X, training=True)),
                               rtol=1e-6, atol=1e-4)


def test_a_direct_call_augments_as_in_keras(keras):
    """Keras 3's image layers default to ``training=True`` in ``call``: ``layer(images)`` and a
    ``Sequential`` of them called directly augment (the transfer-learning guide shows the
    augmented images that way); ``predict`` does not."""
    images = X[:2]
    for library in (lm, keras):
        model = library.Sequential([library.layers.RandomFlip("horizontal", seed=1),
                                    library.layers.RandomRotation(0.2, seed=2)])
        assert not np.allclose(np.asarray(model(images)), np.asarray(images))
        np.testing.assert_allclose(model.predict(np.asarray(images), verbose=0), np.asarray(images), rtol=1e-6)


def test_augmentation_in_front_of_a_convnet_trains_with_fit():
    """The guide's pattern: each training step draws new flips and rotations (the seed
    generators advance once per step), and inference is the plain convnet."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(16, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.int32)
    flip, rotate = lm.layers.RandomFlip("horizontal", seed=1), lm.layers.RandomRotation(0.1, seed=2)
    augmentation = lm.Sequential([flip, rotate])
    model = lm.Sequential([lm.Input((8, 8, 1)), augmentation, lm.layers.Conv2D(4, 3, activation="relu"),
                           lm.layers.GlobalAveragePooling2D(), lm.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for layer, seed in ((flip, 1), (rotate, 2)):
        expected = lm.random.SeedGenerator(seed)
        expected.next(), expected.next()  # two steps, one draw each
        np.testing.assert_array_equal(np.asarray(layer.seed_generator.state.value), np.asarray(expected.state.value))
    predictions = model.predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), predictions)
    plain = lm.Sequential(model.layers[1:])
    np.testing.assert_allclose(np.asarray(plain(x)), predictions, rtol=1e-5, atol=1e-6)


def test_functional_model_with_augmentation_layers():
    inputs = lm.Input((8, 9, 3))
    x = lm.layers.RandomCrop(6, 6, seed=1)(inputs)
    x = lm.layers.RandomZoom(0.2, seed=2)(x)
    outputs = lm.layers.Resizing(4, 4)(x)
    model = lm.Model(inputs, outputs)
    assert model.outputs[0].shape == (None, 4, 4, 3)
    assert model(X, training=True).shape == model(X, training=False).shape == (4, 4, 4, 3)


def test_unseeded_layers_draw_different_transformations():
    a, b = lm.layers.RandomRotation(0.3), lm.layers.RandomRotation(0.3)
    assert not np.allclose(np.asarray(a(X)), np.asarray(b(X)))
