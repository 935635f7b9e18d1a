"""``lm.load_model("m.keras")``, ``model.save("m.keras")`` and the ``.weights.h5`` files.

Loading builds the whole model and reads every tensor it needs into temporaries, checking
each key and shape (all problems reported in one error), before any variable is assigned;
on any error nothing is returned. Saving writes to a temporary file renamed over the target.
The optimizer's state is read and written for the optimizers whose state means the same in
both libraries (``optimizer_state.py``); for others a loaded model starts with a fresh
optimizer, with a warning. The file's assets (an adapted lookup's ``vocabulary.txt``) and a
tf_idf lookup's idf weights go to their layers through ``assets_in.py``, after the weights.
"""

from __future__ import annotations

import datetime
import math
import warnings

import numpy as np

from lamina.core.variable import initializers_skipped
from lamina.saving.atomic import atomic_write
from lamina.saving.errors import FileFormatError, WeightMismatchError
from lamina.saving.keras_files.archive import WEIGHTS, KerasArchive, write_keras_archive
from lamina.saving.keras_files.assets_in import KerasAssets
from lamina.saving.keras_files.config_in import translate
from lamina.saving.keras_files.config_out import compile_entry, model_entry
from lamina.saving.keras_files.h5 import H5Weights, write_weights
from lamina.saving.keras_files.layout import keras_layout
from lamina.saving.keras_files.models_in import build_model
from lamina.saving.keras_files.optimizer_state import PREFIX, keras_optimizer_pairs
from lamina.saving.layer_stores import keras_group_keys, load_into
from lamina.saving.object_registry import CustomObjectScope
from lamina.saving.rebuilding import BUILD_SLACK_BYTES, as_file_error, build, check_layer_count, is_model
from lamina.saving.safe_mode import safe_mode_scope
from lamina.saving.safetensors_reader import open_regular_file
from lamina.version import __version__

_SHOWN_PROBLEMS = 25


def load_keras_model(path, custom_objects=None, compile: bool = True, safe_mode: bool = True):
    """The lamina model a Keras 3 ``.keras`` file describes, with its weights (what
    ``lm.load_model("m.keras")`` calls).

    Example:
        >>> import os, tempfile, numpy as np, lamina as lm
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
        >>> path = os.path.join(tempfile.mkdtemp(), "model.keras")
        >>> model.save(path)  # a file Keras 3 loads too
        >>> copy = lm.load_model(path)
        >>> x = np.ones((1, 3), "float32")
        >>> bool(np.allclose(copy(x), model(x)))
        True
    """
    with KerasArchive(path) as archive:
        config = archive.config
        check_layer_count(config, archive.source)
        with H5Weights(archive.weights_path, f"{archive.source} ({WEIGHTS})") as weights:
            budget = sum(math.prod(shape) * dtype.itemsize for shape, dtype in weights.shapes.values())
            with CustomObjectScope(custom_objects), safe_mode_scope(safe_mode):
                with initializers_skipped(budget + BUILD_SLACK_BYTES), as_file_error(archive.source, "model config"):
                    try:
                        model = build_model(config, custom_objects, "the model")
                    except ValueError as error:  # say which file, whatever part of lamina refused it
                        raise FileFormatError(f"{archive.source}: {error}") from error
                    if not is_model(model):
                        raise FileFormatError(f"{archive.source}: config.json does not describe a model.")
                    build(model, config.get("build_config"), archive.source)
            objects: dict = {}
            stores: list = []  # layers loaded through their own load_own_variables
            layout = keras_layout(model, objects, stores)
            assets = KerasAssets(objects, weights, archive.assets, archive.source)
            store_keys = keras_group_keys(stores, weights.shapes)
            values = _read_checked(model, weights, f"model '{model.name}'", layout=layout,
                                   claimed=assets.idf_keys | {k for keys in store_keys.values() for k in keys.values()})
            _load_stores(stores, store_keys, weights)
            assets.read(weights)
            if compile and config.get("compile_config"):
                _compile(model, config["compile_config"], custom_objects, archive.source)
                values += _read_optimizer_state(model, weights)
        with assets.extracted(archive):
            for variable, value in values:
                variable.assign(value)
            assets.apply()
    return model


