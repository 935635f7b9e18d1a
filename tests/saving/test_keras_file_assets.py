"""Keras-written ``.keras`` files with assets: adapted ``IntegerLookup`` / ``TextVectorization``
vocabularies (``assets/<layer path>/vocabulary.txt``) and tf_idf weights (a weights-file entry)
load into lamina with Keras's outputs; hostile or stray asset members are refused, naming them,
before any layer loads anything."""

from __future__ import annotations

import stat
import warnings
import zipfile

import numpy as np
import pytest

import lamina as lm
from lamina.layers.preprocessing.index_lookup import IndexLookup
from lamina.saving import assets as assets_lib
from lamina.saving.errors import FileFormatError
from tests.saving.keras_cases import keras_module

pytest.importorskip("h5py")
keras = pytest.importorskip("keras")

TOKENS = np.array([[4, 8, 8], [15, 16, 23], [42, 8, 4], [16, 16, 16]], "int64")
PROBE = np.array([[4, 99, 8], [23, 42, 0], [16, 5, 15]], "int64")  # 99, 5, 0: never seen
TEXTS = np.array(["The cat sat.", "the dog ran far", "a cat, a dog"])
TEXT_PROBE = np.array(["the cat", "zebra far dog", ""])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Keras files: a functional model with an adapted int lookup and an adapted tf_idf
    lookup, and a Sequential holding an adapted tf_idf TextVectorization (its weights file)."""
    keras = keras_module()
    folder = tmp_path_factory.mktemp("keras_assets")
    ids = keras.Input((3,), dtype="int64")
    # Named: Keras's automatic names count the layers made before in this process.
    lookup = keras.layers.IntegerLookup(num_oov_indices=2, name="integer_lookup")
    lookup.adapt(TOKENS)
    tf_idf = keras.layers.IntegerLookup(output_mode="tf_idf", name="integer_lookup_1")
    tf_idf.adapt(TOKENS)
    embedded = keras.layers.Flatten()(keras.layers.Embedding(lookup.vocabulary_size(), 2)(lookup(ids)))
    outputs = keras.layers.Dense(2, name="dense")(keras.layers.Concatenate()([embedded, tf_idf(ids)]))
    model = keras.Model(ids, outputs)
    model.save(folder / "lookups.keras")
    model.save_weights(folder / "lookups.weights.h5")
    vectorize = keras.layers.TextVectorization(max_tokens=12, output_mode="tf_idf")
    vectorize.adapt(TEXTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unbuilt Sequential (a string input cannot be declared in lamina)
        keras.Sequential([vectorize]).save(folder / "text.keras")
        expected = np.asarray(model(PROBE.astype("int32")))
    return {"lookups": folder / "lookups.keras", "weights": folder / "lookups.weights.h5",
            "text": folder / "text.keras", "expected": expected, "expected_text": np.asarray(vectorize(TEXT_PROBE))}


def members_of(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: (info, archive.read(info)) for info in archive.infolist()}


def craft(source, target, extra=(), drop=(), replace=None):
    """A copy of ``source`` without members ``drop``, with ``extra`` ``(ZipInfo or name, bytes)`` added."""
    with zipfile.ZipFile(target, "w") as archive:
        for name, (info, data) in members_of(source).items():
            if name not in drop:
                archive.writestr(info, (replace or {}).get(name, data))
        for info, data in extra:
            archive.writestr(info, data)
    return target


@pytest.fixture
def load_calls(monkeypatch):
    """The lookups whose load_assets ran (none may run when a file is refused)."""
    calls = []
    original = IndexLookup.load_assets

    def recording(self, folder):
        calls.append(self.name)
        return original(self, folder)

    monkeypatch.setattr(IndexLookup, "load_assets", recording)
    return calls


def test_adapted_lookups_load_with_kerass_outputs(files, load_calls):
    assert any(name.startswith("assets/layers/integer_lookup") for name in members_of(files["lookups"]))
    model = lm.load_model(files["lookups"])
    assert sorted(load_calls) == ["integer_lookup", "integer_lookup_1"]
    np.testing.assert_allclose(np.asarray(model(PROBE)), files["expected"], atol=1e-5, rtol=1e-5)
    lookup = next(layer for layer in model.layers if layer.name == "integer_lookup")
    assert lookup.get_vocabulary() == [-1, -1, 16, 8, 4, 42, 23, 15]  # two OOV slots, by count


def test_text_vectorization_takes_its_vocabulary_and_idf_weights(files):
    model = lm.load_model(files["text"])
    np.testing.assert_allclose(np.asarray(model.layers[0](TEXT_PROBE)), files["expected_text"], atol=1e-6)


def test_a_keras_weights_file_sets_the_idf_weights(files):
    model = lm.load_model(files["lookups"])
    tf_idf = next(layer for layer in model.layers if getattr(layer, "output_mode", None) == "tf_idf")
    expected = tf_idf.idf_weights.copy()
    tf_idf.idf_weights = np.zeros_like(expected)
    model.load_weights(files["weights"])
    np.testing.assert_array_equal(tf_idf.idf_weights, expected)


def _link(name):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("extra, message", [
    (("assets/../evil.txt", b"x"), r"asset member 'assets/../evil.txt' is not a safe relative path \(it has a '..'"),
    (("assets/layers/integer_lookup/C:x", b"x"), r"not a safe relative path \(it has the character ':'\)"),
    ((_link("assets/layers/integer_lookup/vocabulary.txt2"), b"/etc/passwd"), r"is a link"),
    (("assets/layers/integer_lookup/run.py", b"print(1)"),
     r"asset 'assets/layers/integer_lookup/run.py' is not for layer 'integer_lookup' .*reads only 'vocabulary.txt'"),
    (("assets/layers/dense/weights.txt", b"1"),
     r"asset 'assets/layers/dense/weights.txt' belongs to layer 'dense' \(Dense.*takes no assets"),
    (("assets/notes.txt", b"hi"), r"asset 'assets/notes.txt' belongs to the model '\w+' itself, which takes no"),
    (("assets/layers/nothing/vocabulary.txt", b"1"),
     r"belongs to the model '\w+' itself \(no layer of the model sits at 'layers/nothing'\), which takes no"),
])
def test_a_hostile_or_stray_asset_is_refused_naming_it(files, tmp_path, load_calls, extra, message):
    path = craft(files["lookups"], tmp_path / "bad.keras", extra=[extra])
    with pytest.raises(FileFormatError, match=message):
        lm.load_model(path)
    assert load_calls == []


def test_too_many_asset_bytes_are_refused_before_extraction(files, monkeypatch, load_calls):
    monkeypatch.setattr(assets_lib, "MAX_ASSET_BYTES", 8)
    with pytest.raises(FileFormatError, match=r"asset files declare \d+ bytes \(the limits are .*MAX_ASSET_BYTES = 8"):
        lm.load_model(files["lookups"])
    assert load_calls == []


def test_a_tf_idf_vocabulary_without_its_idf_weights_is_refused(files, tmp_path, load_calls):
    import h5py

    members = members_of(files["lookups"])
    h5_path = tmp_path / "w.h5"
    h5_path.write_bytes(members["model.weights.h5"][1])
    with h5py.File(h5_path, "r+") as h5:
        del h5["layers/integer_lookup_1/vars/idf_weights"]
    path = craft(files["lookups"], tmp_path / "no_idf.keras", replace={"model.weights.h5": h5_path.read_bytes()})
    with pytest.raises(FileFormatError, match=r"layer 'integer_lookup_1'.*no dataset "
                                              r"'layers/integer_lookup_1/vars/idf_weights'"):
        lm.load_model(path)
    assert load_calls == []


def test_a_bad_vocabulary_names_the_layer(files, tmp_path):
    member = "assets/layers/integer_lookup/vocabulary.txt"
    path = craft(files["lookups"], tmp_path / "words.keras", replace={member: b"-1\n-1\nseven\n"})
    with pytest.raises(FileFormatError, match=r"assets of layer 'integer_lookup' .*could not be loaded"):
        lm.load_model(path)


def test_a_damaged_asset_is_refused(files, tmp_path):
    member = "assets/layers/integer_lookup/vocabulary.txt"
    data = files["lookups"].read_bytes()
    original = members_of(files["lookups"])[member][1]
    offset = data.index(original)  # stored uncompressed, as Keras writes it
    flipped = data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]
    (tmp_path / "flipped.keras").write_bytes(flipped)
    with pytest.raises(FileFormatError, match=r"damaged: asset 'assets/layers/integer_lookup/vocabulary.txt'"):
        lm.load_model(tmp_path / "flipped.keras")


def test_idf_weights_without_their_vocabulary_are_refused(files, tmp_path, load_calls):
    path = craft(files["lookups"], tmp_path / "no_vocabulary.keras",
                 drop={"assets/layers/integer_lookup_1/vocabulary.txt"})
    with pytest.raises(FileFormatError, match=r"idf weights \('layers/integer_lookup_1/vars/idf_weights'\).*has no "
                                              r"vocabulary .*'assets/layers/integer_lookup_1/vocabulary.txt'"):
        lm.load_model(path)
    assert load_calls == []
