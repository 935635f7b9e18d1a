"""Core layers."""

from lamina.layers.core.activation import Activation
from lamina.layers.core.dense import Dense
from lamina.layers.core.dropout import Dropout
from lamina.layers.core.einsum_dense import EinsumDense
from lamina.layers.core.embedding import Embedding
from lamina.layers.core.identity import Identity
from lamina.layers.core.input_layer import Input, InputLayer
from lamina.layers.core.lambda_layer import Lambda
from lamina.layers.core.masking import Masking
from lamina.layers.core.wrapper import Wrapper

__all__ = ["Activation", "Dense", "Dropout", "EinsumDense", "Embedding", "Identity", "Input", "InputLayer", "Lambda",
           "Masking", "Wrapper"]
