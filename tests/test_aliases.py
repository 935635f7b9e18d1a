"""Keras's lower-case function aliases in lm.regularizers / lm.initializers, used the way the
guides use them (``kernel_regularizer=keras.regularizers.l2(1e-4)``), against Keras 3."""

import numpy as np
import pytest

import lamina as lm

REGULARIZERS = {"l1": "L1", "l2": "L2", "l1_l2": "L1L2", "orthogonal_regularizer": "OrthogonalRegularizer"}
INITIALIZERS = {
    "zeros": "Zeros", "ones": "Ones", "constant": "Constant", "identity": "Identity",
    "random_normal": "RandomNormal", "truncated_normal": "TruncatedNormal", "random_uniform": "RandomUniform",
    "variance_scaling": "VarianceScaling", "orthogonal": "Orthogonal", "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal", "he_normal": "HeNormal", "he_uniform": "HeUniform",
    "lecun_normal": "LecunNormal", "lecun_uniform": "LecunUniform",
    "IdentityInitializer": "Identity", "OrthogonalInitializer": "Orthogonal",
}


@pytest.mark.parametrize("alias, cls", sorted(REGULARIZERS.items()))
def test_regularizer_aliases_are_the_classes_as_in_keras(keras, alias, cls):
    assert getattr(keras.regularizers, alias) is getattr(keras.regularizers, cls)
    assert getattr(lm.regularizers, alias) is getattr(lm.regularizers, cls)


@pytest.mark.parametrize("alias, cls", sorted(INITIALIZERS.items()))
def test_initializer_aliases_are_the_classes_as_in_keras(keras, alias, cls):
    assert getattr(keras.initializers, alias) is getattr(keras.initializers, cls)
    assert getattr(lm.initializers, alias) is getattr(lm.initializers, cls)
    assert type(lm.initializers.get(alias)).__name__ == cls


@pytest.mark.parametrize("make", [
    lambda r: r.l2(1e-3), lambda r: r.l1(0.02), lambda r: r.l1_l2(l1=0.01, l2=0.03),
    lambda r: r.l1_l2(), lambda r: r.orthogonal_regularizer(0.1),
])
def test_regularizer_aliases_give_keras_penalties(keras, make):
    w = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(float(make(lm.regularizers)(w)), float(make(keras.regularizers)(w)), rtol=1e-5)


def test_l2_alias_in_a_dense_layer_adds_keras_penalty(keras):
    ours = lm.layers.Dense(3, kernel_regularizer=lm.regularizers.l2(1e-2))
    theirs = keras.layers.Dense(3, kernel_regularizer=keras.regularizers.l2(1e-2))
    x = np.ones((2, 4), "float32")
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(float(sum(ours.losses)), float(sum(theirs.losses)), rtol=1e-5)


@pytest.mark.parametrize("make", [
    lambda i: i.constant(0.5), lambda i: i.identity(gain=2.0), lambda i: i.zeros(), lambda i: i.ones(),
])
def test_deterministic_initializer_aliases_give_keras_values(keras, make):
    np.testing.assert_allclose(np.asarray(make(lm.initializers)((3, 3))), np.asarray(make(keras.initializers)((3, 3))))


@pytest.mark.parametrize("alias", ["glorot_uniform", "he_normal", "lecun_uniform", "truncated_normal"])
def test_seeded_random_initializer_aliases_repeat_and_keep_their_class(alias):
    make = getattr(lm.initializers, alias)
    first, second = make(seed=3), make(seed=3)
    np.testing.assert_array_equal(np.asarray(first((4, 5))), np.asarray(second((4, 5))))
    assert lm.saving.serialize(first)["class_name"] == make.__name__


# --- lm.saving: Keras's names for the registry and serialization -------------------------------

def test_saving_aliases_are_keras_names_for_lamina_functions(keras):
    for name in ("custom_object_scope", "get_custom_objects", "get_registered_object", "register_keras_serializable",
                 "serialize_keras_object", "deserialize_keras_object"):
        assert callable(getattr(keras.saving, name)) and callable(getattr(lm.saving, name))
    assert lm.saving.custom_object_scope is lm.saving.CustomObjectScope
    assert lm.saving.register_keras_serializable is lm.saving.register_serializable
    assert lm.saving.serialize_keras_object is lm.saving.serialize


