"""Malicious and damaged files, each built here, against ``lm.load_model`` and
``model.load_weights``: every one gives a ``ValueError`` that says what is wrong, runs
nothing, writes nothing, stays within a bounded amount of memory and leaves an existing
model's weights as they were."""

import json
import os
import struct
import sys
import tracemalloc
import warnings
import zipfile
import zlib

import numpy as np
import pytest

import lamina as lm
from lamina.saving import FileFormatError

MEMORY_LIMIT = 64 * 1024 * 1024  # Python allocations during one refused load
GIB = 1024 ** 3
STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED


def _model():
    return lm.Sequential([lm.Input((4,)), lm.layers.Dense(3, name="hidden"), lm.layers.Dense(1, name="head")])


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A valid model file's bytes and members ({name: bytes})."""
    path = tmp_path_factory.mktemp("good") / "m.lamina"
    _model().save(path)
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    return path.read_bytes(), members


def _zip(members, extra=()):
    """A zip written by ``zipfile``: ``members`` ({name: bytes}, weights stored), then ``extra``
    ((name, bytes) pairs, which may repeat a name)."""
    import io

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in [*members.items(), *extra]:
                archive.writestr(name, data, STORED if name.endswith(".safetensors") else DEFLATED)
    return buffer.getvalue()


def _raw_zip(entries):
    """A zip written byte by byte, so that it can lie: ``entries`` are
    ``(name, payload, method, crc, declared_size)``, the payload stored as given."""
    body, directory = b"", b""
    for name, payload, method, crc, size in entries:
        encoded = name.encode()
        directory += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc,
                                 len(payload), size, len(encoded), 0, 0, 0, 0, 0, len(body)) + encoded
        body += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(payload), size,
                            len(encoded), 0) + encoded + payload
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), len(body), 0)
    return body + directory + end


def _stored(name, data):
    return (name, data, STORED, zlib.crc32(data), len(data))


