"""Checkpoints of sharded models: each process writes its own shards; loading reshards.

**Which layout.** In one process every shard is addressable, so ``save_weights`` and
``model.save`` keep writing today's single file (``.safetensors`` / ``.lamina``): each sharded
variable is gathered to host memory, one tensor after another, never onto one device. With
several processes (``jax.process_count() > 1``) no process holds every shard, so the path
becomes a folder (``shard_index.py`` describes it): every process writes one safetensors
file with the shards it owns (``replica_id == 0``: replicated data is written once), and
process 0 writes ``index.json`` (global shapes, dtypes and each tensor's slices) after all
shard files exist. ``sharded=True`` asks for the folder in one process too.

**Atomic.** Shard files carry a fresh save id in their names, so a save never overwrites
the files the current ``index.json`` names; the index is replaced last (``os.replace``), and
the files of the previous save are removed after. A crash at any moment leaves the previous
checkpoint whole.

**Loading reshards.** A variable whose array is sharded (or, in ``lm.load_model`` under a
distribution, one that will be) is loaded with ``jax.make_array_from_callback`` and its
target sharding: each device reads only the region it holds, from the single file's memory
map or from the shard files whose slices overlap it, so a tensor is never whole on a device.
An optimizer slot takes the sharding of the weight it belongs to. Any mesh works: a file
saved on 8 devices loads on 4, on 1, or on a tensor-parallel mesh.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets

import jax
import numpy as np
import safetensors.numpy

from lamina.distribution import current, placement
from lamina.distribution.consistency import check_checkpoint
from lamina.saving import shard_index
from lamina.saving.atomic import _fsync_folder, atomic_write
from lamina.saving.safetensors_reader import CHECKSUM_METADATA, MappedSafetensorsFile, checksum_metadata
from lamina.saving.variable_keys import OPTIMIZER_PREFIX, saved_variables
from lamina.version import __version__

SLICES_METADATA = "lamina_slices"  # a shard file's {tensor name: {"key", "start", "stop"}}


def wants_folder(sharded) -> bool:
    """Whether a save writes the sharded folder: asked for, or needed (several processes)."""
    if sharded is None:
        return jax.process_count() > 1
    return bool(sharded)


def save_weights_sharded(model, path, include_optimizer: bool = True) -> None:
    """Write ``model``'s variables (and optimizer state) as a sharded checkpoint folder at ``path``.

    ``model.save_weights`` does this by itself when several processes run; call this to get
    the folder layout in one process too. ``model.load_weights(path)`` reads it back, onto
    any mesh.

    Example:
        >>> import os, tempfile, lamina as lm
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> save_weights_sharded(model, path)
        >>> sorted(name.split("-")[0] for name in os.listdir(path))
        ['index.json', 'shard']
        >>> model.load_weights(path)
    """
    variables, structure = saved_variables(model, include_optimizer)
    write_checkpoint(path, variables, structure)


def write_checkpoint(path, variables: dict, structure: dict | None = None, extra: dict | None = None) -> None:
    """Write ``{key: Variable}`` as a sharded checkpoint folder at ``path``; ``extra`` (a
    model file's ``metadata`` and ``config``) goes into the index. Every process calls it."""
    path = os.fspath(path)
    processes, me = jax.process_count(), jax.process_index()
    # Every process checks (they see one file system), so that all raise alike and none
    # waits at a barrier for a process that gave up.
    if os.path.lexists(path) and not os.path.isdir(path):
        raise FileExistsError(
            f"Cannot write a sharded checkpoint to {path!r}: it is a file (a checkpoint saved by one "
            "process?), and a sharded checkpoint is a folder. Remove it or choose another path.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot save to {path!r}: folder {folder!r} does not exist.")
    if processes > 1:  # process 0's index must describe every process's shards
        check_checkpoint(variables)
    if me == 0:
        os.makedirs(path, exist_ok=True)
    save_id = _agreed_save_id(processes)
    _barrier("lamina_checkpoint_folder", processes)
    name = f"shard-{save_id}-{me:05d}-of-{processes:05d}.safetensors"
    with atomic_write(os.path.join(path, name)) as tmp:
        _write_shard_file(tmp, variables, me)
    _barrier("lamina_checkpoint_shards", processes)
    if me == 0:
        files = [f"shard-{save_id}-{p:05d}-of-{processes:05d}.safetensors" for p in range(processes)]
        index = _build_index(path, files, variables)
        if structure:
            index["structure"] = structure
        index.update(extra or {})
        with atomic_write(os.path.join(path, shard_index.INDEX)) as tmp, open(tmp, "w") as f:
            json.dump(index, f, separators=(",", ":"))
        _remove_stale(path, keep=set(files))
    _barrier("lamina_checkpoint_index", processes)


def _agreed_save_id(processes: int) -> str:
    token = secrets.randbits(32)
    if processes > 1:
        from jax.experimental import multihost_utils

        token = int(multihost_utils.broadcast_one_to_all(np.uint32(token)))
    return f"{token:08x}"


def _barrier(name: str, processes: int) -> None:
    if processes > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _owned_pieces(value, me: int):
    """``[(start, stop, numpy data)]``: the shards of ``value`` this process writes."""
    if not isinstance(value, jax.Array):  # a NumPy placeholder: whole, written by process 0
        value = np.asarray(value)
        return [((0,) * value.ndim, tuple(value.shape), value)] if me == 0 else []
    pieces = []
    for shard in value.addressable_shards:
        if shard.replica_id != 0:
            continue  # another device's copy of the same data is written instead
        start, stop = shard_index.region(shard.index, value.shape)
        pieces.append((start, stop, np.asarray(shard.data)))
    return pieces


def _write_shard_file(path: str, variables: dict, me: int) -> None:
    arrays, slices = {}, {}
    for key, variable in variables.items():
        for number, (start, stop, data) in enumerate(_owned_pieces(variable.value, me)):
            name = f"{key}@{number}"
            arrays[name] = data if data.flags.c_contiguous else data.copy(order="C")
            slices[name] = {"key": key, "start": list(start), "stop": list(stop)}
    header = {"format": "lamina.shard", "lamina_version": __version__, CHECKSUM_METADATA: checksum_metadata(arrays),
              SLICES_METADATA: json.dumps(slices, separators=(",", ":"))}
    safetensors.numpy.save_file(arrays, path, metadata=header)


def _build_index(path: str, files: list, variables: dict) -> dict:
    """The index, from the shard files' own slice tables (process 0 cannot see the others'
    shards, but it can read what they wrote)."""
    tensors = {key: {"dtype": shard_index.DTYPE_NAMES[np.dtype(v.dtype)], "shape": list(v.shape), "slices": []}
               for key, v in variables.items()}
    for file in files:
        with MappedSafetensorsFile(os.path.join(path, file)) as view:
            table = json.loads(view.metadata[SLICES_METADATA])
        for name, piece in table.items():
            tensors[piece["key"]]["slices"].append(
                {"file": file, "name": name, "start": piece["start"], "stop": piece["stop"]})
    empty = [key for key, t in tensors.items() if not t["slices"]]
    if empty:
        raise RuntimeError(f"Sharded save of {path!r}: no process wrote {empty[:5]} (internal error).")
    return {"format": shard_index.FORMAT_NAME, "format_version": shard_index.FORMAT_VERSION,
            "lamina_version": __version__, "files": files, "tensors": tensors}


def _remove_stale(path: str, keep: set) -> None:
    """Remove the shard files of earlier saves (and temporary files of crashed ones)."""
    for name in os.listdir(path):
        stale_shard = shard_index.SHARD_NAME.fullmatch(name) and name not in keep
        crashed = name.startswith(".") and name.endswith(".tmp")
        if stale_shard or crashed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(path, name))
    _fsync_folder(path)


