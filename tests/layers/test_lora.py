"""LoRA on Dense, EinsumDense and Embedding (``enable_lora``), against Keras 3 with the same weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

RNG = np.random.default_rng(0)


def _random_weights(layer):
    """Nonzero values for every weight (LoRA's ``b`` starts at zero, which would hide the product)."""
    return [RNG.normal(size=tuple(w.shape)).astype("float32") for w in layer.weights]


CASES = [  # (name, maker given lm or keras, build shape, input, enable_lora kwargs)
    ("dense", lambda m: m.layers.Dense(3, activation="tanh"), (None, 4), RNG.normal(size=(5, 4)), {"lora_alpha": 6}),
    ("einsum_2d", lambda m: m.layers.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c"), (None, 4),
     RNG.normal(size=(5, 4)), {}),
    ("einsum_3d", lambda m: m.layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 3), bias_axes="e"),
     (None, 6, 4), RNG.normal(size=(2, 6, 4)), {"lora_alpha": 1}),
    ("embedding", lambda m: m.layers.Embedding(7, 3), None, np.array([[1, 0, 6], [2, 2, 5]]), {"lora_alpha": 4}),
]


def _pair(keras, make, build_shape, enable):
    ours, theirs = make(lm), make(keras)
    for layer in (ours, theirs):
        layer.build(build_shape) if build_shape else layer.build()
        layer.enable_lora(2, **enable)
    values = _random_weights(theirs)
    theirs.set_weights(values)
    ours.set_weights(values)
    return ours, theirs


@pytest.mark.parametrize("name,make,build_shape,x,enable", CASES, ids=[c[0] for c in CASES])
def test_outputs_gradients_and_weight_order_match_keras(keras, name, make, build_shape, x, enable):
    ours, theirs = _pair(keras, make, build_shape, enable)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [w.name for w in ours.trainable_weights] == [w.name for w in theirs.trainable_weights]
    assert [w.name for w in ours.non_trainable_weights] == [w.name for w in theirs.non_trainable_weights]
    assert (ours.lora_rank, ours.lora_alpha) == (theirs.lora_rank, theirs.lora_alpha)
    x = x.astype("int32" if name == "embedding" else "float32")
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-5)

    def loss(trainable, layer):
        out, _ = layer.stateless_call(trainable, [v.value for v in layer.non_trainable_variables], x)
        return jnp.sum(out ** 2)

    ours_grads = jax.jit(jax.grad(loss), static_argnums=1)([v.value for v in ours.trainable_variables], ours)
    theirs_grads = jax.jit(jax.grad(loss), static_argnums=1)([v.value for v in theirs.trainable_variables], theirs)
    for a, b in zip(ours_grads, theirs_grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_enabling_keeps_outputs_and_factor_shapes():
    layer = lm.layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 3))
    x = jnp.asarray(RNG.normal(size=(2, 6, 4)), "float32")
    before = layer(x)
    layer.enable_lora(3)
    np.testing.assert_array_equal(layer(x), before)  # b starts at zero
    assert tuple(layer.lora_kernel_a.shape) == (4, 2, 3) and tuple(layer.lora_kernel_b.shape) == (3, 3)
    assert not layer.kernel.trainable and layer.lora_kernel_a.dtype == jnp.float32


def test_fit_trains_only_the_factors_as_keras(keras):
    x = RNG.normal(size=(8, 4)).astype("float32")
    y = RNG.normal(size=(8, 2)).astype("float32")
    models = []
    for m in (lm, keras):
        model = m.Sequential([m.Input((4,)), m.layers.Dense(2)])
        model.layers[0].enable_lora(2, lora_alpha=4)
        models.append(model)
    values = _random_weights(models[1])
    for model, m in zip(models, (lm, keras)):
        model.set_weights(values)
        model.compile(optimizer=m.optimizers.SGD(0.1), loss="mse")
        model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    ours, theirs = models
    np.testing.assert_array_equal(ours.layers[0].kernel.numpy(), values[0])  # frozen
    assert not np.allclose(ours.layers[0].lora_kernel_b.numpy(), values[3])
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_config_builds_lora_and_round_trips():
    layer = lm.layers.Dense(3, lora_rank=2, lora_alpha=5)
    layer.build((None, 4))
    assert layer.lora_enabled and [w.name for w in layer.trainable_weights] == ["bias", "lora_kernel_a",
                                                                              "lora_kernel_b"]
    config = layer.get_config()
    assert (config["lora_rank"], config["lora_alpha"]) == (2, 5)
    twin = lm.layers.Dense.from_config(config)
    twin.build((None, 4))
    assert (twin.lora_rank, twin.lora_alpha, twin.lora_enabled) == (2, 5, True)
    assert "lora_rank" not in lm.layers.Dense(3).get_config()
    enabled = lm.layers.Embedding(5, 2)
    enabled.build()
    enabled.enable_lora(3)
    assert (enabled.get_config()["lora_rank"], enabled.get_config()["lora_alpha"]) == (3, 3)


