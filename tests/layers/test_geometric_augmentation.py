"""RandomErasing, RandomGaussianBlur, RandomShear and RandomPerspective against Keras 3.

The checker runs in training where the factors make the draw deterministic (an erasing of the
whole image, a blur of fixed width) and at inference otherwise; the random transformations are
compared with Keras's ``transform_images`` (for Keras's own draws where they are arrays), and the
draws against their documented distributions and under ``lm.jit``.
"""


import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_arguments_and_config, check_layer, check_seeded_draws

import lamina as lm

RNG = np.random.default_rng(11)
IMAGES = RNG.uniform(0, 255, size=(2, 7, 9, 3)).astype(np.float32)
FIRST = IMAGES.transpose(0, 3, 1, 2)

CHECKER_CASES = [
    ("RandomErasing", dict(factor=(1.0, 1.0), scale=(1.0, 1.0), fill_value=7.0), IMAGES, True),  # all erased
    ("RandomGaussianBlur", dict(factor=(1.0, 1.0), kernel_size=(3, 5), sigma=(0.6, 0.6)), IMAGES, True),
    ("RandomGaussianBlur", dict(factor=(1.0, 1.0), sigma=(0.8, 0.8), data_format="channels_first"), FIRST, True),
    ("RandomShear", dict(x_factor=0.3, y_factor=0.2, seed=1), IMAGES, False),
    ("RandomPerspective", dict(scale=0.5, seed=1), IMAGES, False),
    ("RandomElasticTransform", dict(scale=0.5, seed=1), IMAGES, False),
]


@pytest.mark.parametrize("name, config, inputs, training", CHECKER_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CHECKER_CASES)])
def test_geometric_layers_pass_the_checker(keras, name, config, inputs, training):
    check_layer(lambda: getattr(lm.layers, name)(**config), lambda k: getattr(k.layers, name)(**config),
                inputs=inputs, training=training, keras=keras, rtol=1e-5, atol=1e-4, check_grads=False)


def _same_pixels(keras, name, config, images, transformation):
    mine = getattr(lm.layers, name)(**config).transform_images(jnp.asarray(images), transformation)
    theirs = getattr(keras.layers, name)(**config).transform_images(keras.ops.convert_to_tensor(images),
                                                                      transformation)
    np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-5, atol=1e-4)
    return np.asarray(mine)


@pytest.mark.parametrize("config, images", [
    (dict(x_factor=0.5, y_factor=0.5), IMAGES),
    (dict(x_factor=0.5, fill_mode="constant", interpolation="nearest", fill_value=3.0), IMAGES),
    (dict(y_factor=0.5, fill_mode="wrap", data_format="channels_first"), FIRST),
])
def test_shear_pixels_equal_keras(keras, config, images):
    _same_pixels(keras, "RandomShear", config, images, {"shear_factor": np.array([[0.3, -0.2], [-0.4, 0.1]],
                                                                                np.float32)})


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_perspective_pixels_equal_keras_for_keras_draws(keras, interpolation):
    reference = keras.layers.RandomPerspective(scale=0.6, seed=1, interpolation=interpolation)
    transformation = dict(reference.get_random_transformation(IMAGES), apply_perspective=np.array([True, False]))
    mine = _same_pixels(keras, "RandomPerspective", dict(scale=0.6, interpolation=interpolation, fill_value=2.0),
                        IMAGES, transformation)
    np.testing.assert_array_equal(mine[1], IMAGES[1])  # not drawn: unchanged


def test_erasing_and_blur_pixels_equal_keras_for_keras_draws(keras):
    for seed, config in ((2, dict()), (3, dict(fill_value=9.0, scale=0.5))):
        transformation = keras.layers.RandomErasing(seed=seed, **config).get_random_transformation(IMAGES)
        _same_pixels(keras, "RandomErasing", config, IMAGES, transformation)
    blur = {"should_apply_blur": np.array([True, False]), "blur_factor": np.array([0.7, 1.3], np.float32)}
    mine = _same_pixels(keras, "RandomGaussianBlur", dict(kernel_size=5), IMAGES, blur)
    np.testing.assert_array_equal(mine[1], IMAGES[1])


