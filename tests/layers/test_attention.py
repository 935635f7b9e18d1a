"""MultiHeadAttention against Keras 3 (JAX backend), with Keras's weights copied in.

``check_layer`` passes ``value`` (and ``key``, masks...) through ``call_kwargs``: the gradient
then flows into the query only, and into every weight. Attention scores, input masks and
dropout are compared directly.
"""

import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm
from lamina.layers.attention import MultiHeadAttention
from lamina.layers.masking import get_mask, set_mask

RTOL, ATOL = 1e-5, 1e-6
QUERY = random_input((2, 4, 6), seed=1)  # batch, target length, query dim
VALUE = random_input((2, 5, 7), seed=2)  # batch, source length, value dim
KEY = random_input((2, 5, 3), seed=3)


def attention_mask():
    mask = np.random.default_rng(0).random((2, 4, 5)) > 0.3
    mask[:, :, 0] = True  # every query sees at least one key
    return mask


def paired(keras, query, value, key=None, **config):
    theirs = keras.layers.MultiHeadAttention(**config)
    # (with scores requested Keras takes its softmax path, which accepts value_dim != key_dim)
    theirs(query, value, key=key, return_attention_scores=True)
    ours = MultiHeadAttention(**config)
    ours(jnp.asarray(query), jnp.asarray(value), key=None if key is None else jnp.asarray(key))
    ours.set_weights(theirs.get_weights())
    return ours, theirs


def assert_all_close(ours, theirs):
    ours = ours if isinstance(ours, (list, tuple)) else [ours]
    theirs = theirs if isinstance(theirs, (list, tuple)) else [theirs]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL)


# --- check_layer ----------------------------------------------------------------------------------

CASES = {
    "self-attention-causal": ({"num_heads": 2, "key_dim": 3}, {"value": QUERY, "use_causal_mask": True}),
    "cross-attention-key-mask-no-bias": ({"num_heads": 2, "key_dim": 3, "output_shape": 5, "use_bias": False},
                                         {"value": VALUE, "key": KEY, "attention_mask": attention_mask()}),
    # dropout > 0 (inference here) takes the explicit-softmax path; value_dim != key_dim too.
    "softmax-path-gate-causal-mask": ({"num_heads": 2, "key_dim": 3, "value_dim": 2, "dropout": 0.2, "use_gate": True},
                                      {"value": VALUE, "attention_mask": attention_mask(), "use_causal_mask": True}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_multi_head_attention_matches_keras(case):
    config, call_kwargs = CASES[case]
    check_layer(lambda: MultiHeadAttention(**config), lambda k: k.layers.MultiHeadAttention(**config),
                inputs=QUERY, call_kwargs=call_kwargs, grad_rtol=1e-4)


def test_attention_over_two_axes_matches_keras(keras):
    x = random_input((2, 3, 2, 4), seed=4)
    ours, theirs = paired(keras, x, x, num_heads=2, key_dim=3, attention_axes=(1, 2))
    output, scores = ours(jnp.asarray(x), jnp.asarray(x), return_attention_scores=True)
    assert scores.shape == (2, 2, 3, 2, 3, 2)  # batch, heads, query axes, key axes
    assert_all_close([output, scores], theirs(x, x, return_attention_scores=True))
    assert_all_close(ours(jnp.asarray(x), jnp.asarray(x)), theirs(x, x))


# --- scores, masks --------------------------------------------------------------------------------

def test_return_attention_scores_matches_keras(keras):
    ours, theirs = paired(keras, QUERY, VALUE, num_heads=2, key_dim=3)
    value_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)
    kwargs = dict(value_mask=value_mask, use_causal_mask=True, return_attention_scores=True)
    output, scores = ours(jnp.asarray(QUERY), jnp.asarray(VALUE), **kwargs)
    assert_all_close([output, scores], theirs(QUERY, VALUE, **kwargs))
    assert scores.shape == (2, 2, 4, 5)
    np.testing.assert_allclose(np.asarray(scores.sum(-1)), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(scores[1, :, :, 3:]), 0.0)  # masked values get no weight
    assert np.all(np.triu(np.asarray(scores[0, 0]), k=1) == 0)  # causal


def test_weights_follow_keras_order_and_shapes(keras):
    ours, theirs = paired(keras, QUERY, VALUE, KEY, num_heads=2, key_dim=3, value_dim=4, output_shape=(2, 5))
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    assert [w.path.split("/")[-2:] for w in ours.weights][::2] == [
        ["_query_dense", "kernel"], ["_key_dense", "kernel"], ["_value_dense", "kernel"], ["_output_dense", "kernel"]]
    assert [layer.name for layer in (ours.query_dense, ours.key_dense, ours.value_dense, ours.output_dense)] == [
        "query", "key", "value", "attention_output"]
    assert ours.compute_output_shape((None, 4, 6), (None, 5, 7)) == (None, 4, 2, 5)
    kwargs = dict(return_attention_scores=True)
    assert_all_close(ours(jnp.asarray(QUERY), jnp.asarray(VALUE), key=jnp.asarray(KEY), **kwargs),
                     theirs(QUERY, VALUE, key=KEY, **kwargs))


def test_input_masks_match_keras_and_propagate(keras):
    from keras.src.backend import set_keras_mask

    query_mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], bool)
    value_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
    key_mask = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], bool)
    ours, theirs = paired(keras, QUERY, VALUE, KEY, num_heads=2, key_dim=3)

    # Keras reads the query's mask only from the query tensor (an explicit query_mask is
    # overwritten), so it gets the masks as Embedding(mask_zero=True) would attach them.
    k_query, k_value, k_key = (keras.ops.convert_to_tensor(a) for a in (QUERY, VALUE, KEY))
    for tensor, mask in ((k_query, query_mask), (k_value, value_mask), (k_key, key_mask)):
        set_keras_mask(tensor, keras.ops.convert_to_tensor(mask))
    expected = theirs(k_query, k_value, key=k_key)

    # lamina: explicit masks...
    explicit = ours(jnp.asarray(QUERY), jnp.asarray(VALUE), key=jnp.asarray(KEY), query_mask=query_mask,
                    value_mask=value_mask, key_mask=key_mask)
    assert_all_close(explicit, expected)
    # ... or the masks registered on the inputs (what mask-producing layers leave behind).
    query, value, key = jnp.asarray(QUERY), jnp.asarray(VALUE), jnp.asarray(KEY)
    for tensor, mask in ((query, query_mask), (value, value_mask), (key, key_mask)):
        set_mask(tensor, jnp.asarray(mask))
    output = ours(query, value, key=key)
    assert_all_close(output, expected)
    np.testing.assert_array_equal(np.asarray(get_mask(output)), query_mask)  # the query's mask goes on