# -- loading ----------------------------------------------------------------------------------
def target_shardings(targets: dict) -> dict:
    """``{id(variable): sharding}`` for the targets a load must place over several devices
    (absent: assigned as on one device). An optimizer slot (``optimizer/<field>/<weight key>``)
    of its weight's shape takes the weight's sharding."""
    found = {}
    if jax.device_count() == 1 and current.distribution() is None:
        return found  # nothing can be placed over several devices (a per-target look otherwise)
    for key, variable in targets.items():
        if not key.startswith(OPTIMIZER_PREFIX):
            sharding = _own_target(variable)
            if sharding is not None:
                found[id(variable)] = sharding
    for key, variable in targets.items():
        if key.startswith(OPTIMIZER_PREFIX):
            parts = key.split("/", 2)
            owner = targets.get(parts[2]) if len(parts) == 3 else None
            if owner is not None and tuple(owner.shape) == tuple(variable.shape) and id(owner) in found:
                found[id(variable)] = found[id(owner)]
            else:
                sharding = _own_target(variable)
                if sharding is not None:
                    found[id(variable)] = sharding
    return found


def _own_target(variable):
    value = variable.value
    if isinstance(value, jax.Array):
        sharding = value.sharding
        return sharding if len(sharding.device_set) > 1 else None
    d = current.distribution()  # a placeholder (lm.load_model): where add_weight would put it
    if d is None:
        return None
    return d.get_variable_layout((variable.path, tuple(variable.shape)))


def place_placeholders(variables) -> None:
    """Under a distribution, give the weights that ``lm.load_model`` made as host placeholders
    (their initializers skipped) zeros with their layout, so that optimizer slots built from
    them take that layout too. The file's values replace the zeros after every check."""
    if current.distribution() is None:
        return
    for variable in variables:
        if not isinstance(variable.value, jax.Array):
            sharding = _own_target(variable)
            shape, dtype = tuple(variable.shape), variable.dtype
            variable.assign(placement.compiled_initializer(lambda s=shape, t=dtype: jax.numpy.zeros(s, t), sharding)())


def read_sharded(view, key: str, shape, sharding) -> jax.Array:
    """Tensor ``key`` of ``view`` as an array with ``sharding``: each device's region is read
    from the file on its own (a ``SafetensorsView`` or a ``ShardedView``)."""
    if isinstance(view, shard_index.ShardedView):
        def read(index):
            return view.read(key, index)
    else:
        def read(index):  # bounds-checked: a file truncated meanwhile raises, no SIGBUS
            return view.region(key, index)
    return jax.make_array_from_callback(tuple(shape), sharding, read)