def test_register_keras_serializable_fills_get_custom_objects_and_clear_unregisters():
    @lm.saving.register_keras_serializable(package="alias_test")
    class Tripled(lm.Layer):
        def call(self, x):
            return 3 * x

    objects = lm.saving.get_custom_objects()
    assert objects["alias_test>Tripled"] is Tripled
    assert lm.saving.get_registered_object("alias_test>Tripled") is Tripled
    config = lm.layers.serialize(Tripled(name="t"))
    assert config["class_name"] == "alias_test>Tripled"
    assert type(lm.layers.deserialize(config)) is Tripled
    registered_before = dict(objects)
    objects.clear()  # the Keras idiom before re-registering: nothing registered resolves any more
    try:
        assert lm.saving.get_registered_object("alias_test>Tripled") is None
        with pytest.raises(ValueError, match="Unknown object class 'alias_test>Tripled'"):
            lm.saving.deserialize(config)
    finally:  # other tests' registrations come back
        for key, obj in registered_before.items():
            if key != "alias_test>Tripled":
                package, name = key.split(">", 1)
                lm.saving.register_serializable(package=package, name=name)(obj)
    assert type(lm.layers.deserialize(lm.layers.serialize(lm.layers.Dense(2)))) is lm.layers.Dense  # built-ins stay


def test_objects_put_in_get_custom_objects_resolve_in_configs():
    def cubed(x):
        return x ** 3

    lm.saving.get_custom_objects()["cubed"] = cubed
    try:
        layer = lm.layers.deserialize({"class_name": "Activation", "config": {"activation": "cubed"}})
        np.testing.assert_allclose(np.asarray(layer(np.array([2.0]))), [8.0])
    finally:
        del lm.saving.get_custom_objects()["cubed"]
    with pytest.raises(ValueError, match="cubed"):
        lm.layers.deserialize({"class_name": "Activation", "config": {"activation": "cubed"}})


def test_get_registered_object_looks_where_keras_looks():
    class Local:
        pass

    assert lm.saving.get_registered_object("Local") is None
    assert lm.saving.get_registered_object("Local", custom_objects={"Local": Local}) is Local
    assert lm.saving.get_registered_object("Local", module_objects={"Local": Local}) is Local
    with lm.saving.custom_object_scope({"Local": Local}):
        assert lm.saving.get_registered_object("Local") is Local
    assert lm.saving.get_registered_object("Dense") is None  # built-ins are not "registered objects", as in Keras


class CustomLayer(lm.Layer):  # the serialization guide's "Defining the config methods" example
    def __init__(self, a):
        super().__init__()
        self.var = lm.Variable(a, name="var_a")

    def call(self, inputs, training=False):
        return inputs * self.var if training else inputs

    def get_config(self):
        return {"a": float(np.asarray(self.var))}


def test_layers_serialize_and_deserialize_as_in_the_serialization_guide(keras):
    layer = CustomLayer(5.0)
    layer.var.assign(2.0)
    serialized = lm.layers.serialize(layer)
    assert serialized == {"class_name": "CustomLayer", "config": {"a": 2.0}}
    new_layer = lm.layers.deserialize(serialized, custom_objects={"CustomLayer": CustomLayer})
    assert float(np.asarray(new_layer.var)) == 2.0
    with lm.saving.custom_object_scope({"CustomLayer": CustomLayer}):
        assert float(np.asarray(lm.layers.deserialize(serialized).var)) == 2.0
    with pytest.raises(ValueError, match="Unknown object class 'CustomLayer'"):
        lm.layers.deserialize(serialized)


def test_layers_deserialize_refuses_non_layers():
    with pytest.raises(ValueError, match="L2, which is not a layer"):
        lm.layers.deserialize(lm.saving.serialize(lm.regularizers.L2(0.1)))
    with pytest.raises(TypeError, match="expects a layer"):
        lm.layers.serialize(lm.regularizers.L2(0.1))


