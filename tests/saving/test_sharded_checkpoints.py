"""Checkpoints of sharded models (lamina/saving/sharded.py, shard_index.py).

The resharding checks run on 8 simulated devices in one subprocess
(sharded_checkpoint_script.py: the device count must be set before JAX starts); the checks
of the folder format's safety run here, on one device, against hand-written index files.
"""

import json
import os
import shutil

import numpy as np
import pytest
import safetensors.numpy
from script_runner import free_port, run_json_script, run_json_scripts

import lamina as lm
from lamina.saving import FileFormatError, sharded
from lamina.saving.sharded import save_weights_sharded

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    return run_json_script(os.path.join(HERE, "sharded_checkpoint_script.py"), timeout=240,
                           cache_dir=str(tmp_path_factory.mktemp("compilation_cache")))


# -- 8 devices: save under FSDP, restore on 4, on 1 and tensor parallel ------------------------
def test_the_source_is_fsdp_sharded_over_eight_devices(found):
    assert found["devices"] == 8
    assert found["source"] == {"kernel_devices": 8, "kernel_shards": [[4, 32]],
                               "mu_devices": 8, "mu_shards": [[4, 32]]}


def test_a_folder_holds_each_shard_once(found):
    assert found["folder_files"] == ["index.json", "shard"]
    assert found["index_kernel_slices"] == 8  # one slice per device
    assert found["index_bias_slices"] == 1  # replicated: written by one device only


LAYOUTS = {
    "fsdp4": {"kernel_devices": 4, "kernel_shards": [[8, 32]], "mu_devices": 4, "mu_shards": [[8, 32]]},
    "one": {"kernel_devices": 1, "kernel_shards": [[32, 32]], "mu_devices": 1, "mu_shards": [[32, 32]]},
    "tp": {"kernel_devices": 8, "kernel_shards": [[32, 8]], "mu_devices": 8, "mu_shards": [[32, 8]]},
}


@pytest.mark.parametrize("target", sorted(LAYOUTS))
@pytest.mark.parametrize("kind", ["file", "folder", "model_file", "model_folder"])
def test_restores_weights_and_optimizer_state_exactly_on_another_mesh(found, target, kind):
    assert found[f"{target}_{kind}_equal"], "weights or optimizer state differ"
    assert found[f"{target}_{kind}_layout"] == LAYOUTS[target]  # slots follow their weight


def test_each_device_reads_only_its_region(found):
    quarters = [[[8 * i, 0], [8 * (i + 1), 32]] for i in range(4)]
    assert found["fsdp4_kernel_reads"] == quarters
    columns = sorted([[0, 8 * i], [32, 8 * (i + 1)]] for i in range(4) for _ in range(2))  # 2 replicas each
    assert found["tp_kernel_reads"] == columns


def test_steps_after_a_restore_match_the_uninterrupted_run(found):
    for name in ("fsdp4", "tp", "one"):
        np.testing.assert_allclose(found[f"continued_{name}"], found["continued_source"], rtol=1e-6, atol=1e-6)
        assert found["final_max_diff"][name] <= 1e-6


# -- one device: the folder format and its safety checks ---------------------------------------
def _model():
    model = lm.Sequential([lm.Input((4,)), lm.layers.Dense(3, name="hidden")], name="tiny")
    model.compile(optimizer="sgd", loss="mse")
    return model


def _weights(model):
    return [np.asarray(w) for w in model.weights]


@pytest.fixture
def handmade(tmp_path):
    """A folder written by hand: the kernel in two row slices of one shard file, the bias in
    another file; ``write(index)`` replaces its index."""
    folder = tmp_path / "w.safetensors"
    folder.mkdir()
    kernel = np.arange(12, dtype="float32").reshape(4, 3)
    bias = np.array([1, 2, 3], "float32")
    safetensors.numpy.save_file({"k@0": kernel[:2], "k@1": kernel[2:]}, str(folder / "shard-a.safetensors"))
    safetensors.numpy.save_file({"b@0": bias}, str(folder / "shard-b.safetensors"))
    index = {"format": "lamina.sharded", "format_version": 1,
             "files": ["shard-a.safetensors", "shard-b.safetensors"],
             "tensors": {"hidden/kernel": {"dtype": "F32", "shape": [4, 3], "slices": [
                 {"file": "shard-a.safetensors", "name": "k@0", "start": [0, 0], "stop": [2, 3]},
                 {"file": "shard-a.safetensors", "name": "k@1", "start": [2, 0], "stop": [4, 3]}]},
                 "hidden/bias": {"dtype": "F32", "shape": [3], "slices": [
                     {"file": "shard-b.safetensors", "name": "b@0", "start": [0], "stop": [3]}]}}}

    def write(changed):
        (folder / "index.json").write_text(json.dumps(changed) if not isinstance(changed, str) else changed)
        return str(folder)

    return index, write, (kernel, bias)