@pytest.fixture(scope="module")
def zeros_stream():
    """A raw DEFLATE stream that inflates to 1 GiB of zeros, made in milliseconds: one
    megabyte compressed after a full flush (no reference to earlier data) repeated 1024 times."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return segment * 1024 + b"\x03\x00"  # an empty final block ends the stream


def _safetensors(header: dict, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def _with_config(members, change):
    config = json.loads(members["config.json"])
    change(config)
    return _zip({**members, "config.json": json.dumps(config).encode()})


def _listing(folder):
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, dirs, files in os.walk(folder) for name in dirs + files)


def _refuse(tmp_path, data, load, *, name="attack.lamina", match=None):
    """Write ``data`` to a file in a fresh folder and check that ``load(path)`` refuses it
    cleanly: a ValueError, no file appearing anywhere near, bounded Python memory."""
    folder = tmp_path / "work"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    around = _listing(tmp_path.parent)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match) as caught:
            load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_LIMIT, f"{peak} bytes allocated"
    assert _listing(tmp_path.parent) == around
    return caught.value


def _refuse_everywhere(tmp_path, data, match=None, name="attack.lamina"):
    """``lm.load_model`` refuses ``data``, and so does ``load_weights``, which leaves the
    model it loads into bit-for-bit as it was."""
    error = _refuse(tmp_path, data, lm.load_model, name=name, match=match)
    victim = _model()
    before = [w.tobytes() for w in victim.get_weights()]
    _refuse(tmp_path, data, victim.load_weights, name=name, match=match)
    assert [w.tobytes() for w in victim.get_weights()] == before
    return error


# -- not a model file -----------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", os.urandom(1000), b"PK\x03\x04" + bytes(100)], ids=["empty", "random", "zip-magic"])
def test_non_zip_data_is_refused(tmp_path, data):
    error = _refuse_everywhere(tmp_path, data, match="not a zip archive")
    assert isinstance(error, FileFormatError)


def test_a_safetensors_file_given_to_load_model_is_refused(tmp_path):
    _model().save_weights(tmp_path / "w.safetensors")
    _refuse(tmp_path, (tmp_path / "w.safetensors").read_bytes(), lm.load_model, name="w.lamina",
            match="not a zip archive")


@pytest.mark.parametrize("data", [b"", b"1234567", os.urandom(1000)], ids=["empty", "short", "random"])
def test_non_safetensors_data_is_refused_by_load_weights(tmp_path, data):
    victim = _model()
    before = [w.tobytes() for w in victim.get_weights()]
    _refuse(tmp_path, data, victim.load_weights, name="w.safetensors", match="safetensors file")
    assert [w.tobytes() for w in victim.get_weights()] == before


def test_a_zip_that_is_not_a_model_file_is_refused(tmp_path):
    _refuse_everywhere(tmp_path, _zip({"readme.txt": b"hello"}), match="missing members")


# -- member names ---------------------------------------------------------------------------


@pytest.mark.parametrize("evil", ["../../escaped.txt", "/tmp/lamina_absolute_escape.txt", "sub/../../escaped.txt"])
def test_path_traversal_members_are_refused_and_never_written(tmp_path, good, evil):
    _refuse_everywhere(tmp_path, _zip(good[1], extra=[(evil, b"owned")]), match="unexpected members")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path.parent / "escaped.txt").exists()
    assert not os.path.exists("/tmp/lamina_absolute_escape.txt")


def test_a_member_named_with_a_traversal_instead_of_the_weights_is_refused(tmp_path, good):
    members = dict(good[1])
    members["../model.safetensors"] = members.pop("model.safetensors")
    _refuse_everywhere(tmp_path, _zip(members), match="model.safetensors")
    assert not (tmp_path / "model.safetensors").exists()


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_duplicate_members_are_refused(tmp_path, good, name):
    _refuse_everywhere(tmp_path, _zip(good[1], extra=[(name, good[1][name])]), match="duplicate members")


def test_a_zip_directory_with_thousands_of_entries_is_refused_before_it_is_parsed(tmp_path, good):
    entries = [_stored(f"{i}", b"") for i in range(5000)]
    _refuse_everywhere(tmp_path, _raw_zip(entries), match="declares 5000 members")


# -- configs that would run code ------------------------------------------------------------


@pytest.fixture
def no_code_runs(monkeypatch, tmp_path):
    """Fails the test if os.system or os.popen is called, or a module is imported."""
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a) or 0)
    monkeypatch.setattr(os, "popen", lambda *a, **k: calls.append(a))
    modules = set(sys.modules)
    yield
    assert calls == []
    assert set(sys.modules) - modules == set()


@pytest.mark.parametrize("class_name", ["os.system", "builtins.eval", "posix:system",
                                        "made_up_module_for_lamina_tests.Model"])
def test_a_config_naming_a_module_path_is_refused(tmp_path, good, no_code_runs, class_name):
    data = _with_config(good[1], lambda c: c.update(class_name=class_name))
    _refuse(tmp_path, data, lm.load_model, match="never imports modules")
    assert "made_up_module_for_lamina_tests" not in sys.modules


def test_a_layer_with_a_module_field_is_refused(tmp_path, good, no_code_runs):
    def change(config):
        config["config"]["layers"][0]["module"] = "os"
        config["config"]["layers"][0]["class_name"] = "system"

    _refuse(tmp_path, _with_config(good[1], change), lm.load_model, match="'module' is 'os'")


def test_an_optimizer_naming_a_module_path_is_refused(tmp_path, good, no_code_runs):
    data = _with_config(good[1], lambda c: c.update(
        compile_config={"optimizer": {"class_name": "subprocess.Popen", "config": {"args": "touch owned"}},
                        "loss": "mse"}))
    _refuse(tmp_path, data, lm.load_model, match="never imports modules")


def test_a_registered_name_that_does_not_exist_is_refused(tmp_path, good):
    data = _with_config(good[1], lambda c: c["config"]["layers"][0].update(class_name="nobody>Nothing"))
    _refuse(tmp_path, data, lm.load_model, match=r"Unknown layer class 'nobody>Nothing'.*register_serializable")


def test_a_class_that_is_not_a_model_is_refused(tmp_path, good):
    data = _with_config(good[1], lambda c: c.update(class_name="Flatten", config={}))
    _refuse(tmp_path, data, lm.load_model, match="not a model")


def test_config_arguments_a_constructor_rejects_give_a_value_error(tmp_path, good):
    data = _with_config(good[1], lambda c: c["config"]["layers"][0]["config"].update(surprise=1))
    _refuse(tmp_path, data, lm.load_model, match=r"could not be rebuilt.*surprise")


def test_absurdly_deep_configs_give_a_value_error(tmp_path, good):
    depth = 400  # Sequentials in Sequentials: JSON nesting 1200 deep, written as text
    config = '{"class_name": "Sequential", "config": {"layers": [' * depth + "]}}" * depth
    _refuse(tmp_path, _zip({**good[1], "config.json": config.encode()}), lm.load_model,
            match="config.json")


def _lambda_model_file(tmp_path, function):
    model = lm.Sequential([lm.Input((4,)), lm.layers.Lambda(function, name="fn")])
    model.save(tmp_path / "lambda.lamina")
    return tmp_path / "lambda.lamina"


def test_safe_mode_refuses_a_lambda_layer_and_names_the_way_out(tmp_path, no_code_runs):
    path = _lambda_model_file(tmp_path, lm.activations.relu)
    with pytest.raises(ValueError, match=r"Lambda layer 'fn'.*safe_mode=False"):
        lm.load_model(path)
    loaded = lm.load_model(path, safe_mode=False)  # a registered function, by name
    assert loaded.layers[0].function is lm.activations.relu


def test_a_lambda_with_an_unregistered_function_never_loads(tmp_path, no_code_runs):
    path = _lambda_model_file(tmp_path, lambda x: x * 2)
    with pytest.raises(ValueError, match="safe_mode=False"):
        lm.load_model(path)
    with pytest.raises(ValueError, match="does not store"):
        lm.load_model(path, safe_mode=False)


def test_keras_bytecode_for_a_lambda_is_never_run(tmp_path, good, no_code_runs):
    code = {"class_name": "__lambda__", "config": {"code": "YmFk", "defaults": None, "closure": None}}

    def change(config):
        config["config"]["layers"][0] = {"class_name": "Lambda", "config": {"name": "fn", "function": code}}

    data = _with_config(good[1], change)
    _refuse(tmp_path, data, lm.load_model, match="safe_mode=False")
    _refuse(tmp_path, data, lambda p: lm.load_model(p, safe_mode=False), match="Python code")


# -- sizes ----------------------------------------------------------------------------------


def test_a_safetensors_header_claiming_ten_gigabytes_is_refused(tmp_path, good):
    weights = (10 * GIB).to_bytes(8, "little") + b"{}"
    _refuse_everywhere(tmp_path, _zip({**good[1], "model.safetensors": weights}), match="header claims")
    victim = _model()
    _refuse(tmp_path, weights, victim.load_weights, name="w.safetensors", match="header claims")


def test_tensors_declared_larger_than_the_file_are_refused(tmp_path, good):
    weights = _safetensors({"hidden/kernel": {"dtype": "F32", "shape": [50000, 50000],
                                              "data_offsets": [0, 10 * GIB]}}, b"\0" * 48)
    _refuse_everywhere(tmp_path, _zip({**good[1], "model.safetensors": weights}), match="truncated")
    _refuse(tmp_path, weights, _model().load_weights, name="w.safetensors", match="truncated")


def test_a_tensor_whose_range_does_not_match_its_shape_is_refused(tmp_path):
    weights = _safetensors({"hidden/kernel": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 48]}},
                           b"\0" * 48)
    _refuse(tmp_path, weights, _model().load_weights, name="w.safetensors", match="needs 4000000 bytes")


def test_a_shape_with_thousands_of_huge_dimensions_is_refused_quickly(tmp_path):
    weights = _safetensors({"k": {"dtype": "F32", "shape": [2 ** 62] * 5000, "data_offsets": [0, 0]}})
    _refuse(tmp_path, weights, _model().load_weights, name="w.safetensors", match="at most 64")


def test_a_zip_bomb_declaring_its_size_is_refused_unread(tmp_path, good, zeros_stream):
    data = _raw_zip([_stored("metadata.json", good[1]["metadata.json"]),
                     ("config.json", zeros_stream, DEFLATED, 0, GIB),
                     _stored("model.safetensors", good[1]["model.safetensors"])])
    _refuse_everywhere(tmp_path, data, match="declares 1073741824 bytes")


@pytest.mark.parametrize("declared", [100, 15 * 1024 * 1024])
def test_a_zip_bomb_lying_about_its_size_stops_at_the_declared_size(tmp_path, good, zeros_stream, declared):
    data = _raw_zip([_stored("metadata.json", good[1]["metadata.json"]),
                     ("config.json", zeros_stream, DEFLATED, 0, declared),
                     _stored("model.safetensors", good[1]["model.safetensors"])])
    _refuse_everywhere(tmp_path, data, match="damaged|not valid JSON")


def test_a_compressed_weights_member_is_refused(tmp_path, good):
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", DEFLATED) as archive:
        for name, member in good[1].items():
            archive.writestr(name, member)
    _refuse_everywhere(tmp_path, buffer.getvalue(), match="stored uncompressed")


# -- damage ---------------------------------------------------------------------------------


def _weights_range(data):
    """Where the weights member's bytes lie in a model file: (start, end)."""
    import io

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("model.safetensors")
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    return start, start + info.file_size


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.99])
def test_a_truncated_model_file_is_refused(tmp_path, good, fraction):
    data = good[0]
    _refuse_everywhere(tmp_path, data[:int(len(data) * fraction)], match="lamina model file|truncated|damaged")


