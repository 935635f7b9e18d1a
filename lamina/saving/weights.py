"""A model's variables keyed by path, written to and read from safetensors.

Keys are paths below the model, so they do not depend on the model's own (auto-generated)
name: ``dense/kernel``, ``encoder/dense_1/bias``, ``dropout/seed_generator_state``. The
optimizer's state follows under ``optimizer/``: ``optimizer/iterations``,
``optimizer/learning_rate`` and one key per optax state leaf, ``optimizer/mu/dense/kernel``
(field, then the key of the weight it belongs to), as the optimizer's ``state_items()`` name
them. Metric state is not saved: it is reset at every epoch.

The layers of a Sequential or Functional model sit at their *names*, which are often
auto-generated from a process-wide counter: a second copy of a model built by the same code
has ``dense_2`` where the first had ``dense``. So each file also records, in its safetensors
metadata (``lamina_structure``), every key's *structural* key, where such a layer is named by
its class and its rank among its siblings of that class (``dense``, ``dense_1``: what Keras
does). When the keys do not match, loading matches structural keys instead, if they fit better.

Each file also records a checksum (XXH3-64) of every tensor (``lamina_xxh3``, per 8 MiB piece): loading
checks the tensors it is about to assign against them first, so a flipped byte raises and
changes nothing; files from other tools, without checksums, load unchecked.

Loading checks every key, shape and dtype first and reports all mismatches in one error;
only when everything fits does it assign, one tensor at a time (so a load needs little memory
beyond the weights themselves).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import warnings

import jax
import numpy as np
import safetensors.numpy

from lamina.distribution import consistency
from lamina.saving import layer_stores, shard_index
from lamina.saving import sharded as sharded_io
from lamina.saving.archive import ModelArchive
from lamina.saving.atomic import atomic_write
from lamina.saving.errors import WeightMismatchError
from lamina.saving.safetensors_reader import CHECKSUM_METADATA, MappedSafetensorsFile, checksum_metadata
from lamina.saving.variable_keys import OPTIMIZER_PREFIX, STRUCTURE_METADATA, keyed_variables, saved_variables
from lamina.saving.variable_keys import model_variables as model_variables  # re-exported
from lamina.version import __version__

_SHOWN_PROBLEMS = 25  # a mismatch report lists this many, then counts the rest


def write_safetensors(path, variables: dict, structure: dict | None = None) -> None:
    """Write ``{key: Variable}`` as one safetensors file at ``path`` (not atomically: callers
    write to a temporary name), with ``structure`` (``{key: structural_key}``) in its metadata."""
    arrays = {key: _contiguous(np.asarray(v.value)) for key, v in variables.items()}
    header = {"format": "lamina", "lamina_version": __version__,
              CHECKSUM_METADATA: checksum_metadata(arrays)}
    if structure:
        header[STRUCTURE_METADATA] = json.dumps(structure, separators=(",", ":"))
    safetensors.numpy.save_file(arrays, path, metadata=header)


def file_structure(view) -> dict | None:
    """The file's ``{key: structural_key}``, or ``None`` if absent or not usable (then keys are
    matched as they are: the map only helps matching, so a damaged one is not an error)."""
    raw = view.metadata.get(STRUCTURE_METADATA)
    if raw is None:
        return None
    try:
        structure = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(structure, dict) and set(structure) == set(view.entries)
            and all(isinstance(v, str) for v in structure.values())
            and len(set(structure.values())) == len(structure)):
        return None
    return structure


def targets_for_loading(model, view, visited: list | None = None) -> tuple[dict, dict]:
    """The variables a file is checked against, and their structural keys (as
    ``keyed_variables``): the model's, plus the optimizer's when the file has optimizer state
    and the model has an optimizer (built here if needed). ``visited`` (a list) gets the
    model's layers, walked on the way."""
    _require_weights(model)
    optimizer = getattr(model, "optimizer", None)
    file_has_optimizer = any(k.startswith(OPTIMIZER_PREFIX) for k in view.entries)
    if optimizer is None or not file_has_optimizer:
        optimizer = None
    elif not optimizer.built:
        sharded_io.place_placeholders(model.trainable_weights)  # so that the slots are laid out alike
        optimizer.build(model.trainable_weights)  # creates its (zero) slots; no value is lost
    return _keyed_targets(model, optimizer, view, visited)


def _keyed_targets(model, optimizer, view, visited: list | None = None) -> tuple[dict, dict]:
    """``keyed_variables`` for loading ``view``: a layer saved through its own hooks gets a
    slot for each tensor of its store in the file instead of its variables (layer_stores.py)."""
    stores: list = []
    targets, structure = keyed_variables(model, optimizer, visited, stores)
    if stores:
        targets = layer_stores.Targets(targets, stores)
        layer_stores.add_slots(targets, structure, stores, view.entries, file_structure(view))
    return targets, structure


def _require_weights(model) -> None:
    if not model.built and not model.weights:
        raise ValueError(
            f"Model '{model.name}' has no weights yet: build it first (call it on a batch, or "
            "model.build(input_shape)), then load weights into it."
        )


