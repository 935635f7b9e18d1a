"""The layer checker itself: a few layers, the failures it must catch, and the registry that
says where every built-in layer of ``lm.layers`` goes through it."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm

HERE = Path(__file__).parent


def test_dense_passes_the_checker(keras):
    check_layer(lambda: lm.layers.Dense(3, activation="relu"), lambda k: k.layers.Dense(3, activation="relu"),
                input_shape=(4, 5), keras=keras)


def test_dense_on_3d_input_passes_the_checker(keras):
    check_layer(lambda: lm.layers.Dense(2, use_bias=False), lambda k: k.layers.Dense(2, use_bias=False),
                input_shape=(2, 3, 4), keras=keras)


def test_activation_passes_the_checker(keras):
    check_layer(lambda: lm.layers.Activation("gelu"), lambda k: k.layers.Activation("gelu"),
                input_shape=(3, 4), keras=keras)


@pytest.mark.parametrize("mask", [None, np.array([[1, 1, 0], [1, 0, 0]], bool)], ids=["unmasked", "masked"])
def test_dropout_passes_the_checker(keras, mask):
    # In inference (in training the drawn masks differ from Keras's); a mask passes through.
    check_layer(lambda: lm.layers.Dropout(0.5, seed=1), lambda k: k.layers.Dropout(0.5, seed=1),
                input_shape=(2, 3, 4), input_masks={0: mask}, keras=keras)


# --- the checker fails when it should ---------------------------------------------------------

class _DropsTheMask(lm.layers.Dense):
    def __init__(self, units, **kwargs):
        super().__init__(units, **kwargs)
        self.supports_masking = False


class _ExtraOutput(lm.layers.Dense):
    def call(self, inputs):
        y = super().call(inputs)
        return y, y


@pytest.mark.parametrize("make, message", [
    (lambda: lm.layers.Dense(3, activation="tanh"), "output 0 differs"),  # Keras's is relu
    (lambda: _DropsTheMask(3, activation="relu"), "output 0 has no mask"),
    (lambda: _ExtraOutput(3, activation="relu"), "2 outputs, Keras gives 1"),
])
def test_the_checker_catches_differences_from_keras(keras, make, message):
    mask = np.array([[1, 1, 0], [1, 0, 0]], bool)
    with pytest.raises(AssertionError, match=message):
        check_layer(make, lambda k: k.layers.Dense(3, activation="relu"), input_shape=(2, 3, 4),
                    input_masks={0: mask}, keras=keras, check_grads=False)


def test_the_checker_catches_a_wrong_compute_output_shape(keras):
    class WrongShape(lm.layers.Dense):
        def compute_output_shape(self, input_shape):
            return (*input_shape[:-1], self.units + 1)

    with pytest.raises(AssertionError, match="compute_output_shape"):
        check_layer(lambda: WrongShape(3), lambda k: k.layers.Dense(3), input_shape=(2, 4), keras=keras,
                    check_grads=False)


def test_the_checker_compares_the_gradients_of_every_input(keras):
    """A second positional input and a keyword input get their gradients compared with
    Keras's: a layer that stops the gradient into the keyword input fails."""
    import jax

    class KerasScaledSum(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.w = self.add_weight(shape=(3,), initializer="random_normal")

        def call(self, x, y, scale=None):
            return x * self.w + y * scale

    class ScaledSum(lm.Layer):
        def __init__(self, stop=False, **kwargs):
            super().__init__(**kwargs)
            self.stop = stop
            self.w = self.add_weight(shape=(3,), initializer="zeros")

        def call(self, x, y, scale=None):
            return x * self.w.value + y * (jax.lax.stop_gradient(scale) if self.stop else scale)

        def compute_output_shape(self, x_shape, y_shape, scale_shape=None):
            assert tuple(y_shape) == tuple(scale_shape) == (None, 3)  # each input's shape is given
            return tuple(x_shape)

    inputs = dict(inputs=random_input((2, 3), seed=1), args=[(2, 3)], call_kwargs={"scale": random_input((2, 3))})
    check_layer(ScaledSum, lambda k: KerasScaledSum(), keras=keras, **inputs)
    with pytest.raises(AssertionError, match="gradient differs"):
        check_layer(lambda: ScaledSum(stop=True), lambda k: KerasScaledSum(), keras=keras, **inputs)


# --- every built-in layer goes through the checker --------------------------------------------

# Layer class -> (test file, test function) where check_layer runs on it.
CHECKED_IN = {
    "Activation": ("test_layer_checker.py", "test_activation_passes_the_checker"),
    "Dense": ("test_layer_checker.py", "test_dense_passes_the_checker"),
    "Dropout": ("test_layer_checker.py", "test_dropout_passes_the_checker"),
    "EinsumDense": ("test_core_extra.py", "test_einsum_dense_passes_the_checker"),
    "Embedding": ("test_core_extra.py", "test_embedding_passes_the_checker"),
    "ReversibleEmbedding": ("test_reversible_embedding.py", "test_reversible_embedding_matches_keras"),
    "Identity": ("test_core_extra.py", "test_identity_passes_the_checker"),
    "JaxLayer": ("test_jax_layer.py", "test_jax_layer_matches_keras"),
    "FlaxLayer": ("test_jax_layer.py", "test_flax_layer_matches_keras"),
    "Lambda": ("test_core_extra.py", "test_lambda_with_a_builtin_function_passes_the_checker"),
    "Masking": ("test_masking_layer.py", "test_masking_passes_the_checker"),
    **{name: ("test_activation_layers.py", "test_activation_layers_pass_the_checker")
       for name in ("ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax")},
    # Random in training: the checker at inference; training draws, statistics and fit in the same file.
    **{name: ("test_regularization_layers.py", "test_regularization_layers_at_inference_pass_the_checker")
       for name in ("ActivityRegularization", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                    "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")},
    **{name: ("test_reshaping.py", "test_matches_keras") for name in (
        "Flatten", "Reshape", "Permute", "RepeatVector", "Cropping1D", "Cropping2D", "Cropping3D",
        "UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")},
    **{name: ("test_convolutional.py", "test_conv_matches_keras") for name in ("Conv1D", "Conv2D", "Conv3D")},
    **{name: ("test_conv_lstm.py", "test_conv_lstm_matches_keras") for name in ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")},
    **{name: ("test_convolutional.py", "test_conv_transpose_matches_keras")
       for name in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")},
    **{name: ("test_convolutional.py", "test_depthwise_and_separable_match_keras")
       for name in ("DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D")},
    **{name: ("test_pooling.py", "test_pooling_matches_keras") for name in (
        "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D")},
    **{name: ("test_pooling.py", "test_global_pooling_matches_keras") for name in (
        "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
        "GlobalMaxPooling3D")},
    "GlobalAveragePooling1D": ("test_pooling.py", "test_global_average_pooling_1d_with_mask_matches_keras"),
    **{f"Adaptive{mode}Pooling{rank}D": ("test_adaptive_pooling.py", "test_adaptive_pooling_matches_keras")
       for mode in ("Average", "Max") for rank in (1, 2, 3)},
    "BatchNormalization": ("test_normalization.py", "test_batch_normalization_passes_the_checker"),
    "LayerNormalization": ("test_normalization.py", "test_layer_normalization_passes_the_checker"),
    "GroupNormalization": ("test_normalization.py", "test_group_normalization_passes_the_checker"),
    "UnitNormalization": ("test_normalization.py", "test_unit_normalization_passes_the_checker"),
    "Rescaling": ("test_preprocessing.py", "test_rescaling_passes_the_checker"),
    "STFTSpectrogram": ("test_spectrograms.py", "test_stft_spectrogram_matches_keras"),
    "MelSpectrogram": ("test_spectrograms.py", "test_mel_spectrogram_matches_keras"),
    "Normalization": ("test_preprocessing.py", "test_normalization_with_given_statistics_passes_the_checker"),
    "Resizing": ("test_image_preprocessing.py", "test_resizing_passes_the_checker"),
    "CenterCrop": ("test_image_preprocessing.py", "test_center_crop_passes_the_checker"),
    # Random layers: the checker at inference; training pixels, draws and fit in the same file.
    **{name: ("test_image_preprocessing.py", "test_random_layers_at_inference_pass_the_checker") for name in (
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast")},
    "RandomCrop": ("test_image_preprocessing.py", "test_random_crop_at_inference_passes_the_checker"),
    **{name: ("test_categorical_preprocessing.py", f"test_{snake}_passes_the_checker") for name, snake in (
        ("CategoryEncoding", "category_encoding"), ("Discretization", "discretization"),
        ("IntegerLookup", "integer_lookup"))},
    # Colour augmentation: the checker in training with draws made deterministic by the factors.
    **{name: ("test_color_augmentation.py", "test_color_layers_pass_the_checker") for name in (
        "RandomBrightness", "RandomGrayscale", "RandomInvert", "Solarization", "RandomSaturation", "RandomHue",
        "RandomColorDegeneration", "RandomSharpness", "RandomPosterization", "AutoContrast", "Equalization",
        "RandomColorJitter", "ContrastLimitedAdaptiveHistogramEqualization")},
    **{name: ("test_geometric_augmentation.py", "test_geometric_layers_pass_the_checker") for name in (
        "RandomErasing", "RandomGaussianBlur", "RandomShear", "RandomPerspective", "RandomElasticTransform")},
    **{name: ("test_mixing_augmentation.py", "test_mixing_layers_pass_the_checker") for name in (
        "MixUp", "CutMix", "Pipeline", "RandAugment", "AugMix")},
    "MultiHeadAttention": ("test_attention.py", "test_multi_head_attention_matches_keras"),
    **{name: ("test_attention_layers.py", "test_attention_layers_pass_the_checker")
       for name in ("Attention", "AdditiveAttention")},
    "GroupedQueryAttention": ("test_attention_layers.py", "test_grouped_query_attention_passes_the_checker"),
    "RMSNormalization": ("test_normalization_extra.py", "test_rms_normalization_passes_the_checker"),
    # At inference (training rewrites the kernel; compared with Keras step by step in that file).
    "SpectralNormalization": ("test_normalization_extra.py",
                              "test_spectral_normalization_passes_the_checker_at_inference"),
    "StackedRNNCells": ("test_wrapper_layers.py", "test_stacked_rnn_cells_pass_the_checker"),
    **{name: ("test_merging.py", "test_elementwise_merges_pass_the_checker") for name in (
        "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")},
    "Concatenate": ("test_merging.py", "test_concatenate_passes_the_checker"),
    "Dot": ("test_merging.py", "test_dot_passes_the_checker"),
    **{name: ("test_rnn.py", "test_recurrent_layers_match_keras") for name in ("SimpleRNN", "LSTM", "GRU")},
    **{name: ("test_rnn.py", "test_single_cell_step_matches_keras")
       for name in ("SimpleRNNCell", "LSTMCell", "GRUCell")},
    "RNN": ("test_rnn.py", "test_generic_rnn_with_builtin_cell_matches_keras"),
    "Bidirectional": ("test_rnn.py", "test_bidirectional_matches_keras"),
    "TimeDistributed": ("test_rnn.py", "test_time_distributed_dense_matches_keras"),
}

# Layer classes in lm.layers that compute nothing to compare.
NOT_CHECKED = {
    "Layer": "the base class",
    "InputLayer": "the placeholder behind lm.Input: it holds a shape, Keras's cannot be called on data",
    "Wrapper": "the base class of wrappers (its call is the subclass's); tested in test_wrapper_layers.py",
    # Host-side (NumPy) layers: strings, or hashes JAX cannot compute, so they cannot run under
    # lm.jit (a checker step); their outputs are compared with Keras's directly in these files.
    **{name: "runs on the host with NumPy (no lm.jit); compared with Keras in test_categorical_preprocessing.py"
       for name in ("StringLookup", "Hashing", "HashedCrossing")},
    "TextVectorization": "runs on the host with NumPy (no lm.jit); compared with Keras in test_text_preprocessing.py",
}


def _builtin_layer_names():
    classes = {name: getattr(lm.layers, name) for name in lm.layers.__all__}
    return sorted(name for name, cls in classes.items() if isinstance(cls, type) and issubclass(cls, lm.layers.Layer))


def test_every_builtin_layer_has_a_checker_case():
    missing = [name for name in _builtin_layer_names() if name not in CHECKED_IN and name not in NOT_CHECKED]
    assert not missing, f"add a check_layer case for {missing} and list it in CHECKED_IN"
    unknown = sorted(set(CHECKED_IN) - set(_builtin_layer_names()))
    assert not unknown, f"CHECKED_IN names layers that lm.layers does not export: {unknown}"


@pytest.mark.parametrize("test_file", sorted({file for file, _ in CHECKED_IN.values()}))
def test_the_registered_tests_run_the_checker_on_their_layers(test_file):
    """Each registered test exists, calls ``check_layer`` (directly or through a helper of its
    file), and names its layer (in its code, its decorators or the case table they use)."""
    source = (HERE / test_file).read_text()
    module = ast.parse(source)
    functions = {node.name: node for node in module.body if isinstance(node, ast.FunctionDef)}
    tables = {target.id: ast.get_source_segment(source, node) for node in module.body if isinstance(node, ast.Assign)
              for target in node.targets if isinstance(target, ast.Name)}
    checkers = {"check_layer"} | {name for name, node in functions.items()
                                  if "check_layer(" in ast.get_source_segment(source, node)}
    for layer_name, (file, function_name) in CHECKED_IN.items():
        if file != test_file:
            continue
        assert function_name in functions, f"{file} has no test {function_name} (listed for {layer_name})"
        node = functions[function_name]
        body = ast.get_source_segment(source, node)
        called = {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert called & checkers, f"{file}::{function_name} does not call check_layer ({layer_name})"
        decorators = " ".join(ast.get_source_segment(source, d) for d in node.decorator_list)
        used_tables = " ".join(text for name, text in tables.items() if re.search(rf"\b{name}\b", decorators))
        assert re.search(rf"\b{layer_name}\b", body + decorators + used_tables), (
            f"{file}::{function_name} does not mention {layer_name}"
        )
