"""Attention, AdditiveAttention and GroupedQueryAttention against Keras 3 (JAX backend), with
Keras's weights copied in; their training dropout against its formula, errors, a functional
model with masks, and ``.keras`` files both ways."""

import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm
from lamina.layers.masking import get_mask

QUERY = random_input((2, 4, 3), seed=1)
VALUE = random_input((2, 5, 3), seed=2)
KEY = random_input((2, 5, 3), seed=3)
QUERY_MASK = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
VALUE_MASK = np.array([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], bool)

# name -> (lamina class name, config, inputs, masks of the inputs, call kwargs)
ATTENTION_CASES = {
    # masks on query and value, causal, scores: every branch of the dot score
    "Attention-dot-masked-causal-scores": ("Attention", {}, [QUERY, VALUE, KEY], [QUERY_MASK, VALUE_MASK, None],
                                           {"use_causal_mask": True, "return_attention_scores": True}),
    "Attention-concat-scaled": ("Attention", {"use_scale": True, "score_mode": "concat", "dropout": 0.3},
                                [QUERY, VALUE], [None, VALUE_MASK], {}),
    "AdditiveAttention-masked-key": ("AdditiveAttention", {}, [QUERY, VALUE, KEY], [QUERY_MASK, VALUE_MASK, None],
                                     {"return_attention_scores": True}),
}


@pytest.mark.parametrize("case", list(ATTENTION_CASES))
def test_attention_layers_pass_the_checker(keras, case):
    name, config, inputs, masks, call_kwargs = ATTENTION_CASES[case]
    layer, outputs = check_layer(lambda: getattr(lm.layers, name)(**config),
                                 lambda k: getattr(k.layers, name)(**config), inputs=inputs,
                                 input_masks={0: masks}, call_kwargs=call_kwargs, keras=keras, shaped_outputs=1)
    expected_weights = {"Attention": ["scale", "concat_score_weight"] if config else [],
                        "AdditiveAttention": ["scale"]}[name]
    assert [w.name for w in layer.weights] == expected_weights


GQA_QUERY = random_input((2, 4, 8), seed=4)
GQA_VALUE = random_input((2, 5, 6), seed=5)
GQA_CASES = {
    # (the fused kernel with is_causal: test_grouped_query_attention_keras_files_both_ways)
    # the explicit softmax (dropout at inference, scores) with the masks of query and value, a
    # sliding window, a gate, no bias, and one key/value head for all query heads
    "cross-masked-window-gate-scores": (
        {"head_dim": 2, "num_query_heads": 4, "num_key_value_heads": 1, "use_gate": True, "use_bias": False,
         "dropout": 0.3, "sliding_window": 3},
        {"value": GQA_VALUE, "return_attention_scores": True}, {0: QUERY_MASK, "value": VALUE_MASK}),
}


@pytest.mark.parametrize("case", list(GQA_CASES))
def test_grouped_query_attention_passes_the_checker(keras, case):
    config, call_kwargs, masks = GQA_CASES[case]
    # (Keras's scores carry the mask its internal Softmax got: only the output's mask is compared.)
    layer, _ = check_layer(lambda: lm.layers.GroupedQueryAttention(**config),
                           lambda k: k.layers.GroupQueryAttention(**config), inputs=GQA_QUERY,
                           call_kwargs=call_kwargs, input_masks=masks, keras=keras, grad_rtol=1e-4,
                           shaped_outputs=1, masked_outputs=[0])
    names = [w.path.split("/", 1)[1] for w in layer.weights]
    gate = ["_gate_dense/kernel"] if config.get("use_gate") else []
    kernels = ["_query_dense/kernel", "_key_dense/kernel", *gate, "_value_dense/kernel", "_output_dense/kernel"]
    assert [n for n in names if n.endswith("kernel")] == kernels  # Keras's order and attribute names


