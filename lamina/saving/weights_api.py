"""``lm.saving.save_weights(model, filepath)`` and ``lm.saving.load_weights(model, filepath)``:
Keras 3's functions (``keras.saving.save_weights`` / ``load_weights``), with Keras's arguments,
over lamina's weights files (``weights.py``): ``.safetensors``, Keras's ``.weights.h5``, and for
loading also ``.lamina`` and ``.keras`` model files and sharded checkpoint folders.
"""

from __future__ import annotations

import os

from lamina.saving import weights as weights_io


def save_weights(model, filepath, overwrite: bool = True, max_shard_size=None, sharded: bool | None = None) -> None:
    """Write ``model``'s variables (and optimizer state) to ``filepath``, atomically:
    ``.safetensors`` (lamina's) or ``.weights.h5`` (Keras's layout). ``overwrite=False``
    refuses an existing file (Keras asks on the terminal instead). ``max_shard_size`` (Keras's
    size-capped ``.weights.json`` shards) is not supported: lamina shards by process
    (``sharded=True`` writes a folder of shard files and an index).

    Example:
        >>> import os, tempfile, numpy as np, lamina as lm
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> lm.saving.save_weights(model, path)
        >>> twin = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
        >>> lm.saving.load_weights(twin, path)
        >>> all(np.array_equal(a, b) for a, b in zip(twin.get_weights(), model.get_weights()))
        True
    """
    if max_shard_size is not None:
        raise ValueError(f"save_weights(model '{model.name}', max_shard_size={max_shard_size!r}): lamina does not "
                         "split weights files by size; sharded=True writes one shard file per process and an index.")
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{str(filepath)!r} exists and overwrite=False.")
    weights_io.save_weights(model, filepath, sharded=sharded)


def load_weights(model, filepath, skip_mismatch: bool = False, **kwargs) -> None:
    """Load ``filepath`` (``.safetensors``, ``.weights.h5``, ``.lamina``, ``.keras`` or a sharded
    checkpoint folder) into the built ``model``: every key, shape and dtype is checked first and
    all mismatches are reported in one error, unless ``skip_mismatch=True``. Keras's legacy
    keyword arguments (``by_name``, ``objects_to_skip``) are refused."""
    if kwargs:
        raise ValueError(f"load_weights(model '{model.name}', {str(filepath)!r}): invalid keyword arguments "
                         f"{sorted(kwargs)}; lamina takes skip_mismatch only.")
    weights_io.load_weights(model, filepath, skip_mismatch=skip_mismatch)