def _read_optimizer_state(model, weights) -> list:
    """``[(variable, array)]`` for the optimizer state in the file (``[]`` when the model has no
    optimizer or the file none; a warning when it cannot be mapped, as Keras warns)."""
    keys = {key for key in weights.shapes if key.startswith(PREFIX)}
    optimizer = getattr(model, "optimizer", None)
    if not keys or optimizer is None:
        return []
    counters_only = keys == {f"{PREFIX}0", f"{PREFIX}1"}  # saved before its first step: no slots yet
    if not optimizer.built and not counters_only:
        optimizer.build(model.trainable_weights)  # zero slots, replaced below
    mapped = keras_optimizer_pairs(model)
    if mapped is None:
        problem = ("lamina maps the state of Adam, AdamW, Adadelta, Adafactor, Adamax, Ftrl, Lamb, Muon, Nadam, "
                   "plain RMSprop and plain SGD only, not this "
                   f"{type(optimizer).__name__}")
    elif counters_only:
        mapped = (mapped[0][:2], mapped[1])
        problem = None
    elif keys != {key for key, _ in mapped[0]}:
        problem = f"the file has {len(keys)} optimizer variables, '{optimizer.name}' has {len(mapped[0])}"
    else:
        problem = None
    if problem is None:
        wrong = [key for key, variable in mapped[0] if weights.shapes[key][0] != tuple(variable.shape)]
        problem = f"shapes differ ({', '.join(wrong[:5])})" if wrong else None
    if problem:
        warnings.warn(f"{weights.source}: the optimizer state is not loaded: {problem}. Training starts "
                      "with a fresh optimizer.", stacklevel=4)
        return []
    pairs, counters = mapped
    values = [(variable, weights.read(key).astype(np.dtype(variable.dtype))) for key, variable in pairs]
    steps = values[0][1]
    return values + [(counter, steps.astype(np.dtype(counter.dtype))) for counter in counters]


def _compile(model, compile_config, custom_objects, source) -> None:
    keys = ("optimizer", "loss", "loss_weights", "metrics", "weighted_metrics", "jit_compile")
    try:
        args = {key: value for key, value in translate(compile_config, "compile_config", custom_objects).items()
                if key in keys and value is not None}
        model.compile_from_config(args, custom_objects=custom_objects)
    except (ValueError, TypeError, KeyError) as error:
        warnings.warn(f"{source}: the model is returned uncompiled: its compile arguments could not be "
                      f"rebuilt in lamina ({error}). Call model.compile(...) yourself.", stacklevel=3)


def _read_checked(model, weights, where, skip_mismatch: bool = False, claimed=frozenset(), layout=None) -> list:
    """``[(variable, array)]`` for every weight of ``model``, read from ``weights`` after all
    keys and shapes were checked; mismatches raise one ``WeightMismatchError``. ``claimed``:
    entries read elsewhere (lookups' idf weights, ``assets_in.py``); ``layout``: ``keras_layout(model)``."""
    pairs, groups = layout or keras_layout(model)
    problems, plan = [], []
    wanted = set()
    for key, variable in pairs:
        wanted.add(key)
        group = key.rsplit("/vars/", 1)[0] if "/vars/" in key else ""
        layer = f"layer '{groups.get(group, model.name)}' ('{group or '/'}')"
        found = weights.shapes.get(key)
        if found is None:
            problems.append(f"{layer}: variable '{variable.path}' (shape {tuple(variable.shape)}) is missing "
                            f"in the file (no dataset '{key}')")
        elif found[0] != tuple(variable.shape):
            problems.append(f"{layer}: variable '{variable.path}' has shape {tuple(variable.shape)} in the "
                            f"model, the file's '{key}' has {found[0]}")
        else:
            plan.append((variable, key))
    for key, (shape, _) in weights.shapes.items():
        if key not in wanted and key not in claimed and not key.startswith("optimizer/"):
            problems.append(f"unexpected in file: '{key}' (shape {shape}): the model has no such weight")
    if problems:
        shown = problems[:_SHOWN_PROBLEMS] + ([f"... and {len(problems) - _SHOWN_PROBLEMS} more"]
                                             if len(problems) > _SHOWN_PROBLEMS else [])
        report = "\n  ".join(shown)
        if not skip_mismatch:
            raise WeightMismatchError(f"{weights.source} does not fit {where}: {len(problems)} mismatch(es); "
                                      f"nothing was loaded.\n  {report}", problems)
        warnings.warn(f"Skipped {len(problems)} mismatch(es) loading {weights.source} into {where}:\n  {report}",
                      stacklevel=4)
    return [(variable, weights.read(key).astype(np.dtype(variable.dtype), copy=False)) for variable, key in plan]


