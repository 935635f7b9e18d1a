"""Port of the Keras 3 guide "Understanding masking & padding"
(keras-team/keras-io, guides/keras_core/understanding_masking_and_padding.py).

Translation: ``keras`` -> ``lm``, ``keras.ops.X`` -> ``jnp.X``; sizes shrunk where it costs.
Where the guide prints ``tensor._keras_mask`` of a concrete output, lamina cannot attach the
mask to the array (JAX arrays take no attributes; see lamina/layers/masking.py): the tests
read the mask the way a lamina user can, with ``layer.compute_mask(...)`` or with a small
pass-through layer that receives the mask of its input (``MaskProbe``). Symbolic tensors
(Functional API) do carry ``_keras_mask``, as in Keras. The tests also check that masks reach
the LSTM by its numbers: with a mask, a post-padded sequence gives the same output as the unpadded one.
Outputs are compared with Keras 3 (same weights) where the guide builds a model.

No section is left out.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm
from lamina import layers

raw_inputs = [
    [711, 632, 71],
    [73, 8, 3215, 55, 927],
    [83, 91, 1, 645, 1253, 927],
]
PADDED = np.array([[711, 632, 71, 0, 0, 0],
                   [73, 8, 3215, 55, 927, 0],
                   [83, 91, 1, 645, 1253, 927]], dtype="int32")


@pytest.fixture(scope="module")
def K():
    import keras

    return keras


class MaskProbe(lm.layers.Layer):
    """Passes its input through and keeps the mask it received (stands in for printing
    ``tensor._keras_mask``)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.seen = "not called"

    def call(self, inputs, mask=None):
        self.seen = None if mask is None else np.asarray(mask)
        return inputs


def mask_of(tensor):
    probe = MaskProbe()
    probe(tensor)
    return probe.seen


def assert_mask_reaches_the_lstm(model, padded):
    """Each post-padded row gives the output of its unpadded prefix: the LSTM skipped the
    padding (without the mask it would run over the zeros' embeddings)."""
    outputs = np.asarray(model(padded))
    for row, ids in enumerate(padded):
        length = int(np.count_nonzero(ids))
        alone = np.asarray(model(padded[row:row + 1, :length]))[0]
        np.testing.assert_allclose(outputs[row], alone, rtol=1e-5, atol=1e-6)


def test_padding_sequence_data(K):
    """## Padding sequence data (``pad_sequences``)."""
    padded_inputs = lm.utils.pad_sequences(raw_inputs, padding="post")
    np.testing.assert_array_equal(padded_inputs, PADDED)
    assert padded_inputs.dtype == np.int32
    for kwargs in ({}, {"padding": "pre", "maxlen": 4}, {"truncating": "post", "maxlen": 4},
                   {"value": -1, "maxlen": 7}):
        np.testing.assert_array_equal(lm.utils.pad_sequences(raw_inputs, **kwargs),
                                      K.utils.pad_sequences(raw_inputs, **kwargs))


def test_mask_generating_layers_embedding_and_masking():
    """## Mask-generating layers: Embedding and Masking."""
    padded_inputs = PADDED
    embedding = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)
    masked_output = embedding(padded_inputs)
    np.testing.assert_array_equal(embedding.compute_mask(padded_inputs), padded_inputs != 0)
    np.testing.assert_array_equal(mask_of(masked_output), padded_inputs != 0)

    masking_layer = layers.Masking()
    # Simulate the embedding lookup by expanding the 2D input to 3D,
    # with embedding dimension of 10.
    unmasked_embedding = jnp.asarray(
        jnp.tile(jnp.expand_dims(padded_inputs, axis=-1), [1, 1, 10]),
        dtype="float32",
    )
    masked_embedding = masking_layer(unmasked_embedding)
    # The mask is a 2D boolean tensor with shape (batch_size, sequence_length).
    mask = masking_layer.compute_mask(unmasked_embedding)
    assert mask.shape == (3, 6) and mask.dtype == jnp.bool_
    np.testing.assert_array_equal(mask, padded_inputs != 0)
    np.testing.assert_array_equal(mask_of(masked_embedding), padded_inputs != 0)


