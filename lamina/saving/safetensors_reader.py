"""Reading safetensors data in place: from a file's memory map or from inside a model archive.

The safetensors library writes every lamina weights file. For reading, its API takes a whole
file path or a ``bytes`` copy; a model archive keeps its ``model.safetensors`` member inside
a zip, and copying hundreds of megabytes just to hand them over would double the memory a
load needs. So the (small, fixed) header format is parsed here, and checked in full before
any tensor is touched: header size bounded, every entry's dtype known, shape made of
non-negative integers, byte range inside the data and exactly ``prod(shape) * itemsize``
long, and no two ranges overlapping. Tensors are then zero-copy ``numpy`` views.

Files are opened only if they are regular files (``open_regular_file``: a FIFO would block
forever). lamina records a checksum (XXH3-64, from the ``xxhash`` library) per 8 MiB piece of
every tensor in the metadata (``lamina_xxh3``); ``SafetensorsView.verify`` checks them before a
load changes anything. XXH3 runs at about 16 GB/s on one core here against 2.5 GB/s for
CRC-32, so the check costs a small part of the copy that follows.
Tensors and checksum pieces of a file are read with ``os.preadv`` into buffers of their own
(``SafetensorsView.device_array``, ``verify``), not through the memory map: a read past the end of a file that
another program truncated meanwhile comes back short and raises ``FileFormatError``, where
touching a mapped page there would kill the process with SIGBUS. The map serves the header and
the per-device regions of sharded loads (``array``), each read preceded by a size check.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import math
import mmap
import os
import stat
import threading
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xxhash

from lamina.saving.errors import FileFormatError
from lamina.saving.host_transfer import to_default_device

# The safetensors library refuses headers above 100 MB as well.
MAX_HEADER_BYTES = 100 * 1024 * 1024
# safetensors metadata: JSON {key: XXH3-64 of each piece of the tensor's bytes}, written by lamina.
CHECKSUM_METADATA = "lamina_xxh3"
CHECKSUM_CHUNK_BYTES = 8 * 1024 * 1024
_MAX_CHECK_THREADS = 8
piece_digest = xxhash.xxh3_64_intdigest  # bytes-like -> int; lets go of the GIL
# NumPy's own limit on dimensions; it also keeps the product of a declared shape a small
# integer to compute (a thousand huge dimensions would make a huge Python integer).
MAX_RANK = 64
# verify() reads a piece in parts of this size, so that its buffers stay small.
_READ_BYTES = 1024 * 1024
# The CPU backend's device_put uses a host array in place when it is aligned to this.
_ALIGNMENT = 64

DTYPES = {
    "F64": np.dtype("float64"), "F32": np.dtype("float32"), "F16": np.dtype("float16"),
    "BF16": np.dtype(jnp.bfloat16), "F8_E4M3": np.dtype(jnp.float8_e4m3fn),
    "F8_E5M2": np.dtype(jnp.float8_e5m2),
    "I64": np.dtype("int64"), "I32": np.dtype("int32"), "I16": np.dtype("int16"), "I8": np.dtype("int8"),
    "U64": np.dtype("uint64"), "U32": np.dtype("uint32"), "U16": np.dtype("uint16"), "U8": np.dtype("uint8"),
    "BOOL": np.dtype("bool"),
}


class TensorEntry(NamedTuple):
    """Where a tensor lies in the buffer: ``start``/``end`` are offsets within the whole buffer
    (header included). A named tuple: a file of 30,000 tensors makes 30,000 of them."""

    dtype: np.dtype
    shape: tuple
    start: int
    end: int


class SafetensorsView:
    """The tensors of a safetensors buffer, checked on construction, read as views on demand.

    Example:
        >>> import numpy as np, safetensors.numpy
        >>> data = safetensors.numpy.save({"w": np.arange(3, dtype="float32")})
        >>> view = SafetensorsView(data, source="example")
        >>> view.array("w").tolist(), view.entries["w"].shape
        ([0.0, 1.0, 2.0], (3,))
    """

    def __init__(self, buffer, source: str, release_pages=None, verified: bool = False, file_size=None,
                 read_into=None):
        self.source = source
        # (offset in the buffer, writable byte view) -> None, filling the view from the file or
        # raising FileFormatError: bounds-checked reads, for files that may shrink meanwhile.
        self._read_into = read_into
        self._release_pages = release_pages  # (start, end) -> None, for memory-mapped buffers
        # For a memory map: () -> the bytes of the buffer the file still holds now. Reading a
        # mapped page past the end of a file that another program truncated kills the process
        # (SIGBUS), so every read of the map is preceded by this check.
        self._file_size = file_size
        self._outer = memoryview(buffer)
        self._buffer = self._outer.cast("B")
        self.entries, self.metadata = _parse_header(self._buffer, source)
        # True when the bytes were checked as a whole already (a model file's zip CRC-32):
        # then the per-tensor checksums are not needed, nor parsed.
        self._verified = verified
        self.checksums = None if verified else _parse_checksums(self.metadata, self.entries, source)

    def verify(self, keys) -> None:
        """Check the tensors ``keys`` against the checksums the file records, if it records any
        (files from other tools do not: they are read unchecked). Raises ``FileFormatError``
        naming the first damaged tensor.

        Each tensor has one checksum per ``chunk_bytes`` piece, so that pieces can be checked in
        parallel threads."""
        if self._verified or self.checksums is None:
            return
        chunk, expected = self.checksums
        pieces = [(key, index, begin, min(begin + chunk, self.entries[key].end))
                  for key in keys for index, begin in enumerate(_piece_starts(self.entries[key], chunk))]

        scratch = threading.local()  # one small read buffer per thread, reused

        def check(piece):
            key, index, begin, end = piece
            if self._read_into is not None:
                if getattr(scratch, "buffer", None) is None:
                    scratch.buffer = memoryview(bytearray(_READ_BYTES))
                digest = xxhash.xxh3_64()  # streamed: the same value as piece_digest of the whole piece
                for offset in range(begin, end, _READ_BYTES):
                    window = scratch.buffer[:min(_READ_BYTES, end - offset)]
                    self._read_into(offset, window)
                    digest.update(window)
                return digest.intdigest() == expected[key][index]
            self._require(end)
            digest = piece_digest(self._buffer[begin:end])
            self.done_with_range(begin, end)  # read again when copied; not resident meanwhile
            return digest == expected[key][index]

        workers = min(len(pieces), os.cpu_count() or 1, _MAX_CHECK_THREADS)
        if workers > 1:
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                results = list(pool.map(check, pieces))
        else:
            results = [check(piece) for piece in pieces]
        for (key, *_), good in zip(pieces, results):
            if not good:
                raise FileFormatError(f"{self.source} is damaged: tensor {key!r} fails its checksum "
                                      "(no weight was changed).")

    def _require(self, end: int) -> None:
        if self._file_size is not None and self._file_size() < end:
            raise FileFormatError(f"{self.source} was truncated by another program while it was being read "
                                  f"(it now ends before byte {end}); tensors copied before that stay loaded.")

    def done_with_range(self, start: int, end: int) -> None:
        if self._release_pages is not None:
            self._release_pages(start, end)

    def device_array(self, key: str) -> jax.Array:
        """The tensor ``key`` on the default device, read with a bounds-checked read into a new
        host buffer of its own (aligned, so that the CPU backend uses it in place)."""
        return self.device_arrays([key])[0]

    def device_arrays(self, keys) -> list:
        """``device_array`` of each of ``keys``, transferred together (``host_transfer``: a
        model of many small tensors spends its load on the per-array cost of ``device_put``)."""
        if self._read_into is None:
            return to_default_device([self.array(key) for key in keys])
        return to_default_device([self._host_copy(key) for key in keys])

    def _host_copy(self, key: str) -> np.ndarray:
        entry = self.entries[key]
        size = entry.end - entry.start
        raw = np.empty(size + _ALIGNMENT, np.uint8)
        offset = -raw.ctypes.data % _ALIGNMENT
        window = raw[offset:offset + size]
        self._read_into(entry.start, memoryview(window))
        # Put on the device as it is, not with jnp.asarray: the CPU backend takes an aligned
        # array without copying it, where jnp.asarray copies (twice as slow). The buffer is
        # never reused for that reason.
        return window.view(entry.dtype).reshape(entry.shape)

    def region(self, key: str, index: tuple) -> np.ndarray:
        """``tensor[index]``, one device's region (``index``: a tuple of slices, as
        ``jax.make_array_from_callback`` gives), as an array of its own. With a file behind the
        view, the rows the first axis selects (one contiguous range) are read with a
        bounds-checked read and the other axes sliced from them."""
        if self._read_into is None:
            return np.array(self.array(key)[index])
        entry, index = self.entries[key], tuple(index)
        first = index[0] if index else slice(None)
        begin, end = 0, (entry.shape[0] if entry.shape else None)
        if entry.shape and isinstance(first, slice) and first.indices(entry.shape[0])[2] == 1:
            begin, end, _ = first.indices(entry.shape[0])
            index = (slice(None),) + index[1:]
        row_bytes = math.prod(entry.shape[1:]) * entry.dtype.itemsize
        rows = np.empty(((max(end - begin, 0),) if end is not None else ()) + entry.shape[1:], entry.dtype)
        self._read_into(entry.start + begin * row_bytes, memoryview(rows.reshape(-1).view(np.uint8)))
        return rows[index]

    def array(self, key: str) -> np.ndarray:
        """The tensor ``key`` as a view of the buffer: no bytes are read until it is used."""
        entry = self.entries[key]
        self._require(entry.end)
        count = math.prod(entry.shape)
        flat = np.frombuffer(self._buffer, dtype=entry.dtype, count=count, offset=entry.start)
        return flat.reshape(entry.shape)

    def done_with(self, key: str) -> None:
        """The tensor ``key`` has been copied: its file pages need not stay in this process.
        Nothing to do when tensors are read with positional reads: the map then served only
        the header (a call per tensor was a system call per tensor)."""
        if self._read_into is None:
            entry = self.entries[key]
            self.done_with_range(entry.start, entry.end)

    def release(self) -> None:
        """Let go of the buffer. An array still using it (a device copy in flight, a
        traceback) keeps it alive instead: it is released when that array is collected."""
        for view in (self._buffer, self._outer):
            try:
                view.release()
            except BufferError:
                pass


class MappedSafetensorsFile:
    """``with MappedSafetensorsFile(path) as view:`` a ``SafetensorsView`` over a memory map.

    The arrays it gives are views of the map: copy them before the ``with`` block ends.
    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def __enter__(self) -> SafetensorsView:
        self._file = open_regular_file(self.path, f"weights file {self.path!r}")
        try:
            size = os.fstat(self._file.fileno()).st_size
            if size < 8:
                raise FileFormatError(f"{self.path!r} is not a safetensors file: only {size} bytes long.")
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            mapping, file = self._map, self._file  # no reference cycle through the view (archive.py)
            self._view = SafetensorsView(self._map, source=repr(self.path),
                                         release_pages=lambda start, end: drop_pages(mapping, start, end),
                                         file_size=lambda: os.fstat(file.fileno()).st_size,
                                         read_into=file_reader(self._file, 0, repr(self.path)))
        except BaseException:
            self._close()
            raise
        return self._view

    def __exit__(self, *exc):
        self._view.release()
        self._close()

    def _close(self):
        if getattr(self, "_map", None) is not None:
            close_map(self._map)
        self._file.close()


