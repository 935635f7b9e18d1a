"""Saving and loading (``lm.saving``): model files, weights files, and the class registry.

- ``model.save("m.lamina")`` / ``lm.load_model(path, custom_objects=None, compile=True,
  safe_mode=True)``: one zip file (``archive.py``, ``model_file.py``).
- ``model.save_weights("w.safetensors")`` / ``model.load_weights(path, skip_mismatch=False)``:
  variables keyed by path (``weights.py``); Keras's functions ``save_weights(model, path)`` /
  ``load_weights(model, path)`` too (``weights_api.py``).
- ``@register_serializable`` and ``custom_objects``: the only way a name in a file becomes a
  class (``object_registry.py``, ``serialization.py``).
- Keras 3 files: ``lm.load_model("m.keras")``, ``model.save("m.keras")`` and ``.weights.h5``
  weights (``keras_files/``; needs h5py: ``pip install "lamina[keras-files]"``).
- The key of each saved variable (``variable_keys.py``) and the steps every loader takes with
  a model's config (``rebuilding.py``). Nothing here imports ``lamina.models``, the trainers
  or the callbacks (they call saving): a model says what it is (``_lm_model_kind``), and
  ``Sequential`` / ``Functional`` are found in the registry.

Keras's names work too: ``register_keras_serializable``, ``custom_object_scope``,
``get_custom_objects``, ``get_registered_object``, ``serialize_keras_object`` and
``deserialize_keras_object``.
"""

from lamina.saving.errors import FileFormatError, WeightMismatchError
from lamina.saving.model_file import load_model, save_model
from lamina.saving.object_registry import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
    register_serializable,
)
from lamina.saving.safe_mode import safe_mode_scope as _safe_mode_scope
from lamina.saving.serialization import deserialize, deserialize_object, serialize, serialize_object
from lamina.saving.weights_api import load_weights, save_weights

serialize_keras_object = serialize


def deserialize_keras_object(config, custom_objects=None, safe_mode=None):
    """Keras's name for ``deserialize``, with its ``safe_mode`` argument: ``True`` refuses a
    config that would call a function (a ``Lambda`` layer), ``False`` allows it, ``None`` (the
    default) keeps the setting of the enclosing ``lm.load_model`` (off outside one, as for
    ``deserialize``). Keras defaults to ``True``; in lamina a config never carries code, only
    the names of functions the program registered, so the default follows the load in
    progress (a custom ``from_config`` rebuilding a sublayer gets the load's own setting).

    Example:
        >>> import lamina as lm
        >>> config = lm.saving.serialize_keras_object(lm.layers.Dense(2, name="d"))
        >>> lm.saving.deserialize_keras_object(config).name
        'd'
    """
    if safe_mode is None:
        return deserialize(config, custom_objects)
    with _safe_mode_scope(safe_mode):
        return deserialize(config, custom_objects)


__all__ = [
    "CustomObjectScope",
    "FileFormatError",
    "WeightMismatchError",
    "custom_object_scope",
    "deserialize",
    "deserialize_keras_object",
    "deserialize_object",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "load_model",
    "load_weights",
    "register_keras_serializable",
    "register_serializable",
    "save_model",
    "save_weights",
    "serialize",
    "serialize_keras_object",
    "serialize_object",
]
