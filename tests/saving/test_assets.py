"""``save_assets`` / ``load_assets`` in ``.lamina`` files (Keras's customizing-saving guide):
round trips through every kind of model, the archive layout, and hand-built archives that
try to write outside the temporary folder, exhaust the disk or smuggle damaged files."""

import io
import json
import os
import re
import stat
import struct
import zipfile
import zlib

import numpy as np
import pytest

import lamina as lm
from lamina.__main__ import main
from lamina.saving import FileFormatError
from lamina.saving import assets as assets_lib
from lamina.saving.archive import ModelArchive

STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED


@lm.saving.register_serializable(package="test_assets")
class Vocabulary(lm.layers.Dense):
    """A Dense layer with a vocabulary kept in files: two at the top, one in a subfolder."""

    def __init__(self, units=2, vocab="", **kwargs):
        super().__init__(units, **kwargs)
        self.vocab = vocab
        self.loaded_from = None

    def save_assets(self, folder):
        with open(os.path.join(folder, "vocabulary.txt"), "w") as f:
            f.write(self.vocab)
        with open(os.path.join(folder, "sizes.bin"), "wb") as f:
            f.write(np.arange(len(self.vocab), dtype="int32").tobytes())
        os.mkdir(os.path.join(folder, "extra"))
        with open(os.path.join(folder, "extra", "note.txt"), "w") as f:
            f.write(f"{self.name} note")

    def load_assets(self, folder):
        self.loaded_from = _listing(folder)
        with open(os.path.join(folder, "vocabulary.txt")) as f:
            self.vocab = f.read()
        self.sizes = np.fromfile(os.path.join(folder, "sizes.bin"), dtype="int32")
        with open(os.path.join(folder, "extra", "note.txt")) as f:
            self.note = f.read()


@lm.saving.register_serializable(package="test_assets")
class Block(lm.Layer):
    """A layer with its own asset and a nested Vocabulary layer with its own."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lookup = Vocabulary(3, vocab="inner words")
        self.tag = "block tag"

    def call(self, x):
        return self.lookup(x)

    def save_assets(self, folder):
        with open(os.path.join(folder, "tag.txt"), "w") as f:
            f.write(self.tag)

    def load_assets(self, folder):
        self.loaded_from = _listing(folder)
        with open(os.path.join(folder, "tag.txt")) as f:
            self.tag = f.read()


@lm.saving.register_serializable(package="test_assets")
class Tagged(lm.Model):
    """A subclassed model that saves an asset of its own, holding a nested Block."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.block = Block()
        self.head = lm.layers.Dense(1)
        self.label = "original"

    def call(self, x):
        return self.head(self.block(x))

    def save_assets(self, folder):
        with open(os.path.join(folder, "label.txt"), "w") as f:
            f.write(self.label)

    def load_assets(self, folder):
        self.loaded_from = _listing(folder)
        with open(os.path.join(folder, "label.txt")) as f:
            self.label = f.read()


@lm.saving.register_serializable(package="test_assets")
class Quiet(lm.layers.Dense):
    """Defines both methods, writes nothing."""

    def save_assets(self, folder):
        self.saved_into = folder

    def load_assets(self, folder):
        self.loaded_from = _listing(folder)
        self.folder_existed = os.path.isdir(folder)


def _listing(folder):
    return sorted(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
                  for root, dirs, files in os.walk(folder) for name in files)


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


