"""``model.save(path)`` and ``lm.load_model(path)``: the whole model in one ``.lamina`` file.

``config.json`` holds ``{"class_name", "config", "build_config", "compile_config"}``; the
class is found only through lamina's registry and ``custom_objects``. Loading rebuilds the
model from its config, builds it from the saved input shape, checks every saved tensor
against it (all mismatches reported at once) and only then assigns the weights and, when
compiling, the optimizer state.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import os
import warnings

import jax

from lamina.core.variable import initializers_skipped
from lamina.distribution.consistency import same_outcome
from lamina.saving import assets as assets_lib
from lamina.saving import sharded as sharded_io
from lamina.saving import weights as weights_io
from lamina.saving.archive import FORMAT_NAME, FORMAT_VERSION, ModelArchive, write_archive
from lamina.saving.errors import FileFormatError
from lamina.saving.object_registry import CustomObjectScope, get_registered_name
from lamina.saving.rebuilding import (
    BUILD_SLACK_BYTES,
    as_file_error,
    build,
    check_layer_count,
    collection_paused,
    overrides_build_config,
    rebuild,
)
from lamina.saving.rebuilding import MAX_LAYERS as MAX_LAYERS  # re-exported: the bound a file may declare
from lamina.saving.safe_mode import safe_mode_scope
from lamina.saving.serialization import serialize
from lamina.saving.shard_index import ShardedCheckpoint, is_sharded_checkpoint
from lamina.version import __version__


def save_model(model, path, overwrite: bool = True, sharded: bool | None = None) -> None:
    """Write ``model`` (architecture, weights, optimizer state, compile arguments) to ``path``.

    With several processes (or ``sharded=True``) ``path`` becomes a folder: each process's
    shards and an index holding the config (``lamina/saving/sharded.py``); ``load_model``
    reads both forms."""
    path = str(path)
    if path.endswith(".keras"):  # Keras 3's format (lamina/saving/keras_files)
        from lamina.saving.keras_files import save_keras_model  # loaded for Keras paths only

        return save_keras_model(model, path, overwrite=overwrite)
    if not path.endswith(".lamina"):
        raise ValueError(f"Model files end in '.lamina' (or '.keras'); got {path!r} (use save_weights for weights only).")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path!r} exists and overwrite=False.")
    metadata = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "lamina_version": __version__,
        "jax_version": jax.__version__, "date_saved": datetime.datetime.now(datetime.UTC).isoformat(),
    }
    config = model_config(model)
    variables, structure = weights_io.saved_variables(model)
    if sharded_io.wants_folder(sharded):
        if assets_lib.layers_with(model, "save_assets"):
            raise ValueError(f"Model '{model.name}' has layers with assets (save_assets), which sharded "
                             "checkpoints do not hold yet: save it from one process (a single .lamina file).")
        sharded_io.write_checkpoint(path, variables, structure, extra={"metadata": metadata, "config": config})
        return
    with assets_lib.saved_assets(model) as (asset_keys, asset_files):
        if asset_keys:  # a file without assets keeps the original format, entry included
            metadata[assets_lib.ASSETS_METADATA] = asset_keys
        write_archive(path, metadata, config, lambda tmp: weights_io.write_safetensors(tmp, variables, structure),
                      assets=asset_files)


def model_config(model) -> dict:
    """``config.json``'s content for ``model``."""
    try:
        # A get_compile_config() override may return objects (a loss function, an optimizer):
        # they are serialized as any config's, and its compile_from_config() revives them.
        compile_config = serialize(model.get_compile_config())
    except (TypeError, ValueError, NotImplementedError) as error:
        warnings.warn(f"Model '{model.name}' is saved without its compile() arguments ({error}); "
                      "load it with compile=False and compile it again.", stacklevel=3)
        compile_config = None
    # A declared lm.Input shape keeps its None batch axis; else the shape it was built from.
    build_shape = (model.__dict__.get("_lm_declared_input_shape") or model.__dict__.get("_lm_build_shape")
                   if model.built else None)
    build_config = {"input_shape": build_shape} if build_shape is not None else None
    if model.built and overrides_build_config(model, "get_build_config"):  # Keras's hook, overridden
        build_config = serialize(model.get_build_config())
    return {
        "class_name": get_registered_name(type(model)),
        "config": model.get_config(),
        "build_config": build_config,
        "compile_config": compile_config,
    }


