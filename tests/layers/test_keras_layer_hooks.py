"""Keras 3's overridable Layer hooks: save_own_variables / load_own_variables (and saving that
honours overrides), get_build_config / build_from_config, compute_output_spec, input_dtype."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm


def _store_shapes(layer):
    store = {}
    layer.save_own_variables(store)
    return {key: tuple(np.shape(value)) for key, value in store.items()}


def test_default_store_has_keras_keys_and_order(keras):
    """Keras stores trainable variables first: BatchNormalization's gamma, beta, then the statistics."""
    ours, theirs = lm.layers.BatchNormalization(), keras.layers.BatchNormalization()
    ours.build((None, 3, 5))
    theirs.build((None, 3, 5))
    ours.gamma.assign(np.arange(5, dtype="float32"))
    assert _store_shapes(ours) == _store_shapes(theirs) == {"0": (5,), "1": (5,), "2": (5,), "3": (5,)}
    store = {}
    ours.save_own_variables(store)
    np.testing.assert_array_equal(store["0"], np.arange(5))
    np.testing.assert_array_equal(store["2"], np.zeros(5))  # moving_mean, after beta
    twin = lm.layers.BatchNormalization()
    twin.build((None, 3, 5))
    twin.load_own_variables({key: np.asarray(value) for key, value in store.items()})
    np.testing.assert_array_equal(twin.gamma.numpy(), np.arange(5))


def test_default_load_checks_keys_and_shapes_before_assigning():
    layer = lm.layers.Dense(2, name="dense_hooks")
    layer.build((None, 3))
    kernel = layer.kernel.numpy()
    with pytest.raises(ValueError, match=r"'dense_hooks'.*\['kernel', 'bias'\].*\['0', '1'\].*\['0', '1', '2'\]"):
        layer.load_own_variables({"0": np.zeros((3, 2)), "1": np.zeros(2), "2": np.zeros(1)})
    with pytest.raises(ValueError, match=r"'dense_hooks/bias' \(key '1'\): expected shape \(2,\), got \(4,\)"):
        layer.load_own_variables({"0": np.zeros((3, 2)), "1": np.zeros(4)})
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel)  # nothing changed


def test_build_config_round_trip_as_keras(keras):
    ours, theirs = lm.layers.Dense(3), keras.layers.Dense(3)
    ours(np.ones((2, 4), "float32"))
    theirs(np.ones((2, 4), "float32"))
    assert ours.get_build_config() == theirs.get_build_config() == {"input_shape": (2, 4)}
    assert lm.layers.Dense(3).get_build_config() is None  # unbuilt
    fresh = lm.layers.Dense(3)
    fresh.build_from_config({"input_shape": [None, 4]})  # as JSON gives it back
    assert fresh.built and fresh.kernel.shape == (4, 3) and fresh.get_build_config() == {"input_shape": (None, 4)}
    merge = lm.layers.Add()
    merge.build_from_config({"input_shape": [[None, 3], [None, 3]]})
    assert merge.built


def test_default_build_config_stays_out_of_serialized_configs():
    layer = lm.layers.Dense(2)
    layer.build((None, 3))
    assert "build_config" not in lm.saving.serialize(layer)


def test_compute_output_spec_and_input_dtype(keras):
    layer = lm.layers.Dense(4, dtype="mixed_bfloat16")
    spec = layer.compute_output_spec(jax.ShapeDtypeStruct((2, 3), jnp.float32))
    assert spec == jax.ShapeDtypeStruct((2, 4), jnp.bfloat16)
    theirs = keras.layers.Dense(4, dtype="mixed_bfloat16")
    their_spec = theirs.compute_output_spec(keras.KerasTensor((2, 3)))
    assert (their_spec.shape, their_spec.dtype) == (spec.shape, str(spec.dtype))
    assert layer.input_dtype == theirs.input_dtype == "bfloat16"
    attention = lm.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    q, v = jax.ShapeDtypeStruct((2, 5, 8), jnp.float32), jax.ShapeDtypeStruct((2, 7, 8), jnp.float32)
    out, scores = attention.compute_output_spec(q, v, return_attention_scores=True)
    assert (out.shape, scores.shape) == ((2, 5, 8), (2, 2, 5, 7))
    assert lm.layers.InputLayer(shape=(3,), dtype="int32").input_dtype == "int32"
    with pytest.raises(ValueError, match="ShapeDtypeStruct"):
        attention.compute_output_spec("not an input")