X = np.linspace(-1, 1, 12, dtype="float32").reshape(4, 3)


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The folder ``tempfile`` uses in this test (lamina's temporary folders must vanish)."""
    import tempfile

    folder = tmp_path / "system_tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _sequential():
    return lm.Sequential([lm.Input((3,)), Vocabulary(4, vocab="Mary had a little lamb", name="vocab"),
                          lm.layers.Dense(1, name="out")])


def test_sequential_round_trip_restores_every_file(tmp_path, scratch):
    model = _sequential()
    path = tmp_path / "seq.lamina"
    model.save(path)
    members = _members(path)
    assert sorted(members) == ["assets/vocab/extra/note.txt", "assets/vocab/sizes.bin", "assets/vocab/vocabulary.txt",
                               "config.json", "metadata.json", "model.safetensors"]
    assert json.loads(members["metadata.json"])["assets"] == ["vocab"]
    restored = lm.load_model(path)
    layer = restored.layers[0]
    assert layer.vocab == "Mary had a little lamb"
    np.testing.assert_array_equal(layer.sizes, np.arange(22))
    assert layer.note == "vocab note"
    assert layer.loaded_from == ["extra/note.txt", "sizes.bin", "vocabulary.txt"]
    np.testing.assert_array_equal(restored.predict(X, verbose=0), model.predict(X, verbose=0))
    assert list(scratch.iterdir()) == []  # the save's and the load's folders are gone


def test_functional_round_trip(tmp_path, scratch):
    inputs = lm.Input((3,))
    outputs = lm.layers.Dense(1, name="score")(Vocabulary(2, vocab="functional", name="words")(inputs))
    model = lm.Model(inputs, outputs)
    model.save(tmp_path / "fn.lamina")
    assert "assets/words/vocabulary.txt" in _members(tmp_path / "fn.lamina")
    restored = lm.load_model(tmp_path / "fn.lamina")
    assert restored.get_layer("words").vocab == "functional"
    np.testing.assert_array_equal(restored.predict(X, verbose=0), model.predict(X, verbose=0))
    assert list(scratch.iterdir()) == []


def test_subclassed_model_nested_layers_each_get_exactly_their_own_files(tmp_path, scratch):
    model = Tagged()
    model(X)
    model.label, model.block.tag, model.block.lookup.vocab = "changed label", "changed tag", "changed words"
    path = tmp_path / "sub.lamina"
    model.save(path)
    members = _members(path)
    assert sorted(m for m in members if m.startswith("assets/")) == [
        "assets/block/lookup/extra/note.txt", "assets/block/lookup/sizes.bin", "assets/block/lookup/vocabulary.txt",
        "assets/block/tag.txt", "assets/label.txt"]
    assert json.loads(members["metadata.json"])["assets"] == ["", "block", "block/lookup"]
    restored = lm.load_model(path)
    assert (restored.label, restored.block.tag, restored.block.lookup.vocab) == (
        "changed label", "changed tag", "changed words")
    # Each folder holds only what its own layer wrote, not its sublayers' files.
    assert restored.loaded_from == ["label.txt"]
    assert restored.block.loaded_from == ["tag.txt"]
    assert restored.block.lookup.loaded_from == ["extra/note.txt", "sizes.bin", "vocabulary.txt"]
    np.testing.assert_array_equal(restored(X), model(X))
    assert list(scratch.iterdir()) == []


def test_a_layer_that_writes_nothing_keeps_the_original_format_and_gets_an_empty_folder(tmp_path, scratch):
    model = lm.Sequential([lm.Input((3,)), Quiet(2, name="quiet")])
    path = tmp_path / "quiet.lamina"
    model.save(path)
    assert not os.path.exists(model.layers[0].saved_into)  # removed after the save
    members = _members(path)
    assert sorted(members) == ["config.json", "metadata.json", "model.safetensors"]
    assert "assets" not in json.loads(members["metadata.json"])
    restored = lm.load_model(path)
    assert restored.layers[0].loaded_from == [] and restored.layers[0].folder_existed
    assert list(scratch.iterdir()) == []


def test_a_model_without_assets_is_unchanged_and_creates_no_folder(tmp_path, scratch):
    model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
    model.save(tmp_path / "plain.lamina")
    members = _members(tmp_path / "plain.lamina")
    assert list(members) == ["metadata.json", "config.json", "model.safetensors"]
    assert set(json.loads(members["metadata.json"])) == {"format", "format_version", "lamina_version",
                                                         "jax_version", "date_saved"}
    lm.load_model(tmp_path / "plain.lamina")
    assert list(scratch.iterdir()) == []


def test_load_weights_reads_a_file_with_assets_and_ignores_them(tmp_path):
    model = _sequential()
    model.save(tmp_path / "seq.lamina")
    copy = _sequential()
    copy.layers[0].vocab = "untouched"
    copy.load_weights(tmp_path / "seq.lamina")
    assert copy.layers[0].vocab == "untouched"
    np.testing.assert_array_equal(copy.predict(X, verbose=0), model.predict(X, verbose=0))
    copy.save_weights(tmp_path / "w.safetensors")  # a weights file carries no assets, as Keras's
    assert b"Mary" not in (tmp_path / "w.safetensors").read_bytes()


# -- what save refuses ----------------------------------------------------------------------


class Linking(lm.layers.Dense):
    def save_assets(self, folder):
        os.symlink("/etc/hostname", os.path.join(folder, "link.txt"))


class Unnameable(lm.layers.Dense):
    def save_assets(self, folder):
        with open(os.path.join(folder, "a:b.txt"), "w") as f:
            f.write("x")


class Crowding(Block):
    """Writes ``lookup/vocabulary.txt`` where its sublayer ``lookup``'s files go."""

    def save_assets(self, folder):
        os.mkdir(os.path.join(folder, "lookup"))
        with open(os.path.join(folder, "lookup", "vocabulary.txt"), "w") as f:
            f.write("mine")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
@pytest.mark.parametrize("layer, match", [
    (lambda: Linking(2, name="linking"), "layer 'sequential.*/linking'.*'link.txt', which is a link"),
    (lambda: Unnameable(2, name="odd"), "'a:b.txt'.*character ':'"),
    (lambda: Crowding(name="crowd"), "crowd'.*'lookup/vocabulary.txt'.*sublayer 'crowd/lookup'"),
], ids=["link", "colon", "sublayer-folder"])
def test_save_refuses_assets_it_could_not_read_back_and_writes_nothing(tmp_path, scratch, layer, match):
    model = lm.Sequential([lm.Input((3,)), layer()])
    with pytest.raises(ValueError, match=f"(?i){match}"):
        model.save(tmp_path / "m.lamina")
    assert list(tmp_path.iterdir()) == [scratch]  # no model file, no temporary one
    assert list(scratch.iterdir()) == []


# -- hand-built archives --------------------------------------------------------------------


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A valid file with assets: its bytes' members ({name: bytes}) in order."""
    path = tmp_path_factory.mktemp("good") / "m.lamina"
    _sequential().save(path)
    return _members(path)


def _zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name)
            info.compress_type = STORED if info.filename.endswith(".safetensors") else DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def _with(good, *entries, metadata_assets=None):
    """``good``'s members plus ``entries`` ((name or ZipInfo, bytes)); optionally another
    ``"assets"`` list in metadata.json."""
    members = dict(good)
    if metadata_assets is not None:
        metadata = json.loads(members["metadata.json"])
        metadata["assets"] = metadata_assets
        members["metadata.json"] = json.dumps(metadata).encode()
    members.update(entries)
    return _zip(members)


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


