"""A model's variables keyed by path, written to and read from safetensors.

Keys are paths below the model, so they do not depend on the model's own (auto-generated)
name: ``dense/kernel``, ``encoder/dense_1/bias``, ``dropout/seed_generator_state``. The
optimizer's state follows under ``optimizer/``: ``optimizer/iterations``,
``optimizer/learning_rate`` and one key per optax state leaf, ``optimizer/mu/dense/kernel``
(field, then the key of the weight it belongs to). Metric state is not saved: it is reset at
every epoch.

Loading checks every key, shape and dtype first and reports all mismatches in one error;
only when everything fits does it assign, one tensor at a time (so a load needs little memory
beyond the weights themselves).
"""

from __future__ import annotations

import warnings

import numpy as np
import safetensors.numpy

from lamina.core.variable import Variable
from lamina.saving.atomic import atomic_write
from lamina.saving.errors import WeightMismatchError
from lamina.saving.safetensors_reader import MappedSafetensorsFile
from lamina.version import __version__

OPTIMIZER_PREFIX = "optimizer/"
_SHOWN_PROBLEMS = 25  # a mismatch report lists this many, then counts the rest


def model_variables(model) -> dict:
    """``{key: Variable}`` for the model's weights and layer-held state (seeds, RNN states)."""
    from lamina.metrics.base import Metric
    from lamina.optimizers.base import Optimizer
    from lamina.trainers.compile_utils import CompileMetrics

    bookkeeping = (Optimizer, Metric, CompileMetrics)
    prefix = model.path + "/"
    found, seen = [], set()
    for layer in model._flatten_layers():
        own, _, holders = layer._lm_children()
        held = [v for h in holders if not isinstance(h, bookkeeping) for v in h._lm_state_variables()]
        for v in own + held:
            if id(v) not in seen:
                seen.add(id(v))
                path = v.path
                found.append((path[len(prefix):] if path.startswith(prefix) else path, v))
    return _unique_keys(found)


def optimizer_variables(optimizer, weight_keys: dict) -> dict:
    """``{key: Variable}`` for an optimizer's state; ``weight_keys`` maps ``id(weight)`` to key."""
    if optimizer is None:
        return {}
    found = [(OPTIMIZER_PREFIX + "iterations", optimizer.iterations)]
    if isinstance(optimizer._learning_rate, Variable):
        found.append((OPTIMIZER_PREFIX + "learning_rate", optimizer._learning_rate))
    for slot, field, owner in zip(optimizer._slots, optimizer._slot_fields, optimizer._slot_params):
        tail = []
        if owner is not None:
            weight = optimizer._built_variables[owner]
            tail = [weight_keys.get(id(weight), weight.path)]
        found.append(("/".join([OPTIMIZER_PREFIX + field, *tail]), slot))
    return _unique_keys(found)


def saved_variables(model, include_optimizer: bool = True) -> dict:
    """Everything a file holds for ``model``: its variables, then its optimizer's state."""
    weights = model_variables(model)
    optimizer = getattr(model, "optimizer", None) if include_optimizer else None
    if optimizer is not None and not optimizer._built:
        optimizer = None  # nothing to save before the first step
    keys = {id(v): k for k, v in weights.items()}
    return {**weights, **optimizer_variables(optimizer, keys)}


def write_safetensors(path, variables: dict) -> None:
    """Write ``{key: Variable}`` as one safetensors file at ``path`` (not atomically: callers
    write to a temporary name)."""
    arrays = {key: _contiguous(np.asarray(v.value)) for key, v in variables.items()}
    header = {"format": "lamina", "lamina_version": __version__}
    safetensors.numpy.save_file(arrays, path, metadata=header)


def targets_for_loading(model, view) -> dict:
    """The variables a file is checked against: the model's, plus the optimizer's when the
    file has optimizer state and the model has an optimizer (built here if needed)."""
    if not model.built and not model.weights:
        raise ValueError(
            f"Model '{model.name}' has no weights yet: build it first (call it on a batch, or "
            "model.build(input_shape)), then load weights into it."
        )
    targets = model_variables(model)
    optimizer = getattr(model, "optimizer", None)
    file_has_optimizer = any(k.startswith(OPTIMIZER_PREFIX) for k in view.entries)
    if optimizer is not None and file_has_optimizer:
        if not optimizer._built:
            optimizer.build(model.trainable_weights)
        keys = {id(v): k for k, v in targets.items()}
        targets.update(optimizer_variables(optimizer, keys))
    return targets


def check_and_assign(targets: dict, view, *, skip_mismatch: bool = False, where: str = "") -> None:
    """Assign each target the file's tensor of the same key, after checking all of them.

    Mismatches (missing or unexpected keys, wrong shapes or dtypes) raise one
    ``WeightMismatchError`` listing them all, before any variable changes; with
    ``skip_mismatch`` the fitting tensors are loaded and the rest reported as a warning.
    Optimizer keys in the file are ignored when ``targets`` has none (an uncompiled model).
    """
    entries = view.entries
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
    if problems:
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
                      stacklevel=3)
    for variable, key in plan:
        variable.assign(view.array(key))  # copies the view onto the device, then frees the old value


def save_weights(model, path) -> None:
    """``model.save_weights(path)``: every variable and the optimizer state, one safetensors file."""
    path = str(path)
    if not path.endswith(".safetensors"):
        raise ValueError(f"save_weights writes safetensors files: the path must end in '.safetensors', got {path!r}.")
    with atomic_write(path) as tmp:
        write_safetensors(tmp, saved_variables(model))


def load_weights(model, path, skip_mismatch: bool = False) -> None:
    """``model.load_weights(path)`` from a ``.safetensors`` file or a ``.lamina`` model file."""
    path = str(path)
    if path.endswith(".lamina"):
        from lamina.saving.archive import ModelArchive

        with ModelArchive(path) as archive:
            check_and_assign(targets_for_loading(model, archive.weights), archive.weights,
                             skip_mismatch=skip_mismatch, where=f"model '{model.name}'")
        return
    with MappedSafetensorsFile(path) as view:
        check_and_assign(targets_for_loading(model, view), view, skip_mismatch=skip_mismatch,
                         where=f"model '{model.name}'")


def _contiguous(array: np.ndarray) -> np.ndarray:
    # Not np.ascontiguousarray: it turns 0-d arrays (scalar variables) into shape (1,).
    return array if array.flags.c_contiguous else array.copy(order="C")


def _unique_keys(pairs) -> dict:
    # Two variables with one path (a layer that names two weights alike) get "_1", "_2"...
    # in creation order, so a model and its rebuilt copy agree on the keys.
    result = {}
    for key, variable in pairs:
        candidate, count = key, 0
        while candidate in result:
            count += 1
            candidate = f"{key}_{count}"
        result[candidate] = variable
    return result
