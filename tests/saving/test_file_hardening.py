"""Loading from hostile or damaged files (issue 10, items 11, 13, 14): a FIFO or a device is
refused at once instead of blocking; a weights file records a checksum per tensor and a flipped
byte is caught before any weight changes; a Sequential checks layer names in constant time
and a file may not declare more than ``MAX_LAYERS`` layers."""

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import jax
import numpy as np
import pytest
import safetensors.numpy
import xxhash

import lamina as lm
from lamina.layers.layer import Layer
from lamina.saving import FileFormatError, model_file

CHECKSUM_METADATA = "lamina_xxh3"  # the safetensors metadata entry: JSON {key: [XXH3-64 per piece]}

# -- item 11: FIFOs and devices ---------------------------------------------------------------

_OPEN_EVERYTHING = textwrap.dedent("""
    import json, os, sys
    import lamina as lm

    folder = sys.argv[1]
    model = lm.Sequential([lm.Input((2,)), lm.layers.Dense(1)])
    results = {}
    for name, load in [("pipe.lamina", lm.load_model), ("pipe.safetensors", model.load_weights),
                       ("pipe.lamina", model.load_weights), ("link.lamina", lm.load_model),
                       ("link.safetensors", model.load_weights), ("/dev/zero", lm.load_model),
                       ("/dev/zero", model.load_weights), ("zero.lamina", lm.load_model)]:
        try:
            load(os.path.join(folder, name))
            results[f"{name} {load.__name__}"] = "loaded"
        except Exception as error:
            results[f"{name} {load.__name__}"] = f"{type(error).__name__}: {error}"
    print(json.dumps(results))
""")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_a_link_to_one_and_a_device_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.lamina")
    os.mkfifo(tmp_path / "pipe.safetensors")
    os.symlink(tmp_path / "pipe.lamina", tmp_path / "link.lamina")
    os.symlink(tmp_path / "pipe.safetensors", tmp_path / "link.safetensors")
    os.symlink("/dev/zero", tmp_path / "zero.lamina")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    try:  # before the fix, the first load waited for a writer forever
        done = subprocess.run([sys.executable, "-c", _OPEN_EVERYTHING, str(tmp_path)], capture_output=True,
                              text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("loading from a FIFO or a device blocked")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(results) == 8
    for case, outcome in results.items():
        name = case.split()[0]
        assert outcome.startswith("FileFormatError: "), (case, outcome)
        assert "not a regular file" in outcome and repr(str(tmp_path / name) if "/" not in name else name) in outcome
        kind = "a character device" if "zero" in name else "a FIFO (named pipe)"
        assert kind in outcome, (case, outcome)
        if name.startswith("link") or name.startswith("zero"):
            assert "a link to" in outcome, (case, outcome)


def test_a_folder_is_refused_as_a_folder(tmp_path):
    model = lm.Sequential([lm.Input((2,)), lm.layers.Dense(1)])
    folder = tmp_path / "w.safetensors"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        model.load_weights(folder)


# -- item 14: a checksum per tensor in weights files ------------------------------------------


def _model():
    lm.random.set_seed(3)
    return lm.Sequential([lm.Input((3,)), lm.layers.Dense(4, name="dense"), lm.layers.Dense(2, name="dense_1")])


def _data_start(raw: bytes) -> int:
    return 8 + int.from_bytes(raw[:8], "little")


def _header(raw: bytes) -> dict:
    return json.loads(raw[8:_data_start(raw)])


def test_each_tensor_has_its_checksum_in_the_metadata(tmp_path):
    model = _model()
    path = tmp_path / "w.safetensors"
    model.save_weights(path)
    table = json.loads(_header(path.read_bytes())["__metadata__"][CHECKSUM_METADATA])
    chunk = table["chunk_bytes"]
    expected = {key: [xxhash.xxh3_64_intdigest(array.tobytes()[begin:begin + chunk]) for begin in range(0, max(array.nbytes, 1), chunk)]
                for key, array in safetensors.numpy.load_file(path).items()}
    assert table["tensors"] == expected
    assert set(expected) == {"dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"}


def test_a_flipped_byte_in_a_later_piece_of_a_large_tensor_is_refused(tmp_path):
    from lamina.saving.safetensors_reader import CHECKSUM_CHUNK_BYTES

    size = CHECKSUM_CHUNK_BYTES // 4 + 1000  # float32s: two pieces, the second one short
    model = lm.Sequential([lm.Input((1,)), lm.layers.Dense(size, name="wide")])
    path = tmp_path / "w.safetensors"
    model.save_weights(path)
    table = json.loads(_header(path.read_bytes())["__metadata__"][CHECKSUM_METADATA])
    assert [len(crcs) for crcs in table["tensors"].values()] == [2, 2]
    model.load_weights(path)  # a whole file passes
    with open(path, "r+b") as file:
        file.seek(-10, os.SEEK_END)  # the bias comes last in the file (sorted keys)
        byte = file.read(1)
        file.seek(-10, os.SEEK_END)
        file.write(bytes([byte[0] ^ 1]))
    with pytest.raises(FileFormatError, match=r"tensor 'wide/(bias|kernel)' fails its checksum"):
        model.load_weights(path)


def test_a_flipped_byte_in_a_tensor_is_refused_and_nothing_changes(tmp_path):
    source, target = _model(), _model()
    path = tmp_path / "w.safetensors"
    source.save_weights(path)
    raw = bytearray(path.read_bytes())
    entry = _header(raw)["dense_1/kernel"]  # the last tensor checked: the others pass first
    raw[_data_start(raw) + entry["data_offsets"][0] + 5] ^= 0x10
    path.write_bytes(bytes(raw))
    before = [w.numpy().copy() for w in target.weights]
    with pytest.raises(FileFormatError, match=r"tensor 'dense_1/kernel' fails its checksum"):
        target.load_weights(path)
    for old, new in zip(before, target.weights):
        np.testing.assert_array_equal(old, new.numpy())
    with pytest.raises(FileFormatError, match="checksum"):  # also when loading only what fits
        target.load_weights(path, skip_mismatch=True)


def test_a_damaged_checksum_table_is_refused(tmp_path):
    model = _model()
    arrays = {w.path.split("/", 1)[1]: w.numpy() for w in model.weights}
    path = tmp_path / "w.safetensors"
    safetensors.numpy.save_file(arrays, path, metadata={CHECKSUM_METADATA: json.dumps(
        {"chunk_bytes": 1 << 20, "tensors": {"dense/kernel": [1]}})})
    with pytest.raises(FileFormatError, match="not a checksum list for every tensor"):
        model.load_weights(path)


def test_a_file_without_checksums_from_another_tool_still_loads(tmp_path):
    source, target = _model(), _model()
    source.layers[0].kernel.assign(np.arange(12, dtype="float32").reshape(3, 4))
    arrays = {w.path.split("/", 1)[1]: w.numpy() for w in source.weights}
    path = tmp_path / "w.safetensors"
    safetensors.numpy.save_file(arrays, path)
    target.load_weights(path)
    for expected, loaded in zip(source.weights, target.weights):
        np.testing.assert_array_equal(expected.numpy(), loaded.numpy())


def test_a_model_file_round_trips_with_checksums(tmp_path):
    model = _model()
    path = tmp_path / "m.lamina"
    model.save(path)
    x = np.ones((2, 3), "float32")
    np.testing.assert_array_equal(lm.load_model(path)(x), model(x))
    with zipfile.ZipFile(path) as archive:
        header = _header(archive.read("model.safetensors"))
    table = json.loads(header["__metadata__"][CHECKSUM_METADATA])
    assert set(table["tensors"]) == {w.path.split("/", 1)[1] for w in model.weights}


# -- item 13: linear-time loading, bounded layer count -------------------------------------


@pytest.fixture
def name_reads(monkeypatch):
    """Counts reads of ``Layer.name``: a name check against every layer reads them N^2/2 times."""
    counter = [0]
    original = Layer.name

    def counted(self):
        counter[0] += 1
        return original.fget(self)

    monkeypatch.setattr(Layer, "name", property(counted))
    return counter


def test_adding_layers_reads_each_name_a_constant_number_of_times(name_reads):
    count = 1500
    layers = [lm.layers.Activation("linear") for _ in range(count)]
    name_reads[0] = 0
    lm.Sequential(layers)
    assert name_reads[0] <= 5 * count  # was count * (count - 1) / 2 + ...: over a million


def test_loading_a_long_sequential_reads_each_name_a_constant_number_of_times(tmp_path, name_reads):
    count = 1500
    model = lm.Sequential([lm.Input((2,))] + [lm.layers.Activation("linear") for _ in range(count)])
    path = tmp_path / "m.lamina"
    model.save(path)
    name_reads[0] = 0
    loaded = lm.load_model(path)
    assert len(loaded.layers) == count
    assert name_reads[0] <= 20 * count


@pytest.fixture
def eval_shape_calls(monkeypatch):
    """Counts jax.eval_shape calls: its fixed cost (~0.2 ms), not the layers' traces,
    dominated building and loading 15,000 layers."""
    calls = [0]
    original = jax.eval_shape

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(jax, "eval_shape", counted)
    return calls


class _Scale(lm.layers.Layer):
    """A user's layer without compute_output_shape: it can only be traced."""

    def call(self, x):
        return x * 2.0


def test_a_long_sequential_costs_one_abstract_evaluation_in_all(eval_shape_calls):
    count = 20
    model = lm.Sequential([lm.Input((3,))] + [_Scale() for _ in range(count)])
    assert eval_shape_calls[0] == 1  # the whole stack at once (was one per layer)
    assert model.outputs[0].shape == (None, 3)
    eval_shape_calls[0] = 0
    one_by_one = lm.Sequential([lm.Input((3,))])
    for _ in range(count):
        one_by_one.add(_Scale())
    assert eval_shape_calls[0] == count  # add() connects each layer at once, as Keras's does


def test_a_stack_of_layers_stating_their_output_is_not_traced(eval_shape_calls):
    count = 20
    model = lm.Sequential([lm.Input((3,))] + [lm.layers.Dense(2) for _ in range(count)])
    assert eval_shape_calls[0] == 0  # was one for the stack: Dense states its output
    assert model.outputs[0].shape == (None, 2) and len(model.weights) == 2 * count
    one_by_one = lm.Sequential([lm.Input((3,))])
    for _ in range(count):
        one_by_one.add(lm.layers.Dense(2))
    assert eval_shape_calls[0] == 0  # nor is add()
    # The layers that cannot say are traced, one run of them at a time.
    lm.Sequential([lm.Input((3,)), lm.layers.Dense(2), _Scale(), _Scale(), lm.layers.Dense(2), _Scale()])
    assert eval_shape_calls[0] == 2


def test_a_stack_built_at_once_equals_one_built_layer_by_layer():
    """Shapes with unknown axes, dtypes, masks and the graph's nodes are those the per-layer
    path records, and both models compute the same."""
    def layers():
        lm.random.set_seed(0)
        return [lm.layers.Embedding(10, 4, mask_zero=True), lm.layers.LSTM(3, return_sequences=True),
                lm.layers.Dense(2, dtype="float16"), lm.layers.Reshape((-1,)), lm.layers.Activation("relu")]

    at_once = lm.Sequential([lm.Input((None,), dtype="int32")] + layers())
    by_layer = lm.Sequential([lm.Input((None,), dtype="int32")])
    for layer in layers():
        by_layer.add(layer)
    for a, b in zip(at_once.layers, by_layer.layers):
        assert (a.output.shape, a.output.dtype) == (b.output.shape, b.output.dtype), a.name
        assert (a.output._keras_mask is None) == (b.output._keras_mask is None), a.name
        assert a.input.shape == b.input.shape and len(a._lm_inbound_nodes) == len(b._lm_inbound_nodes) == 1
    assert at_once.layers[1].output._keras_mask.shape == (None, None)
    tokens = np.array([[1, 2, 0, 0], [3, 0, 0, 0]], np.int32)
    np.testing.assert_allclose(np.asarray(at_once(tokens)), np.asarray(by_layer(tokens)), rtol=1e-6)
    functional = lm.Model(at_once.inputs, at_once.layers[1].output)  # the graph is usable
    assert functional.output_shape == (None, None, 3)


def test_a_stack_with_a_layer_returning_two_tensors_gives_the_same_error():
    class Pair(lm.layers.Layer):
        def call(self, x):
            return x, x

    for make in (lambda: lm.Sequential([lm.Input((2,)), lm.layers.Dense(2), Pair(name="pair"), lm.layers.Dense(1)]),
                 lambda: [m.add(layer) for m in [lm.Sequential([lm.Input((2,))])]
                          for layer in (lm.layers.Dense(2), Pair(name="pair"), lm.layers.Dense(1))]):
        with pytest.raises(ValueError, match="layer 'pair' returns tuple of several tensors"):
            make()


def test_a_popped_name_can_be_used_again_and_duplicates_are_still_refused():
    model = lm.Sequential([lm.layers.Dense(2, name="a"), lm.layers.Dense(2, name="b")])
    model.pop()
    model.add(lm.layers.Dense(3, name="b"))
    with pytest.raises(ValueError, match="already has a layer named 'a'"):
        model.add(lm.layers.Dense(3, name="a"))
    assert [layer.name for layer in model.layers] == ["a", "b"]


def test_a_file_declaring_too_many_layers_is_refused_before_any_is_made(tmp_path, monkeypatch):
    path = tmp_path / "m.lamina"
    lm.Sequential([lm.Input((2,)), lm.layers.Dense(1)]).save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"] = [{"class_name": "Activation", "config": {}}] * (model_file.MAX_LAYERS + 1)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            method = zipfile.ZIP_STORED if name == "model.safetensors" else zipfile.ZIP_DEFLATED
            archive.writestr(name, data, method)
    assert path.stat().st_size < 64 * 1024  # a small file, which would make 100,001 layers

    def never(*args, **kwargs):
        raise AssertionError("a layer was made")

    monkeypatch.setattr(lm.Sequential, "from_config", classmethod(never))
    with pytest.raises(FileFormatError, match=f"declares more than {model_file.MAX_LAYERS} layers"):
        lm.load_model(path)


# -- item 12: a file truncated by another program during a load -----------------------------

_TRUNCATE_DURING_LOAD = textwrap.dedent("""
    import os, sys
    import lamina as lm
    from lamina.saving import weights

    path, how = sys.argv[1], sys.argv[2]
    model = lm.Sequential([lm.Input((64,)), lm.layers.Dense(4096, name="wide")])
    model.save(path) if path.endswith(".lamina") else model.save_weights(path)
    found = weights.targets_for_loading

    def truncate_first(model, view, **kwargs):  # the file is open and its header read: now it shrinks
        os.truncate(path, 4096)
        return found(model, view, **kwargs)

    weights.targets_for_loading = truncate_first
    try:
        lm.load_model(path) if how == "load_model" else model.load_weights(path)
        print("loaded")
    except Exception as error:
        print(f"{type(error).__name__}: {error}")
""")


@pytest.mark.parametrize("name, how", [("w.safetensors", "load_weights"), ("m.lamina", "load_weights"),
                                       ("m.lamina", "load_model")])
def test_a_file_truncated_during_the_load_raises_instead_of_killing_the_process(tmp_path, name, how):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", _TRUNCATE_DURING_LOAD, str(tmp_path / name), how],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, f"the process died (signal {-done.returncode}): {done.stderr[-2000:]}"
    outcome = done.stdout.strip().splitlines()[-1]
    assert outcome.startswith("FileFormatError: ") and "was truncated by another program" in outcome, outcome
    assert name in outcome


_TRUNCATE_DURING_COPY = textwrap.dedent("""
    import contextlib, os, sys
    import jax
    import lamina as lm
    from lamina.saving import weights
    from lamina.saving.safetensors_reader import SafetensorsView

    folder = sys.argv[1]
    state = {}
    found, copy, make = weights.targets_for_loading, SafetensorsView._host_copy, jax.make_array_from_callback

    def armed(model, view, **kwargs):  # the file is open and checked: the next copy from it is the target
        targets = found(model, view, **kwargs)
        state["armed"] = True
        return targets

    def truncate(when):
        if state.get("when") == when and state.pop("armed", False):
            os.truncate(state["path"], 0)

    def truncating_copy(self, key):  # one device: the first weight has been read, the others follow
        array = copy(self, key)
        truncate("assign")
        return array

    def truncating_make(shape, sharding, read, *args, **kwargs):  # several: its device regions
        truncate("regions")
        return make(shape, sharding, read, *args, **kwargs)

    weights.targets_for_loading, SafetensorsView._host_copy, jax.make_array_from_callback = armed, truncating_copy, truncating_make
    cases = [("w.safetensors", "load_weights", "assign"), ("m.lamina", "load_weights", "assign"),
             ("m.lamina", "load_model", "assign"), ("w.safetensors", "load_weights", "regions")]
    for name, how, when in cases:
        state.update(path=os.path.join(folder, how + "_" + when + "_" + name), when=when)
        path = state["path"]
        with lm.distribution.DataParallel().scope() if when == "regions" else contextlib.nullcontext():
            model = lm.Sequential([lm.Input((64,)), lm.layers.Dense(4096, name="wide"), lm.layers.Dense(8)])
            model.save(path) if path.endswith(".lamina") else model.save_weights(path)
            try:
                lm.load_model(path) if how == "load_model" else model.load_weights(path)
                print("loaded", flush=True)
            except Exception as error:
                print(f"{type(error).__name__}: {error}", flush=True)
""")


def test_a_file_truncated_while_a_tensor_is_copied_raises_instead_of_killing_the_process(tmp_path):
    # Reading a memory-mapped page past the new end of the file is a SIGBUS; a size check before
    # each tensor still left the copy itself exposed.
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, "-c", _TRUNCATE_DURING_COPY, str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, f"the process died (signal {-done.returncode}): {done.stderr[-2000:]}"
    outcomes = done.stdout.strip().splitlines()[-4:]
    assert len(outcomes) == 4, done.stdout
    for outcome in outcomes:
        assert outcome.startswith("FileFormatError: ") and "was truncated by another program" in outcome, outcome