def _raw(good, *entries):
    """``good``'s members, stored as they are, then raw ``entries``."""
    base = [(name, data, STORED, zlib.crc32(data), len(data)) if name.endswith(".safetensors")
            else (name, _deflated(data), DEFLATED, zlib.crc32(data), len(data)) for name, data in good.items()]
    return _raw_zip([*base, *entries])


def _deflated(data):
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def _tree(folder):
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, dirs, files in os.walk(folder) for name in dirs + files)


def _refuse(tmp_path, scratch, data, match):
    """``lm.load_model`` refuses ``data`` with a FileFormatError; nothing appears anywhere
    near, and lamina's temporary folder is gone."""
    folder = tmp_path / "work"
    folder.mkdir(exist_ok=True)
    path = folder / "attack.lamina"
    path.write_bytes(data)
    around = _tree(tmp_path.parent)
    with pytest.raises(FileFormatError, match=match):
        lm.load_model(path)
    assert _tree(tmp_path.parent) == around
    assert list(scratch.iterdir()) == []
    assert not os.path.exists("/tmp/lamina_asset_escape.txt")


@pytest.mark.parametrize("name, reason", [
    ("assets/vocab/../../escaped.txt", "it has a '..' segment"),
    ("assets/../escaped.txt", "it has a '..' segment"),
    ("assets//tmp/lamina_asset_escape.txt", "it is absolute"),
    ("assets/vocab/./x", "it has a '.' segment"),
    ("assets/vocab\\..\\..\\escaped.txt", r"it has the character '\\'"),
    ("assets/C:/escaped.txt", "it has the character ':'"),
    ("assets/vocab/evil\x1b[2J.txt", r"it has the character '\x1b'"),
    ("assets/vocab/folder/", "it has an empty segment"),
], ids=["traversal", "assets-parent", "absolute", "dot", "backslash", "drive", "control", "directory"])
def test_unsafe_asset_names_are_refused_before_anything_is_written(tmp_path, scratch, good, name, reason):
    _refuse(tmp_path, scratch, _with(good, (name, b"owned")),
            match=re.escape(f"is not a safe relative path ({reason})."))
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path.parent / "escaped.txt").exists()