def test_group_query_attention_is_keras_s_alias():
    assert lm.layers.GroupQueryAttention is lm.layers.GroupedQueryAttention
    layer = lm.layers.deserialize({"class_name": "GroupQueryAttention",
                                   "config": {"head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 1}})
    assert type(layer) is lm.layers.GroupedQueryAttention


# --- dropout in training --------------------------------------------------------------------------

def test_attention_dropout_drops_weights_in_training_only():
    # value = identity: each output row is that query's (dropped) attention weights.
    rate, tv = 0.5, 64
    query = jnp.asarray(random_input((4, 8, 3), seed=6))
    value = jnp.broadcast_to(jnp.eye(tv), (4, tv, tv))
    key = jnp.asarray(random_input((4, tv, 3), seed=7))
    layer = lm.layers.Attention(dropout=rate, seed=3)
    inference, weights = layer([query, value, key], return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(inference), np.asarray(weights), rtol=1e-6, atol=1e-7)
    first = np.asarray(layer([query, value, key], training=True))
    second = np.asarray(layer([query, value, key], training=True))
    kept = first != 0
    np.testing.assert_allclose(first[kept], np.asarray(weights)[kept] / (1 - rate), rtol=1e-5)
    assert abs(kept.mean() - (1 - rate)) < 0.03  # 2,048 draws
    assert (first != second).any()  # a fresh draw each call


def test_grouped_query_attention_dropout_is_fresh_in_training_and_absent_at_inference():
    config = {**GQA_CASES["cross-masked-window-gate-scores"][0], "dropout": 0.5, "seed": 1}
    layer = lm.layers.GroupedQueryAttention(**config)
    x = jnp.asarray(GQA_QUERY)
    inference = layer(x, x)
    np.testing.assert_array_equal(np.asarray(layer(x, x)), np.asarray(inference))
    first, second = layer(x, x, training=True), layer(x, x, training=True)
    assert not np.allclose(first, inference) and not np.allclose(first, second)


# --- errors -------------------------------------------------------------------------------------

def test_bad_inputs_and_arguments_are_refused_naming_the_layer():
    with pytest.raises(ValueError, match=r"Attention 'att': must be called on a list \[query, value\]"):
        lm.layers.Attention(name="att")(jnp.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="'att2': expected a list of 2 or 3 input"):
        lm.layers.Attention(name="att2")([jnp.ones((2, 3, 4))] * 4)
    with pytest.raises(ValueError, match="'add': query and key must have the same last dimension"):
        lm.layers.AdditiveAttention(name="add")([jnp.ones((2, 3, 4)), jnp.ones((2, 5, 3))])
    with pytest.raises(ValueError, match="score_mode must be one of"):
        lm.layers.Attention(score_mode="general")
    with pytest.raises(ValueError, match="'gqa': num_query_heads must be divisible by num_key_value_heads"):
        lm.layers.GroupedQueryAttention(2, 3, 2, name="gqa")
    with pytest.raises(ValueError, match="dropout is not supported with flash_attention"):
        lm.layers.GroupedQueryAttention(2, 2, 1, dropout=0.1, flash_attention=True)
    with pytest.raises(ValueError, match=r"'gqa3': query must have rank 3 .* got shape \(2, 4\)"):
        lm.layers.GroupedQueryAttention(2, 2, 1, name="gqa3")(jnp.ones((2, 4)), jnp.ones((2, 4)))


# --- in models -----------------------------------------------------------------------------------

def test_functional_attention_passes_the_query_mask_and_trains():
    tokens = lm.Input((6,), dtype="int32")
    embedded = lm.layers.Embedding(10, 4, mask_zero=True)(tokens)
    attended = lm.layers.Attention(use_scale=True)([embedded, embedded], use_causal_mask=True)
    assert attended._keras_mask is not None  # the query's (the embedding's) mask
    pooled = lm.layers.GlobalAveragePooling1D()(attended)
    model = lm.Model(tokens, lm.layers.Dense(1)(pooled))
    x = np.array([[1, 2, 3, 0, 0, 0], [4, 5, 6, 7, 8, 9]] * 4, "int32")
    attention = model.layers[2]
    out = attention([jnp.ones((1, 2, 4)), jnp.ones((1, 2, 4))], mask=[jnp.array([[True, False]]), None])
    np.testing.assert_array_equal(np.asarray(get_mask(out)), [[True, False]])
    assert not np.asarray(out[0, 1]).any()  # a masked query position gives zeros
    model.compile("sgd", "mse")
    history = model.fit(x, np.ones((8, 1), "float32"), epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_grouped_query_attention_keras_files_both_ways(keras, tmp_path):
    # Causal masking alone takes the fused kernel. (The checker's configuration and shapes: the
    # weights' initializers compile once.)
    x = GQA_QUERY
    inputs = lm.Input((4, 8))
    config = GQA_CASES["cross-masked-window-gate-scores"][0]
    outputs = lm.layers.GroupedQueryAttention(**{**config, "sliding_window": None})(inputs, inputs,
                                                                                   use_causal_mask=True)
    model = lm.Model(inputs, outputs)
    model.save(str(tmp_path / "ours.keras"))
    theirs = keras.saving.load_model(str(tmp_path / "ours.keras"))
    np.testing.assert_allclose(theirs.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    theirs.save(str(tmp_path / "theirs.keras"))
    back = lm.load_model(str(tmp_path / "theirs.keras"))
    assert type(back.layers[-1]) is lm.layers.GroupedQueryAttention
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_attention_under_mixed_precision_computes_in_bfloat16_with_a_float32_softmax():
    layer = lm.layers.AdditiveAttention(dtype="mixed_bfloat16")
    reference = lm.layers.AdditiveAttention()
    inputs = [jnp.asarray(QUERY), jnp.asarray(VALUE)]
    output, scores = layer(inputs, return_attention_scores=True)
    reference(inputs)
    reference.set_weights(layer.get_weights())
    assert output.dtype == jnp.bfloat16 and layer.scale.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(output, np.float32), np.asarray(reference(inputs)), atol=3e-2)
    np.testing.assert_allclose(np.asarray(scores, np.float32).sum(-1), 1.0, atol=1e-2)
