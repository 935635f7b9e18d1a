"""Layers (``lm.layers``): the ``Layer`` base class and the built-in layers, by family."""

from lamina.layers import aliases
from lamina.layers.activations import ELU, LeakyReLU, PReLU, ReLU, Softmax
from lamina.layers.aliases import (
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    Convolution1D,
    Convolution1DTranspose,
    Convolution2D,
    Convolution2DTranspose,
    Convolution3D,
    Convolution3DTranspose,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    GlobalMaxPool3D,
    GroupQueryAttention,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    SeparableConvolution1D,
    SeparableConvolution2D,
)
from lamina.layers.attention import AdditiveAttention, Attention, GroupedQueryAttention, MultiHeadAttention
from lamina.layers.convolutional import (
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Conv3DTranspose,
    DepthwiseConv1D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
)
from lamina.layers.core import (
    Activation,
    Dense,
    Dropout,
    EinsumDense,
    Embedding,
    Identity,
    Input,
    InputLayer,
    Lambda,
    Masking,
    Wrapper,
)
from lamina.layers.core.jax_layer import FlaxLayer, JaxLayer
from lamina.layers.core.reversible_embedding import ReversibleEmbedding
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from lamina.layers.normalization import (
    BatchNormalization,
    GroupNormalization,
    LayerNormalization,
    RMSNormalization,
    SpectralNormalization,
    UnitNormalization,
)
from lamina.layers.pooling import (
    AdaptiveAveragePooling1D,
    AdaptiveAveragePooling2D,
    AdaptiveAveragePooling3D,
    AdaptiveMaxPooling1D,
    AdaptiveMaxPooling2D,
    AdaptiveMaxPooling3D,
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)
from lamina.layers.preprocessing import (
    AugMix,
    AutoContrast,
    CategoryEncoding,
    CenterCrop,
    ContrastLimitedAdaptiveHistogramEqualization,
    CutMix,
    Discretization,
    Equalization,
    HashedCrossing,
    Hashing,
    IntegerLookup,
    MixUp,
    Normalization,
    Pipeline,
    RandAugment,
    RandomBrightness,
    RandomColorDegeneration,
    RandomColorJitter,
    RandomContrast,
    RandomCrop,
    RandomElasticTransform,
    RandomErasing,
    RandomFlip,
    RandomGaussianBlur,
    RandomGrayscale,
    RandomHue,
    RandomInvert,
    RandomPerspective,
    RandomPosterization,
    RandomRotation,
    RandomSaturation,
    RandomSharpness,
    RandomShear,
    RandomTranslation,
    RandomZoom,
    Rescaling,
    Resizing,
    Solarization,
    StringLookup,
    TextVectorization,
)
from lamina.layers.preprocessing.mel_spectrogram import MelSpectrogram
from lamina.layers.preprocessing.stft_spectrogram import STFTSpectrogram
from lamina.layers.regularization import (
    ActivityRegularization,
    AlphaDropout,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)
from lamina.layers.reshaping import (
    Cropping1D,
    Cropping2D,
    Cropping3D,
    Flatten,
    Permute,
    RepeatVector,
    Reshape,
    UpSampling1D,
    UpSampling2D,
    UpSampling3D,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)
from lamina.layers.rnn import (
    GRU,
    LSTM,
    RNN,
    Bidirectional,
    GRUCell,
    LSTMCell,
    SimpleRNN,
    SimpleRNNCell,
    StackedRNNCells,
    TimeDistributed,
)
from lamina.layers.rnn.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from lamina.layers.serialization import deserialize, serialize

# Every class imported above (the layers, InputSpec, Input) is public. The functions (the
# merging layers' functional forms, serialize / deserialize) are public attributes too, kept
# out of __all__ so that it lists layer classes only (tests walk it as the list of layers);
# so are Keras's alias names (``aliases``), so that it lists each class once.
__all__ = sorted(name for name in dir() if name[0].isupper() and name not in aliases.__all__)