def test_the_formulas_hold_on_known_pixels():
    """Independent of Keras: the documented formulas on small images."""
    image = jnp.arange(12.0).reshape(1, 3, 4, 1)
    # shear x by 1: output (x, y) samples input (x + y, y)
    sheared = lm.layers.RandomShear(1.0, fill_mode="constant", fill_value=-1.0).transform_images(
        image, {"shear_factor": jnp.array([[1.0, 0.0]])})
    np.testing.assert_allclose(sheared[0, :, :, 0], [[0, 1, 2, 3], [5, 6, 7, -1], [10, 11, -1, -1]])
    # a perspective that moves no corner is the identity
    corners = jnp.array([[[0.0, 0.0], [3.0, 0.0], [0.0, 2.0], [3.0, 2.0]]])
    same = lm.layers.RandomPerspective().transform_images(
        image, {"apply_perspective": jnp.array([True]), "start_points": corners, "end_points": corners})
    np.testing.assert_allclose(same, image, atol=1e-4)
    # the blur kernel is the normalized outer product of two Gaussians
    dot = jnp.zeros((1, 5, 5, 1)).at[0, 2, 2, 0].set(1.0)
    blurred = lm.layers.RandomGaussianBlur(kernel_size=(3, 5)).transform_images(
        dot, {"should_apply_blur": jnp.array([True]), "blur_factor": jnp.array([0.5, 1.0])}, training=True)
    gx, gy = np.exp(-0.5 * (np.arange(-1, 2) / 0.5) ** 2), np.exp(-0.5 * (np.arange(-2, 3) / 1.0) ** 2)
    np.testing.assert_allclose(np.asarray(blurred[0, :, 1:4, 0]), np.outer(gy / gy.sum(), gx / gx.sum())[::-1, ::-1],
                               rtol=1e-5, atol=1e-7)


MANY = jnp.zeros((2000, 10, 20, 1))


def test_draws_follow_the_documented_distributions():
    erased = lm.layers.RandomErasing(factor=(0.4, 0.4), scale=(0.04, 0.25), seed=1).get_random_transformation(MANY)
    masks = np.asarray(erased["batch_masks"])[..., 0]
    applied = np.asarray(erased["apply_erasing"])
    assert 0.36 < applied.mean() < 0.44
    heights, widths = masks.any(axis=2).sum(axis=1), masks.any(axis=1).sum(axis=1)
    assert heights.min() >= 1 and heights.max() <= 6 and widths.min() >= 3 and widths.max() <= 11
    assert np.all(masks.sum(axis=(1, 2)) == heights * widths)  # rectangles
    fill = np.asarray(erased["fill_value"])
    assert fill.min() >= 0 and fill.max() <= 255 and 0.45 < np.mean(fill == 0) < 0.55  # clipped N(0, 255)
    blur = lm.layers.RandomGaussianBlur(factor=(0.3, 0.3), sigma=(0.2, 0.9), seed=2)
    draw = lm.jit(lambda: blur.get_random_transformation(MANY[:1])["blur_factor"])
    sigmas = np.array([np.asarray(draw()) for _ in range(60)])
    assert sigmas.min() >= 0.2 and sigmas.max() <= 0.9 + 1e-5 and sigmas.min() < 0.25 and sigmas.max() > 0.85
    assert 0.27 < float(np.mean(blur.get_random_transformation(MANY)["should_apply_blur"])) < 0.33
    shear = np.asarray(lm.layers.RandomShear((0.1, 0.4), 0.2, seed=3).get_random_transformation(MANY)["shear_factor"])
    assert np.all((np.abs(shear[:, 0]) >= 0.1 - 1e-6) & (np.abs(shear[:, 0]) <= 0.4 + 1e-6))
    assert 0.45 < np.mean(shear[:, 0] > 0) < 0.55 and np.abs(shear[:, 1]).max() <= 0.2 + 1e-6
    warp = lm.layers.RandomPerspective(factor=0.6, scale=0.4, seed=4).get_random_transformation(MANY)
    moves = (np.asarray(warp["end_points"]) - np.asarray(warp["start_points"]))[:, 3] / np.array([19.0, 9.0])
    assert np.abs(moves).max() <= 0.2 + 1e-6 and np.abs(moves).max() > 0.19
    assert 0.27 < float(np.mean(warp["apply_perspective"])) < 0.33  # probability drawn in (0, 0.6)


def _layers(seed):
    return [lm.layers.RandomErasing(seed=seed), lm.layers.RandomGaussianBlur(factor=(1.0, 1.0), seed=seed + 1),
            lm.layers.RandomShear(0.3, 0.3, seed=seed + 2), lm.layers.RandomPerspective(scale=0.5, seed=seed + 3)]


def test_training_under_jit_draws_anew_and_repeats_with_the_seed():
    x = jnp.asarray(IMAGES)
    step = check_seeded_draws(_layers(5), x)
    assert all(out.shape == x[0].shape for out in step(x[0]))  # one image