def test_a_handwritten_folder_loads(handmade):
    index, write, (kernel, bias) = handmade
    model = _model()
    model.load_weights(write(index))
    np.testing.assert_array_equal(model.get_layer("hidden").kernel, kernel)
    np.testing.assert_array_equal(model.get_layer("hidden").bias, bias)


def _slices(index):
    return index["tensors"]["hidden/kernel"]["slices"]


def _outside(index):
    _slices(index)[1]["stop"] = [5, 3]


def _overlap(index):
    _slices(index).append(dict(_slices(index)[0]))


def _missing(index):
    del _slices(index)[1]


def _path_name(name):
    def change(index):
        index["files"][0] = name
        for piece in _slices(index):
            piece["file"] = name
    return change


def _dtype(index):
    index["tensors"]["hidden/kernel"]["dtype"] = "F64"


def _shape(index):
    index["tensors"]["hidden/kernel"]["shape"] = [4, 4]
    _slices(index)[0]["stop"] = [2, 4]


def _unlisted(index):
    _slices(index)[0]["file"] = "shard-c.safetensors"


def _no_name(index):
    _slices(index)[0]["name"] = "k@7"


ATTACKS = {
    "slice outside the tensor": (_outside, ["'hidden/kernel'", "outside the tensor"]),
    "overlapping slices": (_overlap, ["'hidden/kernel'", "overlapping"]),
    "missing slice": (_missing, ["'hidden/kernel'", "missing slices"]),
    "file named with ..": (_path_name("../shard-a.safetensors"), ["'../shard-a.safetensors'", "a path"]),
    "file named with a folder": (_path_name("sub/shard-a.safetensors"), ["a path"]),
    "absolute file name": (_path_name("/etc/shard-a.safetensors"), ["a path"]),
    "dtype differs from the shard file": (_dtype, ["'hidden/kernel'", "float32", "float64"]),
    "shape differs from the shard file": (_shape, ["'hidden/kernel'", "[2, 3]", "[2, 4]"]),
    "file not in the list": (_unlisted, ["'hidden/kernel'", "does not list"]),
    "tensor not in the shard file": (_no_name, ["'hidden/kernel'", "'k@7'"]),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_bad_index_raises_naming_the_checkpoint_and_tensor_and_changes_nothing(handmade, attack):
    index, write, _ = handmade
    change, expected = ATTACKS[attack]
    change(index)
    model = _model()
    before = _weights(model)
    with pytest.raises(FileFormatError) as error:
        model.load_weights(write(index))
    message = str(error.value)
    assert "w.safetensors" in message and "index.json" in message, message
    for part in expected:
        assert part in message, message
    for a, b in zip(before, _weights(model)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("text, expected", [
    ('{"format": "lamina.sharded", "files": [', "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"format": "other"}', "'other'"),
    ('{"format": "lamina.sharded", "format_version": 99}', "version 99"),
])
def test_an_index_that_is_not_ours_raises(handmade, text, expected):
    _, write, _ = handmade
    with pytest.raises(FileFormatError, match=expected) as error:
        _model().load_weights(write(text))
    assert "index.json" in str(error.value)


def test_a_folder_without_index_is_an_unfinished_save(tmp_path):
    folder = tmp_path / "w.safetensors"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):  # nothing of a checkpoint in it
        _model().load_weights(str(folder))
    (folder / "shard-0123abcd-00000-of-00002.safetensors").write_bytes(b"")
    with pytest.raises(FileFormatError, match="has no index.json"):
        _model().load_weights(str(folder))


def test_a_linked_or_missing_shard_file_raises(handmade, tmp_path):
    index, write, _ = handmade
    path = write(index)
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(os.path.join(path, "shard-b.safetensors"), outside)
    with pytest.raises(FileFormatError, match="'shard-b.safetensors'.*missing"):
        _model().load_weights(path)
    os.symlink(outside, os.path.join(path, "shard-b.safetensors"))
    with pytest.raises(FileFormatError, match="'shard-b.safetensors' is a link"):
        _model().load_weights(path)


def test_a_damaged_shard_file_fails_its_checksum_and_changes_nothing(tmp_path):
    model = _model()
    path = str(tmp_path / "w.safetensors")
    save_weights_sharded(model, path)
    shard = next(os.path.join(path, n) for n in os.listdir(path) if n.startswith("shard-"))
    data = bytearray(open(shard, "rb").read())
    data[-2] ^= 0xFF  # inside the last tensor's bytes
    open(shard, "wb").write(bytes(data))
    other = _model()
    before = _weights(other)
    with pytest.raises(FileFormatError, match="fails its checksum"):
        other.load_weights(path)
    for a, b in zip(before, _weights(other)):
        np.testing.assert_array_equal(a, b)


def test_a_crash_before_the_index_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = _model()
    path = str(tmp_path / "w.safetensors")
    save_weights_sharded(model, path)
    saved = _weights(model)
    model.get_layer("hidden").kernel.assign(np.zeros((4, 3), "float32"))

    def crash(*args):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(sharded, "_build_index", crash)
    with pytest.raises(KeyboardInterrupt):
        save_weights_sharded(model, path)
    monkeypatch.undo()
    restored = _model()
    restored.load_weights(path)  # the old index still names the old shard file
    for a, b in zip(saved, _weights(restored)):
        np.testing.assert_array_equal(a, b)
    save_weights_sharded(model, path)  # the next save removes the crashed one's file
    assert len([n for n in os.listdir(path) if n.startswith("shard-")]) == 1


def test_one_process_keeps_the_single_file_and_refuses_a_file_where_a_folder_goes(tmp_path):
    model = _model()
    path = str(tmp_path / "w.safetensors")
    model.save_weights(path)  # one process: the single file, as before
    assert os.path.isfile(path)
    with pytest.raises(FileExistsError, match="is a file"):
        save_weights_sharded(model, path)


def test_a_sharded_model_folder_loads_with_its_config_and_compile_arguments(tmp_path):
    from lamina.saving.model_file import save_model

    model = _model()
    x = np.ones((2, 4), "float32")
    model.fit(x, np.zeros((2, 3), "float32"), verbose=0)
    path = str(tmp_path / "m.lamina")
    save_model(model, path, sharded=True)
    copy = lm.load_model(path)
    np.testing.assert_array_equal(copy.predict(x, verbose=0), model.predict(x, verbose=0))
    assert int(copy.optimizer.iterations.value) == 1
    with pytest.raises(FileFormatError, match="holds no model config"):
        save_weights_sharded(model, str(tmp_path / "w.safetensors"))
        lm.load_model(str(tmp_path / "w.safetensors"))


# -- two processes write, one loads ------------------------------------------------------------
def test_a_checkpoint_written_by_two_processes_loads_in_one(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("two_process_checkpoint_script",
                                                  os.path.join(HERE, "two_process_checkpoint_script.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    path = str(tmp_path / "w.safetensors")
    port = free_port()
    outputs = run_json_scripts([[spec.origin, i, port, path] for i in range(2)], cache_dir="0", timeout=150)
    assert outputs[0]["processes"] == 2 and outputs[0]["devices"] == 8
    assert outputs[0]["kernel_devices"] == 8 and outputs[0]["kernel_local_shards"] == 4
    shards = [n for n in outputs[0]["files"] if n.startswith("shard-")]
    assert len(shards) == 2 and "index.json" in outputs[0]["files"]  # one file per process
    assert [o["reloaded_equal"] for o in outputs] == [True, True]  # read back by both processes
    assert outputs[0]["reloaded_kernel_devices"] == 8
    model = script.make_model(lm)  # one process, one device
    model.load_weights(path)
    variables = [*model.weights, *model.optimizer.variables]
    for variable, expected in zip(variables, script.known_values(variables)):
        np.testing.assert_array_equal(np.asarray(variable.value), expected, err_msg=variable.path)


# -- fit under a distribution (in the 8-device subprocess) ------------------------------------
def test_model_checkpoint_saves_an_fsdp_model_during_fit(found):
    assert found["fit_kernel_devices"] == 8
    assert found["model_checkpoint_equal"]  # the file, loaded on one device, holds the weights


def test_five_fitted_steps_after_a_restore_on_four_devices_match_the_uninterrupted_run(found):
    assert found["fit_restored_kernel_devices"] == 4
    np.testing.assert_allclose(found["fit_more_restored"], found["fit_more_source"], rtol=1e-6, atol=1e-6)
    assert found["fit_more_max_diff"] <= 1e-6


def test_backup_and_restore_with_data_parallel_resumes_bit_identical(found):
    assert found["backup_interrupted"] and found["backup_trained"]
    assert found["backup_kernel_devices"] == 8  # restored onto the data-parallel layout
    assert found["backup_equal"]  # weights, Dropout's seeds and Adam's state, bit for bit