def check_model_first(model, view, *, skip_mismatch: bool, where: str) -> None:
    """Under a distribution in several processes: check the model's own variables against the
    file in every process together (``consistency.same_outcome``), before ``targets_for_loading``
    builds the optimizer, which places its state on the mesh in all processes together; a
    model that does not fit in one of them then raises in all of them first. Elsewhere only
    the check that the model has weights."""

    def check() -> None:
        _require_weights(model)
        if consistency.active() and not skip_mismatch:
            targets, structure = _keyed_targets(model, None, view)
            problems, _ = _plan(targets, view, structure)
            if problems:
                _report(problems, view, False, where)

    consistency.same_outcome(f"loading {view.source}", check)


def check_and_assign(targets: dict, view, *, structure: dict | None = None, skip_mismatch: bool = False,
                     where: str = "") -> None:
    """Assign each target the file's tensor of the same key, after checking all of them.

    Mismatches (missing or unexpected keys, wrong shapes or dtypes) raise one
    ``WeightMismatchError`` listing them all, before any variable changes; with
    ``skip_mismatch`` the fitting tensors are loaded and the rest reported as a warning.
    Optimizer keys in the file are ignored when ``targets`` has none (an uncompiled model).
    When the keys do not all match and both sides have structural keys (``structure`` for
    the targets, the file's metadata for the file), those are matched too, and whichever
    matching has fewer problems is used.
    """

    def check() -> tuple[list, list]:
        problems, plan = _plan(targets, view, structure)
        if problems and not skip_mismatch:
            _report(problems, view, False, where)
        view.verify(key for _, key in plan)  # every tensor, before the first variable changes
        return problems, plan

    # Several processes: each checks, then all load or all raise (no variable changed anywhere).
    problems, plan = consistency.same_outcome(f"loading {view.source}", check,
                                              describe=lambda checked: {"the tensors skipped": checked[0]})
    if problems:  # skip_mismatch: the rest loads
        _report(problems, view, True, where)
    # Layers with their own load_own_variables get their stores first: one that refuses its
    # store raises before any variable is assigned.
    plan = layer_stores.load_stores(plan, view, getattr(targets, "stores", None))
    shardings = sharded_io.target_shardings(targets)
    batch, batch_bytes = [], 0
    for variable, key in plan:
        sharding = shardings.get(id(variable))
        if sharding is not None:  # each device reads its own region (sharded.py)
            variable.assign(sharded_io.read_sharded(view, key, variable.shape, sharding))
            _wait_and_release(view, [(variable, key)])
            continue
        # Small tensors go to the device together (one call for many: a model of thousands
        # of layers pays the per-array cost of a transfer otherwise), a bounded batch at a
        # time, so that a load still needs little memory beyond the weights.
        batch.append((variable, key))
        batch_bytes += view.entries[key].end - view.entries[key].start
        if batch_bytes >= _BATCH_BYTES or len(batch) >= _BATCH_TENSORS:
            _assign_batch(view, batch)
            batch, batch_bytes = [], 0
    _assign_batch(view, batch)


_BATCH_BYTES = 64 * 1024 * 1024
_BATCH_TENSORS = 4096


def _assign_batch(view, batch: list) -> None:
    """Assign each ``(variable, key)`` of ``batch`` its tensor, read with bounds-checked reads
    (no SIGBUS if the file shrinks) and transferred together."""
    if not batch:
        return
    for (variable, _), value in zip(batch, view.device_arrays([key for _, key in batch])):
        variable.assign(value)
    _wait_and_release(view, batch)


def _wait_and_release(view, assigned: list) -> None:
    """Wait for the copies (they run asynchronously), so that the file's pages can be let go
    of now (and the memory map closed at the end) instead of staying resident."""
    jax.block_until_ready([variable.value for variable, _ in assigned])
    for _, key in assigned:
        view.done_with(key)


def _plan(targets: dict, view, structure: dict | None = None) -> tuple[list, list]:
    """``(problems, [(variable, file_key)])``: ``targets`` matched to the file's tensors by key,
    or by structural key when that leaves fewer problems."""
    problems, plan = _match(targets, view.entries)
    file_keys = file_structure(view) if problems and structure else None
    if file_keys:
        by_structure = {structure[key]: variable for key, variable in targets.items()}
        entries = {file_keys[key]: entry for key, entry in view.entries.items()}
        structural_problems, structural_plan = _match(by_structure, entries)
        if len(structural_problems) < len(problems):
            from_structure = {skey: key for key, skey in file_keys.items()}
            problems = structural_problems
            plan = [(variable, from_structure[skey]) for variable, skey in structural_plan]
    return problems, plan


def _match(targets: dict, entries: dict) -> tuple[list, list]:
    """``(problems, [(variable, file_key)])``: every target against the file's entries."""
    wants_optimizer = any(k.startswith(OPTIMIZER_PREFIX) for k in targets)
    problems, plan = [], []
    for key, variable in targets.items():
        entry = entries.get(key)
        if entry is None:
            problems.append(f"missing in file: '{key}' (shape {variable.shape}, {variable.dtype})")
        elif entry.shape != tuple(variable.shape):
            problems.append(f"'{key}': the model has shape {tuple(variable.shape)}, the file {entry.shape}")
        elif entry.dtype != np.dtype(variable.dtype):
            problems.append(f"'{key}': the model has dtype {variable.dtype}, the file {entry.dtype.name}")
        else:
            plan.append((variable, key))
    for key, entry in entries.items():
        if key not in targets and (wants_optimizer or not key.startswith(OPTIMIZER_PREFIX)):
            problems.append(f"unexpected in file: '{key}' (shape {entry.shape}, {entry.dtype.name})")
    return problems, plan


