"""Crafted ``.keras`` and ``.weights.h5`` files that lamina must refuse, with a clear error and
without running code, importing modules, reading outside the file or changing any weight."""

from __future__ import annotations

import json
import sys
import zipfile

import numpy as np
import pytest

import lamina as lm
from lamina.saving.errors import FileFormatError, WeightMismatchError
from lamina.saving.keras_files import archive as keras_archive
from lamina.saving.keras_files import h5 as keras_h5

h5py = pytest.importorskip("h5py")


def small_model():
    model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(4, name="hidden"), lm.layers.Dense(2, name="out")])
    model.set_weights([np.full(w.shape, i + 1.0, "float32") for i, w in enumerate(model.weights)])
    return model


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keras_attacks") / "good.keras"
    small_model().save(path)
    return path


def members_of(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def craft(good, target, edit_config=None, edit_h5=None, extra=None):
    """A copy of ``good`` with its config and/or weights changed (``edit_*`` functions)."""
    members = members_of(good)
    if edit_config is not None:
        config = json.loads(members["config.json"])
        edit_config(config)
        members["config.json"] = json.dumps(config).encode()
    if edit_h5 is not None:
        h5_path = target.parent / "work.h5"
        h5_path.write_bytes(members["model.weights.h5"])
        with h5py.File(h5_path, "r+") as h5:
            edit_h5(h5, target.parent)
        members["model.weights.h5"] = h5_path.read_bytes()
    members.update(extra or {})
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def layer_entry(config, name):
    return next(entry for entry in config["config"]["layers"] if entry["config"].get("name") == name)


def test_the_untouched_file_loads(good_file):
    model = lm.load_model(good_file)
    np.testing.assert_array_equal(model.predict(np.ones((1, 3), "float32"), verbose=0),
                                  small_model().predict(np.ones((1, 3), "float32"), verbose=0))


@pytest.mark.parametrize("safe_mode", [True, False])
def test_a_lambda_layer_is_refused_naming_it(good_file, tmp_path, safe_mode):
    def edit(config):
        entry = layer_entry(config, "hidden")
        entry.update(class_name="Lambda", config={
            "name": "hidden", "function": {"class_name": "__lambda__", "config": {
                "code": "4wEAAAAAAAAAAAAAAAEAAAADAAAA8wYAAACXAHwAUwApAU6pAKkB2gF4cwEAAAAg+gg8c3RkaW4+",
                "defaults": None, "closure": None}}})

    path = craft(good_file, tmp_path / "lambda.keras", edit_config=edit)
    with pytest.raises(FileFormatError, match=r"(?s)'hidden' \(Lambda\).*bytecode"):
        lm.load_model(path, safe_mode=safe_mode)


def test_bytecode_in_an_argument_is_refused_naming_the_layer(good_file, tmp_path):
    def edit(config):
        layer_entry(config, "out")["config"]["activation"] = {
            "class_name": "__lambda__", "config": {"code": "AAAA", "defaults": None, "closure": None}}

    with pytest.raises(FileFormatError, match=r"(?s)'out'.*bytecode"):
        lm.load_model(craft(good_file, tmp_path / "fn.keras", edit_config=edit))


def test_an_unknown_class_is_named_with_its_layer(good_file, tmp_path):
    def edit(config):
        entry = layer_entry(config, "out")
        entry.update(class_name="FancyLayer", registered_name="evil>FancyLayer", module="evil.layers")

    with pytest.raises(FileFormatError, match=r"(?s)Unknown class 'evil>FancyLayer'.*layer 'out'"):
        lm.load_model(craft(good_file, tmp_path / "unknown.keras", edit_config=edit))


def test_a_module_path_in_the_file_is_never_imported(good_file, tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "lamina_evil_probe.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nclass Boom:\n    pass\ndef boom(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def edit_class(config):
        layer_entry(config, "out").update(module="lamina_evil_probe", class_name="Boom", registered_name=None)

    def edit_nested(config):
        layer_entry(config, "out")["config"]["kernel_initializer"] = {
            "module": "lamina_evil_probe", "class_name": "Boom", "config": {}, "registered_name": "Boom"}

    def edit_function(config):
        layer_entry(config, "out")["config"]["activation"] = {
            "module": "lamina_evil_probe", "class_name": "function", "config": "boom", "registered_name": "boom"}

    for i, edit in enumerate((edit_class, edit_nested, edit_function)):
        with pytest.raises(ValueError, match="Boom|boom"):
            lm.load_model(craft(good_file, tmp_path / f"module{i}.keras", edit_config=edit))
    assert "lamina_evil_probe" not in sys.modules
    assert not marker.exists()


def _external_link(h5, folder):
    with h5py.File(folder / "elsewhere.h5", "w") as other:
        other["data"] = np.zeros((3, 4), "float32")
    del h5["layers/dense/vars/0"]
    h5["layers/dense/vars/0"] = h5py.ExternalLink(str(folder / "elsewhere.h5"), "/data")


def _soft_link(h5, folder):
    del h5["layers/dense/vars/0"]
    h5["layers/dense/vars/0"] = h5py.SoftLink("/layers/dense_1/vars/0")


def _external_dataset(h5, folder):
    raw = folder / "raw.bin"
    raw.write_bytes(np.zeros((3, 4), "float32").tobytes())
    del h5["layers/dense/vars/0"]
    h5["layers/dense/vars"].create_dataset("0", shape=(3, 4), dtype="float32", external=[(str(raw), 0, 48)])


def _virtual_dataset(h5, folder):
    with h5py.File(folder / "source.h5", "w") as other:
        other["data"] = np.zeros((3, 4), "float32")
    layout = h5py.VirtualLayout(shape=(3, 4), dtype="float32")
    layout[:] = h5py.VirtualSource(str(folder / "source.h5"), "data", shape=(3, 4))
    del h5["layers/dense/vars/0"]
    h5["layers/dense/vars"].create_virtual_dataset("0", layout)


def _string_dataset(h5, folder):
    del h5["layers/dense/vars/0"]
    h5["layers/dense/vars/0"] = np.array([b"not", b"numbers"])


@pytest.mark.parametrize("edit, message", [
    (_external_link, "external link"), (_soft_link, "soft link"), (_external_dataset, "external files"),
    (_virtual_dataset, "virtual dataset"), (_string_dataset, "not a number type"),
])
def test_hdf5_features_reaching_outside_the_file_are_refused(good_file, tmp_path, edit, message):
    path = craft(good_file, tmp_path / "h5.keras", edit_h5=edit)
    with pytest.raises(FileFormatError, match=message):
        lm.load_model(path)
    # the same weights file given to load_weights
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(members_of(path)["model.weights.h5"])
    model = small_model()
    with pytest.raises(FileFormatError, match=message):
        model.load_weights(weights)
    assert all(np.all(w.numpy() == i + 1.0) for i, w in enumerate(model.weights))


def test_oversized_members_are_refused_before_they_are_read(good_file, monkeypatch):
    monkeypatch.setitem(keras_archive.MAX_JSON_BYTES, "config.json", 100)
    with pytest.raises(FileFormatError, match=r"config.json declares \d+ bytes \(the limit is 100\)"):
        lm.load_model(good_file)
    monkeypatch.undo()
    monkeypatch.setattr(keras_archive, "MAX_WEIGHTS_BYTES", 1000)
    with pytest.raises(FileFormatError, match=r"model.weights.h5 declares \d+ bytes"):
        lm.load_model(good_file)
    monkeypatch.undo()
    monkeypatch.setattr(keras_h5, "MAX_TENSOR_BYTES", 40)  # the (3, 4) float32 kernel has 48
    with pytest.raises(FileFormatError, match=r"declares shape \(3, 4\) \(48 bytes\)"):
        lm.load_model(good_file)


def test_a_truncated_or_padded_zip_is_refused(good_file, tmp_path):
    data = good_file.read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match="not a zip archive"):
        lm.load_model(tmp_path / "cut.keras")
    # a flipped byte inside the weights member fails its CRC-32
    members = members_of(good_file)
    offset = data.index(members["model.weights.h5"][:64]) + len(members["model.weights.h5"]) // 2
    (tmp_path / "flipped.keras").write_bytes(data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1:])
    with pytest.raises(FileFormatError, match="damaged"):
        lm.load_model(tmp_path / "flipped.keras")


