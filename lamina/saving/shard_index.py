"""The folder of a sharded checkpoint, read and checked: ``index.json`` plus safetensors shard files.

Layout (written by ``sharded.py``; the folder has the name the user gave, ``w.safetensors/``
or ``m.lamina/``)::

    index.json                                   the commit point, written last
    shard-<save id>-<process>-of-<count>.safetensors   one per process, its own shards only

``index.json`` is one JSON object::

    {"format": "lamina.sharded", "format_version": 1,
     "files": ["shard-1a2b3c4d-00000-of-00001.safetensors"],
     "tensors": {"dense/kernel": {"dtype": "F32", "shape": [1024, 512],
                                  "slices": [{"file": "shard-...safetensors", "name": "dense/kernel@0",
                                              "start": [0, 0], "stop": [128, 512]}, ...]}, ...},
     "structure": {key: structural key},       (as a weights file's metadata)
     "metadata": {...}, "config": {...}}       (model files only: metadata.json, config.json)

Each slice is the box ``[start, stop)`` of the global tensor, stored as tensor ``name`` of
shape ``stop - start`` in ``file`` (whose own metadata holds its XXH3 checksums, as any
weights file). Nothing is trusted: file names must be plain names in the folder (no path,
no ``..``, no link), every slice lies inside its tensor, the slices of a tensor cover it
exactly (no overlap, no hole), and each stored tensor has the dtype and shape the index
says; every check runs before any variable changes.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat

import jax
import numpy as np

from lamina.saving.errors import FileFormatError
from lamina.saving.host_transfer import to_default_device
from lamina.saving.safetensors_reader import (
    DTYPES,
    MAX_RANK,
    MappedSafetensorsFile,
    TensorEntry,
    no_duplicate_keys,
    open_regular_file,
)
from lamina.saving.variable_keys import STRUCTURE_METADATA

INDEX = "index.json"
FORMAT_NAME = "lamina.sharded"
FORMAT_VERSION = 1
MAX_INDEX_BYTES = 256 * 1024 * 1024  # an index lists every slice: large models have many
MAX_FILES = 65536
# Coverage is checked on the grid the slices' edges cut a tensor into; an index whose edges
# make more cells than this (far beyond any real sharding) is refused rather than checked.
MAX_GRID_CELLS = 1 << 24
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}
SHARD_NAME = re.compile(r"shard-[0-9a-f]{8,32}-[0-9]{5}-of-[0-9]{5}\.safetensors")


def is_sharded_checkpoint(path) -> bool:
    """True when ``path`` is a folder holding a sharded checkpoint's index or shard files
    (complete or not); any other folder is refused as a folder by the file readers."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        return False
    return any(name == INDEX or SHARD_NAME.fullmatch(name) for name in os.listdir(path))


def unsafe_file_name(name) -> str | None:
    """Why ``name`` cannot be a shard file of an index, or ``None``: it must be a plain file
    name in the checkpoint's folder, never a path."""
    if not isinstance(name, str) or not name:
        return "not a non-empty string"
    if "/" in name or "\\" in name or name in (".", "..") or ".." in name:
        return "a path, not a file name in the checkpoint's folder"
    if name.startswith(".") or ":" in name or any(ord(c) < 32 for c in name):
        return "a hidden name, a drive letter or a control character"
    if not name.endswith(".safetensors"):
        return "not a .safetensors file"
    return None