# -- saving honours save_own_variables / load_own_variables overrides --------------------------


def _lookup_class(lib, jnp_module):
    """The same layer in lamina or Keras: a NumPy lookup table kept as a plain attribute (not a
    variable) and a variable saved under a key of its own, both through the saving hooks."""

    class TableLookup(lib.layers.Layer):
        def __init__(self, size=4, **kwargs):
            super().__init__(**kwargs)
            self.size = size
            self.table = np.zeros((size,), "float32")

        def build(self, input_shape):
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

        def call(self, x):
            return x * self.scale + jnp_module.asarray(self.table)

        def get_config(self):
            return {**super().get_config(), "size": self.size}

        def save_own_variables(self, store):
            store["table"] = self.table
            store["the_scale"] = self.scale

        def load_own_variables(self, store):
            self.table = np.array(store["table"])
            self.scale.assign(store["the_scale"])

    return TableLookup


TableLookup = lm.saving.register_serializable(package="hooks_test")(_lookup_class(lm, jnp))


class Greedy(TableLookup):
    """Asks for a key that no file has."""

    def load_own_variables(self, store):
        super().load_own_variables(store)
        self.extra = store["extra"]


class Forgetful(TableLookup):
    """Leaves the table unread."""

    def load_own_variables(self, store):
        self.scale.assign(store["the_scale"])


def _model(layer_class=TableLookup, names=True):
    model = lm.Sequential([lm.Input((4,)), lm.layers.Dense(4, name="dense" if names else None),
                           layer_class(name="lookup" if names else None)])
    model.layers[1].table = np.array([1.0, 2.0, 3.0, 4.0], "float32")
    model.layers[1].scale.assign(3.0)
    return model


X = np.linspace(-1, 1, 8, dtype="float32").reshape(2, 4)


def test_model_file_saves_the_store_and_loading_calls_load_own_variables(tmp_path):
    model = _model()
    path = tmp_path / "lookup.lamina"
    model.save(path)
    with lm.saving.archive.ModelArchive(str(path)) as archive:
        assert sorted(archive.weights.entries) == ["dense/bias", "dense/kernel", "lookup/table", "lookup/the_scale"]
    restored = lm.load_model(path)
    np.testing.assert_array_equal(restored.layers[1].table, [1, 2, 3, 4])
    assert float(restored.layers[1].scale.value) == 3.0
    np.testing.assert_allclose(restored(X), model(X), rtol=1e-6)


def test_weights_file_round_trip_into_a_copy_with_other_layer_names(tmp_path):
    model = _model(names=False)
    path = tmp_path / "lookup.safetensors"
    model.save_weights(path)
    copy = _model(names=False)  # generated names differ (dense_7, table_lookup_3): structural keys match
    copy.layers[1].table = np.zeros(4, "float32")
    copy.load_weights(path)
    np.testing.assert_array_equal(copy.layers[1].table, [1, 2, 3, 4])
    np.testing.assert_allclose(copy(X), model(X), rtol=1e-6)


def test_store_errors_name_the_layer_and_change_nothing(tmp_path):
    path = tmp_path / "lookup.safetensors"
    _model().save_weights(path)
    for cls, error, message in ((Greedy, KeyError, r"layer 'sequential\S*/lookup' \(Greedy\) asked its saved store "
                                 r"for 'extra'"),
                                (Forgetful, ValueError, r"layer 'sequential\S*/lookup' \(Forgetful\) did not read "
                                 r"\['table'\]")):
        target = _model(cls)
        kernel = target.layers[0].kernel.numpy()
        target.layers[0].kernel.assign(np.zeros((4, 4)))
        with pytest.raises(error, match=message):
            target.load_weights(path)
        np.testing.assert_array_equal(target.layers[0].kernel.numpy(), np.zeros((4, 4)))  # not loaded
        assert kernel.shape == (4, 4)