def test_an_absolute_name_outside_assets_is_an_unexpected_member(tmp_path, scratch, good):
    _refuse(tmp_path, scratch, _with(good, ("/tmp/lamina_asset_escape.txt", b"owned")), match="unexpected members")


@pytest.mark.parametrize("kind", [stat.S_IFLNK, stat.S_IFDIR, stat.S_IFCHR])
def test_links_and_special_files_are_refused(tmp_path, scratch, good, kind):
    info = zipfile.ZipInfo("assets/vocab/link.txt")
    info.external_attr = (kind | 0o777) << 16
    _refuse(tmp_path, scratch, _with(good, (info, b"/etc/passwd")), match="is (a link|not a regular file)")


def test_an_asset_bomb_over_the_size_limit_is_refused_unread(tmp_path, scratch, good, monkeypatch):
    monkeypatch.setattr(assets_lib, "MAX_ASSET_BYTES", 1 << 20)
    bomb = _deflated(bytes(2 << 20))  # 2 MiB of zeros in a few kilobytes
    _refuse(tmp_path, scratch, _raw(good, ("assets/vocab/bomb.bin", bomb, DEFLATED, zlib.crc32(bytes(2 << 20)), 2 << 20)),
            match=r"declare \d+ bytes \(the limits are 1000 files and 1048576 bytes\)")


def test_an_asset_lying_about_its_size_stops_at_the_declared_size(tmp_path, scratch, good):
    payload = _deflated(bytes(4 << 20))  # declares 100 bytes, inflates to 4 MiB
    _refuse(tmp_path, scratch, _raw(good, ("assets/vocab/bomb.bin", payload, DEFLATED, 0, 100)),
            match="asset 'assets/vocab/bomb.bin' could not be read .*CRC")


def test_too_many_asset_members_are_refused_before_the_directory_is_parsed(tmp_path, scratch, good):
    entries = [(f"assets/vocab/{i}", b"", STORED, 0, 0) for i in range(assets_lib.MAX_ASSET_FILES + 1)]
    _refuse(tmp_path, scratch, _raw(good, *entries), match=f"declares {len(good) + assets_lib.MAX_ASSET_FILES + 1} members")


def test_too_many_asset_files_under_the_directory_limit_are_refused(tmp_path, scratch, good, monkeypatch):
    monkeypatch.setattr(assets_lib, "MAX_ASSET_FILES", 3)
    _refuse(tmp_path, scratch, _with(good, ("assets/vocab/more.txt", b"x")), match="its 4 asset files")