class ShardedCheckpoint:
    """``with ShardedCheckpoint(folder) as checkpoint:`` the index checked in full, every shard
    file opened and checked against it; ``checkpoint.weights`` reads like a ``SafetensorsView``
    (``entries``, ``metadata``, ``verify``, ``array``) and also gives regions (``read``);
    ``checkpoint.config`` / ``checkpoint.metadata`` for model files.

    Example:
        >>> import os, tempfile, numpy as np, lamina as lm
        >>> from lamina.saving.sharded import save_weights_sharded
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2, name="dense")])
        >>> folder = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> save_weights_sharded(model, folder)
        >>> with ShardedCheckpoint(folder) as checkpoint:
        ...     sorted(checkpoint.weights.entries), checkpoint.weights.read("dense/kernel", (slice(0, 1),)).shape
        (['dense/bias', 'dense/kernel'], (1, 2))
    """

    # A model archive has these too (assets are not part of a sharded checkpoint).
    assets = ()
    asset_keys = ()

    def __init__(self, path):
        self.path = os.fspath(path)
        self.source = f"sharded checkpoint {self.path!r}"
        self._files = {}

    def __enter__(self):
        try:
            self._open()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for opened, view in self._files.values():
            view.release()
            opened.__exit__(None, None, None)
        self._files = {}

    def error(self, message: str) -> FileFormatError:
        return FileFormatError(f"{self.source} {message}")

    # -- opening and checking -----------------------------------------------------------------
    def _open(self) -> None:
        index_path = os.path.join(self.path, INDEX)
        if not os.path.lexists(index_path):
            raise self.error(f"has no {INDEX}: it is not a lamina checkpoint, or its save did not "
                             "finish (the index is written last).")
        index = self._read_index(index_path)
        if index.get("format") != FORMAT_NAME:
            raise self.error(f"{INDEX} names format {index.get('format')!r}, not {FORMAT_NAME!r}.")
        version = index.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
            raise self.error(f"{INDEX} has format version {version!r}; this lamina reads versions up to "
                             f"{FORMAT_VERSION} (a newer lamina wrote it?).")
        files = index.get("files")
        if not isinstance(files, list) or not files or len(files) > MAX_FILES:
            raise self.error(f"{INDEX}: 'files' must list 1 to {MAX_FILES} shard files.")
        for name in files:
            reason = unsafe_file_name(name)
            if reason:
                raise self.error(f"{INDEX} names shard file {name!r}, which is {reason}; nothing was loaded.")
        if len(set(files)) != len(files):
            raise self.error(f"{INDEX} lists a shard file twice.")
        tensors = index.get("tensors")
        if not isinstance(tensors, dict):
            raise self.error(f"{INDEX}: 'tensors' must be an object of tensors.")
        self.config = index.get("config")
        self.metadata = index.get("metadata")
        structure = index.get("structure")
        for name in files:
            self._open_shard(name)
        self.weights = ShardedView(self, {key: self._check_tensor(key, spec, set(files))
                                          for key, spec in tensors.items()}, structure)

    def _read_index(self, index_path: str) -> dict:
        if os.path.islink(index_path):
            raise self.error(f"{INDEX} is a link; lamina reads the index only as a regular file.")
        with open_regular_file(index_path, f"{self.source} ({INDEX})") as f:
            raw = f.read(MAX_INDEX_BYTES + 1)
        if len(raw) > MAX_INDEX_BYTES:
            raise self.error(f"{INDEX} is larger than {MAX_INDEX_BYTES} bytes.")
        try:
            index = json.loads(raw, object_pairs_hook=no_duplicate_keys)
        except (ValueError, RecursionError) as error:
            raise self.error(f"{INDEX} is not valid JSON ({error}); nothing was loaded.") from None
        if not isinstance(index, dict):
            raise self.error(f"{INDEX} must hold a JSON object.")
        return index

    def _open_shard(self, name: str) -> None:
        full = os.path.join(self.path, name)
        try:
            mode = os.lstat(full).st_mode
        except FileNotFoundError:
            raise self.error(f"is incomplete: shard file {name!r}, which {INDEX} lists, is missing.") from None
        if stat.S_ISLNK(mode):
            raise self.error(f"shard file {name!r} is a link; shard files must be regular files in the folder.")
        opened = MappedSafetensorsFile(full)
        view = opened.__enter__()
        self._files[name] = (opened, view)

    def _check_tensor(self, key, spec, files: set) -> _Tensor:
        def bad(why):
            return self.error(f"{INDEX}: tensor {key!r} {why}; nothing was loaded.")

        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "slices"}:
            raise bad("must have exactly 'dtype', 'shape' and 'slices'")
        dtype = DTYPES.get(spec["dtype"]) if isinstance(spec["dtype"], str) else None
        if dtype is None:
            raise bad(f"has unsupported dtype {spec['dtype']!r}")
        shape = spec["shape"]
        if not isinstance(shape, list) or len(shape) > MAX_RANK or not all(_is_count(d) for d in shape):
            raise bad(f"has shape {str(shape)[:80]}, not a list of at most {MAX_RANK} non-negative integers")
        shape = tuple(shape)
        slices = spec["slices"]
        if not isinstance(slices, list) or not slices:
            raise bad("lists no slices")
        boxes = []
        for number, piece in enumerate(slices):
            if not isinstance(piece, dict) or set(piece) != {"file", "name", "start", "stop"}:
                raise bad(f"slice {number} must have exactly 'file', 'name', 'start' and 'stop'")
            start, stop, file = piece["start"], piece["stop"], piece["file"]
            if not (isinstance(start, list) and isinstance(stop, list) and len(start) == len(stop) == len(shape)
                    and all(_is_count(i) for i in start + stop)):
                raise bad(f"slice {number} has start {str(start)[:80]} and stop {str(stop)[:80]}, not "
                          f"{len(shape)} non-negative integers each")
            if not all(a <= b <= d for a, b, d in zip(start, stop, shape)):
                raise bad(f"slice {number} [{start}, {stop}) lies outside the tensor's shape {list(shape)}")
            if file not in files:
                raise bad(f"slice {number} names shard file {str(file)[:80]!r}, which 'files' does not list")
            view = self._files[file][1]
            entry = view.entries.get(piece["name"]) if isinstance(piece["name"], str) else None
            if entry is None:
                raise bad(f"slice {number}: shard file {file!r} has no tensor {str(piece['name'])[:80]!r}")
            extent = tuple(b - a for a, b in zip(start, stop))
            if entry.dtype != dtype or entry.shape != extent:
                raise bad(f"slice {number}: shard file {file!r} holds {piece['name']!r} as {entry.dtype.name} "
                          f"{list(entry.shape)}, the index says {dtype.name} {list(extent)}")
            boxes.append((tuple(start), tuple(stop), file, piece["name"]))
        problem = _coverage_problem(shape, [(a, b) for a, b, *_ in boxes])
        if problem:
            raise bad(problem)
        return _Tensor(dtype, shape, boxes)

    def view_of(self, file: str):
        return self._files[file][1]


