"""``ReversibleEmbedding`` against Keras 3: the forward lookup with its mask, the tied reverse
projection (gradients reach the shared table), the untied one with a soft cap, dtypes, Keras
files with the layer used both ways, and errors."""

import inspect

import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm
from lamina.layers import ReversibleEmbedding

IDS = np.array([[3, 1, 0, 0, 7], [9, 0, 2, 5, 5]], "int32")


@pytest.mark.parametrize("config, call", [
    (dict(mask_zero=True), dict(inputs=IDS)),
    (dict(logit_soft_cap=2.0), dict(input_shape=(2, 5, 4), call_kwargs={"reverse": True}, check_output_shape=False)),
], ids=["forward-masked", "reverse-tied-capped"])
def test_reversible_embedding_matches_keras(keras, config, call):
    layer, outputs = check_layer(lambda: ReversibleEmbedding(10, 4, **config),
                                 lambda k: k.layers.ReversibleEmbedding(10, 4, **config), keras=keras, **call)
    if call.get("call_kwargs"):  # the checker asks compute_output_shape about forward calls only
        assert layer.compute_output_shape((None, 5, 4), reverse=True) == (None, 5, 10) == (None, *outputs.shape[1:])


def test_untied_reverse_projection_is_its_own_weight_and_matches_the_formula():
    layer = ReversibleEmbedding(10, 4, tie_weights=False, logit_soft_cap=3.0)
    hidden = layer(IDS)
    assert [(w.name, w.shape, w.trainable) for w in layer.weights] == [
        ("embeddings", (10, 4), True), ("reverse_embeddings", (4, 10), True)]
    table, reverse = (np.asarray(w.value) for w in layer.weights)
    np.testing.assert_allclose(np.asarray(hidden), table[IDS], rtol=1e-6)
    x = random_input((2, 5, 4))
    np.testing.assert_allclose(np.asarray(layer(x, reverse=True)), np.tanh(x @ reverse / 3.0) * 3.0, rtol=1e-5,
                               atol=1e-6)
    assert lm.layers.deserialize(lm.layers.serialize(layer)).get_config() == layer.get_config()


def test_reverse_dtype_under_a_mixed_policy():
    layer = ReversibleEmbedding(10, 4, dtype="mixed_bfloat16", reverse_dtype="float32")
    hidden = layer(IDS)
    assert hidden.dtype == jnp.bfloat16 and layer.embeddings.dtype == jnp.float32
    logits = layer(hidden, reverse=True)
    assert logits.dtype == jnp.float32
    # Inside call the table reads in the compute dtype (bfloat16), then goes to float32, as in Keras.
    table = np.asarray(layer.embeddings.value.astype(jnp.bfloat16), np.float32)
    expected = np.asarray(hidden, np.float32) @ table.T
    np.testing.assert_allclose(np.asarray(logits), expected, rtol=1e-5, atol=1e-6)
    assert ReversibleEmbedding(10, 4, dtype="mixed_bfloat16")(hidden, reverse=True).dtype == jnp.bfloat16


def test_arguments_and_config_keys_are_keras_s(keras):
    mine = list(inspect.signature(ReversibleEmbedding.__init__).parameters)
    theirs = list(inspect.signature(keras.layers.ReversibleEmbedding.__init__).parameters)
    assert mine == theirs
    reference = keras.layers.ReversibleEmbedding(10, 4).get_config()
    # quantization_config: Keras's quantization, which lamina does not have (dropped on loading).
    assert set(ReversibleEmbedding(10, 4).get_config()) == set(reference) - {"quantization_config"}


def test_a_tied_language_model_trains_and_moves_through_keras_files(keras, tmp_path):
    emb = ReversibleEmbedding(12, 6, mask_zero=True)
    ids = lm.Input((None,), dtype="int32")
    logits = emb(lm.layers.Dense(6, activation="tanh")(emb(ids)), reverse=True)
    model = lm.Model(ids, logits)
    model.compile(optimizer="adam", loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).integers(1, 12, size=(16, 5)).astype("int32")
    before = np.asarray(emb.embeddings.value)
    history = model.fit(x, np.roll(x, -1, axis=1), epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.allclose(before, np.asarray(emb.embeddings.value))
    assert len(model.weights) == 3  # the table once, the Dense layer's two

    path = str(tmp_path / "tied.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)


def test_bad_arguments_and_inputs_name_the_layer():
    with pytest.raises(ValueError, match=r"ReversibleEmbedding 're'.*reverse_dtype.*'floaty'"):
        ReversibleEmbedding(10, 4, reverse_dtype="floaty", name="re")
    with pytest.raises(ValueError, match=r"'re2'.*logit_soft_cap.*-1"):
        ReversibleEmbedding(10, 4, logit_soft_cap=-1, name="re2")
    layer = ReversibleEmbedding(10, 4, name="re3")
    with pytest.raises(ValueError, match=r"'re3'.*output_dim=4.*\(2, 3\)"):
        layer(np.ones((2, 3), "float32"), reverse=True)
