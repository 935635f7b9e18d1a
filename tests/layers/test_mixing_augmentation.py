"""MixUp, CutMix and Pipeline against Keras 3.

MixUp and CutMix mix images *and labels* (Keras's ``{"images", "labels"}`` dict): their pixels
and labels equal Keras's for Keras's own draws, and their draws follow the documented
distributions. Pipeline goes through the checker in training with deterministic layers, and
its config is Keras's.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_arguments_and_config, check_layer

import lamina as lm

RNG = np.random.default_rng(5)
IMAGES = RNG.uniform(0, 255, size=(4, 6, 5, 3)).astype(np.float32)
LABELS = np.eye(4, dtype=np.float32)

CHECKER_CASES = [
    ("MixUp", dict(alpha=0.4, seed=1), False),  # inference: the identity
    ("CutMix", dict(seed=1, data_format="channels_first"), False),
    ("Pipeline", "color", True),
    ("RandAugment", dict(num_ops=3, factor=0.4, seed=1), False),
    ("AugMix", dict(num_chains=2, all_ops=False, seed=1), False),
]


def _pipeline(library):
    return library.layers.Pipeline([library.layers.AutoContrast(value_range=(0, 1)),
                                    library.layers.RandomBrightness((-0.2, -0.2), value_range=(0, 1))])


@pytest.mark.parametrize("name, config, training", CHECKER_CASES, ids=[c[0] for c in CHECKER_CASES])
def test_mixing_layers_pass_the_checker(keras, name, config, training):
    if name == "Pipeline":
        make, make_keras, inputs = (lambda: _pipeline(lm)), _pipeline, IMAGES / 255.0
    else:
        make, make_keras = (lambda: getattr(lm.layers, name)(**config)), (lambda k: getattr(k.layers, name)(**config))
        inputs = IMAGES.transpose(0, 3, 1, 2) if config.get("data_format") == "channels_first" else IMAGES
    check_layer(make, make_keras, inputs=inputs, training=training, keras=keras, rtol=1e-5, atol=1e-4,
                check_grads=False)


@pytest.mark.parametrize("name", ["MixUp", "CutMix"])
def test_images_and_labels_equal_keras_for_keras_draws(keras, name):
    reference = getattr(keras.layers, name)(seed=3)
    transformation = reference.get_random_transformation(IMAGES)
    layer = getattr(lm.layers, name)()
    np.testing.assert_allclose(np.asarray(layer.transform_images(jnp.asarray(IMAGES), transformation)),
                               np.asarray(reference.transform_images(keras.ops.convert_to_tensor(IMAGES),
                                                                     transformation)), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(np.asarray(layer.transform_labels(jnp.asarray(LABELS), transformation)),
                               np.asarray(reference.transform_labels(keras.ops.convert_to_tensor(LABELS),
                                                                     transformation)), rtol=1e-6, atol=1e-6)


def test_mixup_blends_images_and_labels_with_beta_weights():
    many = jnp.asarray(RNG.uniform(size=(3000, 1, 1, 1)).astype(np.float32))
    transformation = lm.layers.MixUp(alpha=0.2, seed=4).get_random_transformation(many)
    weights, order = np.asarray(transformation["mix_weight"]), np.asarray(transformation["permutation_order"])
    np.testing.assert_array_equal(np.sort(order), np.arange(3000))
    # Beta(0.2, 0.2): mean 1/2, variance 1 / (4 (2 alpha + 1)) = 0.1786
    assert abs(weights.mean() - 0.5) < 0.03 and abs(weights.var() - 0.1786) < 0.02
    out = lm.layers.MixUp(alpha=0.2, seed=4)({"images": many, "labels": jnp.eye(3000)[:, :5]})
    x = np.asarray(many)[:, 0, 0, 0]
    np.testing.assert_allclose(np.asarray(out["images"])[:, 0, 0, 0], weights * x + (1 - weights) * x[order],
                               rtol=1e-5, atol=1e-6)
    expected = weights[:, None] * np.eye(3000)[:, :5] + (1 - weights[:, None]) * np.eye(3000)[order, :5]
    np.testing.assert_allclose(np.asarray(out["labels"]), expected, rtol=1e-5, atol=1e-6)


def test_cutmix_pastes_one_box_and_weighs_the_labels_by_its_area():
    images = jnp.asarray(np.arange(8)[:, None, None, None] * np.ones((8, 12, 10, 2), np.float32))
    out = lm.layers.CutMix(seed=5)({"images": images, "labels": jnp.eye(8)})
    mixed, labels = np.asarray(out["images"])[..., 0], np.asarray(out["labels"])
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-6)
    for i in range(8):
        pasted = mixed[i] != i
        if pasted.any():
            rows, columns = np.nonzero(pasted)
            box = (rows.max() - rows.min() + 1, columns.max() - columns.min() + 1)
            assert pasted.sum() == box[0] * box[1]  # one rectangle
            source = int(mixed[i][pasted][0])
            assert np.all(mixed[i][pasted] == source)
            # the label weighs the continuous box: the pixel count differs by at most its border
            assert abs(labels[i, source] - pasted.mean()) <= (box[0] + box[1] + 1) / 120 + 1e-6
            np.testing.assert_allclose(labels[i, i] + labels[i, source], 1.0, rtol=1e-6)
    one = jnp.asarray(IMAGES[0])
    np.testing.assert_array_equal(np.asarray(lm.layers.CutMix(seed=1)(one)), IMAGES[0])  # nothing to mix with


def test_training_under_jit_draws_anew():
    mixup, cutmix = lm.layers.MixUp(seed=6), lm.layers.CutMix(seed=7)
    step = lm.jit(lambda data: (mixup(data), cutmix(data)))
    data = {"images": jnp.asarray(IMAGES), "labels": jnp.asarray(LABELS)}
    first, second = step(data), step(data)
    for a, b in zip(first, second):
        assert not np.allclose(np.asarray(a["labels"]), np.asarray(b["labels"]))
    twin = lm.layers.MixUp(seed=6)(data)
    np.testing.assert_allclose(np.asarray(twin["images"]), np.asarray(first[0]["images"]), rtol=1e-5, atol=1e-3)
    assert mixup(data, training=False)["labels"] is not None
    np.testing.assert_array_equal(np.asarray(mixup(data, training=False)["images"]), IMAGES)


def test_pipeline_passes_labels_through_image_layers_and_mixes_them_in_mixup():
    pipeline = lm.layers.Pipeline([lm.layers.RandomFlip(seed=1), lm.layers.MixUp(seed=2),
                                   lm.layers.AutoContrast()])
    out = pipeline({"images": IMAGES, "labels": LABELS})
    assert out["images"].shape == IMAGES.shape and out["labels"].shape == LABELS.shape
    assert not np.allclose(np.asarray(out["labels"]), LABELS)
    assert pipeline.compute_output_shape({"images": (None, 6, 5, 3), "labels": (None, 4)}) == {
        "images": (None, 6, 5, 3), "labels": (None, 4)}
    same = pipeline({"images": IMAGES, "labels": LABELS}, training=False)
    np.testing.assert_allclose(np.asarray(same["labels"]), LABELS)


@pytest.mark.parametrize("name, args, kwargs", [("MixUp", (0.4,), {"seed": 2}),
                                                 ("CutMix", ((0.2, 0.8),), {"data_format": "channels_first"})])
def test_arguments_and_config_are_keras(keras, name, args, kwargs):
    check_arguments_and_config(getattr(lm.layers, name), getattr(keras.layers, name), args, kwargs,
                               compare_dicts=True)


def test_pipeline_config_is_keras_and_a_keras_file_round_trips(keras, tmp_path):
    mine, theirs = _pipeline(lm), _pipeline(keras)
    assert set(mine.get_config()) == set(theirs.get_config()) == {"layers", "name"}
    model = lm.Sequential([lm.Input((6, 5, 3)), _pipeline(lm), lm.layers.Conv2D(2, 3)])
    model.save(str(tmp_path / "m.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "m.keras"))
    assert [type(layer).__name__ for layer in loaded.layers[0].layers] == ["AutoContrast", "RandomBrightness"]
    x = IMAGES / 255.0
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_bad_arguments_and_inputs_raise_naming_the_layer():
    with pytest.raises(ValueError, match=r"MixUp 'mix': `alpha` must be a positive number"):
        lm.layers.MixUp(alpha=0.0, name="mix")
    with pytest.raises(ValueError, match=r"CutMix .*`factor` must be .* in \[0, 1\]"):
        lm.layers.CutMix(factor=2.0)
    with pytest.raises(ValueError, match=r"CutMix 'cut' takes images or a dict .* \['bounding_boxes', 'images'\]"):
        lm.layers.CutMix(name="cut")({"images": IMAGES, "bounding_boxes": np.zeros((4, 1, 4))})
    with pytest.raises(ValueError, match=r"MixUp 'mix_1': expected one image \(rank 3\) or a batch"):
        lm.layers.MixUp(name="mix_1")(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"Pipeline 'pipe': `layers` must be a list of layers"):
        lm.layers.Pipeline([lambda x: x], name="pipe")


# --- RandAugment and AugMix: compositions of the layers above, drawn inside the compiled step --------


def test_rand_augment_applies_the_drawn_operations_in_order():
    images = jnp.asarray(IMAGES)
    augment = lm.layers.RandAugment(num_ops=2, factor=0.4, seed=8)
    transformation = augment.get_random_transformation(images)
    indices = np.asarray(lm.layers.RandAugment(num_ops=2000, seed=3).get_random_transformation(images)["layer_idxes"])
    counts = np.bincount(indices, minlength=11)
    assert len(counts) == 11 and counts.min() > 130 and counts.max() < 240  # Keras's eleven operations, uniformly
    ops = augment.operations
    for first, second in ((0, 3),):  # shear, then brightness
        transformation["layer_idxes"] = jnp.array([first, second])
        names = list(ops)
        expected = ops[names[first]].transform_images(images, transformation["transforms"][names[first]])
        expected = ops[names[second]].transform_images(expected, transformation["transforms"][names[second]])
        np.testing.assert_allclose(np.asarray(augment.transform_images(images, transformation)),
                                   np.asarray(expected), rtol=1e-6, atol=1e-4)
    step = lm.jit(lambda x: augment(x))
    assert not np.allclose(np.asarray(step(images)), np.asarray(step(images)))


def test_aug_mix_blends_the_chains_with_the_drawn_weights():
    images = jnp.asarray(IMAGES)
    augmix = lm.layers.AugMix(num_chains=2, chain_depth=1, all_ops=False, seed=9)
    transformation = augmix.get_random_transformation(images)
    weights = np.asarray(transformation["chain_mixing_weights"])
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-6)
    names = list(augmix.operations)
    chosen = names.index("random_posterization")
    transformation["operations"] = jnp.array([[chosen], [len(names)]])  # posterization; "none"
    step = jax.tree_util.tree_map(lambda leaf: leaf[0, 0], transformation["transforms"])
    posterized = np.asarray(augmix.operations["random_posterization"].transform_images(
        images, step["random_posterization"]))
    w = float(transformation["weight_sample"])
    expected = np.clip(w * IMAGES + (1 - w) * (weights[0] * posterized + weights[1] * IMAGES), 0, 255)
    np.testing.assert_allclose(np.asarray(augmix.transform_images(images, transformation)), expected,
                               rtol=1e-5, atol=1e-3)
    compiled = lm.jit(lambda x: augmix(x))
    assert not np.allclose(np.asarray(compiled(images)), np.asarray(compiled(images)))  # new draws each step


@pytest.mark.parametrize("name, kwargs", [("RandAugment", dict(value_range=(0, 1), num_ops=3, factor=0.2)),
                                          ("AugMix", dict(num_chains=2, chain_depth=4, all_ops=False, alpha=0.5))])
def test_rand_augment_and_aug_mix_configs_are_keras(keras, name, kwargs):
    test_arguments_and_config_are_keras(keras, name, (), kwargs)