def test_a_model_file_cut_inside_the_weights_is_refused(tmp_path, good):
    start, end = _weights_range(good[0])
    for cut in (start + 4, start + 100, end - 1):
        _refuse_everywhere(tmp_path, good[0][:cut])


@pytest.mark.parametrize("where", ["weights data", "weights header", "config.json"])
def test_a_flipped_byte_is_caught(tmp_path, good, where):
    data = bytearray(good[0])
    start, end = _weights_range(good[0])
    position = {"weights data": end - 5, "weights header": start + 20,
                "config.json": data.find(b"config.json") + len("config.json") + 40}[where]
    data[position] ^= 0xFF
    _refuse_everywhere(tmp_path, bytes(data), match="damaged|CRC|JSON")


def test_a_flipped_byte_in_the_weights_local_header_is_caught(tmp_path, good):
    import io

    with zipfile.ZipFile(io.BytesIO(good[0])) as archive:
        header = archive.getinfo("model.safetensors").header_offset
    data = bytearray(good[0])
    data[header + 14] ^= 0x01  # its CRC field
    _refuse_everywhere(tmp_path, bytes(data), match="local header")


def test_duplicate_json_keys_are_refused(tmp_path, good):
    config = good[1]["config.json"].decode()
    duplicated = config[:-1] + ', "class_name": "Sequential"}'
    _refuse_everywhere(tmp_path, _zip({**good[1], "config.json": duplicated.encode()}), match="duplicate keys")


