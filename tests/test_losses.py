"""Losses against ``keras.losses`` (Keras 3 on JAX) on the same random arrays."""

import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamina import losses
from lamina.core.variable import Variable

B, D, C, T = 6, 4, 5, 3
REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None]
TOL = {"rtol": 1e-5, "atol": 1e-6}


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype("float32")


def make_inputs(kind, seed=0, shape=(B, D)):
    """``(y_true, y_pred)`` NumPy arrays for one kind of loss."""
    rng = np.random.default_rng(seed)
    normal = lambda s: rng.normal(size=s).astype("float32")  # noqa: E731
    if kind == "regression":
        return normal(shape), normal(shape)
    if kind == "positive":
        return rng.uniform(0.0, 3.0, shape).astype("float32"), rng.uniform(0.1, 3.0, shape).astype("float32")
    if kind == "binary":
        return rng.integers(0, 2, shape).astype("float32"), rng.uniform(0.0, 1.0, shape).astype("float32")
    if kind == "binary_logits":
        return rng.integers(0, 2, shape).astype("float32"), 3 * normal(shape)
    if kind == "pm1":
        return (2 * rng.integers(0, 2, shape) - 1).astype("float32"), normal(shape)
    if kind == "distribution":
        return _softmax(normal(shape)), _softmax(normal(shape))
    labels = rng.integers(0, shape[-1], shape[:-1])
    onehot = np.eye(shape[-1], dtype="float32")[labels]
    if kind == "categorical":  # unnormalized positive scores: the loss renormalizes them
        return onehot, rng.uniform(0.0, 2.0, shape).astype("float32")
    if kind == "categorical_logits":
        return onehot, 3 * normal(shape)
    if kind == "sparse":
        return labels.astype("int32"), _softmax(normal(shape))
    if kind == "sparse_logits":
        return labels.astype("int32"), 3 * normal(shape)
    raise AssertionError(kind)


# (class name, kwargs, input kind, function name)
CASES = [
    ("MeanSquaredError", {}, "regression", "mean_squared_error"),
    ("MeanAbsoluteError", {}, "regression", "mean_absolute_error"),
    ("MeanAbsolutePercentageError", {}, "regression", "mean_absolute_percentage_error"),
    ("MeanSquaredLogarithmicError", {}, "regression", "mean_squared_logarithmic_error"),
    ("MeanSquaredLogarithmicError", {}, "positive", "mean_squared_logarithmic_error"),
    ("CosineSimilarity", {}, "regression", "cosine_similarity"),
    ("CosineSimilarity", {"axis": 0}, "regression", "cosine_similarity"),
    ("Huber", {}, "regression", "huber"),
    ("Huber", {"delta": 0.3}, "regression", "huber"),
    ("LogCosh", {}, "regression", "log_cosh"),
    ("Hinge", {}, "binary_logits", "hinge"),
    ("Hinge", {}, "pm1", "hinge"),
    ("SquaredHinge", {}, "binary_logits", "squared_hinge"),
    ("SquaredHinge", {}, "pm1", "squared_hinge"),
    ("CategoricalHinge", {}, "categorical_logits", "categorical_hinge"),
    ("KLDivergence", {}, "distribution", "kl_divergence"),
    ("Poisson", {}, "positive", "poisson"),
    ("BinaryCrossentropy", {}, "binary", "binary_crossentropy"),
    ("BinaryCrossentropy", {"from_logits": True}, "binary_logits", "binary_crossentropy"),
    ("BinaryCrossentropy", {"label_smoothing": 0.2}, "binary", "binary_crossentropy"),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1, "axis": 0}, "binary_logits",
     "binary_crossentropy"),
    ("BinaryFocalCrossentropy", {}, "binary", "binary_focal_crossentropy"),
    ("BinaryFocalCrossentropy", {"apply_class_balancing": True, "alpha": 0.4, "gamma": 3.0,
                                 "from_logits": True, "label_smoothing": 0.1}, "binary_logits",
     "binary_focal_crossentropy"),
    ("CategoricalCrossentropy", {}, "categorical", "categorical_crossentropy"),
    ("CategoricalCrossentropy", {"from_logits": True}, "categorical_logits", "categorical_crossentropy"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.1}, "categorical", "categorical_crossentropy"),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.3}, "categorical_logits",
     "categorical_crossentropy"),
    ("SparseCategoricalCrossentropy", {}, "sparse", "sparse_categorical_crossentropy"),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, "sparse_logits",
     "sparse_categorical_crossentropy"),
    ("SparseCategoricalCrossentropy", {"ignore_class": 1}, "sparse", "sparse_categorical_crossentropy"),
    ("SparseCategoricalCrossentropy", {"from_logits": True, "ignore_class": 0}, "sparse_logits",
     "sparse_categorical_crossentropy"),
]
CASE_IDS = [f"{c}-{k}-{kind}" for c, k, kind, _ in CASES]