def save_keras_model(model, path, overwrite: bool = True) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` file (config, weights, optimizer state where mapped)."""
    import os

    path = str(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path!r} exists and overwrite=False.")
    config = model_entry(model)
    try:
        config["compile_config"] = compile_entry(model)
    except (TypeError, ValueError) as error:
        warnings.warn(f"Model '{model.name}' is saved without its compile() arguments ({error}).", stacklevel=3)
        config["compile_config"] = None
    metadata = {"keras_version": "3.0.0", "saved_by": f"lamina {__version__}",
                "date_saved": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d@%H:%M:%S")}
    write_keras_archive(path, metadata, config, lambda tmp: _write_h5(model, tmp))


def _load_stores(stores, store_keys, weights) -> None:
    """Each layer with its own ``load_own_variables`` gets the datasets of its ``vars`` group,
    before any variable is assigned."""
    for layer, _ in stores:
        load_into(layer, {name: weights.read(key) for name, key in store_keys[id(layer)].items()}, weights.source)


def _write_h5(model, file) -> None:
    pairs, names = keras_layout(model, stores="save")
    mapped = keras_optimizer_pairs(model)
    if mapped is not None:
        pairs = pairs + mapped[0]
        names = {**names, "optimizer": model.optimizer.name}
    groups = {path: [] for path in names}
    for key, variable in pairs:
        group, name = key.rsplit("/vars/", 1) if "/vars/" in key else ("", key[len("vars/"):])
        groups[group].append((name, np.asarray(variable.value)))
    write_weights(file, groups, names)


def save_keras_weights(model, path) -> None:
    """``model.save_weights("x.weights.h5")``: Keras's weights layout (optimizer state where mapped).

    Example:
        >>> import os, tempfile, numpy as np, lamina as lm
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
        >>> path = os.path.join(tempfile.mkdtemp(), "model.weights.h5")
        >>> model.save_weights(path)
        >>> twin = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
        >>> twin.load_weights(path)
        >>> all(np.array_equal(a, b) for a, b in zip(twin.get_weights(), model.get_weights()))
        True
    """
    with atomic_write(str(path)) as tmp:
        _write_h5(model, tmp)


def load_keras_weights(model, path, skip_mismatch: bool = False) -> None:
    """``model.load_weights("x.weights.h5")`` (or ``"m.keras"``: the weights of a whole-model
    file) from a file Keras 3 (or lamina) wrote; every key and shape is checked before anything
    changes."""
    path = str(path)
    if not model.built and not model.weights:
        raise ValueError(f"Model '{model.name}' has no weights yet: build it first, then load weights into it.")
    if path.endswith(".keras"):  # the weights of a whole-model file, as Keras's load_weights reads them
        with KerasArchive(path) as archive:
            _load_weights_from(model, archive.weights_path, f"{archive.source} ({WEIGHTS})", skip_mismatch)
        return
    with open_regular_file(path, f"weights file {path!r}") as file:
        _load_weights_from(model, file, f"weights file {path!r}", skip_mismatch)


def _load_weights_from(model, file, source: str, skip_mismatch: bool) -> None:
    with H5Weights(file, source) as weights:
        objects: dict = {}
        stores: list = []
        layout = keras_layout(model, objects, stores)
        idf = KerasAssets(objects, weights, (), source)
        store_keys = keras_group_keys(stores, weights.shapes)
        values = _read_checked(model, weights, f"model '{model.name}'", skip_mismatch,
                               idf.idf_keys | {k for keys in store_keys.values() for k in keys.values()}, layout)
        _load_stores(stores, store_keys, weights)
        idf.read(weights)
        values += _read_optimizer_state(model, weights)
    for variable, value in values:
        variable.assign(value)
    idf.apply()
