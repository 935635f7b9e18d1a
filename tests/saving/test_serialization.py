"""``lm.saving``'s ``serialize`` / ``deserialize``: round trips for every built-in family, the
registry as the only way from a name to a class, and refusals that never import anything."""

import json
import sys

import jax_layer_cases
import pytest

import lamina as lm
from lamina.saving.object_registry import CustomObjectScope, register_serializable
from lamina.saving.serialization import deserialize, serialize

REGISTER_HINT = "register it with @lm.saving.register_serializable(package=...) or pass it in custom_objects"
_NOT_FUNCTIONS = {"serialize", "deserialize", "get", "to_loss_object", "resolve_accuracy"}


def _json_round_trip(obj):
    """serialize -> JSON text -> deserialize; returns (the JSON config, the restored object)."""
    config = json.loads(json.dumps(serialize(obj)))
    return config, deserialize(config)


def _assert_round_trip(obj):
    config, restored = _json_round_trip(obj)
    assert type(restored) is type(obj)
    assert json.loads(json.dumps(serialize(restored))) == config
    assert set(config) <= {"class_name", "config", "module"}
    return restored


def _public(module, kind):
    names = [n for n in module.__all__ if n not in _NOT_FUNCTIONS]
    objs = [getattr(module, n) for n in names]
    if kind == "class":
        return [(n, o) for n, o in zip(names, objs) if isinstance(o, type)]
    return [(n, o) for n, o in zip(names, objs) if not isinstance(o, type) and callable(o)]


# -- layers ---------------------------------------------------------------------------------

