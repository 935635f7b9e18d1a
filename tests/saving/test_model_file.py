"""``model.save(path)`` / ``lm.load_model(path)``: round trips that keep outputs, weights,
optimizer state and the course of further training; the file's layout; atomic writes."""

import datetime
import json
import os
import pathlib
import zipfile

import numpy as np
import pytest

import lamina as lm
from lamina.saving import model_file
from lamina.saving.weights import model_variables

RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 4)).astype("float32")
Y = RNG.normal(size=(16, 1)).astype("float32")


@lm.saving.register_serializable(package="test_model_file")
class TwoDense(lm.Model):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = lm.layers.Dense(units, activation="tanh")
        self.out = lm.layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class Unregistered(lm.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = lm.layers.Dense(1)

    def call(self, x):
        return self.dense(x)


def _sequential_with_input():
    return lm.Sequential([lm.Input((4,)), lm.layers.Dense(3, activation="relu"), lm.layers.Dense(1)]), X


def _sequential_built_from_data():
    return lm.Sequential([lm.layers.Dense(3, activation="relu"), lm.layers.Dense(1)]), X


def _functional_two_inputs_shared_layer():
    a, b = lm.Input((4,)), lm.Input((4,))
    shared = lm.layers.Dense(3)
    merged = lm.layers.Concatenate()([shared(a), shared(b)])
    return lm.Model([a, b], lm.layers.Dense(1)(merged)), [X, X[::-1].copy()]


def _subclassed_registered():
    return TwoDense(), X


def _model_nested_in_model():
    inner = lm.Sequential([lm.Input((4,)), lm.layers.Dense(3, activation="relu")])
    inputs = lm.Input((4,))
    return lm.Model(inputs, lm.layers.Dense(1)(inner(inputs))), X


def _batch_norm_and_dropout():
    return lm.Sequential([lm.Input((4,)), lm.layers.Dense(3), lm.layers.BatchNormalization(),
                          lm.layers.Dropout(0.5, seed=3), lm.layers.Dense(1)]), X


def _rnn():
    x = RNG.normal(size=(16, 5, 2)).astype("float32")
    return lm.Sequential([lm.Input((5, 2)), lm.layers.LSTM(3), lm.layers.Dense(1)]), x


def _embedding():
    x = RNG.integers(0, 10, size=(16, 5)).astype("int32")
    return lm.Sequential([lm.Input((5,), dtype="int32"), lm.layers.Embedding(10, 3),
                          lm.layers.GlobalAveragePooling1D(), lm.layers.Dense(1)]), x


def _fit_once(model, x):
    return model.fit(x, Y, epochs=1, batch_size=8, shuffle=False, verbose=0).history["loss"]


def _assert_bit_equal(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


def _layer_state(model):
    return {key: v.numpy() for key, v in model_variables(model).items()}


def _optimizer_state(model):
    return [v.numpy() for v in model.optimizer.variables]


def _trained(build, path):
    model, x = build()
    # Tiny models: running the steps eagerly is faster than compiling them.
    model.compile(optimizer=lm.optimizers.Adam(0.01), loss="mse", jit_compile=False)
    _fit_once(model, x)
    model.save(path)
    return model, x


@pytest.mark.parametrize("build", [
    _sequential_with_input, _sequential_built_from_data, _functional_two_inputs_shared_layer,
    _subclassed_registered, _model_nested_in_model, _batch_norm_and_dropout, _rnn, _embedding,
], ids=lambda f: f.__name__.strip("_"))
def test_round_trip_keeps_outputs_weights_optimizer_state_and_training(build, tmp_path):
    model, x = _trained(build, tmp_path / "m.lamina")
    loaded = lm.load_model(tmp_path / "m.lamina")

    assert type(loaded) is type(model)
    _assert_bit_equal(model.get_weights(), loaded.get_weights())
    state, loaded_state = _layer_state(model), _layer_state(loaded)  # seeds, BN statistics, ...
    assert state.keys() == loaded_state.keys()
    _assert_bit_equal(list(state.values()), list(loaded_state.values()))
    _assert_bit_equal(_optimizer_state(model), _optimizer_state(loaded))
    _assert_bit_equal([model(x)], [loaded(x)])
    # Training goes on exactly as it would have (seed state and optimizer moments included).
    assert _fit_once(model, x) == _fit_once(loaded, x)
    _assert_bit_equal(model.get_weights(), loaded.get_weights())
    _assert_bit_equal(_optimizer_state(model), _optimizer_state(loaded))


def test_compile_false_gives_an_uncompiled_model_with_the_weights(tmp_path):
    model, _ = _trained(_sequential_with_input, tmp_path / "m.lamina")
    loaded = lm.load_model(tmp_path / "m.lamina", compile=False)
    _assert_bit_equal(model.get_weights(), loaded.get_weights())
    assert getattr(loaded, "optimizer", None) is None
    with pytest.raises(RuntimeError, match="compile"):
        loaded.fit(X, Y, verbose=0)


def test_compiled_model_restores_its_compile_arguments(tmp_path):
    model, _ = _trained(_sequential_with_input, tmp_path / "m.lamina")
    loaded = lm.load_model(tmp_path / "m.lamina")
    assert type(loaded.optimizer) is lm.optimizers.Adam
    assert loaded.get_compile_config() == model.get_compile_config()


def test_custom_objects_load_an_unregistered_class(tmp_path):
    model = Unregistered()
    model(X)
    model.save(tmp_path / "m.lamina")
    loaded = lm.load_model(tmp_path / "m.lamina", custom_objects={"Unregistered": Unregistered})
    assert type(loaded) is Unregistered
    _assert_bit_equal(model.get_weights(), loaded.get_weights())


def test_unregistered_class_without_custom_objects_says_how_to_register(tmp_path):
    model = Unregistered()
    model(X)
    model.save(tmp_path / "m.lamina")
    with pytest.raises(ValueError, match=r"'Unregistered'.*register_serializable.*custom_objects"):
        lm.load_model(tmp_path / "m.lamina")


def test_model_saved_before_building_loads_unbuilt(tmp_path):
    TwoDense(units=2).save(tmp_path / "m.lamina")
    loaded = lm.load_model(tmp_path / "m.lamina")
    assert loaded.units == 2 and not loaded.built and loaded.weights == []


def test_metadata_json_names_format_versions_and_date(tmp_path):
    before = datetime.datetime.now(datetime.UTC)
    _trained(_sequential_with_input, tmp_path / "m.lamina")
    with zipfile.ZipFile(tmp_path / "m.lamina") as archive:
        metadata = json.loads(archive.read("metadata.json"))
    assert metadata["format"] == "lamina.model" and metadata["format_version"] == 1
    assert metadata["lamina_version"] == lm.__version__
    saved = datetime.datetime.fromisoformat(metadata["date_saved"])
    assert before - datetime.timedelta(seconds=1) <= saved <= datetime.datetime.now(datetime.UTC)


def test_config_json_holds_class_config_build_and_compile_config(tmp_path):
    model, _ = _trained(_sequential_with_input, tmp_path / "m.lamina")
    with zipfile.ZipFile(tmp_path / "m.lamina") as archive:
        config = json.loads(archive.read("config.json"))
    assert config["class_name"] == "Sequential"
    assert config["config"] == json.loads(json.dumps(model.get_config()))
    assert config["build_config"]["input_shape"][1:] == [4]  # the batch axis is not fixed
    assert config["compile_config"]["optimizer"]["class_name"] == "Adam"
    assert config["compile_config"]["optimizer"]["config"]["learning_rate"] == pytest.approx(0.01)
    assert config["compile_config"]["loss"] == "mse"


def test_file_is_a_zip_of_exactly_three_members_with_weights_stored(tmp_path):
    _trained(_sequential_with_input, tmp_path / "m.lamina")
    with zipfile.ZipFile(tmp_path / "m.lamina") as archive:
        infos = {info.filename: info for info in archive.infolist()}
    assert sorted(infos) == ["config.json", "metadata.json", "model.safetensors"]
    assert infos["model.safetensors"].compress_type == zipfile.ZIP_STORED
    assert infos["config.json"].compress_type == zipfile.ZIP_DEFLATED


def test_save_with_overwrite_false_refuses_an_existing_file(tmp_path):
    path = tmp_path / "m.lamina"
    path.write_bytes(b"previous")
    model, _ = _sequential_with_input()
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save(path, overwrite=False)
    assert path.read_bytes() == b"previous"


def test_save_overwrites_by_default(tmp_path):
    path = tmp_path / "m.lamina"
    path.write_bytes(b"previous")
    model, _ = _sequential_with_input()
    model.save(path)
    assert zipfile.is_zipfile(path)


def test_paths_may_be_strings_or_pathlib_paths(tmp_path):
    model, _ = _sequential_with_input()
    model.save(str(tmp_path / "a.lamina"))
    model.save(pathlib.Path(tmp_path) / "b.lamina")
    for path in (tmp_path / "a.lamina", str(tmp_path / "b.lamina")):
        _assert_bit_equal(model.get_weights(), lm.load_model(path).get_weights())


def test_save_refuses_a_path_without_the_lamina_suffix(tmp_path):
    model, _ = _sequential_with_input()
    with pytest.raises(ValueError, match=r"\.lamina"):
        model.save(tmp_path / "m.zip")
    assert os.listdir(tmp_path) == []


def test_crash_mid_save_keeps_the_previous_file_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "m.lamina"
    model, _ = _sequential_with_input()
    model.save(path)
    previous = path.read_bytes()

    def crash(tmp, variables, structure=None):
        with open(tmp, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(model_file.weights_io, "write_safetensors", crash)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == previous
    assert os.listdir(tmp_path) == ["m.lamina"]


def test_save_into_a_missing_folder_fails_without_writing(tmp_path):
    model, _ = _sequential_with_input()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.save(tmp_path / "missing" / "m.lamina")
    assert os.listdir(tmp_path) == []


def test_a_loaded_model_holds_device_arrays_only(tmp_path):
    # Loading creates weights as cheap placeholders and fills them from the file: none may be
    # left behind as a placeholder.
    import jax

    model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(4), lm.layers.BatchNormalization(), lm.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((8, 3), "float32"), np.ones((8, 1), "float32"), epochs=1, verbose=0)
    model.save(tmp_path / "m.lamina")
    loaded = lm.load_model(tmp_path / "m.lamina")
    assert all(isinstance(v.value, jax.Array) for v in loaded.variables)
    assert all(isinstance(v.value, jax.Array) for v in loaded.optimizer.variables)


def test_tensor_data_starts_on_64_byte_boundaries_in_the_file(tmp_path):
    # Aligned tensors copy to the device about twice as fast; the zip member is padded for it.
    model = lm.Sequential([lm.Input((5,)), lm.layers.Dense(16), lm.layers.Dense(3)])
    model.save(tmp_path / "m.lamina")
    import struct
    import zipfile

    from lamina.saving.archive import ModelArchive

    data = (tmp_path / "m.lamina").read_bytes()
    with zipfile.ZipFile(tmp_path / "m.lamina") as archive:
        header = archive.getinfo("model.safetensors").header_offset
    name_length, extra_length = struct.unpack_from("<HH", data, header + 26)
    member_start = header + 30 + name_length + extra_length
    with ModelArchive(tmp_path / "m.lamina") as archive:
        first_tensor = min(entry.start for entry in archive.weights.entries.values())
    assert (member_start + first_tensor) % 64 == 0