def file_reader(file, base: int, source: str):
    """``read_into(offset, out)``: fill the writable byte view ``out`` with the bytes of ``file``
    from ``base + offset``, or raise ``FileFormatError`` if the file ends before them (another
    program truncated it). Safe to call from several threads (positional reads).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryFile() as f:
        ...     _ = f.write(b"0123456789"); f.flush()
        ...     out = bytearray(3); file_reader(f, 2, "demo")(1, memoryview(out)); bytes(out)
        b'345'
    """
    descriptor = file.fileno()

    def read_into(offset: int, out: memoryview) -> None:
        done, start = 0, base + offset
        while done < len(out):
            if hasattr(os, "preadv"):
                got = os.preadv(descriptor, [out[done:]], start + done)
            else:  # no preadv on this platform: one more copy
                chunk = os.pread(descriptor, len(out) - done, start + done)
                got = len(chunk)
                out[done:done + got] = chunk
            if got == 0:
                raise FileFormatError(f"{source} was truncated by another program while it was being read "
                                      f"(it now ends before byte {start + len(out)}); tensors copied before "
                                      "that stay loaded.")
            done += got

    return read_into


def open_regular_file(path: str, what: str):
    """``open(path, "rb")`` for a regular file only: a FIFO, a device or a socket (or a link to
    one) raises ``FileFormatError`` naming ``what``, and a folder ``IsADirectoryError``.

    The file is opened without blocking and checked with ``fstat`` before any read: a plain
    ``open`` of a FIFO waits for a writer forever, and ``/dev/zero`` never ends.

    Example:
        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> os.mkfifo(os.path.join(folder, "pipe"))
        >>> open_regular_file(os.path.join(folder, "pipe"), "weights file 'pipe'")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lamina.saving.errors.FileFormatError: weights file 'pipe' is a FIFO (named pipe), not a regular file: ...
    """
    def opener(name, flags):
        return os.open(name, flags | getattr(os, "O_NONBLOCK", 0))

    try:
        file = open(path, "rb", opener=opener)
    except IsADirectoryError:
        raise IsADirectoryError(f"{what} is a folder, not a file.") from None
    try:
        mode = os.fstat(file.fileno()).st_mode
        if not stat.S_ISREG(mode):
            target = f" (a link to {os.path.realpath(path)!r})" if os.path.islink(path) else ""
            raise FileFormatError(f"{what}{target} is {_file_kind(mode)}, not a regular file: lamina "
                                  "reads weights and models only from regular files.")
        if hasattr(os, "set_blocking"):  # reads of a regular file never block anyway
            os.set_blocking(file.fileno(), True)
        return file
    except BaseException:
        file.close()
        raise


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def close_map(mapping: mmap.mmap) -> None:
    """Close a memory map, unless an array view still refers to it (e.g. from a traceback):
    then it is closed when that view is collected."""
    try:
        mapping.close()
    except BufferError:
        pass


