"""The ``.lamina`` model file: a zip of ``metadata.json``, ``config.json`` and ``model.safetensors``,
plus ``assets/...`` members when layers saved assets (``assets.py``).

Reading trusts nothing in the file. Member names are only compared with the three expected
names (never used as paths, so ``../../etc/passwd`` is just an unexpected member), except
asset names, which must be safe relative paths below ``assets/`` (no ``..``, absolute
names, backslashes, drive letters or links), at most ``MAX_ASSET_FILES`` of them and
``MAX_ASSET_BYTES`` declared in all, each owned by a layer key that ``metadata.json`` lists;
only ``extract_asset`` writes one, below a folder its caller created. The central
directory is size-checked before ``zipfile`` parses it (a file cannot make it build millions of
entries); duplicates, encryption, unknown members and unknown compression methods are refused;
the JSON members are read with a byte cap no matter what the zip declares (a zip bomb stops at
the cap); the weights member must be stored uncompressed, have a local header that agrees with
the central directory, lie inside the file and match its CRC-32 (a flipped or truncated byte
is caught) before its header is parsed. Nothing but assets is extracted to disk.
"""

from __future__ import annotations

import collections
import json
import mmap
import os
import shutil
import stat
import struct
import tempfile
import time
import zipfile
import zlib

from lamina.saving import assets as assets_lib
from lamina.saving.atomic import atomic_write
from lamina.saving.errors import FileFormatError
from lamina.saving.safetensors_reader import (
    SafetensorsView,
    close_map,
    drop_pages,
    file_reader,
    no_duplicate_keys,
    open_regular_file,
)

METADATA, CONFIG, WEIGHTS = "metadata.json", "config.json", "model.safetensors"
MEMBERS = (METADATA, CONFIG, WEIGHTS)
FORMAT_NAME = "lamina.model"
FORMAT_VERSION = 1
# Read caps per JSON member: configs of even very large models are a few megabytes, and a
# read may briefly hold twice its size (zipfile joins the inflated chunks).
MAX_JSON_BYTES = {METADATA: 1024 * 1024, CONFIG: 16 * 1024 * 1024}
MAX_MEMBERS = len(MEMBERS) + assets_lib.MAX_ASSET_FILES
# A central directory entry is 46 bytes, its name and its extra fields (zip64 sizes, padding):
# anything far larger is not ours, and is refused before zipfile builds an entry for each.
MAX_CENTRAL_DIRECTORY_BYTES = MAX_MEMBERS * (46 + assets_lib.MAX_NAME_BYTES + 128)
_CRC_CHUNK = 16 * 1024 * 1024
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # the fixed 30 bytes before a member's name


def write_archive(path, metadata: dict, config: dict, write_weights, assets=()) -> None:
    """Write the model file atomically; ``write_weights(tmp_path)`` writes the safetensors;
    ``assets`` are ``(member name, file path)`` pairs, added after the weights."""
    with atomic_write(path) as tmp_archive:
        fd, tmp_weights = tempfile.mkstemp(suffix=".safetensors.tmp", dir=os.path.dirname(tmp_archive))
        os.close(fd)
        try:
            write_weights(tmp_weights)
            with zipfile.ZipFile(tmp_archive, "w", allowZip64=True) as archive:
                archive.writestr(METADATA, json.dumps(metadata, indent=2), zipfile.ZIP_DEFLATED)
                # Compact, as Keras writes it: json's indenting encoder is pure Python, 10x slower
                # on the config of a model with thousands of layers.
                archive.writestr(CONFIG, json.dumps(config), zipfile.ZIP_DEFLATED)
                _write_weights_member(archive, tmp_weights)
                for member, source in assets:
                    _write_asset_member(archive, member, source)
        finally:
            os.unlink(tmp_weights)


_ALIGNMENT = 64  # bytes: copying an aligned tensor to the device is about twice as fast
_PADDING_FIELD_ID = 0xD935  # the zip "extra" field id Android's zipalign uses for padding