def test_mask_propagation_in_the_functional_api_and_sequential_api(K):
    """## Mask propagation in the Functional API and Sequential API (the LSTM gets the mask)."""
    sequential = lm.Sequential(
        [
            layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True),
            layers.LSTM(32),
        ]
    )
    inputs = lm.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)(inputs)
    outputs = layers.LSTM(32)(x)
    functional = lm.Model(inputs, outputs)

    twin = K.Sequential([K.layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True),
                         K.layers.LSTM(32)])
    for model in (sequential, functional):
        assert model(PADDED).shape == (3, 32)
        assert_mask_reaches_the_lstm(model, PADDED)
        twin(PADDED)
        twin.set_weights(model.get_weights())
        np.testing.assert_allclose(model(PADDED), twin(PADDED), rtol=1e-5, atol=1e-6)


def my_layer_class(k):
    class MyLayer(k.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.embedding = k.layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)
            self.lstm = k.layers.LSTM(32)

        def call(self, inputs):
            x = self.embedding(inputs)
            # Note that you could also prepare a `mask` tensor manually.
            # It only needs to be a boolean tensor
            # with the right shape, i.e. (batch_size, timesteps).
            mask = self.embedding.compute_mask(inputs)
            output = self.lstm(x, mask=mask)  # The layer will ignore the masked values
            return output

    return MyLayer


def test_passing_mask_tensors_directly_to_layers(K):
    """## Passing mask tensors directly to layers (``compute_mask`` -> ``lstm(x, mask=...)``)."""
    layer = my_layer_class(lm)()
    x = np.random.default_rng(0).random((32, 10)) * 100
    x = x.astype("int32")
    x[x == 0] = 1  # no zero inside a sequence ...
    x[::2, 6:] = 0  # ... and post-padding on every other row, so that the mask matters
    out = layer(x)
    assert out.shape == (32, 32)
    assert_mask_reaches_the_lstm(layer, x)

    twin = my_layer_class(K)()
    twin(x)
    twin.embedding.set_weights(layer.embedding.get_weights())
    twin.lstm.set_weights(layer.lstm.get_weights())
    np.testing.assert_allclose(out, twin(x), rtol=1e-5, atol=1e-6)


class TemporalSplit(lm.layers.Layer):
    """Split the input tensor into 2 tensors along the time dimension."""

    def call(self, inputs):
        # Expect the input to be 3D and mask to be 2D, split the input tensor into 2
        # subtensors along the time axis (axis 1).
        return jnp.split(inputs, 2, axis=1)

    def compute_mask(self, inputs, mask=None):
        # Also split the mask into 2 if it presents.
        if mask is None:
            return None
        return jnp.split(mask, 2, axis=1)


class CustomEmbedding(lm.layers.Layer):
    def __init__(self, input_dim, output_dim, mask_zero=False, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.mask_zero = mask_zero

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer="random_normal",
            dtype="float32",
        )

    def call(self, inputs):
        inputs = jnp.asarray(inputs, "int32")
        return jnp.take(self.embeddings, inputs, axis=0)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return jnp.not_equal(inputs, 0)


def test_supporting_masking_in_your_custom_layers():
    """## Supporting masking in your custom layers (TemporalSplit, CustomEmbedding)."""
    unmasked_embedding = jnp.tile(jnp.expand_dims(PADDED, -1), [1, 1, 10]).astype("float32")
    masked_embedding = layers.Masking()(unmasked_embedding)
    first_half, second_half = TemporalSplit()(masked_embedding)
    assert first_half.shape == second_half.shape == (3, 3, 10)
    np.testing.assert_array_equal(mask_of(first_half), PADDED[:, :3] != 0)
    np.testing.assert_array_equal(mask_of(second_half), PADDED[:, 3:] != 0)

    layer = CustomEmbedding(10, 32, mask_zero=True)
    x = np.random.random((3, 10)) * 9
    x = x.astype("int32")
    y = layer(x)
    mask = layer.compute_mask(x)
    assert y.shape == (3, 10, 32)
    np.testing.assert_array_equal(mask, x != 0)
    np.testing.assert_array_equal(mask_of(y), x != 0)
    np.testing.assert_allclose(y, np.asarray(layer.embeddings)[x])