def test_a_truncated_asset_is_refused_and_its_partial_file_removed(tmp_path, scratch, good):
    data = os.urandom(50_000)
    cut = _deflated(data)[:1000]
    _refuse(tmp_path, scratch, _raw(good, ("assets/vocab/cut.bin", cut, DEFLATED, zlib.crc32(data), len(data))),
            match="asset 'assets/vocab/cut.bin' could not be read")


def test_an_asset_with_a_flipped_byte_fails_its_crc(tmp_path, scratch, good):
    data = b"vocabulary " * 100
    _refuse(tmp_path, scratch, _raw(good, ("assets/vocab/v.txt", data, STORED, zlib.crc32(data) ^ 1, len(data))),
            match="could not be read .*CRC")


def test_a_stored_asset_declaring_more_than_it_holds_is_refused(tmp_path, scratch, good):
    _refuse(tmp_path, scratch, _raw(good, ("assets/vocab/v.txt", b"abc", STORED, zlib.crc32(b"abc"), 3000)),
            match="stores 3 bytes but declares 3000")


def test_a_name_that_is_both_a_file_and_a_folder_is_refused(tmp_path, scratch, good):
    _refuse(tmp_path, scratch, _with(good, ("assets/vocab/extra", b"x")), match="both an asset file and the folder")


@pytest.mark.parametrize("keys, match", [
    (None, None), (["other"], "belongs to no layer that metadata.json lists"),
    (["vocab", "vocab"], "lists 'vocab' twice"), ("vocab", "not a list of layer keys"),
    (["vocab", "../x"], "layer key '../x' is not a safe path"),
], ids=["no-entry", "other-key", "duplicate", "string", "unsafe-key"])
def test_assets_must_belong_to_a_listed_layer(tmp_path, scratch, good, keys, match):
    members = dict(good)
    metadata = json.loads(members["metadata.json"])
    if keys is None:
        del metadata["assets"]
        match = "belongs to no layer that metadata.json lists"
    else:
        metadata["assets"] = keys
    members["metadata.json"] = json.dumps(metadata).encode()
    _refuse(tmp_path, scratch, _zip(members), match=match)


def test_assets_for_a_layer_the_model_lacks_or_cannot_load_are_refused(tmp_path, scratch, good):
    _refuse(tmp_path, scratch, _with(good, ("assets/ghost/x.txt", b"x"), metadata_assets=["vocab", "ghost"]),
            match="assets for layer 'ghost', which is not in the model its config describes")
    _refuse(tmp_path, scratch, _with(good, ("assets/out/x.txt", b"x"), metadata_assets=["vocab", "out"]),
            match="assets for layer 'out', which defines no load_assets")


# -- inspect --------------------------------------------------------------------------------


def test_inspect_lists_asset_files_and_sizes_without_extracting(tmp_path, scratch, monkeypatch):
    model = Tagged()
    model(X)
    model.save(tmp_path / "sub.lamina")
    monkeypatch.setattr(ModelArchive, "extract_asset", lambda *a: pytest.fail("inspect extracted an asset"))
    out, err = io.StringIO(), io.StringIO()
    assert main(["inspect", str(tmp_path / "sub.lamina")], stdout=out, stderr=err) == 0, err.getvalue()
    text = out.getvalue()
    assert "Assets (5 files" in text
    note = len(f"{model.block.lookup.name} note")  # what Vocabulary writes in note.txt
    expected = {"assets/label.txt": ("(the model)", 8), "assets/block/tag.txt": ("block", 9),
                "assets/block/lookup/vocabulary.txt": ("block/lookup", 11),
                "assets/block/lookup/sizes.bin": ("block/lookup", 44),
                "assets/block/lookup/extra/note.txt": ("block/lookup", note)}
    for name, (layer, size) in expected.items():
        assert f"│ {name} " in text and f"│ {layer} " in text
        row = next(line for line in text.splitlines() if f"│ {name} " in line)
        assert row.split("│")[-2].strip() == str(size), row
    assert list(scratch.iterdir()) == []
