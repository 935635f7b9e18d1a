"""model.export(format="onnx"): every built-in layer family through jax2onnx and onnxruntime,
outputs equal to predict within 1e-5 at two batch sizes; refusals name the layer."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("jax2onnx")
L = lm.layers


# Zero initial values (each test sets random weights with NumPy afterwards): drawing them with
# the layers' initializers compiles a JAX program per shape (orthogonal ones a QR), most of
# this file's time otherwise.
K = {"kernel_initializer": "zeros"}
R = {**K, "recurrent_initializer": "zeros"}


def _sequential(shape, *layers, dtype="float32", name=None):
    return lm.Sequential([lm.Input(shape, dtype=dtype), *layers], name=name)


def _two_inputs(merge):
    a, b = lm.Input((4,), name="a"), lm.Input((4,), name="b")
    return lm.Model([a, b], merge([L.Dense(4, **K)(a), L.Dense(4, **K)(b)]))


def _transformer_block():
    tokens = lm.Input((6,), dtype="int32")
    x = L.Embedding(20, 8, embeddings_initializer="zeros")(tokens)
    x = L.LayerNormalization()(L.Add()([x, L.MultiHeadAttention(num_heads=2, key_dim=4, **K)(x, x)]))
    x = L.LayerNormalization()(L.Add()([x, L.Dense(8, **K)(L.Dropout(0.1)(L.Dense(16, activation="relu", **K)(x)))]))
    return lm.Model(tokens, L.Dense(3, activation="softmax", **K)(L.GlobalAveragePooling1D()(x)))


# One model per family; the ones of examples/ (Dense, Dropout, Conv2D, MaxPooling2D, Flatten,
# Embedding, MultiHeadAttention, LayerNormalization, Add, GlobalAveragePooling1D) first.
MODELS = {
    "dense_dropout_activations": lambda: _sequential(
        (6,), L.Dense(8, activation="relu", **K), L.Dropout(0.5), L.Dense(8, activation="gelu", **K),
        L.Activation("tanh"), L.Dense(4, activation="sigmoid", **K), L.Dense(3, activation="softmax", **K)),
    "convnet_of_examples": lambda: _sequential(
        (10, 10, 1), L.Conv2D(4, 3, activation="relu", **K), L.MaxPooling2D(2), L.Flatten(), L.Dropout(0.5),
        L.Dense(3, activation="softmax", **K)),
    "transformer_of_examples": _transformer_block,
    "pooling_2d": lambda: _sequential(
        (9, 9, 2), L.MaxPooling2D(3, strides=2, padding="same"), L.AveragePooling2D(2, strides=1),
        L.MaxPooling2D(2, padding="same"), L.AveragePooling2D(2, padding="same"), L.GlobalMaxPooling2D()),
    "global_average_2d": lambda: _sequential((5, 5, 3), L.GlobalAveragePooling2D()),
    "conv_1d_pooling_1d": lambda: _sequential(
        (12, 3), L.Conv1D(4, 3, padding="same", activation="relu", **K), L.MaxPooling1D(2),
        L.AveragePooling1D(3, strides=1, padding="same"), L.MaxPooling1D(3, strides=2), L.GlobalMaxPooling1D()),
    "conv_variants": lambda: _sequential(
        (8, 8, 3), L.ZeroPadding2D(1), L.DepthwiseConv2D(3, depthwise_initializer="zeros"),
        L.SeparableConv2D(4, 3, padding="same", depthwise_initializer="zeros", pointwise_initializer="zeros"),
        L.Conv2DTranspose(3, 3, strides=2, **K), L.Cropping2D(2), L.UpSampling2D(2), L.Conv2D(2, 3, strides=2, **K),
        L.Flatten()),
    "conv_1d_variants": lambda: _sequential(
        (8, 3), L.ZeroPadding1D(1), L.Conv1DTranspose(3, 3, strides=2, **K),
        L.DepthwiseConv1D(3, depthwise_initializer="zeros"),
        L.SeparableConv1D(2, 3, depthwise_initializer="zeros", pointwise_initializer="zeros"),
        L.Cropping1D(1), L.UpSampling1D(2), L.Flatten()),
    "conv_3d": lambda: _sequential(
        (6, 6, 6, 2), L.Conv3D(3, 3, strides=(2, 1, 1), padding="same", **K), L.Conv3DTranspose(2, 2, strides=2, **K),
        L.Conv3D(2, 2, **K), L.Flatten()),
    "pooling_3d": lambda: _sequential(
        (6, 6, 6, 2), L.ZeroPadding3D(1), L.Cropping3D(1), L.MaxPooling3D(2), L.UpSampling3D(2),
        L.AveragePooling3D(2, strides=1, padding="same"), L.MaxPooling3D(2, strides=1), L.GlobalMaxPooling3D()),
    "image_preprocessing": lambda: _sequential(
        (8, 8, 3), L.Normalization(mean=0.5, variance=2.0), L.RandomFlip(), L.RandomRotation(0.1), L.RandomZoom(0.1),
        L.RandomTranslation(0.1, 0.1), L.RandomContrast(0.2), L.CenterCrop(6, 6), L.GlobalAveragePooling2D()),
    "normalization": lambda: _sequential(
        (8,), L.Rescaling(0.5, offset=1.0), L.BatchNormalization(), L.LayerNormalization(), L.Dense(8, **K),
        L.Reshape((2, 4)), L.GroupNormalization(groups=2), L.UnitNormalization(), L.Flatten()),
    "embedding_masked_lstm": lambda: _sequential(
        (7,), L.Embedding(10, 4, mask_zero=True, embeddings_initializer="zeros"), L.LSTM(5, **R), dtype="int32"),
    "recurrent": lambda: _sequential(
        (5, 3), L.MaxPooling1D(2, strides=1, padding="same"), L.Masking(0.0), L.SimpleRNN(4, return_sequences=True, **R), L.GRU(4, return_sequences=True, **R),
        L.Bidirectional(L.LSTM(3, return_sequences=True, **R)), L.TimeDistributed(L.Dense(2, **K)), L.LSTM(3, **R)),
    "reshaping": lambda: _sequential(
        (4, 6), L.Permute((2, 1)), L.Reshape((3, 8)), L.Flatten(), L.RepeatVector(2),
        L.EinsumDense("abc,cd->abd", output_shape=(None, 5), **K), L.Identity(), L.Flatten()),
    "merging_add_concatenate": lambda: _two_inputs(lambda xs: L.Concatenate()([L.Add()(xs), L.Subtract()(xs)])),
    "merging_multiply_average_dot": lambda: _two_inputs(
        lambda xs: L.Concatenate()([L.Multiply()(xs), L.Average()(xs), L.Dot(axes=1)(xs), L.Maximum()(xs),
                                    L.Minimum()(xs)])),
}


def _randomize(model, seed):
    """Weights away from their initial values (biases and batch statistics non-zero)."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        shape, dtype = tuple(v.shape), np.dtype(v.dtype)
        if "variance" in v.path:
            v.assign(rng.uniform(0.5, 1.5, shape).astype(dtype))
        elif np.issubdtype(dtype, np.floating):
            v.assign((np.asarray(v.value) + 0.2 * rng.normal(size=shape)).astype(dtype))