def test_dropout_acts_in_training_only():
    layer = MultiHeadAttention(2, 3, dropout=0.5, seed=7)
    query = jnp.asarray(QUERY)
    inference = layer(query, query)
    np.testing.assert_array_equal(np.asarray(layer(query, query, training=False)), np.asarray(inference))
    _, scores = layer(query, query, training=True, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(scores.sum(-1)), 1.0, rtol=1e-5)  # scores are before dropout
    step = lm.jit(lambda q: layer(q, q, training=True))
    first, second = step(query), step(query)
    assert not np.allclose(first, inference) and not np.allclose(first, second)


def test_explicit_build_arguments_and_errors():
    layer = MultiHeadAttention(2, 3)
    layer.build((None, 4, 6), (None, 5, 7))
    assert [w.shape for w in layer.weights] == [(6, 2, 3), (2, 3), (7, 2, 3), (2, 3), (7, 2, 3), (2, 3),
                                                (2, 3, 6), (6,)]
    config = layer.get_config()
    assert config["value_dim"] == 3 and config["attention_axes"] is None
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadAttention(0, 3)
    with pytest.raises(ValueError, match="key_dim"):
        MultiHeadAttention(2, None)
    with pytest.raises(ValueError, match="rank >= 3"):
        MultiHeadAttention(2, 3)(jnp.ones((2, 6)), jnp.ones((2, 6)))


# --- check_layer with several inputs, masks attached to them and tuple outputs ------------------

QUERY_MASK = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], bool)
VALUE_MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
KEY_MASK = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], bool)


def test_attached_masks_of_query_value_and_key_go_through_the_checker(keras):
    # query and value positional, key by keyword, each with the mask Embedding(mask_zero=True)
    # would leave on it: Layer.__call__ passes them as query_mask/value_mask/key_mask (as
    # Keras), and the output carries the query's mask (compared with Keras's by the checker).
    _, output = check_layer(lambda: MultiHeadAttention(2, 3), lambda k: k.layers.MultiHeadAttention(2, 3),
                            inputs=QUERY, args=[VALUE], call_kwargs={"key": KEY},
                            input_masks={0: QUERY_MASK, 1: VALUE_MASK, "key": KEY_MASK}, keras=keras, grad_rtol=1e-4)
    np.testing.assert_array_equal(np.asarray(get_mask(output)), QUERY_MASK)


@pytest.mark.parametrize("masks", [{}, {0: QUERY_MASK}], ids=["unmasked", "query-mask"])
def test_self_attention_causal_with_the_query_mask_goes_through_the_checker(keras, masks):
    check_layer(lambda: MultiHeadAttention(2, 3, use_gate=True),
                lambda k: k.layers.MultiHeadAttention(2, 3, use_gate=True),
                inputs=QUERY, args=[QUERY], call_kwargs={"use_causal_mask": True}, input_masks=masks,
                keras=keras, grad_rtol=1e-4)


@pytest.mark.parametrize("call_kwargs, masks", [
    ({"value_mask": VALUE_MASK, "use_causal_mask": True}, {}),
    ({"attention_mask": attention_mask()}, {0: QUERY_MASK}),
], ids=["value-mask-causal", "attention-mask-query-mask"])
def test_return_attention_scores_goes_through_the_checker(keras, call_kwargs, masks):
    # Two outputs: both compared with Keras, with gradients through both. compute_output_shape
    # (as Keras's) describes the attention output only. Keras leaves the mask of its internal
    # softmax on the scores, an artefact lamina does not copy, so only the output's mask is
    # compared.
    _, (output, scores) = check_layer(
        lambda: MultiHeadAttention(2, 3), lambda k: k.layers.MultiHeadAttention(2, 3), inputs=QUERY, args=[VALUE],
        call_kwargs={**call_kwargs, "return_attention_scores": True}, input_masks=masks, keras=keras,
        shaped_outputs=1, masked_outputs=(0,), grad_rtol=1e-4)
    assert scores.shape == (2, 2, 4, 5)


def test_attention_over_two_axes_with_scores_goes_through_the_checker(keras):
    x = random_input((2, 3, 2, 4), seed=4)
    config = dict(num_heads=2, key_dim=3, attention_axes=(1, 2))
    check_layer(lambda: MultiHeadAttention(**config), lambda k: k.layers.MultiHeadAttention(**config), inputs=x,
                args=[x], call_kwargs={"return_attention_scores": True}, keras=keras, shaped_outputs=1,
                grad_rtol=1e-4)