# Each loss class against the function it wraps: class and function share their keyword
# arguments except those the class alone takes.
CLASS_ONLY = {"reduction", "name", "dtype"}


def sample_weights(batch):
    """No weights, per-sample weights (batch,) and (batch, 1), a scalar, all zeros."""
    per_sample = np.random.default_rng(7).uniform(0.0, 2.0, batch).astype("float32")
    return [None, per_sample, per_sample[:, None], np.float32(0.5), np.zeros(batch, "float32")]


def assert_close(ours, theirs):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    np.testing.assert_allclose(ours, theirs, **TOL)


# The weighting and reduction code is shared by every loss: it is checked against every form
# of sample_weight on these cases (plain, probabilities with a mask, logits), and on the rest
# with and without per-sample weights.
FULL_WEIGHTING = {"MeanSquaredError", "SparseCategoricalCrossentropy", "BinaryCrossentropy"}


@pytest.mark.parametrize("cls_name, kwargs, kind, fn_name", CASES, ids=CASE_IDS)
def test_class_matches_keras_every_reduction(keras, cls_name, kwargs, kind, fn_name):
    y_true, y_pred = make_inputs(kind)
    if kwargs.get("ignore_class") is not None:
        y_true = y_true.copy()
        y_true[:2] = kwargs["ignore_class"]  # make sure ignored labels occur
    # One weight per loss entry: per sample, or per feature when the loss reduces axis 0.
    num_losses = getattr(losses, cls_name)(reduction=None, **kwargs)(y_true, y_pred).shape[0]
    weights = sample_weights(num_losses)
    if cls_name not in FULL_WEIGHTING:
        weights = weights[:2]
    for reduction in REDUCTIONS:
        ours = getattr(losses, cls_name)(reduction=reduction, **kwargs)
        theirs = getattr(keras.losses, cls_name)(reduction=reduction, **kwargs)
        for weight in weights:
            assert_close(ours(y_true, y_pred, sample_weight=weight),
                         theirs(y_true, y_pred, sample_weight=weight))


@pytest.mark.parametrize("cls_name, kwargs, kind, fn_name", CASES, ids=CASE_IDS)
def test_function_matches_keras(keras, cls_name, kwargs, kind, fn_name):
    y_true, y_pred = make_inputs(kind, seed=3)
    fn_kwargs = {k: v for k, v in kwargs.items() if k not in CLASS_ONLY}
    ours = getattr(losses, fn_name)(y_true, y_pred, **fn_kwargs)
    theirs = getattr(keras.losses, fn_name)(jnp.asarray(y_true), jnp.asarray(y_pred), **fn_kwargs)
    assert_close(ours, theirs)


@pytest.mark.parametrize("cls_name, kwargs, kind, fn_name", CASES, ids=CASE_IDS)
def test_class_and_function_under_jit_with_variables(keras, cls_name, kwargs, kind, fn_name):
    y_true, y_pred = make_inputs(kind, seed=5)
    ours = getattr(losses, cls_name)(**kwargs)
    fn = getattr(losses, fn_name)
    fn_kwargs = {k: v for k, v in kwargs.items() if k not in CLASS_ONLY}
    num_losses = 1 if kwargs.get("axis") == 0 else B
    weight = np.random.default_rng(2).uniform(size=num_losses).astype("float32")
    expected_class = getattr(keras.losses, cls_name)(**kwargs)(y_true, y_pred, sample_weight=weight)
    expected_fn = getattr(keras.losses, fn_name)(jnp.asarray(y_true), jnp.asarray(y_pred), **fn_kwargs)
    # Variables are read like arrays: passed into the compiled function, and closed over.
    v_true, v_pred = Variable(y_true, trainable=False), Variable(y_pred)

    @jax.jit
    def both(t, p, w):
        return ours(t, p, sample_weight=w), fn(v_true, v_pred, **fn_kwargs)

    from_class, from_fn = both(v_true, v_pred, jnp.asarray(weight))
    assert_close(from_class, expected_class)
    assert_close(from_fn, expected_fn)
    assert_close(ours(v_true, v_pred, sample_weight=weight), expected_class)