def _report(problems: list, view, skip_mismatch: bool, where: str) -> None:
    shown = problems[:_SHOWN_PROBLEMS]
    more = len(problems) - len(shown)
    report = "\n  ".join(shown + ([f"... and {more} more"] if more else []))
    if not skip_mismatch:
        raise WeightMismatchError(
            f"{view.source} does not fit {where}: {len(problems)} mismatch(es); no weight was "
            f"changed.\n  {report}\n(load_weights(..., skip_mismatch=True) loads the tensors that fit.)",
            problems,
        )
    warnings.warn(f"Skipped {len(problems)} mismatch(es) loading {view.source} into {where}:\n  {report}",
                  stacklevel=4)


def save_weights(model, path, sharded: bool | None = None) -> None:
    """``model.save_weights(path)``: every variable and the optimizer state, one safetensors file.

    With several processes (or ``sharded=True``) ``path`` becomes a folder of shard files and
    an index instead (``lamina/saving/sharded.py``)."""
    path = str(path)
    if path.endswith(".weights.h5"):  # Keras 3's layout (lamina/saving/keras_files)
        from lamina.saving.keras_files import save_keras_weights  # loaded for Keras paths only

        return save_keras_weights(model, path)
    if not path.endswith(".safetensors"):
        raise ValueError("save_weights writes safetensors files (or Keras's '.weights.h5'): the path must end in "
                         f"'.safetensors', got {path!r}.")
    if sharded_io.wants_folder(sharded):
        sharded_io.save_weights_sharded(model, path)
        return
    variables, structure = saved_variables(model)
    with atomic_write(path) as tmp:
        write_safetensors(tmp, variables, structure)


def load_weights(model, path, skip_mismatch: bool = False) -> None:
    """``model.load_weights(path)`` from a ``.safetensors`` file or a ``.lamina`` model file.

    ``save_weights`` records an XXH3-64 checksum of every tensor in the file's metadata; each tensor
    about to be loaded is checked against it before any variable changes, so a damaged file
    raises ``FileFormatError`` and leaves the model as it was. A safetensors file written by
    another tool has no such checksums: it loads unchecked (its header is still validated).
    A ``.lamina`` file is checked by its zip CRC-32. Only regular files are read: a FIFO or a
    device raises ``FileFormatError`` at once instead of blocking.
    """
    path = str(path)
    if path.endswith((".h5", ".keras")):  # Keras 3's weights layout (lamina/saving/keras_files)
        from lamina.saving.keras_files import load_keras_weights  # loaded for Keras paths only

        return load_keras_weights(model, path, skip_mismatch=skip_mismatch)
    with contextlib.ExitStack() as opened:
        # Several processes open the file together: one that cannot (or opens another file)
        # raises in all of them, instead of leaving the others waiting at a collective.
        view = consistency.same_outcome(f"model.load_weights({path!r})", lambda: _open_weights(opened, path),
                                        describe=file_summary)
        _load_view(model, view, skip_mismatch)


def _open_weights(opened: contextlib.ExitStack, path: str):
    """The tensors of the file or folder at ``path``, kept open until ``opened`` closes."""
    if shard_index.is_sharded_checkpoint(path):  # written by several processes (sharded.py)
        return opened.enter_context(shard_index.ShardedCheckpoint(path)).weights
    if path.endswith(".lamina"):
        return opened.enter_context(ModelArchive(path)).weights
    return opened.enter_context(MappedSafetensorsFile(path))


def file_summary(view, config=None) -> dict:
    """What several processes loading one file compare (``consistency.same_outcome``): its
    tensors' keys, shapes and dtypes, their checksums where the file records them, and
    ``config`` (a model file's), as a short digest."""
    described = [[key, list(entry.shape), np.dtype(entry.dtype).name] for key, entry in sorted(view.entries.items())]
    text = json.dumps([described, view.metadata.get(CHECKSUM_METADATA), config], sort_keys=True, default=str)
    return {"a file of": f"{len(described)} tensors (digest {hashlib.blake2b(text.encode(), digest_size=6).hexdigest()})"}


def _load_view(model, view, skip_mismatch: bool) -> None:
    where = f"model '{model.name}'"
    check_model_first(model, view, skip_mismatch=skip_mismatch, where=where)
    targets, structure = targets_for_loading(model, view)
    check_and_assign(targets, view, structure=structure, skip_mismatch=skip_mismatch, where=where)


def _contiguous(array: np.ndarray) -> np.ndarray:
    # Not np.ascontiguousarray: it turns 0-d arrays (scalar variables) into shape (1,).
    return array if array.flags.c_contiguous else array.copy(order="C")