LAYERS = {
    "Activation": lambda: lm.layers.Activation("relu"),
    "ActivityRegularization": lambda: lm.layers.ActivityRegularization(l1=0.1, l2=0.2),
    "AdaptiveAveragePooling1D": lambda: lm.layers.AdaptiveAveragePooling1D(3),
    "AdaptiveAveragePooling2D": lambda: lm.layers.AdaptiveAveragePooling2D((2, 3), data_format="channels_first"),
    "AdaptiveAveragePooling3D": lambda: lm.layers.AdaptiveAveragePooling3D(2),
    "AdaptiveMaxPooling1D": lambda: lm.layers.AdaptiveMaxPooling1D(3),
    "AdaptiveMaxPooling2D": lambda: lm.layers.AdaptiveMaxPooling2D(4),
    "AdaptiveMaxPooling3D": lambda: lm.layers.AdaptiveMaxPooling3D((1, 2, 3)),
    "Add": lambda: lm.layers.Add(),
    "AlphaDropout": lambda: lm.layers.AlphaDropout(0.2, noise_shape=(None, 1), seed=3),
    "Average": lambda: lm.layers.Average(),
    "AveragePooling1D": lambda: lm.layers.AveragePooling1D(2),
    "AveragePooling2D": lambda: lm.layers.AveragePooling2D(2),
    "AveragePooling3D": lambda: lm.layers.AveragePooling3D(2),
    "BatchNormalization": lambda: lm.layers.BatchNormalization(momentum=0.9),
    "Bidirectional": lambda: lm.layers.Bidirectional(lm.layers.LSTM(2)),
    "CenterCrop": lambda: lm.layers.CenterCrop(4, 5),
    "Concatenate": lambda: lm.layers.Concatenate(axis=1),
    "Conv1D": lambda: lm.layers.Conv1D(2, 3, activation="relu"),
    "Conv1DTranspose": lambda: lm.layers.Conv1DTranspose(2, 3),
    "Conv2D": lambda: lm.layers.Conv2D(2, 3, kernel_regularizer=lm.regularizers.L2(0.1)),
    "Conv2DTranspose": lambda: lm.layers.Conv2DTranspose(2, 3),
    "Conv3D": lambda: lm.layers.Conv3D(2, 3),
    "Conv3DTranspose": lambda: lm.layers.Conv3DTranspose(2, 3),
    "ConvLSTM1D": lambda: lm.layers.ConvLSTM1D(2, 3, return_sequences=True, unroll=True),
    "ConvLSTM2D": lambda: lm.layers.ConvLSTM2D(2, (3, 2), padding="same", recurrent_dropout=0.25, seed=4,
                                               kernel_regularizer=lm.regularizers.L2(0.1)),
    "ConvLSTM3D": lambda: lm.layers.ConvLSTM3D(2, 1, data_format="channels_first", stateful=True),
    "Cropping1D": lambda: lm.layers.Cropping1D(1),
    "Cropping2D": lambda: lm.layers.Cropping2D(1),
    "Cropping3D": lambda: lm.layers.Cropping3D(1),
    "Dense": lambda: lm.layers.Dense(3, activation="tanh", kernel_initializer="identity",
                                     kernel_constraint=lm.constraints.MaxNorm(2.0)),
    "DepthwiseConv1D": lambda: lm.layers.DepthwiseConv1D(3),
    "DepthwiseConv2D": lambda: lm.layers.DepthwiseConv2D(3),
    "Dot": lambda: lm.layers.Dot(axes=1),
    "Dropout": lambda: lm.layers.Dropout(0.5),
    "ELU": lambda: lm.layers.ELU(alpha=0.5),
    "EinsumDense": lambda: lm.layers.EinsumDense("ab,bc->ac", 4, bias_axes="c"),
    "Embedding": lambda: lm.layers.Embedding(5, 3),
    "ReversibleEmbedding": lambda: lm.layers.ReversibleEmbedding(5, 3, tie_weights=False, logit_soft_cap=30.0),
    "Flatten": lambda: lm.layers.Flatten(),
    "GRU": lambda: lm.layers.GRU(2),
    "GRUCell": lambda: lm.layers.GRUCell(2),
    "GaussianDropout": lambda: lm.layers.GaussianDropout(0.3, seed=3),
    "GaussianNoise": lambda: lm.layers.GaussianNoise(0.1),
    "GlobalAveragePooling1D": lambda: lm.layers.GlobalAveragePooling1D(),
    "GlobalAveragePooling2D": lambda: lm.layers.GlobalAveragePooling2D(),
    "GlobalAveragePooling3D": lambda: lm.layers.GlobalAveragePooling3D(),
    "GlobalMaxPooling1D": lambda: lm.layers.GlobalMaxPooling1D(),
    "GlobalMaxPooling2D": lambda: lm.layers.GlobalMaxPooling2D(),
    "GlobalMaxPooling3D": lambda: lm.layers.GlobalMaxPooling3D(),
    "GroupNormalization": lambda: lm.layers.GroupNormalization(groups=2),
    "FlaxLayer": lambda: lm.layers.FlaxLayer(jax_layer_cases.BatchNormMLP(features=2), seed=1),
    "Identity": lambda: lm.layers.Identity(),
    "JaxLayer": lambda: lm.layers.JaxLayer(jax_layer_cases.tracked_apply, jax_layer_cases.tracked_init, seed=4),
    "InputLayer": lambda: lm.layers.InputLayer(shape=(3,)),
    "LSTM": lambda: lm.layers.LSTM(2, return_sequences=True),
    "LSTMCell": lambda: lm.layers.LSTMCell(2),
    "Lambda": lambda: lm.layers.Lambda(lm.activations.relu),
    "LayerNormalization": lambda: lm.layers.LayerNormalization(),
    "LeakyReLU": lambda: lm.layers.LeakyReLU(negative_slope=0.1),
    "Masking": lambda: lm.layers.Masking(mask_value=-1.0),
    "MaxPooling1D": lambda: lm.layers.MaxPooling1D(),
    "MaxPooling2D": lambda: lm.layers.MaxPooling2D(),
    "MaxPooling3D": lambda: lm.layers.MaxPooling3D(),
    "Maximum": lambda: lm.layers.Maximum(),
    "Minimum": lambda: lm.layers.Minimum(),
    "MultiHeadAttention": lambda: lm.layers.MultiHeadAttention(2, 4),
    "Attention": lambda: lm.layers.Attention(use_scale=True, score_mode="concat", dropout=0.1, seed=2),
    "AdditiveAttention": lambda: lm.layers.AdditiveAttention(use_scale=False, dropout=0.2, seed=3),
    "GroupedQueryAttention": lambda: lm.layers.GroupedQueryAttention(4, 4, 2, sliding_window=3, use_gate=True),
    "RMSNormalization": lambda: lm.layers.RMSNormalization(axis=[1, 2], epsilon=1e-4),
    "SpectralNormalization": lambda: lm.layers.SpectralNormalization(lm.layers.Dense(3), power_iterations=2),
    "StackedRNNCells": lambda: lm.layers.StackedRNNCells([lm.layers.LSTMCell(2), lm.layers.GRUCell(3)]),
    "Wrapper": lambda: lm.layers.Wrapper(lm.layers.Dense(2)),
    "Multiply": lambda: lm.layers.Multiply(),
    "Normalization": lambda: lm.layers.Normalization(),
    "PReLU": lambda: lm.layers.PReLU(alpha_initializer="ones", alpha_regularizer=lm.regularizers.L2(0.1),
                                     alpha_constraint="non_neg", shared_axes=[1]),
    "Permute": lambda: lm.layers.Permute((2, 1)),
    "RNN": lambda: lm.layers.RNN(lm.layers.SimpleRNNCell(2)),
    "RandomContrast": lambda: lm.layers.RandomContrast(0.2, seed=3),
    "RandomCrop": lambda: lm.layers.RandomCrop(4, 5, seed=3),
    # Colour augmentation.
    "AutoContrast": lambda: lm.layers.AutoContrast(value_range=(0, 1)),
    "Equalization": lambda: lm.layers.Equalization(bins=64, data_format="channels_first"),
    "RandomBrightness": lambda: lm.layers.RandomBrightness((-0.1, 0.3), value_range=(0, 1), seed=3),
    "RandomColorDegeneration": lambda: lm.layers.RandomColorDegeneration(0.4, seed=3),
    "RandomColorJitter": lambda: lm.layers.RandomColorJitter(brightness_factor=0.2, hue_factor=(0.1, 0.2), seed=3),
    "RandomGrayscale": lambda: lm.layers.RandomGrayscale(0.3, seed=3),
    "RandomHue": lambda: lm.layers.RandomHue(0.4, seed=3),
    "RandomInvert": lambda: lm.layers.RandomInvert(0.5, value_range=(-1, 1), seed=3),
    "RandomPosterization": lambda: lm.layers.RandomPosterization((2, 6), seed=3),
    "RandomSaturation": lambda: lm.layers.RandomSaturation(0.3, seed=3),
    "RandomSharpness": lambda: lm.layers.RandomSharpness(0.3, seed=3),
    "Solarization": lambda: lm.layers.Solarization(0.2, (0.4, 0.6), seed=3),
    "ContrastLimitedAdaptiveHistogramEqualization": lambda: lm.layers.ContrastLimitedAdaptiveHistogramEqualization(
        (0, 1), clip_limit=2.0, tile_grid_size=[4, 2]),
    "RandomErasing": lambda: lm.layers.RandomErasing(0.5, (0.1, 0.2), fill_value=[1.0, 2.0, 3.0], seed=3),
    "RandomGaussianBlur": lambda: lm.layers.RandomGaussianBlur(kernel_size=(3, 5), sigma=(0.2, 0.8), seed=3),
    "RandomPerspective": lambda: lm.layers.RandomPerspective(0.5, scale=0.3, interpolation="nearest", seed=3),
    "RandomShear": lambda: lm.layers.RandomShear(0.2, (0.1, 0.3), fill_mode="constant", seed=3),
    "RandomElasticTransform": lambda: lm.layers.RandomElasticTransform(0.5, (0.2, 0.4), fill_mode="mirror", seed=3),
    "CutMix": lambda: lm.layers.CutMix((0.2, 0.6), seed=3),
    "MixUp": lambda: lm.layers.MixUp(alpha=0.4, seed=3),
    "Pipeline": lambda: lm.layers.Pipeline([lm.layers.RandomFlip(seed=1), lm.layers.MixUp(seed=2)]),
    "AugMix": lambda: lm.layers.AugMix(num_chains=2, factor=0.4, all_ops=False, seed=3),
    "RandAugment": lambda: lm.layers.RandAugment(value_range=(0, 1), num_ops=3, seed=3),
    "RandomFlip": lambda: lm.layers.RandomFlip("vertical", seed=3),
    "RandomRotation": lambda: lm.layers.RandomRotation(0.1, fill_mode="constant", seed=3),
    "RandomTranslation": lambda: lm.layers.RandomTranslation(0.1, (-0.2, 0.3), seed=3),
    "RandomZoom": lambda: lm.layers.RandomZoom(0.2, interpolation="nearest", seed=3),
    "ReLU": lambda: lm.layers.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.5),
    "RepeatVector": lambda: lm.layers.RepeatVector(2),
    "Rescaling": lambda: lm.layers.Rescaling(0.5, offset=1.0),
    "STFTSpectrogram": lambda: lm.layers.STFTSpectrogram("psd", 64, 16, window="blackman", expand_dims=True),
    "MelSpectrogram": lambda: lm.layers.MelSpectrogram(256, 64, window="hamming", num_mel_bins=40, top_db=60.0),
    "Reshape": lambda: lm.layers.Reshape((2, 2)),
    "Resizing": lambda: lm.layers.Resizing(4, 6, interpolation="bicubic", crop_to_aspect_ratio=True),
    "SeparableConv1D": lambda: lm.layers.SeparableConv1D(2, 3),
    "SeparableConv2D": lambda: lm.layers.SeparableConv2D(2, 3),
    "SimpleRNN": lambda: lm.layers.SimpleRNN(2),
    "SimpleRNNCell": lambda: lm.layers.SimpleRNNCell(2),
    "Softmax": lambda: lm.layers.Softmax(axis=[1, 2]),
    "SpatialDropout1D": lambda: lm.layers.SpatialDropout1D(0.2, seed=3),
    "SpatialDropout2D": lambda: lm.layers.SpatialDropout2D(0.2, data_format="channels_first"),
    "SpatialDropout3D": lambda: lm.layers.SpatialDropout3D(0.2),
    "Subtract": lambda: lm.layers.Subtract(),
    "TimeDistributed": lambda: lm.layers.TimeDistributed(lm.layers.Dense(2)),
    "UnitNormalization": lambda: lm.layers.UnitNormalization(),
    "UpSampling1D": lambda: lm.layers.UpSampling1D(),
    "UpSampling2D": lambda: lm.layers.UpSampling2D(),
    "UpSampling3D": lambda: lm.layers.UpSampling3D(),
    "ZeroPadding1D": lambda: lm.layers.ZeroPadding1D(),
    "ZeroPadding2D": lambda: lm.layers.ZeroPadding2D(),
    "ZeroPadding3D": lambda: lm.layers.ZeroPadding3D(),
    # Categorical and text preprocessing.
    "CategoryEncoding": lambda: lm.layers.CategoryEncoding(4, output_mode="count"),
    "Discretization": lambda: lm.layers.Discretization(bin_boundaries=[0.0, 1.5], output_mode="one_hot"),
    "HashedCrossing": lambda: lm.layers.HashedCrossing(7, output_mode="one_hot"),
    "Hashing": lambda: lm.layers.Hashing(5, mask_value="", salt=[1, 2]),
    "IntegerLookup": lambda: lm.layers.IntegerLookup(vocabulary=[3, 9], mask_token=0, num_oov_indices=2),
    "StringLookup": lambda: lm.layers.StringLookup(vocabulary=["a", "b"], output_mode="tf_idf", idf_weights=[0.5, 2.0]),
    "TextVectorization": lambda: lm.layers.TextVectorization(ngrams=2, output_mode="count", vocabulary=["a", "a b"]),
}
# Not layers one serializes: ``Input`` is a function, ``InputSpec`` describes inputs, ``Layer``
# is the abstract base.
_NOT_SERIALIZED_LAYERS = {"Input", "InputSpec", "Layer"}