REGRESSION_CLASSES = ["MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
                      "MeanSquaredLogarithmicError", "Huber", "LogCosh", "Poisson", "KLDivergence",
                      "BinaryCrossentropy", "BinaryFocalCrossentropy", "Hinge", "SquaredHinge"]


@pytest.mark.parametrize("cls_name", REGRESSION_CLASSES)
def test_rank_alignment_matches_keras(keras, cls_name):
    """y_true (B,) against y_pred (B, 1), and the reverse, with per-sample weights."""
    rng = np.random.default_rng(11)
    y_true = rng.integers(0, 2, B).astype("float32")
    y_pred = rng.uniform(0.05, 0.95, (B, 1)).astype("float32")
    weight = rng.uniform(size=B).astype("float32")
    for reduction, w in (("none", None), ("sum_over_batch_size", weight), ("none", weight[:, None])):
        ours = getattr(losses, cls_name)(reduction=reduction)
        theirs = getattr(keras.losses, cls_name)(reduction=reduction)
        for t, p in ((y_true, y_pred), (y_true[:, None], y_pred[:, 0])):
            assert_close(ours(t, p, sample_weight=w), theirs(t, p, sample_weight=w))


def test_functions_align_ranks_like_keras(keras):
    y_true = np.arange(B, dtype="float32")
    y_pred = np.linspace(0, 1, B, dtype="float32")[:, None]
    for name in ("mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
                 "mean_squared_logarithmic_error", "huber", "log_cosh", "cosine_similarity"):
        ours = getattr(losses, name)(y_true, y_pred)
        assert ours.shape == (B,)
        assert_close(ours, getattr(keras.losses, name)(jnp.asarray(y_true), jnp.asarray(y_pred)))
    # Keras's binary_crossentropy function raises here; lamina aligns like its class does.
    labels = (y_true > 2).astype("float32")
    assert_close(losses.binary_crossentropy(labels, y_pred),
                 keras.losses.BinaryCrossentropy(reduction=None)(labels, y_pred))


@pytest.mark.parametrize("cls_name, kind", [
    ("MeanSquaredError", "regression"), ("BinaryCrossentropy", "binary"),
    ("CategoricalCrossentropy", "categorical_logits"), ("Huber", "regression"),
])
def test_per_timestep_losses_and_weights(keras, cls_name, kind):
    """(B, T, D) inputs give (B, T) losses; weights (B, T), (B, 1), (B, T, 1) broadcast as Keras."""
    y_true, y_pred = make_inputs(kind, seed=4, shape=(B, T, D))
    rng = np.random.default_rng(9)
    weights = [rng.uniform(size=(B, T)).astype("float32"), rng.uniform(size=(B, 1)).astype("float32"),
               rng.uniform(size=(B, T, 1)).astype("float32")]
    kwargs = {"from_logits": True} if kind.endswith("logits") else {}
    for reduction in ("sum_over_batch_size", "mean_with_sample_weight", None):
        ours = getattr(losses, cls_name)(reduction=reduction, **kwargs)
        theirs = getattr(keras.losses, cls_name)(reduction=reduction, **kwargs)
        for w in weights:
            assert_close(ours(y_true, y_pred, sample_weight=w), theirs(y_true, y_pred, sample_weight=w))


