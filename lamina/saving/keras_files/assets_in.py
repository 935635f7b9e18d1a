"""A Keras-written ``.keras`` file's assets, and its lookups' ``idf_weights`` entries.

Keras calls each object's ``save_assets(folder)`` with the folder ``assets/<path>``, where
``<path>`` is the object's group in ``model.weights.h5`` (``layers/integer_lookup``); the
weights' mapping (``layout.py``) thus finds the lamina layer of each folder: a member belongs
to the layer whose path is the longest whole-segment prefix of its name, and that layer's
``load_assets`` gets a fresh folder holding exactly those files. Keras's lookups write
``vocabulary.txt`` only and keep ``output_mode="tf_idf"`` weights in the weights file, as
dataset ``<path>/vars/idf_weights``; lamina's lookups read idf weights from their asset
folder (``idf_weights.npy``), so the entry is written there. Keras's ``TextVectorization``
hands both to its ``_lookup_layer``, which Keras also saves under its own path (the same
files twice, loaded in Keras's order, parent first), as lamina's ``TextVectorization`` does.

Everything is checked before any weight or vocabulary changes: a member no layer takes, a
lookup member other than ``vocabulary.txt``, a vocabulary for a lookup whose config holds
one, an adapted tf_idf vocabulary without its idf entry (or the reverse) are refused, naming
the member or entry and the layer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import numpy as np

from lamina.layers.preprocessing.index_lookup import IDF_FILE, VOCABULARY_FILE, IndexLookup
from lamina.layers.preprocessing.text_vectorization import TextVectorization
from lamina.saving.assets import ASSETS_PREFIX
from lamina.saving.errors import FileFormatError

IDF_ENTRY = "idf_weights"  # Keras's IndexLookup.save_own_variables: store["idf_weights"]
# Keras classes whose load_assets / load_own_variables hand everything to a sublayer.
_DELEGATES = ((TextVectorization, "_lookup_layer"),)


def _describe(layer, path: str) -> str:
    return f"layer '{layer.name}' ({type(layer).__name__}, at '{path}')" if path else \
        f"the model '{layer.name}' itself"


def _taker(layer):
    """The layer that loads what Keras saved for ``layer`` (itself, or the sublayer it delegates to)."""
    for cls, attribute in _DELEGATES:
        if isinstance(layer, cls):
            return getattr(layer, attribute)
    return layer


def _is_tf_idf(layer) -> bool:
    return isinstance(layer, IndexLookup) and layer.output_mode == "tf_idf"


def _owner_path(name: str, paths) -> str:
    """The longest layer path in ``paths`` that is a whole-segment prefix of asset ``name``
    (``""``: the model).

    >>> _owner_path("layers/text_vectorization/_lookup_layer/vocabulary.txt",
    ...             {"", "layers/text_vectorization", "layers/text_vectorization/_lookup_layer"})
    'layers/text_vectorization/_lookup_layer'
    >>> _owner_path("layers/dense_10/x", {"", "layers/dense_1"})
    ''
    """
    end = name.rfind("/")
    while end > 0:
        if name[:end] in paths:
            return name[:end]
        end = name.rfind("/", 0, end)
    return ""


class _Unit:
    """What one Keras folder (one group path) gives one lamina layer."""

    def __init__(self, path, layer, taker):
        self.path, self.layer, self.taker = path, layer, taker
        self.members = []  # (relative name, ZipInfo)
        self.idf_key = self.idf = self.folder = None

    @property
    def where(self) -> str:
        return _describe(self.layer, self.path)


class KerasAssets:
    """``plan = KerasAssets(objects, weights, members, source)`` checks which layer takes each
    asset member and idf entry (``objects``: ``{group path: layer}`` from ``keras_layout``);
    ``plan.idf_keys`` are the weights-file entries it claims; ``plan.read(weights)``, then
    ``with plan.extracted(archive): ... plan.apply()``."""

    def __init__(self, objects: dict, weights, members, source: str):
        self.source = source
        units: dict = {}

        def unit(path):
            if path not in units:
                units[path] = _Unit(path, objects[path], _taker(objects[path]))
            return units[path]

        for key, (shape, _) in weights.shapes.items():
            if key != f"vars/{IDF_ENTRY}" and not key.endswith(f"/vars/{IDF_ENTRY}"):
                continue
            path = key.rsplit("/vars/", 1)[0] if "/vars/" in key else ""
            if path not in objects or not _is_tf_idf(_taker(objects[path])):
                continue  # not claimed: the weights check reports it as unexpected
            if len(shape) != 1:
                raise FileFormatError(f"{self.source}: '{key}' has shape {shape}; the idf weights of "
                                      f"{_describe(objects[path], path)} are 1-D.")
            unit(path).idf_key = key
        for info in members:
            name = info.filename[len(ASSETS_PREFIX):]
            path = _owner_path(name, objects)
            found = unit(path)
            relative = name[len(path) + 1:] if path else name
            self._check_member(found, info.filename, relative)
            found.members.append((relative, info))
        self.units = [units[path] for path in objects if path in units]  # Keras's order: parents first
        for found in self.units:
            self._check_unit(found)
        self.idf_keys = frozenset(found.idf_key for found in self.units if found.idf_key)

    def _check_member(self, unit, member, relative) -> None:
        taker = unit.taker
        if not callable(getattr(taker, "load_assets", None)):
            folder = member[len(ASSETS_PREFIX):].rsplit("/", 1)[0] if "/" in relative else None
            missing = f" (no layer of the model sits at '{folder}')" if folder and not unit.path else ""
            raise FileFormatError(f"{self.source}: asset {member!r} belongs to {unit.where}{missing}, which "
                                  "takes no assets (it defines no load_assets()); nothing was loaded.")
        if isinstance(taker, IndexLookup):
            if relative != VOCABULARY_FILE:
                raise FileFormatError(f"{self.source}: asset {member!r} is not for {unit.where}, which reads "
                                      f"only '{VOCABULARY_FILE}' from a Keras file; nothing was loaded.")
            if taker.input_vocabulary is not None:
                raise FileFormatError(f"{self.source}: asset {member!r} gives a vocabulary to {unit.where}, "
                                      "whose config already holds one; nothing was loaded.")

    def _check_unit(self, unit) -> None:
        taker = unit.taker
        if not _is_tf_idf(taker):
            return
        if unit.members and unit.idf_key is None:
            raise FileFormatError(f"{self.source}: {unit.where} has output_mode='tf_idf' and an adapted "
                                  f"vocabulary, but the weights file has no idf weights for it (no dataset "
                                  f"'{unit.path + '/' if unit.path else ''}vars/{IDF_ENTRY}'); nothing was loaded.")
        if unit.idf_key and not unit.members:
            vocabulary = f"{ASSETS_PREFIX}{unit.path + '/' if unit.path else ''}{VOCABULARY_FILE}"
            if taker.idf_weights is None or not taker.get_vocabulary(include_special_tokens=False):
                raise FileFormatError(f"{self.source}: the weights file has idf weights ('{unit.idf_key}') for "
                                      f"{unit.where}, which has no vocabulary for them (a .keras file holds it "
                                      f"as '{vocabulary}'; before load_weights, adapt the layer or set its "
                                      "vocabulary); nothing was loaded.")

    def read(self, weights) -> None:
        """Read the claimed idf entries (their keys and shapes were checked)."""
        for unit in self.units:
            if unit.idf_key:
                unit.idf = weights.read(unit.idf_key).astype("float32")
                current = unit.taker.idf_weights
                if not unit.members and current.shape != unit.idf.shape:
                    raise FileFormatError(f"{self.source}: '{unit.idf_key}' has shape {unit.idf.shape}, but "
                                          f"{unit.where} has {current.shape[0]} idf weights; nothing was loaded.")

    @contextlib.contextmanager
    def extracted(self, archive):
        """Each unit's members written to a fresh folder of its own (removed on exit)."""
        if not any(unit.members for unit in self.units):
            yield
            return
        root = tempfile.mkdtemp(prefix="lamina-keras-assets-")
        try:
            for index, unit in enumerate(self.units):
                if not unit.members:
                    continue
                unit.folder = os.path.join(root, str(index))
                os.mkdir(unit.folder)
                for relative, info in unit.members:
                    archive.extract_asset(info, unit.folder, relative)
                if unit.idf is not None:
                    with open(os.path.join(unit.folder, IDF_FILE), "xb") as out:
                        np.save(out, unit.idf)
            yield
        finally:
            shutil.rmtree(root, ignore_errors=True)
            for unit in self.units:
                unit.folder = None

    def apply(self) -> None:
        """Call each taker's ``load_assets`` (inside ``extracted``), or set idf weights alone."""
        for unit in self.units:
            taker = unit.taker
            if unit.folder is None:
                if unit.idf is not None:
                    taker.idf_weights = unit.idf
                continue
            try:
                taker.load_assets(unit.folder)
            except (ValueError, TypeError, RuntimeError, UnicodeDecodeError) as error:
                raise FileFormatError(f"{self.source}: the assets of {unit.where} could not be loaded "
                                      f"({error}).") from error
            if unit.idf is not None:
                depth = taker.max_tokens if taker.pad_to_max_tokens and taker.max_tokens else taker.vocabulary_size()
                if unit.idf.shape != (depth,):
                    raise FileFormatError(f"{self.source}: '{unit.idf_key}' has {unit.idf.shape[0]} idf weights, "
                                          f"but the vocabulary of {unit.where} has {depth} entries.")
