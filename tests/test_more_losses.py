"""``CTC`` / ``ctc`` and ``Circle`` / ``circle`` against Keras 3: reductions with sample
weights, Keras's padding convention for CTC labels, Circle's mask of zero losses, configs and
string names, and training with ``fit``."""

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

_RNG = np.random.default_rng(5)
# Labels padded with the blank 0 after them; one row full, one with a repeated label, one
# with a zero inside (Keras counts its non-zero labels and takes that many from the front).
CTC_LABELS = np.array([[1, 2, 2, 0, 0], [3, 0, 0, 0, 0], [1, 1, 2, 3, 1], [2, 0, 3, 0, 0]])
CTC_LOGITS = _RNG.normal(size=(4, 9, 4)).astype("float32")
_EMBEDDINGS = _RNG.normal(size=(8, 5)).astype("float32")
EMBEDDINGS = _EMBEDDINGS / np.linalg.norm(_EMBEDDINGS, axis=1, keepdims=True)
LABELS = np.array([0, 0, 1, 1, 2, 3, 1, 0])  # classes 2 and 3 have one sample: their losses are 0
WEIGHTS = _RNG.uniform(0.2, 2.0, size=(8,)).astype("float32")
# (reduction, weighted): the reductions differ only in their divisor once the values are weighted
CASES = [("sum_over_batch_size", False), ("sum_over_batch_size", True), ("sum", True), ("mean_with_sample_weight", True),
         (None, True)]


def test_ctc_matches_keras_per_sample_and_reduced(keras):
    keras_ctc = np.asarray(keras.losses.ctc(CTC_LABELS, CTC_LOGITS))  # once: Keras's eager CTC compiles each call
    np.testing.assert_allclose(np.asarray(lm.losses.ctc(CTC_LABELS, CTC_LOGITS)), keras_ctc, rtol=1e-5)
    loss = lm.losses.CTC()
    np.testing.assert_allclose(float(loss(CTC_LABELS, CTC_LOGITS, sample_weight=WEIGHTS[:4])),
                               np.mean(keras_ctc * WEIGHTS[:4]), rtol=1e-5)
    assert loss.get_config() == {"name": "ctc", "reduction": "sum_over_batch_size"}  # Keras's config
    restored = lm.losses.deserialize(lm.losses.serialize(lm.losses.CTC(reduction="sum", name="c")))
    assert type(restored) is lm.losses.CTC and restored.get_config() == {"name": "c", "reduction": "sum"}
    # bfloat16 logits are computed in float32, as Keras does
    low = jnp.asarray(CTC_LOGITS, jnp.bfloat16)
    ours = lm.losses.ctc(CTC_LABELS, low)
    assert ours.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(ours), np.asarray(lm.losses.ctc(CTC_LABELS, low.astype(jnp.float32))))


@pytest.mark.parametrize("kwargs, y_true, cases", [
    ({}, LABELS, CASES),
    ({"gamma": 10.0, "margin": 0.25, "remove_diagonal": False}, LABELS[:, None], CASES[:2]),
], ids=["Circle", "Circle-args"])
def test_circle_matches_keras_for_every_reduction(keras, kwargs, y_true, cases):
    cls, y_pred = "Circle", EMBEDDINGS
    for reduction, weighted in cases:
        w = WEIGHTS[: len(y_true)] if weighted else None
        ours = getattr(lm.losses, cls)(reduction=reduction, **kwargs)
        theirs = getattr(keras.losses, cls)(reduction=reduction, **kwargs)
        np.testing.assert_allclose(np.asarray(ours(y_true, y_pred, sample_weight=w)),
                                   np.asarray(theirs(y_true, y_pred, sample_weight=w)), rtol=2e-5, atol=1e-6)
    assert ours.get_config() == theirs.get_config()
    restored = lm.losses.deserialize(lm.losses.serialize(ours))
    assert type(restored) is type(ours) and restored.get_config() == ours.get_config()


def test_circle_leaves_samples_without_pairs_out_of_the_average():
    per_sample = np.asarray(lm.losses.circle(LABELS, EMBEDDINGS))
    assert per_sample[4] == per_sample[5] == 0.0 and np.all(per_sample[:4] > 0)
    mean = float(lm.losses.Circle()(LABELS, EMBEDDINGS))
    assert mean == pytest.approx(per_sample.sum() / np.count_nonzero(per_sample), rel=1e-6)