def drop_pages(mapping: mmap.mmap, start: int, end: int) -> None:
    """Unmap the pages of ``mapping[start:end]`` from this process (they stay in the page
    cache, and come back if touched again).

    Copying tensors out of a memory map would otherwise leave the whole file resident in the
    process, on top of the copies: twice the weights' size at the end of a load.
    """
    first = start - start % mmap.PAGESIZE
    if end > first and hasattr(mapping, "madvise"):
        try:
            mapping.madvise(mmap.MADV_DONTNEED, first, end - first)
        except (OSError, ValueError, AttributeError):  # not offered here: pages simply stay
            pass


def _parse_header(buffer: memoryview, source: str):
    def bad(why):
        return FileFormatError(f"{source} is not a valid safetensors file: {why}.")

    if len(buffer) < 8:
        raise bad(f"it is {len(buffer)} bytes long, too short for a header")
    header_size = int.from_bytes(buffer[:8], "little")
    if header_size > MAX_HEADER_BYTES:
        raise bad(f"its header claims {header_size} bytes (the limit is {MAX_HEADER_BYTES})")
    if 8 + header_size > len(buffer):
        raise bad(f"its header claims {header_size} bytes but only {len(buffer) - 8} follow (truncated?)")
    try:
        header = json.loads(bytes(buffer[8:8 + header_size]), object_pairs_hook=no_duplicate_keys)
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly deep nesting
        raise bad(f"its header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("'__metadata__' must map strings to strings")
    data_start, data_size = 8 + header_size, len(buffer) - 8 - header_size
    entries, ranges = {}, []
    for key, spec in header.items():
        entries[key] = entry = _parse_entry(key, spec, data_start, data_size, bad)
        if entry.end > entry.start:
            ranges.append((entry.start, entry.end, key))
    ranges.sort()
    for (_, end, first), (start, _, second) in zip(ranges, ranges[1:]):
        if start < end:
            raise bad(f"tensors {first!r} and {second!r} overlap")
    return entries, metadata


_ENTRY_KEYS = frozenset(("dtype", "shape", "data_offsets"))


def _parse_entry(key, spec, data_start, data_size, bad) -> TensorEntry:
    if not isinstance(spec, dict) or spec.keys() != _ENTRY_KEYS:
        raise bad(f"entry {key!r} must have exactly 'dtype', 'shape' and 'data_offsets'")
    dtype = DTYPES.get(spec["dtype"]) if isinstance(spec["dtype"], str) else None
    if dtype is None:
        raise bad(f"entry {key!r} has unsupported dtype {_short(spec['dtype'])}")
    shape, offsets = spec["shape"], spec["data_offsets"]
    if not isinstance(shape, list) or len(shape) > MAX_RANK or not all(map(_is_count, shape)):
        raise bad(f"entry {key!r} has shape {_short(shape)}, not a list of at most {MAX_RANK} "
                  "non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise bad(f"entry {key!r} has data_offsets {_short(offsets)}, not two non-negative integers")
    begin, end = offsets
    if not begin <= end <= data_size:
        raise bad(f"entry {key!r} spans bytes {begin}..{end} but the data holds {data_size} bytes (truncated?)")
    expected = math.prod(shape) * dtype.itemsize  # Python integers: no overflow for huge shapes
    if end - begin != expected:
        raise bad(f"entry {key!r} of shape {shape} {spec['dtype']} needs {expected} bytes, its range has {end - begin}")
    return TensorEntry(dtype, tuple(shape), data_start + begin, data_start + end)


def _piece_starts(entry: TensorEntry, chunk: int) -> range:
    # An empty tensor is one empty piece: every tensor has at least one checksum.
    return range(entry.start, max(entry.end, entry.start + 1), chunk)


def _parse_checksums(metadata: dict, entries: dict, source: str):
    """``(chunk_bytes, {key: [checksum of each piece]})``; ``None`` when the file records none
    (a file from another tool)."""
    raw = metadata.get(CHECKSUM_METADATA)
    if raw is None:
        return None
    try:
        table = json.loads(raw)
    except (ValueError, RecursionError):
        table = None
    chunk = table.get("chunk_bytes") if isinstance(table, dict) else None
    tensors = table.get("tensors") if isinstance(table, dict) else None
    if not (_is_count(chunk) and chunk >= 4096 and isinstance(tensors, dict) and set(tensors) == set(entries)
            and all(isinstance(crcs, list) and len(crcs) == len(_piece_starts(entries[key], chunk))
                    and all(_is_count(c) and c < 2 ** 64 for c in crcs) for key, crcs in tensors.items())):
        raise FileFormatError(f"{source} is damaged: its '{CHECKSUM_METADATA}' metadata is not a checksum "
                              "list for every tensor.")
    return chunk, tensors


def checksum_metadata(arrays: dict) -> str:
    """The ``lamina_xxh3`` metadata entry for ``{key: C-contiguous array}``, as safetensors
    stores them: ``{"chunk_bytes": n, "tensors": {key: [XXH3-64 of each n-byte piece]}}``."""
    tensors = {}
    for key, array in arrays.items():
        data = array.reshape(-1).view(np.uint8)
        tensors[key] = [piece_digest(data[begin:begin + CHECKSUM_CHUNK_BYTES])
                        for begin in range(0, max(len(data), 1), CHECKSUM_CHUNK_BYTES)]
    return json.dumps({"chunk_bytes": CHECKSUM_CHUNK_BYTES, "tensors": tensors}, separators=(",", ":"))


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...]"


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def no_duplicate_keys(pairs):
    """``json.loads``'s ``object_pairs_hook`` that refuses an object naming a key twice."""
    result = dict(pairs)
    if len(result) != len(pairs):
        counts = collections.Counter(k for k, _ in pairs)
        raise ValueError(f"duplicate keys {sorted(k for k, n in counts.items() if n > 1)}")
    return result