class _Tensor:
    __slots__ = ("boxes", "dtype", "shape")

    def __init__(self, dtype, shape, boxes):
        self.dtype, self.shape, self.boxes = dtype, shape, boxes


class ShardedView:
    """A sharded checkpoint's tensors, read like ``SafetensorsView`` (whole tensors) and by
    region (``read(key, index)``: only the slices that overlap ``index`` are touched)."""

    def __init__(self, checkpoint: ShardedCheckpoint, tensors: dict, structure):
        self._checkpoint = checkpoint
        self._tensors = tensors
        self.source = checkpoint.source
        self.entries = {key: TensorEntry(t.dtype, t.shape, 0, math.prod(t.shape) * t.dtype.itemsize)
                        for key, t in tensors.items()}
        # As a weights file keeps it (weights.file_structure checks it).
        self.metadata = {}
        if structure is not None:
            self.metadata[STRUCTURE_METADATA] = json.dumps(structure)

    def verify(self, keys) -> None:
        """Check the stored slices of ``keys`` against their shard files' checksums."""
        by_file = {}
        for key in keys:
            for _, _, file, name in self._tensors[key].boxes:
                by_file.setdefault(file, []).append(name)
        for file, names in by_file.items():
            self._checkpoint.view_of(file).verify(names)

    def array(self, key: str) -> np.ndarray:
        """The whole tensor, in host memory."""
        return self.read(key, tuple(slice(0, d) for d in self._tensors[key].shape))

    def device_array(self, key: str) -> jax.Array:
        """The whole tensor on the default device (as ``SafetensorsView.device_array``)."""
        return jax.device_put(self.array(key))

    def device_arrays(self, keys) -> list:
        """``device_array`` of each of ``keys``, transferred together (as ``SafetensorsView``'s)."""
        return to_default_device([self.array(key) for key in keys])

    def read(self, key: str, index) -> np.ndarray:
        """The region ``index`` (a tuple of slices, as ``jax.make_array_from_callback`` gives)
        of tensor ``key``, copied from the stored slices that overlap it."""
        tensor = self._tensors[key]
        begin, end = region(index, tensor.shape)
        for start, stop, file, name in tensor.boxes:
            if start == begin and stop == end:  # a stored slice as it is
                return self._checkpoint.view_of(file).region(name, ())
        out = np.empty(tuple(b - a for a, b in zip(begin, end)), tensor.dtype)
        for start, stop, file, name in tensor.boxes:
            low = [max(a, b) for a, b in zip(start, begin)]
            high = [min(a, b) for a, b in zip(stop, end)]
            if any(lo >= hi for lo, hi in zip(low, high)) and tensor.shape:
                continue
            # Bounds-checked reads (a file truncated meanwhile raises instead of a SIGBUS).
            out[tuple(slice(lo - b, hi - b) for lo, hi, b in zip(low, high, begin))] = self._checkpoint.view_of(
                file).region(name, tuple(slice(lo - s, hi - s) for lo, hi, s in zip(low, high, start)))
        return out

    def done_with(self, key: str) -> None:
        for _, _, file, name in self._tensors[key].boxes:
            self._checkpoint.view_of(file).done_with(name)

    def release(self) -> None:
        """Nothing to do: the checkpoint's ``with`` block closes the shard files."""