@lm.saving.register_serializable(package="alias_test")
class Wrapper(lm.Layer):
    """Rebuilds its sublayer in from_config, as the serialization guide's CustomLayer(sublayer)."""

    def __init__(self, sublayer, **kwargs):
        super().__init__(**kwargs)
        self.sublayer = sublayer

    def call(self, x):
        return self.sublayer(x)

    def get_config(self):
        return {**super().get_config(), "sublayer": lm.layers.serialize(self.sublayer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["sublayer"] = lm.layers.deserialize(config["sublayer"])
        return cls(**config)


def test_safe_mode_of_nested_deserialization_follows_the_load(tmp_path):
    inputs = lm.Input((2,))
    model = lm.Model(inputs, Wrapper(lm.layers.Lambda(lm.activations.relu))(inputs))
    path = str(tmp_path / "m.lamina")
    model.save(path)
    with pytest.raises(ValueError, match="safe_mode"):
        lm.load_model(path)
    restored = lm.load_model(path, safe_mode=False)
    np.testing.assert_allclose(restored.predict(np.array([[-1.0, 2.0]]), verbose=0), [[0.0, 2.0]])


def test_deserialize_keras_object_safe_mode_argument():
    lambda_config = lm.layers.serialize(lm.layers.Lambda(lm.activations.relu, name="lam"))
    with pytest.raises(ValueError, match="safe_mode"):
        lm.saving.deserialize_keras_object(lambda_config, safe_mode=True)
    for layer in (lm.saving.deserialize_keras_object(lambda_config, safe_mode=False),
                  lm.saving.deserialize_keras_object(lambda_config)):
        np.testing.assert_allclose(np.asarray(layer(np.array([-1.0, 2.0]))), [0.0, 2.0])


# --- lm.activations: the rest of keras.activations ------------------------------------------------

NEW_ACTIVATIONS = {
    "celu": {"alpha": 0.7}, "glu": {"axis": 1}, "hard_tanh": {}, "hard_shrink": {"threshold": 0.8},
    "soft_shrink": {"threshold": 0.3}, "tanh_shrink": {}, "threshold": {"threshold": 0.1, "default_value": -2.0},
    "sparse_plus": {}, "sparse_sigmoid": {}, "squareplus": {"b": 2}, "sparsemax": {"axis": 0},
}


@pytest.mark.parametrize("name", sorted(NEW_ACTIVATIONS))
def test_new_activations_match_keras(keras, name):
    import inspect

    x = (np.random.default_rng(0).normal(size=(4, 6)) * 2.0).astype("float32")
    ours, theirs = getattr(lm.activations, name), getattr(keras.activations, name)
    assert list(inspect.signature(ours).parameters) == list(inspect.signature(theirs).parameters)
    for kwargs in ({}, NEW_ACTIVATIONS[name]) if name != "threshold" else (NEW_ACTIVATIONS[name],):
        np.testing.assert_allclose(np.asarray(ours(x, **kwargs)), np.asarray(theirs(x, **kwargs)), rtol=1e-6, atol=1e-6)
    if name != "threshold":  # needs arguments: not usable by name
        assert lm.activations.get(name) is ours
        assert lm.saving.serialize(lm.layers.Activation(name))["config"]["activation"] == name


# --- lm.losses: CategoricalFocalCrossentropy (the focal loss "accuracy" already knew) -------------

@pytest.mark.parametrize("kwargs", [{}, {"alpha": 0.5, "gamma": 3.0, "label_smoothing": 0.1},
                                    {"from_logits": True}, {"from_logits": True, "axis": 0}])
def test_categorical_focal_crossentropy_matches_keras(keras, kwargs):
    rng = np.random.default_rng(5)
    y_true = np.eye(4, dtype="float32")[rng.integers(0, 4, size=6)]
    y_pred = rng.uniform(0.0, 2.0, (6, 4)).astype("float32") if not kwargs.get("from_logits") else (
        3 * rng.normal(size=(6, 4)).astype("float32"))
    weight = rng.uniform(size=6 if kwargs.get("axis") != 0 else 4).astype("float32")
    np.testing.assert_allclose(np.asarray(lm.losses.categorical_focal_crossentropy(y_true, y_pred, **kwargs)),
                               np.asarray(keras.losses.categorical_focal_crossentropy(y_true, y_pred, **kwargs)),
                               rtol=1e-5, atol=1e-6)
    for reduction in ("sum_over_batch_size", "sum", "none"):
        ours = lm.losses.CategoricalFocalCrossentropy(reduction=reduction, **kwargs)
        theirs = keras.losses.CategoricalFocalCrossentropy(reduction=reduction, **kwargs)
        for w in (None, weight):
            np.testing.assert_allclose(np.asarray(ours(y_true, y_pred, sample_weight=w)),
                                       np.asarray(theirs(y_true, y_pred, sample_weight=w)), rtol=1e-5, atol=1e-6)
    config = lm.losses.CategoricalFocalCrossentropy(**kwargs).get_config()
    assert config == {k: v for k, v in keras.losses.CategoricalFocalCrossentropy(**kwargs).get_config().items()
                      if k in config}
    assert isinstance(lm.losses.deserialize(lm.losses.serialize(lm.losses.CategoricalFocalCrossentropy(**kwargs))),
                      lm.losses.CategoricalFocalCrossentropy)


def test_categorical_focal_loss_by_name_trains_with_categorical_accuracy():
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = lm.utils.to_categorical((x[:, 0] > 0).astype(int), 2)
    model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_focal_crossentropy", metrics=["accuracy"])
    logs = model.evaluate(x, y, batch_size=16, return_dict=True, verbose=0)
    assert lm.metrics.resolve_accuracy("categorical_focal_crossentropy").__class__.__name__ == "CategoricalAccuracy"
    assert set(logs) == {"loss", "accuracy"} and np.isfinite(logs["loss"])


# --- lm.losses: Dice and Tversky --------------------------------------------------------------------

@pytest.mark.parametrize("name, kwargs", [
    ("Dice", {}), ("Dice", {"axis": -1}), ("Dice", {"axis": (1, 2)}),
    ("Tversky", {}), ("Tversky", {"alpha": 0.7, "beta": 0.3, "axis": -1}),
])
def test_dice_and_tversky_match_keras(keras, name, kwargs):
    rng = np.random.default_rng(12)
    y_true = (rng.uniform(size=(4, 3, 5)) > 0.5).astype("float32")
    y_pred = rng.uniform(size=(4, 3, 5)).astype("float32")
    fn = name.lower()
    np.testing.assert_allclose(np.asarray(getattr(lm.losses, fn)(y_true, y_pred, **kwargs)),
                               np.asarray(getattr(keras.losses, fn)(y_true, y_pred, **kwargs)), rtol=1e-5, atol=1e-6)
    per_sample = kwargs.get("axis") is not None
    weight_shape = (4,) if kwargs.get("axis") == (1, 2) else (4, 3)
    weights = (None, rng.uniform(size=weight_shape).astype("float32")) if per_sample else (None,)
    for reduction in ("sum_over_batch_size", "sum", "none"):
        ours = getattr(lm.losses, name)(reduction=reduction, **kwargs)
        theirs = getattr(keras.losses, name)(reduction=reduction, **kwargs)
        for w in weights:
            np.testing.assert_allclose(np.asarray(ours(y_true, y_pred, sample_weight=w)),
                                       np.asarray(theirs(y_true, y_pred, sample_weight=w)), rtol=1e-5, atol=1e-6)
    config = getattr(lm.losses, name)(**kwargs).get_config()
    expected = {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in getattr(keras.losses, name)(**kwargs).get_config().items() if k in config}
    assert {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()} == expected
    assert lm.losses.get(fn) is getattr(lm.losses, fn)


@pytest.mark.parametrize("q", [0.2, 0.7])
def test_categorical_generalized_cross_entropy_matches_keras(keras, q):
    rng = np.random.default_rng(13)
    labels = rng.integers(0, 4, size=6)
    probs = rng.uniform(size=(6, 4)).astype("float32")
    probs /= probs.sum(-1, keepdims=True)
    weight = rng.uniform(size=6).astype("float32")
    np.testing.assert_allclose(np.asarray(lm.losses.categorical_generalized_cross_entropy(labels, probs, q)),
                               np.asarray(keras.losses.categorical_generalized_cross_entropy(labels, probs, q)),
                               rtol=1e-5, atol=1e-6)
    for reduction in ("sum_over_batch_size", "none"):
        ours = lm.losses.CategoricalGeneralizedCrossEntropy(q=q, reduction=reduction)
        theirs = keras.losses.CategoricalGeneralizedCrossEntropy(q=q, reduction=reduction)
        for w in (None, weight):
            np.testing.assert_allclose(np.asarray(ours(labels, probs, sample_weight=w)),
                                       np.asarray(theirs(labels, probs, sample_weight=w)), rtol=1e-5, atol=1e-6)
    assert lm.losses.CategoricalGeneralizedCrossEntropy(q=q).get_config()["q"] == q
    with pytest.raises(ValueError, match=r"`q` must be in the interval \(0, 1\); got q=1.5"):
        lm.losses.CategoricalGeneralizedCrossEntropy(q=1.5)