def load_model(path, custom_objects=None, compile: bool = True, safe_mode: bool = True):
    """Rebuild a model saved with ``model.save(path)``.

    Classes resolve only through lamina's registry (``@lm.saving.register_serializable``) and
    ``custom_objects``; nothing in the file is imported or executed. With ``safe_mode=True``
    (the default) a file with Lambda layers is refused. Errors are ``ValueError`` s that say
    what is wrong with the file; on any error no model is returned. Layers that define
    ``load_assets(folder)`` get it called last, with a temporary folder holding the files
    their ``save_assets`` wrote (removed afterwards).

    Example:
        >>> import os, tempfile, numpy as np, lamina as lm
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
        >>> path = os.path.join(tempfile.mkdtemp(), "model.lamina")
        >>> model.save(path)
        >>> copy = lm.load_model(path)
        >>> x = np.ones((1, 3), "float32")
        >>> bool(np.allclose(copy(x), model(x)))
        True
    """
    if str(path).endswith(".keras"):  # Keras 3's format (lamina/saving/keras_files)
        # Loaded for Keras paths only: nine modules that `import lamina` need not load.
        from lamina.saving.keras_files import load_keras_model

        return load_keras_model(path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)
    with contextlib.ExitStack() as opened, collection_paused():
        # Several processes open and check the file together: one that cannot (or opens
        # another file) raises in all of them, instead of leaving the others waiting at the
        # first transfer to the mesh while the model is rebuilt.
        archive = same_outcome(f"lm.load_model({str(path)!r})", lambda: _open_model_file(opened, path),
                               describe=lambda archive: weights_io.file_summary(archive.weights, archive.config))
        config = archive.config
        # The weights are about to be overwritten from the file: skip the (slow) initializers,
        # and let the config create no more weight bytes than the file holds (plus slack for a
        # near-miss, which the mismatch report then describes).
        budget = sum(e.end - e.start for e in archive.weights.entries.values()) + BUILD_SLACK_BYTES
        with CustomObjectScope(custom_objects), safe_mode_scope(safe_mode):
            with initializers_skipped(budget):  # only the weights: metrics start at zero for real
                model = rebuild(config, custom_objects, archive.source)
                build(model, config.get("build_config"), archive.source)
            if compile and config.get("compile_config"):
                with as_file_error(archive.source, "compile arguments"):
                    _compile_from_config(model, config["compile_config"], custom_objects)
        layers = []  # walked on the way to the weights; assets need them too
        if model.built or archive.weights.entries or model.weights:  # else saved before building
            targets, structure = weights_io.targets_for_loading(model, archive.weights, visited=layers)
            weights_io.check_and_assign(targets, archive.weights, structure=structure,
                                        where=f"the model its config describes ('{model.name}')")
        assets_lib.load_assets(model, archive, layers or None)
    return model


def _open_model_file(opened: contextlib.ExitStack, path):
    """The opened model file (or sharded checkpoint folder) at ``path``, its config checked;
    kept open until ``opened`` closes."""
    archive = opened.enter_context(ShardedCheckpoint(path) if is_sharded_checkpoint(path) else ModelArchive(path))
    config = archive.config
    if not isinstance(config, dict):
        raise FileFormatError(f"{archive.source} holds no model config (weights only? use load_weights).")
    if not isinstance(config.get("config"), dict) or not isinstance(config.get("class_name"), str):
        raise FileFormatError(f"{archive.source}: config.json must name a 'class_name' and hold a 'config' object.")
    check_layer_count(config, archive.source)
    return archive


def _compile_from_config(model, compile_config, custom_objects) -> None:
    """lamina's ``compile_from_config`` takes ``custom_objects``; an override written as in
    Keras (``compile_from_config(self, config)``) finds them in the active scope instead."""
    try:
        takes_custom = "custom_objects" in inspect.signature(model.compile_from_config).parameters
    except (TypeError, ValueError):
        takes_custom = False
    if takes_custom:
        model.compile_from_config(compile_config, custom_objects=custom_objects)
    else:
        model.compile_from_config(compile_config)