def test_incompatible_sample_weight_is_a_clear_error():
    y_true, y_pred = make_inputs("regression", shape=(B, T, D))
    with pytest.raises(ValueError, match="sample_weight of shape"):
        losses.MeanSquaredError()(y_true, y_pred, sample_weight=np.ones(B + 1, "float32"))


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("ignore_class", [None, 2, -1])
def test_sparse_labels_shapes_and_ignore_class(keras, from_logits, ignore_class):
    rng = np.random.default_rng(13)
    y_pred = (3 * rng.normal(size=(B, T, C))).astype("float32")
    if not from_logits:
        y_pred = _softmax(y_pred)
    labels = rng.integers(0, C, (B, T)).astype("int32")
    if ignore_class is not None:
        labels[0, :2] = ignore_class
        labels[3, 1] = ignore_class
    weights = [None, rng.uniform(size=(B, T)).astype("float32"), rng.uniform(size=(B, 1)).astype("float32")]
    for reduction in REDUCTIONS:
        kwargs = {"from_logits": from_logits, "ignore_class": ignore_class, "reduction": reduction}
        ours = losses.SparseCategoricalCrossentropy(**kwargs)
        theirs = keras.losses.SparseCategoricalCrossentropy(**kwargs)
        for w in weights:
            assert_close(ours(labels, y_pred, sample_weight=w), theirs(labels, y_pred, sample_weight=w))
    # float labels and labels with a trailing 1
    for y_true in (labels.astype("float32"), labels[..., None]):
        assert_close(ours(y_true, y_pred, sample_weight=weights[1]),
                     theirs(y_true, y_pred, sample_weight=weights[1]))
    fn_kwargs = {"from_logits": from_logits, "ignore_class": ignore_class}
    assert_close(losses.sparse_categorical_crossentropy(labels, y_pred, **fn_kwargs),
                 keras.losses.sparse_categorical_crossentropy(jnp.asarray(labels), jnp.asarray(y_pred),
                                                              **fn_kwargs))
    # A LossFunctionWrapper around the function averages over the valid entries too.
    wrapped = losses.LossFunctionWrapper(losses.sparse_categorical_crossentropy, **fn_kwargs)
    assert_close(wrapped(labels, y_pred),
                 keras.losses.SparseCategoricalCrossentropy(**fn_kwargs)(labels, y_pred))


def test_sparse_all_ignored_and_out_of_range_labels(keras):
    y_pred = _softmax(np.random.default_rng(1).normal(size=(4, C)).astype("float32"))
    for labels, kwargs in (([3, 3, 3, 3], {"ignore_class": 3}), ([0, C, 7, 1], {})):
        labels = np.asarray(labels, "int32")
        for reduction in ("sum_over_batch_size", "mean_with_sample_weight", None):
            ours = losses.SparseCategoricalCrossentropy(reduction=reduction, **kwargs)(labels, y_pred)
            theirs = keras.losses.SparseCategoricalCrossentropy(reduction=reduction, **kwargs)(labels, y_pred)
            assert_close(ours, theirs)
            assert np.all(np.isfinite(np.asarray(ours)))


def test_sparse_keeps_integer_labels_in_low_precision():
    """Keras casts labels to the loss dtype; lamina keeps them integer (class 1001 stays 1001)."""
    num_classes = 1200
    logits = np.zeros((2, num_classes), "float32")
    logits[:, 1001] = 8.0
    labels = np.array([1001, 1001])
    exact = losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    low = losses.SparseCategoricalCrossentropy(from_logits=True, dtype="bfloat16")(labels, logits)
    assert low.dtype == jnp.bfloat16
    np.testing.assert_allclose(float(low), float(exact), rtol=2e-2)


def test_sparse_any_class_axis(keras):
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(B, C, T)).astype("float32")
    labels = rng.integers(0, C, (B, T))
    ours = losses.sparse_categorical_crossentropy(labels, logits, from_logits=True, axis=1)
    moved = np.moveaxis(logits, 1, -1)
    assert_close(ours, keras.losses.sparse_categorical_crossentropy(jnp.asarray(labels), jnp.asarray(moved),
                                                                     from_logits=True))


def test_integer_labels_are_cast(keras):
    rng = np.random.default_rng(3)
    y_int = rng.integers(0, 2, (B, D))
    probs = rng.uniform(size=(B, D)).astype("float32")
    onehot = np.eye(C, dtype="int64")[rng.integers(0, C, B)]
    scores = rng.uniform(size=(B, C)).astype("float32")
    for name, t, p in (("BinaryCrossentropy", y_int, probs), ("Hinge", y_int, probs),
                       ("MeanSquaredError", y_int, probs), ("CategoricalCrossentropy", onehot, scores),
                       ("CategoricalHinge", onehot, scores), ("KLDivergence", onehot, scores)):
        assert_close(getattr(losses, name)()(t, p), getattr(keras.losses, name)()(t, p))
    for name, t, p in (("binary_crossentropy", y_int, probs), ("categorical_crossentropy", onehot, scores),
                       ("mean_squared_error", y_int, probs)):
        assert_close(getattr(losses, name)(t, p), getattr(keras.losses, name)(jnp.asarray(t), jnp.asarray(p)))