def _inputs(session, batch, seed):
    rng = np.random.default_rng(seed)
    feed = {}
    for arg in session.get_inputs():
        shape = [batch if not isinstance(d, int) else d for d in arg.shape]
        if arg.type == "tensor(int32)":
            feed[arg.name] = rng.integers(0, 10, shape).astype("int32")
            feed[arg.name][:, -2:] = 0  # padding, masked by mask_zero
        else:
            feed[arg.name] = rng.normal(size=shape).astype("float32")
    return feed


@pytest.mark.parametrize("name", list(MODELS))
def test_layer_family_matches_predict(name, tmp_path):
    lm.random.set_seed(7)
    model = MODELS[name]()
    _randomize(model, seed=len(name))
    path = tmp_path / "model.onnx"
    model.export(path, format="onnx", verbose=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert all(isinstance(arg.shape[0], str) for arg in session.get_inputs())  # the batch axis is free
    feed = _inputs(session, 5, seed=len(name))
    x = list(feed.values())
    expected = model.predict(x if len(x) > 1 else x[0], verbose=0)
    for batch in (1, 5):
        (got,) = session.run(None, {key: value[:batch] for key, value in feed.items()})
        np.testing.assert_allclose(got, expected[:batch], rtol=1e-5, atol=1e-5, err_msg=f"{name}, batch {batch}")


class HighProduct(lm.Layer):
    """Uses ``lax.mulhi``, which jax2onnx has no rule for."""

    def call(self, x):
        return jax.lax.mulhi((x * 1e4).astype(jnp.int32), jnp.int32(3 << 20)).astype(x.dtype)


class RawMaxPool(lm.Layer):
    """``lax.reduce_window`` max over NHWC: jax2onnx writes a MaxPool onnxruntime refuses."""

    def call(self, x):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 1, 1, 1), "VALID")