def test_a_newer_format_version_is_refused(tmp_path, good):
    metadata = json.loads(good[1]["metadata.json"])
    metadata["format_version"] = 99
    data = _zip({**good[1], "metadata.json": json.dumps(metadata).encode()})
    _refuse_everywhere(tmp_path, data, match="format version 99")


# -- tensors that do not fit ----------------------------------------------------------------


def _weights(changes):
    import safetensors.numpy

    arrays = {"hidden/kernel": np.zeros((4, 3), "float32"), "hidden/bias": np.zeros(3, "float32"),
              "head/kernel": np.zeros((3, 1), "float32"), "head/bias": np.zeros(1, "float32")}
    changes(arrays)
    return safetensors.numpy.save(arrays)


@pytest.mark.parametrize("change, problem", [
    (lambda a: a.update({"hidden/kernel": np.zeros((4, 4), "float32")}), "shape"),
    (lambda a: a.update({"hidden/bias": np.zeros(3, "float16")}), "dtype float32, the file float16"),
    (lambda a: a.pop("head/bias"), "missing in file: 'head/bias'"),
    (lambda a: a.update({"extra": np.zeros(1, "float32")}), "unexpected in file: 'extra'"),
], ids=["shape", "dtype", "missing", "unexpected"])
def test_tensors_that_do_not_fit_are_refused_by_both_loaders(tmp_path, good, change, problem):
    weights = _weights(change)
    _refuse_everywhere(tmp_path, _zip({**good[1], "model.safetensors": weights}), match=problem)
    victim = _model()
    before = [w.tobytes() for w in victim.get_weights()]
    _refuse(tmp_path, weights, victim.load_weights, name="w.safetensors", match=problem)
    assert [w.tobytes() for w in victim.get_weights()] == before