class MyActivation(lm.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Signal that the layer is safe for mask propagation
        self.supports_masking = True

    def call(self, inputs):
        return jax_relu(inputs)


def jax_relu(x):
    return jnp.maximum(x, 0.0)


class NoMaskActivation(lm.layers.Layer):
    """MyActivation without the opt-in: it destroys the mask (Keras's default)."""

    def call(self, inputs):
        return jax_relu(inputs)


def test_opting_in_to_mask_propagation_on_compatible_layers(K):
    """## Opting-in to mask propagation on compatible layers (``supports_masking = True``)."""
    inputs = lm.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)(inputs)
    x = MyActivation()(x)  # Will pass the mask along
    print("Mask found:", x._keras_mask)
    assert x._keras_mask is not None and tuple(x._keras_mask.shape) == (None, None)
    outputs = layers.LSTM(32)(x)  # Will receive the mask
    model = lm.Model(inputs, outputs)
    y = model(np.random.randint(0, 5000, size=(32, 20)))
    assert y.shape == (32, 32)
    assert_mask_reaches_the_lstm(model, PADDED)
    np.testing.assert_allclose(model.predict(PADDED, verbose=0), model(PADDED), rtol=1e-5, atol=1e-6)

    twin_in = K.Input(shape=(None,), dtype="int32")
    twin_x = K.layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)(twin_in)
    twin_x = K.layers.Activation("relu")(twin_x)  # Keras's relu propagates the mask as well
    twin = K.Model(twin_in, K.layers.LSTM(32)(twin_x))
    twin.set_weights(model.get_weights())
    np.testing.assert_allclose(model(PADDED), twin(PADDED), rtol=1e-5, atol=1e-6)

    # Without the opt-in the mask stops at the custom layer, and the LSTM runs over the padding.
    x = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)(inputs)
    unmasked = lm.Model(inputs, layers.LSTM(32)(NoMaskActivation()(x)))
    unmasked.set_weights(model.get_weights())
    assert not np.allclose(unmasked(PADDED)[0], model(PADDED)[0], atol=1e-6)


class TemporalSoftmax(lm.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        assert mask is not None
        broadcast_float_mask = jnp.expand_dims(jnp.asarray(mask, "float32"), -1)
        inputs_exp = jnp.exp(inputs) * broadcast_float_mask
        inputs_sum = jnp.sum(inputs_exp * broadcast_float_mask, axis=-1, keepdims=True)
        return inputs_exp / inputs_sum


def test_writing_layers_that_need_mask_information():
    """## Writing layers that need mask information (``call(self, inputs, mask=None)``)."""
    inputs = lm.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=10, output_dim=32, mask_zero=True)(inputs)
    x = layers.Dense(1)(x)
    outputs = TemporalSoftmax()(x)

    model = lm.Model(inputs, outputs)
    ids = np.random.randint(0, 10, size=(32, 100))
    y = np.asarray(model(ids))
    assert y.shape == (32, 100, 1)
    # The guide's sum runs over the last axis (of size 1): kept steps give exp/exp = 1 and
    # masked ones 0/0, exactly as in Keras.
    expected = np.where((ids != 0)[..., None], 1.0, np.nan)
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    # Compiled (predict) as eager: the mask reaches the layer inside XLA too.
    np.testing.assert_allclose(model.predict(ids, verbose=0), expected, rtol=1e-6)