def test_unexpected_members_are_refused(good_file, tmp_path):
    path = craft(good_file, tmp_path / "extra.keras", extra={"../evil.py": b"print('hi')"})
    with pytest.raises(FileFormatError, match=r"unexpected members \['../evil.py'\]"):
        lm.load_model(path)


def test_missing_weights_name_the_layer_and_nothing_changes(good_file, tmp_path):
    def edit(h5, folder):
        del h5["layers/dense_1/vars/1"]

    path = craft(good_file, tmp_path / "missing.keras", edit_h5=edit)
    with pytest.raises(WeightMismatchError, match=r"(?s)layer 'out'.*variable '[\w/]*out/bias'.*missing"):
        lm.load_model(path)
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(members_of(path)["model.weights.h5"])
    model = small_model()
    with pytest.raises(WeightMismatchError, match="missing"):
        model.load_weights(weights)
    assert all(np.all(w.numpy() == i + 1.0) for i, w in enumerate(model.weights))


def test_a_shape_mismatch_names_the_layer_the_variable_and_both_shapes(good_file, tmp_path):
    def edit(h5, folder):
        del h5["layers/dense/vars/0"]
        h5["layers/dense/vars/0"] = np.zeros((3, 5), "float32")

    with pytest.raises(WeightMismatchError,
                       match=r"layer 'hidden'.*variable '[\w/]*hidden/kernel' has shape \(3, 4\).*\(3, 5\)"):
        lm.load_model(craft(good_file, tmp_path / "shape.keras", edit_h5=edit))


