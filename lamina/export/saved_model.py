"""``format="tf_saved_model"``: the model through ``jax2tf``, as a TensorFlow SavedModel.

As Keras does on JAX: the weights become ``tf.Variable`` s of a ``tf.Module`` (saved in the
SavedModel's ``variables/``, not inside the graph) and the computation is ``jax2tf``'s
StableHLO with a polymorphic batch axis, served by the ``serve`` endpoint (also the
``serving_default`` signature).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import numpy as np

from lamina.export._extras import require

_FEATURE = 'model.export(format="tf_saved_model")'


def export_saved_model(model, inference, path) -> None:
    """Write ``inference`` (see ``lamina.export.signature``) as a SavedModel folder at ``path``."""
    tf = require("tensorflow", "tensorflow", _FEATURE)
    jax2tf = require("jax.experimental.jax2tf", "tensorflow", _FEATURE)
    polymorphic = [None] + [f"({', '.join(spec.symbols(i))})" for i, spec in enumerate(inference.specs)]
    converted = jax2tf.convert(inference.params_fn, polymorphic_shapes=polymorphic, with_gradient=False)

    module = tf.Module()
    module.params = [tf.Variable(np.asarray(v.value), trainable=False, name=_variable_name(v))
                     for v in inference.variables]
    signature = [tf.TensorSpec(spec.shape, tf.as_dtype(spec.dtype), name=spec.name) for spec in inference.specs]

    @tf.function(input_signature=signature, autograph=False)
    def serve(*inputs):
        return converted(module.params, *inputs)

    module.serve = serve
    with _atomic_folder(path) as tmp:
        tf.saved_model.save(module, tmp, signatures={"serving_default": serve})


def _variable_name(variable) -> str:
    # TensorFlow accepts only [A-Za-z0-9_.\-/] in names; paths are made of those already.
    return "".join(c if c.isalnum() or c in "_./-" else "_" for c in variable.path) or "variable"


@contextlib.contextmanager
def _atomic_folder(path):
    """Yield a new folder beside ``path``; on success it takes ``path``'s place (an existing
    folder there is replaced, as Keras overwrites; a reader sees the old or the new one)."""
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"Cannot export to {path!r}: folder {parent!r} does not exist.")
    if os.path.exists(path) and not os.path.isdir(path):
        raise FileExistsError(f"Cannot export a SavedModel to {path!r}: it is a file, and a SavedModel is a folder.")
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
    try:
        yield tmp
        if os.path.isdir(path):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".old", dir=parent)
            previous = os.path.join(old, "previous")
            os.replace(path, previous)  # two renames: POSIX cannot swap folders in one
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(previous, path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