def test_probability_clipping_and_extreme_inputs(keras):
    """Probabilities 0 and 1 are clipped to [1e-7, 1 - 1e-7] as in Keras: finite losses.
    Large logits stay finite, and confident correct logits keep the digits of a tiny loss."""
    onehot, _ = make_inputs("categorical")
    hard = np.roll(onehot, 1, axis=-1)  # probability 1 on a wrong class, 0 on the right one
    hard[0] = onehot[0]  # and one exactly right
    big = 40.0 * (2 * hard - 1)
    for name, kwargs, y_pred in (("BinaryCrossentropy", {}, hard), ("CategoricalCrossentropy", {}, hard),
                                 ("KLDivergence", {}, hard), ("Poisson", {}, hard),
                                 ("BinaryCrossentropy", {"from_logits": True}, big),
                                 ("CategoricalCrossentropy", {"from_logits": True}, big),
                                 ("LogCosh", {}, big), ("Huber", {}, big)):
        ours = getattr(losses, name)(reduction=None, **kwargs)(onehot, y_pred)
        assert np.all(np.isfinite(np.asarray(ours)))
        assert_close(ours, getattr(keras.losses, name)(reduction=None, **kwargs)(onehot, y_pred))
    labels = np.argmax(onehot, -1)
    logits = 12.0 * onehot
    ours = losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)(labels, logits)
    assert np.all(np.asarray(ours) < 1e-4)
    theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    assert_close(ours, theirs(labels, logits))
    # Zero vectors have cosine similarity 0.
    assert float(losses.cosine_similarity(np.zeros(D), np.ones(D))) == 0.0


@pytest.mark.parametrize("cls_name, kwargs, kind", [
    ("Huber", {"delta": 0.5}, "regression"),
    ("BinaryCrossentropy", {"from_logits": True}, "binary_logits"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.1}, "categorical"),
    ("SparseCategoricalCrossentropy", {"from_logits": True, "ignore_class": 0}, "sparse_logits"),
    ("SparseCategoricalCrossentropy", {"ignore_class": 0}, "sparse"),
])
def test_gradients_match_keras(keras, cls_name, kwargs, kind):
    y_true, y_pred = make_inputs(kind, seed=8)
    if "ignore_class" in kwargs:
        y_true = y_true.copy()
        y_true[:2] = kwargs["ignore_class"]
    weight = jnp.asarray(np.random.default_rng(4).uniform(size=B).astype("float32"))
    ours = getattr(losses, cls_name)(**kwargs)
    theirs = getattr(keras.losses, cls_name)(**kwargs)
    # Both compiled: one XLA program each is much faster than op-by-op differentiation.
    g_ours = jax.jit(jax.grad(lambda p: ours(y_true, p, sample_weight=weight)))(jnp.asarray(y_pred))
    g_theirs = jax.jit(jax.grad(lambda p: theirs(jnp.asarray(y_true), p, sample_weight=weight)))(
        jnp.asarray(y_pred))
    assert np.all(np.isfinite(np.asarray(g_ours)))
    np.testing.assert_allclose(np.asarray(g_ours), np.asarray(g_theirs), rtol=1e-4, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 4), steps=st.integers(1, 3), values_rank=st.sampled_from([1, 2]),
       weight_form=st.sampled_from(["none", "scalar", "batch", "batch1", "full"]),
       reduction=st.sampled_from(REDUCTIONS), seed=st.integers(0, 2**16))
def test_reduce_weighted_values_matches_keras(batch, steps, values_rank, weight_form, reduction, seed):
    from keras.src.losses.loss import reduce_weighted_values as keras_reduce

    rng = np.random.default_rng(seed)
    shape = (batch,) if values_rank == 1 else (batch, steps)
    values = rng.uniform(size=shape).astype("float32")
    weight = {"none": None, "scalar": np.float32(rng.uniform()), "batch": rng.uniform(size=batch),
              "batch1": rng.uniform(size=(batch, 1)), "full": rng.uniform(size=shape)}[weight_form]
    try:
        theirs = keras_reduce(jnp.asarray(values), None if weight is None else jnp.asarray(weight),
                              reduction=reduction, dtype="float32")
    except (TypeError, ValueError):  # shapes that do not broadcast
        with pytest.raises(ValueError, match="sample_weight of shape"):
            losses.reduce_weighted_values(values, weight, reduction=reduction)
        return
    ours = losses.reduce_weighted_values(values, weight, reduction=reduction, dtype="float32")
    assert_close(ours, theirs)


# -- configs, get, serialize -------------------------------------------------------------------