def region(index, shape) -> tuple[tuple, tuple]:
    """``(start, stop)`` of ``index`` (a tuple of slices with step 1) within ``shape``."""
    index = tuple(index) + (slice(None),) * (len(shape) - len(tuple(index)))
    begin, end = [], []
    for piece, size in zip(index, shape):
        start, stop, step = piece.indices(size)
        if step != 1:
            raise ValueError(f"slices with step {step} are not read from checkpoints")
        begin.append(start)
        end.append(max(start, stop))
    return tuple(begin), tuple(end)


def _coverage_problem(shape: tuple, boxes: list) -> str | None:
    """Why ``boxes`` (``(start, stop)`` pairs, each inside ``shape``) do not cover the tensor
    exactly once, or ``None``. Counted on the grid their edges cut the tensor into."""
    if math.prod(shape) == 0:
        return None  # nothing to cover
    edges = [sorted({0, size, *(s[d] for s, _ in boxes), *(e[d] for _, e in boxes)}) for d, size in enumerate(shape)]
    cells = math.prod(len(e) - 1 for e in edges)
    if cells > MAX_GRID_CELLS:
        return f"has slices cut into {cells} pieces (more than {MAX_GRID_CELLS}: not a sharding lamina writes)"
    count = np.zeros(tuple(len(e) - 1 for e in edges), np.int32)
    position = [{edge: i for i, edge in enumerate(e)} for e in edges]
    for start, stop in boxes:
        if any(a == b for a, b in zip(start, stop)):
            continue  # an empty slice holds nothing
        count[tuple(slice(p[a], p[b]) for p, a, b in zip(position, start, stop))] += 1
    if (count > 1).any():
        cell = np.argwhere(count > 1)[0]
        return f"has overlapping slices (element {[int(edges[d][i]) for d, i in enumerate(cell)]} is stored twice)"
    if (count == 0).any():
        cell = np.argwhere(count == 0)[0]
        return f"has missing slices (element {[int(edges[d][i]) for d, i in enumerate(cell)]} is in no slice)"
    return None


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