def test_a_config_declaring_huge_layers_is_refused_before_allocating_them(tmp_path, good):
    # Four billion float32 parameters (16 GB) for a file holding a few dozen bytes of weights:
    # the loader stops at the first variable past the file's size, before allocating it.
    def enlarge(config):
        config["config"]["layers"][0]["config"]["units"] = 1_000_000_000

    error = _refuse(tmp_path, _with_config(good[1], enlarge), lm.load_model)
    assert "does not match" in str(error)


def test_a_compile_config_naming_an_unknown_loss_is_refused_at_load(tmp_path, good):
    def poison(config):
        config["compile_config"] = {"optimizer": "sgd", "loss": "os.system", "metrics": None}

    _refuse(tmp_path, _with_config(good[1], poison), lm.load_model, match="os.system")


_AUDITED: list | None = None
_CODE_EVENTS = {"exec", "compile", "pickle.find_class", "marshal.loads", "os.system", "subprocess.Popen",
                "os.exec", "os.posix_spawn", "os.spawn", "ctypes.dlopen"}


def _record(event, args):
    if _AUDITED is not None and (event in _CODE_EVENTS or event == "open"):
        _AUDITED.append((event, args[0] if args else None))


sys.addaudithook(_record)  # one hook per process: it records only while _AUDITED is a list


def test_loading_a_model_file_runs_no_code_and_opens_only_that_file(tmp_path):
    """No pickle, no exec/compile of text, no process, no other file: the whole path from
    a file to a compiled, trained model (loaded twice so that one-time imports are done)."""
    global _AUDITED
    model = lm.Sequential([lm.Input((4,)), lm.layers.Dense(3), lm.layers.Dropout(0.5, seed=1),
                           lm.layers.BatchNormalization(), lm.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.fit(np.ones((8, 4), "float32"), np.ones((8, 1), "float32"), epochs=1, verbose=0)
    path = tmp_path / "m.lamina"
    model.save(path)
    lm.load_model(path)
    _AUDITED = []
    try:
        lm.load_model(path)
        model.load_weights(path)
    finally:
        events, _AUDITED = _AUDITED, None
    assert [e for e in events if e[0] != "open"] == []
    assert {os.fspath(name) for _, name in events} <= {os.fspath(path)}