def _lora_model(m, seed_values=None):
    model = m.Sequential([m.Input((3,), dtype="int32"), m.layers.Embedding(6, 4, name="emb"),
                          m.layers.Dense(2, name="out")])
    model.layers[0].enable_lora(2)
    model.layers[1].enable_lora(2, lora_alpha=3)
    if seed_values is not None:
        model.set_weights(seed_values)
    return model


IDS = np.array([[1, 5, 0], [3, 3, 2]], dtype="int32")


def test_lamina_file_keeps_factors(tmp_path):
    model = _lora_model(lm)
    model.set_weights(_random_weights(model))
    model.save(tmp_path / "m.lamina")
    loaded = lm.saving.load_model(tmp_path / "m.lamina")
    assert loaded.layers[1].lora_enabled and loaded.layers[1].lora_alpha == 3
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not loaded.layers[1].kernel.trainable


def test_keras_files_merge_the_product_both_ways(keras, tmp_path):
    theirs = _lora_model(keras)
    values = _random_weights(theirs)
    theirs.set_weights(values)
    ours = _lora_model(lm, values)
    expected = np.asarray(theirs(IDS))
    np.testing.assert_allclose(ours(IDS), expected, rtol=1e-5, atol=1e-5)

    store = {}
    ours.layers[1].save_own_variables(store)
    np.testing.assert_allclose(store["0"], values[3] + 1.5 * values[5] @ values[6], rtol=1e-5, atol=1e-5)
    assert sorted(store) == ["0", "1"]

    theirs.save(tmp_path / "keras.keras")
    from_keras = lm.saving.load_model(tmp_path / "keras.keras")
    assert from_keras.layers[1].lora_enabled
    assert not from_keras.layers[1].lora_kernel_b.numpy().any()  # Keras's load zeroes the factors
    np.testing.assert_allclose(from_keras(IDS), expected, rtol=1e-5, atol=1e-5)

    ours.save(tmp_path / "lamina.keras")
    in_keras = keras.saving.load_model(tmp_path / "lamina.keras")
    np.testing.assert_allclose(in_keras(IDS), expected, rtol=1e-5, atol=1e-5)
    ours.save_weights(tmp_path / "w.weights.h5")
    plain = lm.Sequential([lm.Input((3,), dtype="int32"), lm.layers.Embedding(6, 4), lm.layers.Dense(2)])
    plain.load_weights(tmp_path / "w.weights.h5")  # merged kernels: a model without LoRA reads them
    np.testing.assert_allclose(plain(IDS), expected, rtol=1e-5, atol=1e-5)


def test_errors_name_the_layer():
    unbuilt = lm.layers.Dense(2, name="head")
    with pytest.raises(ValueError, match="Dense 'head'.*isn't yet built"):
        unbuilt.enable_lora(2)
    unbuilt.build((None, 3))
    for rank in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="'head'.*positive integer"):
            unbuilt.enable_lora(rank)
    unbuilt.enable_lora(2)
    with pytest.raises(ValueError, match="'head'.*already enabled"):
        unbuilt.enable_lora(2)
    with pytest.raises(ValueError, match="positive integer"):
        lm.layers.Embedding(3, 2, lora_rank=0)
    constrained = lm.layers.Embedding(3, 2, embeddings_constraint="non_neg", name="table")
    constrained.build()
    with pytest.raises(ValueError, match="'table'.*incompatible with embeddings constraints"):
        constrained.enable_lora(1)



QUANTIZED = [  # (name, maker given lm or keras, build shape, input, mode)
    ("dense_int8", lambda m: m.layers.Dense(3, activation="relu"), (None, 4), RNG.normal(size=(5, 4)), "int8"),
    ("einsum_int4", lambda m: m.layers.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c"), (None, 4),
     RNG.normal(size=(5, 4)), "int4"),
    ("embedding_int8", lambda m: m.layers.Embedding(7, 3), None, np.array([[1, 0, 6], [2, 2, 5]]), "int8"),
]