def test_every_public_layer_has_a_round_trip_case():
    assert set(lm.layers.__all__) - _NOT_SERIALIZED_LAYERS == set(LAYERS)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_round_trip(name):
    layer = LAYERS[name]()
    restored = _assert_round_trip(layer)
    assert serialize(layer)["class_name"] == name
    assert restored.name == layer.name


# -- the other families ---------------------------------------------------------------------

SCHEDULES = {
    "CosineDecay": lambda: lm.optimizers.schedules.CosineDecay(0.1, 100, alpha=0.1, warmup_target=0.2, warmup_steps=5),
    "CosineDecayRestarts": lambda: lm.optimizers.schedules.CosineDecayRestarts(0.1, 10, t_mul=1.5),
    "ExponentialDecay": lambda: lm.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True),
    "InverseTimeDecay": lambda: lm.optimizers.schedules.InverseTimeDecay(0.1, 10, 0.5),
    "PiecewiseConstantDecay": lambda: lm.optimizers.schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]),
    "PolynomialDecay": lambda: lm.optimizers.schedules.PolynomialDecay(0.1, 10, power=2.0, cycle=True),
}
OPTIMIZERS = {
    "SGD": lambda lr: lm.optimizers.SGD(lr, momentum=0.9, nesterov=True, clipnorm=1.0),
    "Adam": lambda lr: lm.optimizers.Adam(lr, beta_1=0.8, amsgrad=True),
    "AdamW": lambda lr: lm.optimizers.AdamW(lr, weight_decay=0.01, global_clipnorm=2.0),
    "RMSprop": lambda lr: lm.optimizers.RMSprop(lr, rho=0.8, centered=True),
    "Adagrad": lambda lr: lm.optimizers.Adagrad(lr, initial_accumulator_value=0.2),
    "Lion": lambda lr: lm.optimizers.Lion(lr, beta_2=0.95, clipvalue=0.5),
    "Adadelta": lambda lr: lm.optimizers.Adadelta(lr, rho=0.9, epsilon=1e-6, use_ema=True),
    "Adafactor": lambda lr: lm.optimizers.Adafactor(lr, beta_2_decay=-0.5, clip_threshold=2.0, relative_step=False),
    "Adamax": lambda lr: lm.optimizers.Adamax(lr, beta_1=0.8, weight_decay=0.01),
    "Ftrl": lambda lr: lm.optimizers.Ftrl(lr, l1_regularization_strength=0.1, beta=0.5, gradient_accumulation_steps=2),
    "Lamb": lambda lr: lm.optimizers.Lamb(lr, beta_2=0.99, global_clipnorm=1.0),
    "Nadam": lambda lr: lm.optimizers.Nadam(lr, epsilon=1e-6, loss_scale_factor=8.0),
    "Muon": lambda lr: lm.optimizers.Muon(lr, exclude_layers=["head"], rms_rate=None, nesterov=False),
    "ScheduleFreeAdamW": lambda lr: lm.optimizers.ScheduleFreeAdamW(lr, beta_1=0.8, warmup_steps=3),
}