CONFIG_CASES = [
    ("RandomErasing", (0.5, (0.1, 0.2), (1.0, 2.0, 3.0)), {"seed": 2}),
    ("RandomGaussianBlur", (0.5, (3, 5), (0.1, 0.9)), {"value_range": (0, 1)}),
    ("RandomShear", (0.2, (0.1, 0.3)), {"fill_mode": "constant", "fill_value": 1.0}),
    ("RandomPerspective", (0.4, 0.3, "nearest"), {"data_format": "channels_first"}),
    ("RandomElasticTransform", (0.4, (0.2, 0.5), "nearest", "mirror", 1.0), {"value_range": (0, 1)}),
]


@pytest.mark.parametrize("name, args, kwargs", CONFIG_CASES)
def test_arguments_and_config_are_keras(keras, name, args, kwargs):
    check_arguments_and_config(getattr(lm.layers, name), getattr(keras.layers, name), args, kwargs,
                               compare_dicts=True)


def test_bad_arguments_raise_naming_the_layer():
    with pytest.raises(ValueError, match=r"RandomGaussianBlur 'blur': `kernel_size` must be an odd"):
        lm.layers.RandomGaussianBlur(kernel_size=4, name="blur")
    with pytest.raises(ValueError, match=r"RandomGaussianBlur .*`sigma` must be"):
        lm.layers.RandomGaussianBlur(sigma=2.0)
    with pytest.raises(ValueError, match=r"RandomErasing .*`fill_value` must be None, a number or three"):
        lm.layers.RandomErasing(fill_value=(1, 2))
    with pytest.raises(ValueError, match=r"RandomErasing .*`scale` must be"):
        lm.layers.RandomErasing(scale=(0.1, 1.5))
    with pytest.raises(ValueError, match=r"RandomShear .shear.: `x_factor` must be a number in \[0, 1\]"):
        lm.layers.RandomShear(x_factor=-0.2, name="shear")
    with pytest.raises(ValueError, match=r"RandomShear .*`fill_mode` must be one of"):
        lm.layers.RandomShear(fill_mode="mirror")
    with pytest.raises(ValueError, match=r"RandomPerspective .*`scale` must be a number in \[0, 1\]"):
        lm.layers.RandomPerspective(scale=1.5)
    with pytest.raises(ValueError, match=r"RandomPerspective .*`interpolation` must be one of"):
        lm.layers.RandomPerspective(interpolation="bicubic")


def test_elastic_transform_follows_the_documented_formula():
    """Against SciPy: the noise times sigma, blurred by a Gaussian of width sigma (zero-padded,
    6 sigma wide), times alpha, displaces the sampling points."""
    from scipy import ndimage

    layer = lm.layers.RandomElasticTransform(scale=(0.6, 0.6), fill_mode="constant", fill_value=5.0,
                                             interpolation="bilinear")
    noise = RNG.normal(size=(2, 2, 7, 9)).astype(np.float32)
    transformation = {"apply_transform": np.array([True, False]), "distortion_factor": np.float32(0.6),
                      "noise": noise}
    out = np.asarray(layer.transform_images(jnp.asarray(IMAGES), transformation))
    np.testing.assert_array_equal(out[1], IMAGES[1])  # not drawn: unchanged
    alpha, sigma = 9 * 0.1 * 0.6, 7 * 0.05 * 0.6
    size = int(6 * sigma) | 1
    g = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
    kernel = np.outer(g, g) / np.outer(g, g).sum()
    fx, fy = (ndimage.correlate(noise[0, i] * sigma, kernel, mode="constant") for i in range(2))
    rows, columns = np.meshgrid(np.arange(7), np.arange(9), indexing="ij")
    expected = np.stack([ndimage.map_coordinates(IMAGES[0, ..., c], [rows + alpha * fy, columns + alpha * fx],
                                                 order=1, mode="grid-constant", cval=5.0) for c in range(3)], axis=-1)
    np.testing.assert_allclose(out[0], np.clip(expected, 0, 255), rtol=1e-4, atol=1e-2)
    zero = dict(transformation, noise=np.zeros_like(noise), apply_transform=np.array([True, True]))
    np.testing.assert_allclose(np.asarray(layer.transform_images(jnp.asarray(IMAGES), zero)), IMAGES, atol=1e-4)
    step = lm.jit(lambda x: layer(x))
    assert not np.allclose(np.asarray(step(IMAGES)), np.asarray(step(IMAGES)))