def test_circle_function_with_reference_embeddings_matches_keras(keras):
    reference = _RNG.normal(size=(6, 5)).astype("float32")
    ref_labels = np.array([0, 1, 2, 0, 1, 2])
    kwargs = dict(ref_labels=ref_labels, ref_embeddings=reference, gamma=20, margin=0.3)
    np.testing.assert_allclose(np.asarray(lm.losses.circle(LABELS, EMBEDDINGS, **kwargs)),
                               np.asarray(keras.losses.circle(LABELS, EMBEDDINGS, **kwargs)), rtol=2e-5, atol=1e-5)


def test_ctc_of_a_short_sequence_is_its_paths_probability():
    # Uniform over {blank, 1} at 2 steps: the label [1] is emitted by "1-", "-1" and "11".
    logits = np.zeros((1, 2, 2), "float32")
    assert float(lm.losses.ctc(np.array([[1, 0, 0]]), logits)[0]) == pytest.approx(-np.log(3 / 4), rel=1e-6)


@pytest.mark.parametrize("fn, y_true, y_pred, match", [
    (lm.losses.ctc, CTC_LABELS[:, :, None], CTC_LOGITS, r"ctc: targets `y_true` .* Received: y_true.shape=\(4, 5, 1\)"),
    (lm.losses.ctc, CTC_LABELS, CTC_LOGITS[0], r"ctc: logits `y_pred` .* Received: y_pred.shape=\(9, 4\)"),
    (lm.losses.ctc, CTC_LABELS[:3], CTC_LOGITS, r"ctc: .* same batch size; got y_true.shape=\(3, 5\)"),
    (lm.losses.circle, LABELS[:5], EMBEDDINGS, r"circle: expected embeddings .* y_true.shape=\(5,\), "
                                               r"y_pred.shape=\(8, 5\)"),
])
def test_bad_shapes_are_clear_errors(fn, y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        fn(y_true, y_pred)


def test_names_resolve_like_keras(keras):
    for name, kind in (("ctc", "function"), ("circle", "function"), ("CTC", "CTC"), ("Circle", "Circle")):
        ours, theirs = lm.losses.get(name), keras.losses.get(name)
        assert (ours.__name__ if kind == "function" else type(ours).__name__) == name
        assert (theirs.__name__ if kind == "function" else type(theirs).__name__) == name
    assert type(lm.losses.to_loss_object("ctc")) is lm.losses.CTC
    assert type(lm.losses.to_loss_object("circle")) is lm.losses.Circle


def test_fit_with_ctc_and_circle_reports_keras_s_loss_and_learns(keras):
    """With one batch per epoch, the first epoch's loss is the loss at the initial weights
    (the eager loss; Keras's for Circle). Then the loss goes down."""
    x = _RNG.normal(size=(4, 9, 3)).astype("float32")
    model = lm.Sequential([lm.Input((9, 3)), lm.layers.Dense(4)])
    initial = np.asarray(model(x))
    model.compile(lm.optimizers.SGD(0.05), loss=lm.losses.CTC())
    losses = model.fit(x, CTC_LABELS, batch_size=4, epochs=3, verbose=0).history["loss"]
    assert losses[0] == pytest.approx(float(lm.losses.CTC()(CTC_LABELS, initial)), rel=1e-5)  # (= Keras's: above)
    assert losses[-1] < losses[0]

    features = _RNG.normal(size=(8, 6)).astype("float32")
    model = lm.Sequential([lm.Input((6,)), lm.layers.Dense(4), lm.layers.UnitNormalization()])
    initial = np.asarray(model(features))
    model.compile(lm.optimizers.SGD(0.01), loss="circle")
    losses = model.fit(features, LABELS, sample_weight=WEIGHTS, batch_size=8, epochs=3, verbose=0).history["loss"]
    assert losses[0] == pytest.approx(float(keras.losses.Circle()(LABELS, initial, sample_weight=WEIGHTS)), rel=1e-5)
    # finite: no NaN gradient from the samples without pairs (their -inf log-sum-exp)
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