def test_without_h5py_the_error_names_the_extra(good_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"lamina\[keras-files\]"):
        lm.load_model(good_file)


def test_optimizer_state_of_another_optimizer_is_skipped_with_a_warning(tmp_path):
    model = small_model()
    model.compile("adam", "mse")
    model.train_on_batch(np.ones((2, 3), "float32"), np.zeros((2, 2), "float32"))
    model.save(tmp_path / "adam.keras")
    assert any(name.startswith("optimizer/vars/") for name in _datasets(members_of(tmp_path / "adam.keras")))

    def edit(config):
        config["compile_config"]["optimizer"] = {"module": "keras.optimizers", "class_name": "SGD",
                                                 "config": {"learning_rate": 0.1, "momentum": 0.9},
                                                 "registered_name": None}

    path = craft(tmp_path / "adam.keras", tmp_path / "sgd.keras", edit_config=edit)
    with pytest.warns(UserWarning, match="optimizer state is not loaded"):
        loaded = lm.load_model(path)
    assert type(loaded.optimizer).__name__ == "SGD" and int(loaded.optimizer.iterations.numpy()) == 0
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])


def _datasets(members) -> list:
    import io

    with h5py.File(io.BytesIO(members["model.weights.h5"]), "r") as h5:
        found = []
        h5.visititems(lambda key, item: found.append(key) if isinstance(item, h5py.Dataset) else None)
    return found


@pytest.mark.parametrize("edit", [
    lambda config: config["config"]["layers"][1].update(config="not an object"),
    lambda config: config["config"]["layers"][1]["config"].update(units="many"),
    lambda config: config["config"].update(layers={"a": 1}),
    lambda config: config.update(config=[]),
])
def test_a_malformed_config_raises_a_file_error(good_file, tmp_path, edit):
    with pytest.raises(FileFormatError, match=r"bad\.keras"):
        lm.load_model(craft(good_file, tmp_path / "bad.keras", edit_config=edit))