def test_keras_file_written_by_lamina_loads_in_keras_and_back(tmp_path, keras):
    model = _model()
    path = tmp_path / "lookup.keras"
    model.save(path)
    theirs_class = keras.saving.register_keras_serializable(package="hooks_test")(_lookup_class(keras, jnp))
    theirs = keras.saving.load_model(path, custom_objects={"hooks_test>TableLookup": theirs_class})
    np.testing.assert_array_equal(theirs.layers[1].table, [1, 2, 3, 4])
    np.testing.assert_allclose(np.asarray(theirs(X)), np.asarray(model(X)), rtol=1e-6)
    theirs.layers[1].table = np.array([5.0, 6.0, 7.0, 8.0], "float32")
    back = tmp_path / "from_keras.keras"
    theirs.save(back)
    ours = lm.load_model(back)
    np.testing.assert_array_equal(ours.layers[1].table, [5, 6, 7, 8])
    np.testing.assert_allclose(ours(X), np.asarray(theirs(X)), rtol=1e-6)


def test_store_values_must_be_numeric_arrays_under_plain_keys(tmp_path):
    class Wordy(TableLookup):
        def save_own_variables(self, store):
            store["words"] = np.array(["a", "b"])

    class Slashed(TableLookup):
        def save_own_variables(self, store):
            store["a/b"] = self.table

    for cls, message in ((Wordy, r"'sequential\S*/lookup' \(Wordy\).*dtype <U1 under 'words'"),
                         (Slashed, r"'sequential\S*/lookup' \(Slashed\).*key 'a/b'")):
        with pytest.raises((TypeError, ValueError), match=message):
            _model(cls).save_weights(tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


def test_saving_functions_with_keras_arguments(tmp_path, keras):
    model = _model()
    path = tmp_path / "w.safetensors"
    lm.saving.save_weights(model, path)
    with pytest.raises(FileExistsError, match="overwrite=False"):
        lm.saving.save_weights(model, path, overwrite=False)
    with pytest.raises(ValueError, match="max_shard_size"):
        model.save_weights(tmp_path / "w2.safetensors", max_shard_size="1GB")
    copy = _model()
    copy.layers[1].table = np.zeros(4, "float32")
    lm.saving.load_weights(copy, path)
    np.testing.assert_allclose(copy(X), model(X), rtol=1e-6)
    with pytest.raises(ValueError, match=r"invalid keyword arguments \['by_name'\]"):
        lm.saving.load_weights(copy, path, by_name=True)
    # The weights of a whole-model .keras file written by Keras, as keras.saving.load_weights reads them.
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a"), keras.layers.Dense(2, name="b")])
    theirs.save(tmp_path / "theirs.keras")
    ours = lm.Sequential([lm.Input((4,)), lm.layers.Dense(3), lm.layers.Dense(2)])
    lm.saving.load_weights(ours, tmp_path / "theirs.keras")
    np.testing.assert_allclose(ours(X), np.asarray(theirs(X)), rtol=1e-6)


@lm.saving.register_serializable(package="hooks_test")
class WidthModel(lm.Model):
    """A model whose own build config is more than an input shape (Keras's hooks, overridden)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built_from = None

    def build(self, input_shape):
        self.dense = lm.layers.Dense(input_shape[-1] * 2)
        self.dense.build(input_shape)

    def call(self, x):
        return self.dense(x)

    def get_build_config(self):
        return {"features": int(self.dense.kernel.shape[0])}

    def build_from_config(self, config):
        self.built_from = config
        self.build((None, config["features"]))


def test_model_build_config_override_is_saved_and_used_on_loading(tmp_path):
    model = WidthModel()
    model(X)
    model.save(tmp_path / "width.lamina")
    restored = lm.load_model(tmp_path / "width.lamina")
    assert restored.built_from == {"features": 4}
    np.testing.assert_allclose(restored(X), model(X), rtol=1e-6)