@pytest.mark.parametrize("name,make,build_shape,x,mode", QUANTIZED, ids=[c[0] for c in QUANTIZED])
def test_lora_on_a_quantized_layer_matches_keras(keras, name, make, build_shape, x, mode):
    ours, theirs = make(lm), make(keras)
    for layer in (ours, theirs):
        layer.build(build_shape) if build_shape else layer.build()
    theirs.set_weights(_random_weights(theirs))
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    for layer in (ours, theirs):
        layer.quantize(mode)
        layer.enable_lora(2, lora_alpha=3)
    by_name = {w.name: np.asarray(w.value) for w in theirs.weights}
    by_name.update({n: RNG.normal(size=by_name[n].shape).astype("float32") for n in by_name if n.startswith("lora")})
    for layer in (ours, theirs):
        for w in layer.weights:
            w.assign(by_name[w.name])
    assert sorted(w.name for w in ours.trainable_weights) == sorted(w.name for w in theirs.trainable_weights)
    x = x.astype("int32" if name.startswith("embedding") else "float32")
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-4, atol=1e-4)

    def loss(trainable, layer):
        out, _ = layer.stateless_call(trainable, [v.value for v in layer.non_trainable_variables], x)
        return jnp.sum(out ** 2)

    def grads(layer):
        got = jax.jit(jax.grad(loss), static_argnums=1)([v.value for v in layer.trainable_variables], layer)
        return {v.name: g for v, g in zip(layer.trainable_variables, got)}

    ours_grads, theirs_grads = grads(ours), grads(theirs)
    for key, value in theirs_grads.items():
        np.testing.assert_allclose(ours_grads[key], value, rtol=1e-3, atol=1e-4)
    ours_store, theirs_store = {}, {}  # the merged kernel quantized again, as Keras writes it
    ours.save_own_variables(ours_store)
    theirs.save_own_variables(theirs_store)
    assert sorted(ours_store) == sorted(theirs_store)
    for key, value in theirs_store.items():
        np.testing.assert_allclose(np.asarray(ours_store[key], "float32"), np.asarray(value, "float32"),
                                   rtol=1e-5, atol=1e-5, err_msg=key)


def test_quantizing_after_lora_keeps_it_as_keras(keras):
    x = RNG.normal(size=(5, 4)).astype("float32")
    ours, theirs = _pair(keras, lambda m: m.layers.Dense(3), (None, 4), {"lora_alpha": 3})
    for layer in (ours, theirs):
        layer.quantize("int8")  # the base kernel only; the factors stay float32 and trainable
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_a_quantized_config_with_lora_builds_lora():
    rebuilt = lm.layers.Embedding(4, 2, lora_rank=1, dtype="int8_from_float32")
    rebuilt.build()
    assert rebuilt.lora_enabled and tuple(rebuilt.lora_embeddings_a.shape) == (4, 1)
    assert rebuilt(jnp.array([[1, 3]])).shape == (1, 2, 2)


def test_reversible_embedding_with_lora_reverses_through_the_merged_table(keras, tmp_path):
    """Tied weights: the reverse projection reads the table with LoRA's product, as Keras's;
    lora_rank is a constructor argument, so a Keras file of such a layer loads."""
    ours, theirs = _pair(keras, lambda m: m.layers.ReversibleEmbedding(7, 3), None, {"lora_alpha": 4})
    hidden = RNG.normal(size=(2, 3)).astype("float32")
    np.testing.assert_allclose(ours(hidden, reverse=True), theirs(hidden, reverse=True), rtol=1e-5, atol=1e-5)
    made = lm.layers.ReversibleEmbedding(7, 3, lora_rank=2, name="rev")
    made.build()
    assert made.lora_enabled and made.get_config()["lora_rank"] == 2
    k_model = keras.Sequential([keras.Input((3,), dtype="int32"), keras.layers.ReversibleEmbedding(7, 3, lora_rank=2)])
    k_model.save(tmp_path / "rev.keras")
    ids = np.array([[1, 2, 6]], "int32")
    np.testing.assert_allclose(lm.load_model(tmp_path / "rev.keras")(ids), k_model(ids), rtol=1e-6)
