"""Keras's ``.weights.h5`` layout, read and written with h5py, trusting nothing in the file.

A Keras 3 weights file holds one group per saveable object (``layers/dense``,
``layers/lstm/cell``, ``optimizer``), each with a ``vars`` group of datasets ``"0"``, ``"1"``...
Reading refuses everything that could make HDF5 reach outside the file or allocate without
bound before a single value is read: external and soft links, external-storage datasets,
virtual datasets, non-numeric dtypes, datasets whose declared size passes ``MAX_TENSOR_BYTES``,
and files with more than ``MAX_OBJECTS`` objects. Values are read only into the shape the
model asks for, after every shape was checked.
"""

from __future__ import annotations

import math

import numpy as np

from lamina.saving.errors import FileFormatError

EXTRA_HINT = 'pip install "lamina[keras-files]"'
MAX_OBJECTS = 1_000_000  # groups and datasets: far above real models
MAX_TENSOR_BYTES = 64 * 1024 ** 3
_NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float


def h5py_module():
    """h5py, imported only when a Keras file is used (it is an optional dependency)."""
    try:
        import h5py
    except ImportError as error:
        raise ImportError(f"Keras .keras and .weights.h5 files need h5py, which is not installed: {EXTRA_HINT}.") \
            from error
    return h5py


class H5Weights:
    """The datasets of a Keras weights file, checked: ``with H5Weights(path_or_file, source) as w:``
    then ``w.shapes`` (``{"layers/dense/vars/0": (shape, dtype)}``) and ``w.read(key)``."""

    def __init__(self, file, source: str):
        self._file_arg, self.source = file, source

    def __enter__(self):
        h5py = h5py_module()
        try:
            self._h5 = h5py.File(self._file_arg, "r")
        except OSError as error:
            raise FileFormatError(f"{self.source} is not a readable HDF5 file ({error}).") from None
        try:
            self.shapes = self._check(h5py)
        except BaseException:
            self._h5.close()
            raise
        return self

    def __exit__(self, *exc):
        self._h5.close()

    def _check(self, h5py) -> dict:
        found, count, stack = {}, 0, [("", self._h5)]
        while stack:
            prefix, group = stack.pop()
            for name in group:
                path = f"{prefix}{name}"
                count += 1
                if count > MAX_OBJECTS:
                    raise FileFormatError(f"{self.source} holds more than {MAX_OBJECTS} HDF5 objects; it is not loaded.")
                link = group.get(name, getlink=True)
                if isinstance(link, h5py.ExternalLink):
                    raise FileFormatError(f"{self.source}: '{path}' is an HDF5 external link (to "
                                          f"{link.filename!r}); links to other files are refused.")
                if not isinstance(link, h5py.HardLink):
                    raise FileFormatError(f"{self.source}: '{path}' is an HDF5 soft link; Keras weights "
                                          "files hold none, and links are refused.")
                item = group.get(name)
                if isinstance(item, h5py.Group):
                    stack.append((path + "/", item))
                elif isinstance(item, h5py.Dataset):
                    found[path] = self._check_dataset(path, item)
                else:
                    raise FileFormatError(f"{self.source}: '{path}' is neither a group nor a dataset.")
        return found

    def _check_dataset(self, path, dataset):
        if dataset.external:
            raise FileFormatError(f"{self.source}: dataset '{path}' stores its data in external files "
                                  f"({dataset.external[0][0]!r}...); that is refused.")
        if dataset.is_virtual:
            raise FileFormatError(f"{self.source}: dataset '{path}' is a virtual dataset (it maps other "
                                  "files); that is refused.")
        dtype = dataset.dtype
        if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise FileFormatError(f"{self.source}: dataset '{path}' has dtype {dtype}, not a number type.")
        shape = tuple(int(d) for d in dataset.shape)
        size = math.prod(shape) * dtype.itemsize
        if size > MAX_TENSOR_BYTES:
            raise FileFormatError(f"{self.source}: dataset '{path}' declares shape {shape} ({size} bytes); "
                                  f"the limit is {MAX_TENSOR_BYTES} bytes.")
        return shape, np.dtype(dtype)

    def read(self, key: str) -> np.ndarray:
        """The dataset ``key`` as a NumPy array (its declared shape was checked)."""
        dataset = self._h5[key]
        shape, dtype = self.shapes[key]
        out = np.empty(shape, dtype)
        if out.size:
            dataset.read_direct(out)
        return out


def write_weights(file, groups: dict, names: dict) -> None:
    """Write ``{group_path: [array, ...]}`` as Keras does: ``<group>/vars/<i>`` datasets, each
    ``vars`` group carrying its object's name (``names[group_path]``) as attribute ``name``.
    An item may be ``(dataset name, array)`` instead (a layer's own store keys)."""
    h5py = h5py_module()
    with h5py.File(file, "w") as h5:
        for path, arrays in groups.items():
            vars_group = h5.require_group(f"{path}/vars" if path else "vars")
            if names.get(path):
                vars_group.attrs["name"] = names[path]
            for index, item in enumerate(arrays):
                name, array = item if isinstance(item, tuple) else (str(index), item)
                vars_group.create_dataset(name, data=np.asarray(array))