EXTRA_CONFIG_KEYS = {"Huber": {"delta"}, "CosineSimilarity": {"axis"},
                     "SparseCategoricalCrossentropy": {"axis"}}


@pytest.mark.parametrize("cls_name, kwargs, kind, fn_name", CASES, ids=CASE_IDS)
def test_config_matches_keras(keras, cls_name, kwargs, kind, fn_name):
    ours = getattr(losses, cls_name)(reduction="sum", **kwargs).get_config()
    theirs = getattr(keras.losses, cls_name)(reduction="sum", **kwargs).get_config()
    extra = EXTRA_CONFIG_KEYS.get(cls_name, set())
    assert set(ours) == set(theirs) | extra
    assert {k: v for k, v in ours.items() if k not in extra} == theirs
    for key in extra:
        assert ours[key] == kwargs.get(key, {"delta": 1.0, "axis": -1}[key])


@pytest.mark.parametrize("cls_name, kwargs, kind, fn_name", CASES, ids=CASE_IDS)
def test_serialize_round_trip(cls_name, kwargs, kind, fn_name):
    original = getattr(losses, cls_name)(reduction="sum", name="my_loss", **kwargs)
    config = json.loads(json.dumps(losses.serialize(original)))
    assert config["class_name"] == cls_name
    restored = losses.deserialize(config)
    assert type(restored) is type(original) and restored.get_config() == original.get_config()
    assert losses.get(config).get_config() == original.get_config()
    y_true, y_pred = make_inputs(kind)
    assert_close(restored(y_true, y_pred), original(y_true, y_pred))
    fn = getattr(losses, fn_name)
    assert losses.serialize(fn) == fn_name
    assert losses.deserialize(losses.serialize(fn)) is fn


def test_wrapper_and_custom_loss_round_trip():
    wrapper = losses.LossFunctionWrapper(losses.huber, delta=0.25, reduction="sum", name="h")
    config = json.loads(json.dumps(losses.serialize(wrapper)))
    assert config == {"class_name": "LossFunctionWrapper",
                      "config": {"name": "h", "reduction": "sum", "fn": "huber", "delta": 0.25}}
    restored = losses.deserialize(config)
    assert restored.fn is losses.huber and restored.get_config() == wrapper.get_config()
    y_true, y_pred = make_inputs("regression")
    assert_close(restored(y_true, y_pred), losses.Huber(delta=0.25, reduction="sum")(y_true, y_pred))

    class Scaled(losses.Loss):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, y_true, y_pred):
            return self.factor * jnp.mean(jnp.abs(y_true - y_pred), axis=-1)

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    loss = Scaled(3.0, reduction="sum", dtype="float32")
    config = losses.serialize(loss)
    assert config["config"] == {"name": loss.name, "reduction": "sum", "dtype": "float32", "factor": 3.0}
    with pytest.raises(ValueError, match="register"):
        losses.deserialize(config)
    restored = losses.deserialize(config, custom_objects={"Scaled": Scaled})
    assert restored.get_config() == loss.get_config()


def test_names_and_dtype():
    assert losses.Huber().name == "huber_loss"
    assert losses.LogCosh().name == "log_cosh"
    a, b = losses.LossFunctionWrapper(losses.mse), losses.LossFunctionWrapper(losses.mse)
    assert a.name.startswith("loss_function_wrapper") and a.name != b.name
    loss = losses.MeanSquaredError(dtype="bfloat16")
    assert loss.dtype == "bfloat16" and loss(np.ones(3), np.zeros(3)).dtype == jnp.bfloat16
    assert loss.get_config()["dtype"] == "bfloat16"
    assert losses.MeanSquaredError(dtype="mixed_bfloat16").dtype == "bfloat16"
    assert "dtype" not in losses.MeanSquaredError().get_config()
    assert repr(losses.Huber(delta=2.0)) == (
        "Huber(name='huber_loss', reduction='sum_over_batch_size', delta=2.0)")


