"""The ``.keras`` zip: ``metadata.json``, ``config.json``, ``model.weights.h5`` and ``assets/...``.

Reading checks the zip's directory before ``zipfile`` parses it, refuses unknown, duplicate,
encrypted or oddly compressed members, reads the JSON members with a byte cap whatever their
declared size, and copies the weights member (declared size checked against
``MAX_WEIGHTS_BYTES`` first, the copy stopped at the declared size, its CRC-32 checked by
``zipfile``) to a private temporary file that h5py then opens. Asset members (Keras writes
``assets/<layer path>/vocabulary.txt`` for adapted lookups) pass the rules of ``.lamina``
files' assets (``lamina/saving/assets.py``): safe relative names, regular files, at most
``MAX_ASSET_FILES`` of them and ``MAX_ASSET_BYTES`` declared in all. They are extracted only
when ``assets_in.py`` has given each one to a layer, file by file, never by ``zipfile.extract``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib

from lamina.saving import assets as assets_lib
from lamina.saving.archive import MAX_JSON_BYTES as _LAMINA_JSON_BYTES
from lamina.saving.archive import _end_of_central_directory, copy_member, read_json_member
from lamina.saving.atomic import atomic_write
from lamina.saving.errors import FileFormatError
from lamina.saving.safetensors_reader import open_regular_file

METADATA, CONFIG, WEIGHTS = "metadata.json", "config.json", "model.weights.h5"
MEMBERS = (METADATA, CONFIG, WEIGHTS)
MAX_JSON_BYTES = {METADATA: _LAMINA_JSON_BYTES["metadata.json"], CONFIG: _LAMINA_JSON_BYTES["config.json"]}
MAX_WEIGHTS_BYTES = 256 * 1024 ** 3
_MAX_MEMBERS = len(MEMBERS) + assets_lib.MAX_ASSET_FILES
_MAX_DIRECTORY_BYTES = _MAX_MEMBERS * (46 + assets_lib.MAX_NAME_BYTES + 128)
_CHUNK = 16 * 1024 * 1024


class KerasArchive:
    """``with KerasArchive(path) as archive:`` ``archive.config``, ``archive.metadata``,
    ``archive.weights_path`` (a temporary copy of ``model.weights.h5``, removed on exit) and
    ``archive.assets`` (the checked ``ZipInfo`` s of the asset members, read by ``extract_asset``)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.source = f"Keras model file {self.path!r}"

    def __enter__(self):
        self._folder = self._zip = None
        self._file = open_regular_file(self.path, self.source)
        file = self._file
        try:
            if not zipfile.is_zipfile(file):
                raise FileFormatError(f"{self.source} is not a .keras file: it is not a zip archive "
                                      "(or it is truncated: a zip's directory is at its end).")
            self._check_directory(file)
            self._zip = zipfile.ZipFile(file)
            infos = self._check_members(self._zip.infolist())
            self.metadata = self._read_json(self._zip, infos[METADATA])
            self.config = self._read_json(self._zip, infos[CONFIG])
            self._folder = tempfile.mkdtemp(prefix="lamina-keras-")
            self.weights_path = os.path.join(self._folder, WEIGHTS)
            self._copy_weights(self._zip, infos[WEIGHTS])
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError) as error:
            self.__exit__()
            raise FileFormatError(f"{self.source} is damaged: {error}") from None
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        self._file.close()

    def _check_directory(self, file) -> None:
        end_record = _end_of_central_directory(file)
        if end_record is not None and (end_record[4] > _MAX_MEMBERS or end_record[5] > _MAX_DIRECTORY_BYTES):
            raise FileFormatError(f"{self.source} is not a Keras model file: its zip directory declares "
                                  f"{end_record[4]} members in {end_record[5]} bytes (a .keras file has 3, "
                                  f"and at most {assets_lib.MAX_ASSET_FILES} asset files).")

    def _check_members(self, infos) -> dict:
        names = [info.filename for info in infos]
        unexpected = sorted({n for n in names if n not in MEMBERS and not n.startswith(assets_lib.ASSETS_PREFIX)})
        duplicates = sorted(name for name, count in collections.Counter(names).items() if count > 1)
        missing = [n for n in MEMBERS if n not in names]
        if unexpected or duplicates or missing:
            parts = [f"{what} {items!r}" for what, items in (("unexpected members", unexpected[:10]),
                     ("duplicate members", duplicates), ("missing members", missing)) if items]
            raise FileFormatError(f"{self.source} is not a Keras model file lamina reads: {'; '.join(parts)}.")
        for info in infos:
            if info.flag_bits & 0x1:
                raise FileFormatError(f"{self.source}: member {info.filename!r} is encrypted.")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise FileFormatError(f"{self.source}: member {info.filename!r} uses compression method "
                                      f"{info.compress_type}, which Keras does not write.")
        self.assets = [info for info in infos if info.filename not in MEMBERS]
        self._check_assets(set(names))
        return {info.filename: info for info in infos}

    def _check_assets(self, names: set) -> None:
        total = sum(info.file_size for info in self.assets)
        if len(self.assets) > assets_lib.MAX_ASSET_FILES or total > assets_lib.MAX_ASSET_BYTES:
            raise FileFormatError(f"{self.source}: its {len(self.assets)} asset files declare {total} bytes (the "
                                  f"limits are lamina.saving.assets.MAX_ASSET_FILES = {assets_lib.MAX_ASSET_FILES} "
                                  f"files and MAX_ASSET_BYTES = {assets_lib.MAX_ASSET_BYTES} bytes).")
        problem = assets_lib.member_problem(self.assets, names)
        if problem is not None:
            damaged, reason = problem
            raise FileFormatError(f"{self.source}{' is damaged' if damaged else ''}: {reason}")

    def extract_asset(self, info, folder: str, relative: str) -> None:
        """Write asset member ``info`` to ``folder/relative``: a new file below a folder the
        caller created (``relative`` is a name ``_check_assets`` passed), its size checked as it
        is copied and its CRC-32 by ``zipfile``."""
        copy_member(self._zip, info, os.path.join(folder, *relative.split("/")), self.source, ": asset")

    def _read_json(self, archive, info) -> dict:
        return read_json_member(archive, info, MAX_JSON_BYTES[info.filename], self.source)

    def _copy_weights(self, archive, info) -> None:
        if info.file_size > MAX_WEIGHTS_BYTES:
            raise FileFormatError(f"{self.source}: {WEIGHTS} declares {info.file_size} bytes (the limit is "
                                  f"lamina.saving.keras_files.archive.MAX_WEIGHTS_BYTES = {MAX_WEIGHTS_BYTES}).")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        written = 0
        with archive.open(info) as member, os.fdopen(os.open(self.weights_path, flags, 0o600), "wb") as out:
            while chunk := member.read(min(_CHUNK, info.file_size - written + 1)):
                written += len(chunk)
                if written > info.file_size:
                    raise FileFormatError(f"{self.source}: {WEIGHTS} expands past its declared {info.file_size} bytes.")
                out.write(chunk)
        if written != info.file_size:
            raise FileFormatError(f"{self.source} is truncated: {WEIGHTS} ends after {written} of its "
                                  f"{info.file_size} bytes.")


def write_keras_archive(path, metadata: dict, config: dict, write_weights) -> None:
    """Write a ``.keras`` file atomically; ``write_weights(tmp_path)`` writes the h5 file."""
    with atomic_write(path) as tmp_archive:
        fd, tmp_weights = tempfile.mkstemp(suffix=".h5.tmp", dir=os.path.dirname(tmp_archive))
        os.close(fd)
        try:
            write_weights(tmp_weights)
            # Stored, as Keras writes its files.
            with zipfile.ZipFile(tmp_archive, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
                archive.writestr(METADATA, json.dumps(metadata))
                archive.writestr(CONFIG, json.dumps(config))
                archive.write(tmp_weights, WEIGHTS)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_weights)