def _write_weights_member(archive, weights_path) -> None:
    """Add the safetensors file, stored (not compressed: weights barely compress, and a stored
    member can be read in place from a memory map), padded so that its tensor data starts
    on a 64-byte boundary of the file. The padding is an "extra" field of the member's local
    header, which readers skip."""
    size = os.path.getsize(weights_path)
    with open(weights_path, "rb") as source:
        header_size = int.from_bytes(source.read(8), "little")
        source.seek(0)
        info = zipfile.ZipInfo(WEIGHTS, date_time=time.localtime()[:6])
        info.compress_type, info.file_size = zipfile.ZIP_STORED, size
        zip64 = size * 1.05 > zipfile.ZIP64_LIMIT  # zipfile's own rule; it then adds 20 bytes
        data_start = (archive.fp.tell() + _LOCAL_HEADER.size + len(WEIGHTS) + (20 if zip64 else 0)
                      + 4 + 8 + header_size)
        padding = -data_start % _ALIGNMENT
        info.extra = struct.pack("<HH", _PADDING_FIELD_ID, padding) + bytes(padding)
        with archive.open(info, "w", force_zip64=zip64) as member:
            shutil.copyfileobj(source, member, _CRC_CHUNK)


def _write_asset_member(archive, member, source) -> None:
    info = zipfile.ZipInfo(member, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16  # a plain file, whatever the source's mode
    size = os.path.getsize(source)
    with open(source, "rb") as data, archive.open(info, "w", force_zip64=size * 1.05 > zipfile.ZIP64_LIMIT) as out:
        shutil.copyfileobj(data, out, _CRC_CHUNK)


class ModelArchive:
    """``with ModelArchive(path) as archive:`` ``archive.metadata``, ``archive.config`` and
    ``archive.weights`` (a checked ``SafetensorsView`` over the file's memory map);
    ``archive.assets`` (the asset members' ``ZipInfo`` s, checked, nothing extracted) and
    ``archive.asset_keys`` (the layer keys that own them)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.source = f"model file {self.path!r}"

    def __enter__(self):
        self._map = self._zip = None
        self._file = open_regular_file(self.path, self.source)
        try:
            self._open()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if getattr(self, "weights", None) is not None:
            self.weights.release()
        if self._map is not None:
            close_map(self._map)
        if self._zip is not None:
            self._zip.close()
        self._file.close()

    def error(self, message: str) -> FileFormatError:
        return FileFormatError(f"{self.source} {message}")

    def _open(self) -> None:
        size = os.fstat(self._file.fileno()).st_size
        if not zipfile.is_zipfile(self._file):
            raise FileFormatError(f"{self.source} is not a lamina model file: it is not a zip archive "
                                  "(or it is truncated: a zip's directory is at its end).")
        try:
            self._check_directory_size()
            with zipfile.ZipFile(self._file) as archive:
                infos = self._check_members(archive.infolist())
                self.metadata = self._read_json(archive, infos[METADATA])
                self.config = self._read_json(archive, infos[CONFIG])
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
                NotImplementedError, struct.error) as error:
            raise FileFormatError(f"{self.source} is damaged: {error}") from None
        self._check_metadata()
        self._check_asset_owners()
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        start, end = self._stored_range(infos[WEIGHTS], size)
        if self._crc32(start, end) != infos[WEIGHTS].CRC:
            raise FileFormatError(f"{self.source} is damaged: the weights fail their CRC-32 check.")
        data = memoryview(self._map)[start:end]
        # The member's CRC-32 covers every tensor: the per-tensor checksums need no second pass.
        # The callbacks hold the map and the file, not the archive: a reference cycle through
        # the view would leave its tens of thousands of entries to the garbage collector.
        mapping, file = self._map, self._file
        self.weights = SafetensorsView(data, source=f"{self.source} ({WEIGHTS})", verified=True,
                                       release_pages=lambda a, b: drop_pages(mapping, start + a, start + b),
                                       file_size=lambda: os.fstat(file.fileno()).st_size - start,
                                       read_into=file_reader(self._file, start, f"{self.source} ({WEIGHTS})"))

    def _crc32(self, start: int, end: int) -> int:
        """The CRC-32 of the file's bytes ``[start, end)``, read in chunks into one buffer
        (faster than faulting the memory map in, and nothing stays resident)."""
        crc, chunk = 0, bytearray(min(_CRC_CHUNK, max(end - start, 1)))
        self._file.seek(start)
        with memoryview(chunk) as window:
            for offset in range(start, end, len(chunk)):
                read = self._file.readinto(window[:min(len(chunk), end - offset)])
                if not read:
                    raise FileFormatError(f"{self.source} is truncated inside {WEIGHTS}.")
                crc = zlib.crc32(window[:read], crc)
        return crc

    def _check_directory_size(self) -> None:
        """Refuse a central directory too big for three members before zipfile reads it all."""
        end_record = _end_of_central_directory(self._file)
        if end_record is None:
            return  # zipfile reports what is wrong
        entries, directory_size = end_record[_ECD_ENTRIES_TOTAL], end_record[_ECD_SIZE]
        if entries > MAX_MEMBERS or directory_size > MAX_CENTRAL_DIRECTORY_BYTES:
            raise FileFormatError(
                f"{self.source} is not a valid lamina model file: its zip directory declares "
                f"{entries} members in {directory_size} bytes (a model file has {len(MEMBERS)}, and at "
                f"most {assets_lib.MAX_ASSET_FILES} asset files)."
            )

    def _check_members(self, infos) -> dict:
        names = [info.filename for info in infos]
        duplicates = sorted(name for name, count in collections.Counter(names).items() if count > 1)
        unexpected = [n for n in names if n not in MEMBERS and not n.startswith(assets_lib.ASSETS_PREFIX)]
        missing = [n for n in MEMBERS if n not in names]
        if duplicates or unexpected or missing:
            parts = [f"{what} {items!r}" for what, items in
                     (("duplicate members", duplicates), ("unexpected members", unexpected[:10]),
                      ("missing members", missing)) if items]
            raise FileFormatError(f"{self.source} is not a valid lamina model file: {'; '.join(parts)}.")
        for info in infos:
            if info.flag_bits & 0x1:
                raise FileFormatError(f"{self.source}: member {info.filename!r} is encrypted.")
            # Only what write_archive uses: other methods bring other decoders and their errors.
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise FileFormatError(f"{self.source}: member {info.filename!r} uses compression method "
                                      f"{info.compress_type}, which lamina does not write.")
        self.assets = [info for info in infos if info.filename not in MEMBERS]
        self._check_asset_members(set(names))
        return {info.filename: info for info in infos}

    def _check_asset_members(self, names: set) -> None:
        total = sum(info.file_size for info in self.assets)
        if len(self.assets) > assets_lib.MAX_ASSET_FILES or total > assets_lib.MAX_ASSET_BYTES:
            raise self.error(f"is not a valid lamina model file: its {len(self.assets)} asset files declare "
                             f"{total} bytes (the limits are {assets_lib.MAX_ASSET_FILES} files and "
                             f"{assets_lib.MAX_ASSET_BYTES} bytes).")
        problem = assets_lib.member_problem(self.assets, names)
        if problem is not None:
            damaged, reason = problem
            raise self.error(("is damaged: " if damaged else "is not a valid lamina model file: ") + reason)

    def _check_asset_owners(self) -> None:
        """Every asset member belongs to a layer key that metadata.json lists."""
        keys = self.metadata.get(assets_lib.ASSETS_METADATA, [])
        reason = assets_lib.check_layer_keys(keys)
        if reason:
            raise self.error(f"is not a valid lamina model file: metadata.json's {assets_lib.ASSETS_METADATA!r} "
                             f"entry is wrong: {reason}.")
        self.asset_keys = keys
        for info in self.assets:
            if assets_lib.owner(info.filename, keys) is None:
                raise self.error(f"is not a valid lamina model file: asset member {info.filename!r} "
                                 "belongs to no layer that metadata.json lists.")

    def extract_asset(self, info, folder: str, relative: str) -> None:
        """Write asset member ``info`` to ``folder/relative`` (a new file; ``folder`` is one the
        caller created, ``relative`` a name checked by ``_check_asset_members``), checking its
        size and CRC-32 as it goes."""
        target = os.path.join(folder, *relative.split("/"))
        root = os.path.realpath(folder)
        if os.path.commonpath([root, os.path.realpath(target)]) != root:  # cannot happen: checked names
            raise self.error(f"is not a valid lamina model file: asset {info.filename!r} leaves its folder.")
        if self._zip is None:
            self._zip = zipfile.ZipFile(self._file)
        copy_member(self._zip, info, target, self.source, " is not a valid lamina model file: asset")

    def _read_json(self, archive, info) -> dict:
        return read_json_member(archive, info, MAX_JSON_BYTES[info.filename], self.source)

    def _check_metadata(self) -> None:
        fmt, version = self.metadata.get("format"), self.metadata.get("format_version")
        if fmt != FORMAT_NAME:
            raise FileFormatError(f"{self.source}: metadata.json names format {fmt!r}, not {FORMAT_NAME!r}.")
        if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
            raise FileFormatError(
                f"{self.source} has format version {version!r}; this lamina reads versions up to "
                f"{FORMAT_VERSION} (a newer lamina wrote it?)."
            )

    def _stored_range(self, info, size: int) -> tuple[int, int]:
        """The byte range of an uncompressed member's data, checked against the file."""
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise FileFormatError(f"{self.source}: {WEIGHTS} must be stored uncompressed.")
        offset = info.header_offset
        if offset + _LOCAL_HEADER.size > size:
            raise FileFormatError(f"{self.source} is truncated (no local header for {WEIGHTS}).")
        (signature, _, flags, method, _, _, crc, compressed, size_field,
         name_length, extra_length) = _LOCAL_HEADER.unpack_from(self._map, offset)
        name_start = offset + _LOCAL_HEADER.size
        # Without a data descriptor (flag bit 3) the local header repeats the method and CRC;
        # its sizes may be 0xFFFFFFFF placeholders when zip64 extra fields hold the real ones.
        sizes_agree = all(field in (0xFFFFFFFF, info.file_size) for field in (compressed, size_field))
        repeats_directory = flags & 0x8 or (crc == info.CRC and sizes_agree)
        if (signature != b"PK\x03\x04" or method != zipfile.ZIP_STORED or not repeats_directory
                or self._map[name_start:name_start + name_length] != WEIGHTS.encode()):
            raise FileFormatError(f"{self.source} is damaged: the local header of {WEIGHTS} does not "
                                  "match the zip directory.")
        start = name_start + name_length + extra_length
        end = start + info.file_size
        if end > size:
            raise FileFormatError(f"{self.source} is truncated: {WEIGHTS} needs {end} bytes, the file has {size}.")
        return start, end


# zipfile's own end-of-central-directory reader (it handles zip64 and archive comments); the
# check it feeds is a guard only, so it is skipped if a future Python renames the helper.
_end_of_central_directory = getattr(zipfile, "_EndRecData", lambda file: None)
_ECD_ENTRIES_TOTAL, _ECD_SIZE = 4, 5


def copy_member(zip_file, info, target: str, source, clash: str) -> None:
    """Copy zip member ``info`` to the new file ``target`` (folders made; created exclusively,
    never through a link), reading at most its declared size; its CRC-32 is checked by
    ``zipfile``. Any failure is a ``FileFormatError`` naming ``source`` and the member
    (``clash`` starts the message of a name that another asset already took)."""
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        with zip_file.open(info) as member, os.fdopen(os.open(target, flags, 0o600), "wb") as out:
            written = 0
            while chunk := member.read(min(_CRC_CHUNK, info.file_size - written + 1)):
                written += len(chunk)
                if written > info.file_size:
                    raise zipfile.BadZipFile(f"it expands past its declared {info.file_size} bytes")
                out.write(chunk)
            if written != info.file_size:
                raise EOFError(f"it ends after {written} of its {info.file_size} bytes")
    except FileExistsError:  # a case-insensitive file system merging two names, say
        raise FileFormatError(f"{source}{clash} {info.filename!r} collides with another asset on this "
                              "file system.") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as error:
        raise FileFormatError(f"{source} is damaged: asset {info.filename!r} could not be read ({error}).") from None


def read_json_member(zip_file, info, limit: int, source) -> dict:
    """The JSON object in zip member ``info``, read with a cap of ``limit`` bytes that holds
    even if the declared size lies; duplicate keys, bad JSON or another type is a
    ``FileFormatError`` naming ``source``."""
    if info.file_size > limit:
        raise FileFormatError(f"{source}: {info.filename} declares {info.file_size} bytes (the limit is {limit}).")
    with zip_file.open(info) as member:
        raw = member.read(limit + 1)  # zipfile also stops at the declared size, then fails the CRC
    if len(raw) > limit:
        raise FileFormatError(f"{source}: {info.filename} expands past {limit} bytes.")
    try:
        value = json.loads(raw, object_pairs_hook=no_duplicate_keys)
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly deep nesting
        raise FileFormatError(f"{source}: {info.filename} is not valid JSON ({error}).") from None
    if not isinstance(value, dict):
        raise FileFormatError(f"{source}: {info.filename} must hold a JSON object.")
    return value