def test_get_resolves_the_same_objects_as_keras(keras):
    from keras.src.losses import ALL_OBJECTS_DICT

    names = [n for n in ALL_OBJECTS_DICT if n in losses._ALIASES and n not in ("Loss", "LossFunctionWrapper")]
    assert len(names) >= 44
    for name in names:
        ours, theirs = losses.get(name), keras.losses.get(name)
        if isinstance(theirs, keras.losses.Loss):
            assert type(ours).__name__ == type(theirs).__name__
            assert isinstance(ours, losses.Loss)
        else:
            assert ours is getattr(losses, theirs.__name__), name
    assert losses.get("mse") is losses.mean_squared_error
    assert losses.get("binary_crossentropy") is losses.binary_crossentropy
    assert losses.get(None) is None
    assert isinstance(losses.get(losses.Huber), losses.Huber)
    huber = losses.Huber()
    assert losses.get(huber) is huber and losses.get(losses.huber) is losses.huber
    assert losses.get({"class_name": "function", "config": "mse"}) is losses.mean_squared_error
    keras_config = keras.losses.serialize(keras.losses.CategoricalCrossentropy(from_logits=True))
    ours = losses.get(keras_config)
    assert isinstance(ours, losses.CategoricalCrossentropy) and ours.from_logits


def test_unknown_identifiers_raise_clear_errors():
    with pytest.raises(ValueError, match="Unknown loss 'msee'.*mean_squared_error"):
        losses.get("msee")
    with pytest.raises(ValueError, match="Unknown loss class 'Nope'"):
        losses.get({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="Could not interpret loss identifier"):
        losses.get(42)
    with pytest.raises(ValueError, match="Could not interpret loss identifier"):
        losses.to_loss_object(42)
    with pytest.raises(ValueError, match="Invalid value for argument `reduction`"):
        losses.MeanSquaredError(reduction="avg")


def test_to_loss_object(keras):
    for name, cls in (("mse", losses.MeanSquaredError), ("mean_squared_error", losses.MeanSquaredError),
                      ("MeanSquaredError", losses.MeanSquaredError), ("mae", losses.MeanAbsoluteError),
                      ("bce", losses.BinaryCrossentropy), ("kld", losses.KLDivergence),
                      ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
                      ("categorical_crossentropy", losses.CategoricalCrossentropy),
                      ("huber", losses.Huber), ("log_cosh", losses.LogCosh)):
        assert type(losses.to_loss_object(name)) is cls, name
    loss = losses.Huber(delta=3.0)
    assert losses.to_loss_object(loss) is loss
    assert losses.to_loss_object(None) is None
    assert isinstance(losses.to_loss_object(losses.Poisson), losses.Poisson)
    from_dict = losses.to_loss_object({"class_name": "Huber", "config": {"delta": 3.0}})
    assert isinstance(from_dict, losses.Huber) and from_dict.delta == 3.0

    def my_loss(y_true, y_pred):
        return jnp.mean(jnp.square(y_true - y_pred), axis=-1)

    wrapped = losses.to_loss_object(my_loss)
    assert type(wrapped) is losses.LossFunctionWrapper and wrapped.name == "my_loss" and wrapped.fn is my_loss
    y_true, y_pred = make_inputs("regression")
    w = np.linspace(0, 1, B).astype("float32")
    assert_close(wrapped(y_true, y_pred, sample_weight=w),
                 keras.losses.MeanSquaredError()(y_true, y_pred, sample_weight=w))
    builtin = losses.to_loss_object(losses.mean_absolute_error)
    assert type(builtin) is losses.LossFunctionWrapper and builtin.fn is losses.mean_absolute_error
    assert_close(builtin(y_true, y_pred), keras.losses.MeanAbsoluteError()(y_true, y_pred))


def test_shape_errors():
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        losses.categorical_crossentropy(np.array([0, 1]), np.ones((2, 3)))
    with pytest.raises(ValueError, match="categorical_crossentropy"):
        losses.sparse_categorical_crossentropy(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="same shape"):
        losses.binary_crossentropy(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="axis"):
        losses.categorical_crossentropy(np.ones((2, 3)), np.ones((2, 3)), axis=True)


def test_categorical_crossentropy_warns_on_single_class(keras):
    with pytest.warns(SyntaxWarning, match="binary_crossentropy"):
        losses.categorical_crossentropy(np.ones((2, 1)), np.ones((2, 1)))


def test_dict_inputs_for_custom_losses():
    class DictLoss(losses.Loss):
        def call(self, y_true, y_pred):
            return jnp.mean(jnp.abs(y_true["a"] - y_pred["a"]), axis=-1) + jnp.mean(y_pred["b"], axis=-1)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = DictLoss(reduction="sum")({"a": [[1, 2]]}, {"a": np.zeros((1, 2)), "b": np.ones((1, 2))})
    assert float(value) == 2.5