def _classes(module, factories):
    return sorted(set(n for n, _ in _public(module, "class")) - set(factories))


def test_every_public_optimizer_and_schedule_has_a_case():
    # Optimizer wraps optax code: not serializable; LossScaleOptimizer and MultiOptimizer wrap
    # other optimizers (their round trips, with their state, are in
    # tests/mixed_precision/test_loss_scale.py and tests/optimizers/test_multi_and_schedule_free.py);
    # OptimizerMap is MultiOptimizer's argument.
    assert _classes(lm.optimizers, OPTIMIZERS) == ["LossScaleOptimizer", "MultiOptimizer", "Optimizer", "OptimizerMap"]
    assert _classes(lm.optimizers.schedules, SCHEDULES) == ["LearningRateSchedule"]


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_round_trip(name):
    _assert_round_trip(SCHEDULES[name]())


@pytest.mark.parametrize("schedule", [None, "ExponentialDecay", "PiecewiseConstantDecay"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_round_trip(name, schedule):
    lr = 0.05 if schedule is None else SCHEDULES[schedule]()
    optimizer = OPTIMIZERS[name](lr)
    restored = _assert_round_trip(optimizer)
    if schedule is None:
        assert serialize(optimizer)["config"]["learning_rate"] == 0.05
    else:
        assert serialize(optimizer)["config"]["learning_rate"]["class_name"] == schedule
        assert type(restored._learning_rate) is type(lr)


def _loss_objects():
    for name, cls in _public(lm.losses, "class"):
        if name == "LossFunctionWrapper":
            yield name, lambda: lm.losses.LossFunctionWrapper(lm.losses.huber, delta=0.5, name="wrapped")
        else:
            yield name, cls


# Metrics whose constructor needs arguments.
_METRIC_FACTORIES = {
    "MeanMetricWrapper": lambda: lm.metrics.MeanMetricWrapper(lm.metrics.binary_accuracy, threshold=0.7, name="ba"),
    "IoU": lambda: lm.metrics.IoU(4, [1, 3], ignore_class=255, sparse_y_pred=False, dtype="float32"),
    "MeanIoU": lambda: lm.metrics.MeanIoU(3, ignore_class=0, axis=1),
    "OneHotIoU": lambda: lm.metrics.OneHotIoU(3, [2], sparse_y_pred=True),
    "OneHotMeanIoU": lambda: lm.metrics.OneHotMeanIoU(5, ignore_class=4),
    "PrecisionAtRecall": lambda: lm.metrics.PrecisionAtRecall(0.7, num_thresholds=50, class_id=1),
    "RecallAtPrecision": lambda: lm.metrics.RecallAtPrecision(0.8),
    "SensitivityAtSpecificity": lambda: lm.metrics.SensitivityAtSpecificity(0.3, num_thresholds=1),
    "SpecificityAtSensitivity": lambda: lm.metrics.SpecificityAtSensitivity(0.6, class_id=0),
}


def _metric_objects():
    for name, cls in _public(lm.metrics, "class"):
        yield name, _METRIC_FACTORIES.get(name, cls)


OBJECTS = [
    *(("loss", n, f) for n, f in _loss_objects()),
    *(("metric", n, f) for n, f in _metric_objects()),
    *(("initializer", n, c) for n, c in _public(lm.initializers, "class") if n != "Initializer"),
    ("initializer", "Constant(2.5)", lambda: lm.initializers.Constant(2.5)),
    ("initializer", "VarianceScaling(seed)", lambda: lm.initializers.VarianceScaling(2.0, "fan_out", seed=3)),
    *(("regularizer", n, c) for n, c in _public(lm.regularizers, "class") if n != "Regularizer"),
    ("regularizer", "L1L2(0.1, 0.2)", lambda: lm.regularizers.L1L2(0.1, 0.2)),
    *(("constraint", n, c) for n, c in _public(lm.constraints, "class")),
    ("constraint", "MinMaxNorm(0.5, 2)", lambda: lm.constraints.MinMaxNorm(0.5, 2.0, rate=0.5, axis=1)),
]


@pytest.mark.parametrize("kind, name, make", OBJECTS, ids=[f"{k}-{n}" for k, n, _ in OBJECTS])
def test_object_round_trip(kind, name, make):
    obj = make()
    restored = _assert_round_trip(obj)
    assert restored is not obj


FUNCTIONS = [
    *(("loss", n, f) for n, f in _public(lm.losses, "function")),
    *(("metric", n, f) for n, f in _public(lm.metrics, "function")),
    *(("activation", n, f) for n, f in _public(lm.activations, "function")),
]
_FAMILY = {"loss": lm.losses, "metric": lm.metrics, "activation": lm.activations}
# Where each family expects a function by plain name (files written before the Keras form):
# lm.metrics.deserialize("accuracy") is the class, as in Keras; the metric wrapper's fn is the function.
_FUNCTION_BY_NAME = {
    "loss": lm.losses.deserialize,
    "metric": lambda name: lm.metrics.MeanMetricWrapper.from_config({"name": "m", "fn": name})._fn,
    "activation": lm.activations.get,
}


@pytest.mark.parametrize("kind, name, fn", FUNCTIONS, ids=[f"{k}-{n}" for k, n, _ in FUNCTIONS])
def test_function_round_trip_in_keras_form(kind, name, fn):
    config = json.loads(json.dumps(serialize(fn)))
    # Keras's form; aliases such as ``mse`` are saved under the function's name.
    assert config == {"module": "builtins", "class_name": "function", "config": fn.__name__,
                      "registered_name": "function"}
    assert deserialize(config) is fn
    assert _FAMILY[kind].deserialize(config) is fn
    # Files written when lamina saved functions by plain name: the family still resolves it.
    assert _FUNCTION_BY_NAME[kind](fn.__name__) is fn
    assert deserialize(fn.__name__) == fn.__name__  # the generic one keeps strings, as Keras


@pytest.mark.parametrize("obj, module", [
    (lambda: lm.metrics.MeanSquaredError(), "lamina.metrics"),
    (lambda: lm.metrics.MeanAbsoluteError(), "lamina.metrics"),
    (lambda: lm.initializers.Identity(gain=2.0), "lamina.initializers"),
])
def test_shared_class_names_carry_a_family_label(obj, module):
    """Where two families share a class name, the ``module`` label keeps the round trip exact."""
    obj = obj()
    config = serialize(obj)
    assert config["module"] == module
    assert type(deserialize(config)) is type(obj)
    try:  # without the label the name means the registry's class (the loss, the layer)
        other = deserialize({k: v for k, v in config.items() if k != "module"})
    except TypeError:  # the layer Identity takes no ``gain``
        return
    assert type(other) is not type(obj)


def test_nested_objects_are_serialized_recursively():
    @register_serializable(package="test_nested")
    class Holder(lm.Layer):
        def __init__(self, init=None, **kwargs):
            super().__init__(**kwargs)
            self.init = lm.initializers.get(init)

        def get_config(self):
            return {**super().get_config(), "init": self.init}  # an object left in the config

    config = serialize(Holder(init=lm.initializers.HeNormal(seed=1), name="h"))
    assert config["class_name"] == "test_nested>Holder"
    assert config["config"]["init"] == {"class_name": "HeNormal", "config": {"seed": 1}}
    json.dumps(config)
    assert isinstance(deserialize(config).init, lm.initializers.HeNormal)


def test_serialize_refuses_code():
    with pytest.raises(ValueError, match="only named functions"):
        serialize(lambda x: x)
    with pytest.raises(TypeError, match="not the class"):
        serialize(lm.layers.Dense)


# -- custom classes: registry, custom_objects, CustomObjectScope ---------------------------


class MyLayer(lm.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return self.factor * x

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _my_layer_config():
    return {"class_name": "MyLayer", "config": {"name": "mine", "factor": 3.0}}


def test_unregistered_custom_layer_says_how_to_register():
    with pytest.raises(ValueError) as info:
        deserialize(_my_layer_config())
    message = str(info.value)
    assert "'MyLayer'" in message and REGISTER_HINT in message


def test_unregistered_layer_names_the_family_kind():
    config = {**_my_layer_config(), "module": "lamina.layers"}
    with pytest.raises(ValueError, match=r"Unknown layer class 'MyLayer'.*register_serializable\(package=\.\.\.\)"):
        deserialize(config)


@pytest.mark.parametrize("family, kind", [
    (lm.losses, "loss"), (lm.metrics, "metric"), (lm.optimizers, "optimizer"),
    (lm.optimizers.schedules, "learning rate schedule"), (lm.initializers, "initializer"),
    (lm.regularizers, "regularizer"), (lm.constraints, "constraint"), (lm.activations, "activation"),
])
def test_family_deserialize_names_kind_and_how_to_register(family, kind):
    for config, what in (({"class_name": "NoSuchThing", "config": {}}, f"{kind} class"), ("NoSuchThing", kind)):
        with pytest.raises(ValueError) as info:
            family.deserialize(config)
        assert f"Unknown {what} 'NoSuchThing'" in str(info.value) and REGISTER_HINT in str(info.value)


def test_custom_objects_and_scope_resolve_unregistered_class():
    layer = deserialize(_my_layer_config(), custom_objects={"MyLayer": MyLayer})
    assert type(layer) is MyLayer and layer.factor == 3.0 and layer.name == "mine"
    with CustomObjectScope({"MyLayer": MyLayer}):
        assert type(deserialize(_my_layer_config())) is MyLayer
    with pytest.raises(ValueError, match="Unknown object class 'MyLayer'"):  # the scope has ended
        deserialize(_my_layer_config())


def test_custom_objects_reach_nested_configs():
    config = serialize(lm.layers.TimeDistributed(MyLayer(name="inner")))
    assert config["config"]["layer"]["class_name"] == "MyLayer"
    with pytest.raises(ValueError, match="MyLayer"):
        deserialize(config)
    restored = deserialize(config, custom_objects={"MyLayer": MyLayer})
    assert type(restored.layer) is MyLayer


def test_registered_custom_layer_round_trips():
    @register_serializable(package="pkg")
    class MyLayer(lm.Layer):  # noqa: F811 - the same class name as the unregistered one
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    layer = MyLayer(factor=4.0, name="registered")
    config = serialize(layer)
    assert config == {"class_name": "pkg>MyLayer", "config": {**layer.get_config()}}
    restored = deserialize(json.loads(json.dumps(config)))
    assert type(restored) is MyLayer and restored.factor == 4.0
    # Keras's form: the class's own name plus its registered name.
    keras_form = {"class_name": "MyLayer", "registered_name": "pkg>MyLayer", "config": config["config"]}
    assert type(deserialize(keras_form)) is MyLayer


def test_registered_custom_function_round_trips():
    @register_serializable(package="pkg")
    def scaled_relu(x):
        return 2 * lm.activations.relu(x)

    assert serialize(scaled_relu) == {"module": "builtins", "class_name": "function", "config": "pkg>scaled_relu",
                                      "registered_name": "function"}
    assert deserialize(serialize(scaled_relu)) is scaled_relu
    assert deserialize("pkg>scaled_relu") is scaled_relu  # a registered name resolves, as in Keras
    layer = deserialize(serialize(lm.layers.Dense(2, activation=scaled_relu)))
    assert layer.activation is scaled_relu


# -- refusals: nothing is imported, no file is opened ----------------------------------------

_EVENTS: list | None = None
_WATCHED = {"import", "open", "exec", "compile", "os.system", "subprocess.Popen", "os.listdir",
            "os.scandir", "os.exec", "os.posix_spawn", "ctypes.dlopen"}


def _audit(event, args):
    if _EVENTS is not None and event in _WATCHED:
        _EVENTS.append((event, args[:1]))


sys.addaudithook(_audit)
_FAKE = "lamina_test_should_not_import"

REFUSED = [
    ({"class_name": "os.system", "config": {"command": "echo hi"}}, "module path"),
    ({"class_name": "builtins.eval", "config": {}}, "module path"),
    ({"class_name": "subprocess.Popen", "config": {"args": ["ls"]}}, "module path"),
    ({"class_name": "keras.layers.Dense", "config": {"units": 2}}, "module path"),
    ({"module": "os", "class_name": "system", "config": {}}, "'module' is 'os'"),
    ({"module": "builtins", "class_name": "eval", "config": {}}, "'module' is 'builtins'"),
    ({"module": _FAKE, "class_name": "Evil", "config": {}}, f"'module' is '{_FAKE}'"),
    ({"class_name": f"{_FAKE}.Evil", "config": {}}, "module path"),
    ({"class_name": "function", "config": f"{_FAKE}.evil"}, "module path"),
    ({"module": "builtins", "class_name": "function", "config": "os.system"}, "module path"),
    ({"class_name": "eval", "config": {}}, "Unknown object class 'eval'"),
    ({"module": "builtins", "class_name": "function", "config": "eval"}, "Unknown object function 'eval'"),
    ({"module": "keras.src.layers", "class_name": "Dense", "config": {"units": 2}}, "'module' is 'keras.src.layers'"),
    ({"module": "keras", "class_name": "Dense", "config": {"units": 2}}, "'module' is 'keras'"),
    ({"class_name": "Dense", "config": {"units": 2}, "source": "x"}, r"unexpected keys \['source'\]"),
    ({"class_name": "Dense", "config": {"units": 2}, "__reduce__": "x"}, "unexpected keys"),
    ({"config": {"units": 2}}, "no 'class_name'"),
    ({"class_name": "Dense", "config": "units=2"}, "'config' must be a dict"),
    ({"class_name": "relu", "config": {}}, "is a function, not a class"),
    ({"class_name": ["Dense"], "config": {}}, "must be strings"),
    ({"module": "lamina.optimizers", "class_name": "Dense", "config": {"units": 2}}, "not in the optimizer family"),
]


@pytest.mark.parametrize("config, match", REFUSED, ids=[str(i) for i in range(len(REFUSED))])
def test_refused_configs_import_nothing(config, match):
    global _EVENTS
    modules_before = set(sys.modules)
    _EVENTS = []
    try:
        with pytest.raises(ValueError, match=match) as info:
            deserialize(config)
    finally:
        events, _EVENTS = _EVENTS, None
    assert events == []
    assert set(sys.modules) == modules_before
    assert _FAKE not in sys.modules
    if "module" in match or "module path" in match:
        assert "never imports" in str(info.value) and REGISTER_HINT in str(info.value)


def test_the_audit_hook_sees_imports_and_file_access(tmp_path):
    """The refusal test above would notice an import or an opened file."""
    global _EVENTS
    _EVENTS = []
    try:
        (tmp_path / "x.txt").write_text("x")
        try:
            __import__(_FAKE + "_missing")
        except ImportError:
            pass
    finally:
        events, _EVENTS = _EVENTS, None
    assert {"open", "import"} <= {event for event, _ in events}


def test_deserialize_passes_plain_values_and_lists():
    assert deserialize(None) is None and deserialize(3) == 3
    restored = deserialize(["relu", {"class_name": "L1", "config": {"l1": 0.5}}, serialize(lm.activations.relu)])
    assert restored[0] == "relu" and isinstance(restored[1], lm.regularizers.L1) and restored[2] is lm.activations.relu
    with pytest.raises(ValueError, match="Could not deserialize"):
        deserialize(object())


# -- Keras's config keys ----------------------------------------------------------------------

# Keys that Keras's config has and lamina's has not, each for a Keras feature lamina lacks.
KERAS_ONLY = {
    "Dense": {"quantization_config"},  # Keras's quantization
    "Embedding": {"quantization_config"},
    "GlorotUniform": {"input_axes", "output_axes"},  # Keras's fan axes for VarianceScaling
}
# Keys that lamina's config has and Keras's lacks, where Keras drops a constructor argument.
LAMINA_ONLY = {
    "Dense": {"activity_regularizer"},
    "SparseCategoricalCrossentropy": {"axis"},
    "Huber": {"delta"},
}
KERAS_PAIRS = {
    "Dense": ("layers.Dense", (4,)),
    "Conv2D": ("layers.Conv2D", (4, 3)),
    "LSTM": ("layers.LSTM", (4,)),
    "Embedding": ("layers.Embedding", (5, 3)),
    "BatchNormalization": ("layers.BatchNormalization", ()),
    "MultiHeadAttention": ("layers.MultiHeadAttention", (2, 4)),
    "Adam": ("optimizers.Adam", ()),
    "SGD": ("optimizers.SGD", ()),
    "AdamW": ("optimizers.AdamW", ()),
    "SparseCategoricalCrossentropy": ("losses.SparseCategoricalCrossentropy", ()),
    "Huber": ("losses.Huber", ()),
    "ExponentialDecay": ("optimizers.schedules.ExponentialDecay", (0.1, 10, 0.5)),
    "CosineDecay": ("optimizers.schedules.CosineDecay", (0.1, 10)),
    "GlorotUniform": ("initializers.GlorotUniform", ()),
    "L1L2": ("regularizers.L1L2", (0.1, 0.2)),
    "MaxNorm": ("constraints.MaxNorm", ()),
    "AUC": ("metrics.AUC", ()),
    "SparseCategoricalAccuracy": ("metrics.SparseCategoricalAccuracy", ()),
}


def _attr(root, dotted):
    for part in dotted.split("."):
        root = getattr(root, part)
    return root


@pytest.mark.parametrize("name", sorted(KERAS_PAIRS))
def test_config_keys_match_keras(keras, name):
    path, args = KERAS_PAIRS[name]
    keras_config = keras.saving.serialize_keras_object(_attr(keras, path)(*args))
    config = serialize(_attr(lm, path)(*args))
    assert config["class_name"] == keras_config["class_name"]
    keras_keys = set(keras_config["config"]) - KERAS_ONLY.get(name, set())
    assert set(config["config"]) - LAMINA_ONLY.get(name, set()) == keras_keys


def _my_metric_fn(y_true, y_pred):
    return abs(y_true - y_pred)


@pytest.mark.parametrize("make", [
    lambda: lm.metrics.MeanMetricWrapper(_my_metric_fn, name="m"),
    lambda: lm.losses.LossFunctionWrapper(_my_metric_fn, name="l"),
])
def test_wrapped_custom_function_needs_custom_objects(make):
    config = json.loads(json.dumps(serialize(make())))
    assert config["config"]["fn"] == "_my_metric_fn"
    with pytest.raises(ValueError, match=r"'_my_metric_fn'.*register_serializable\(package=\.\.\.\)"):
        deserialize(config)
    restored = deserialize(config, custom_objects={"_my_metric_fn": _my_metric_fn})
    assert getattr(restored, "fn", getattr(restored, "_fn", None)) is _my_metric_fn


def test_keras_family_labels_are_read_as_lamina_families(keras):
    """Keras's ``module`` labels name the same families; lamina reads them, never imports them."""
    # (A Keras layer's config has Keras-only keys, such as its dtype policy; a plain one here.)
    configs = [{"module": "keras.layers", "class_name": "Dense", "config": {"units": 3, "activation": "relu"},
                "registered_name": None}]
    configs += [keras.saving.serialize_keras_object(obj) for obj in (
        keras.losses.Huber(delta=2.0),
        keras.metrics.MeanSquaredError(), keras.initializers.Identity(gain=2.0),
        keras.optimizers.SGD(0.1, momentum=0.5), keras.activations.relu)]
    modules_before = set(sys.modules)
    dense, huber, mse, identity, sgd, relu = (deserialize(json.loads(json.dumps(c))) for c in configs)
    assert set(sys.modules) == modules_before
    assert type(dense) is lm.layers.Dense and dense.activation is lm.activations.relu
    assert type(huber) is lm.losses.Huber and huber.get_config()["reduction"] == "sum_over_batch_size"
    assert type(mse) is lm.metrics.MeanSquaredError  # "keras.metrics" picks the metric
    assert type(identity) is lm.initializers.Identity  # (Keras leaves `gain` out of its config)
    assert type(sgd) is lm.optimizers.SGD and sgd.momentum == 0.5
    assert relu is lm.activations.relu