@pytest.mark.parametrize("layer, shape, message", [
    (HighProduct(name="high"), (4,), r"primitive 'mulhi' used by layer 'net/high' \(HighProduct\)"),
    (RawMaxPool(name="raw_pool"), (6, 6, 2), r"onnxruntime cannot run ONNX operator MaxPool \(made from layer "
                                              r"'net/raw_pool' \(RawMaxPool\)\).*Unsupported pooling size"),
])
def test_unsupported_layer_fails_naming_layer_and_operation(layer, shape, message, tmp_path):
    model = lm.Sequential([lm.Input(shape), L.Dense(shape[-1], **K), layer, L.Flatten(), L.Dense(2, **K)], name="net")
    (tmp_path / "model.onnx").write_bytes(b"previous")
    with pytest.raises(NotImplementedError, match=message):
        model.export(tmp_path / "model.onnx", format="onnx")
    assert os.listdir(tmp_path) == ["model.onnx"] and (tmp_path / "model.onnx").read_bytes() == b"previous"


def test_without_jax2onnx_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "jax2onnx", None)
    model = _sequential((3,), L.Dense(2, **K))
    with pytest.raises(ImportError, match=r'pip install "lamina\[onnx\]"'):
        model.export(tmp_path / "m.onnx", format="onnx")


def test_a_file_that_computes_something_else_is_never_written(monkeypatch, tmp_path):
    import jax2onnx

    convert = jax2onnx.to_onnx

    def off_by_one(fn, *args, **kwargs):  # a converter bug, simulated
        return convert(lambda *x: fn(*x) + 1.0, *args, **kwargs)

    monkeypatch.setattr(jax2onnx, "to_onnx", off_by_one)
    model = _sequential((3,), L.Dense(2, **K), name="shifted")
    with pytest.raises(RuntimeError, match="'shifted'.*output 0 differs.*largest difference 1.0.*no file was written"):
        model.export(tmp_path / "m.onnx", format="onnx")
    assert not os.listdir(tmp_path)


def test_resizing_needs_a_fixed_batch_size(tmp_path):
    # jax2onnx converts jax.image.resize only for fully known shapes.
    model = _sequential((8, 8, 3), L.Resizing(4, 5), L.Flatten(), name="resize")
    with pytest.raises(NotImplementedError, match=r"layer 'resize/resizing' \(Resizing\).*fixed batch size"):
        model.export(tmp_path / "m.onnx", format="onnx")
    model.export(tmp_path / "m.onnx", format="onnx", verbose=False,
                 input_signature=jax.ShapeDtypeStruct((2, 8, 8, 3), np.float32))
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype("float32")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
