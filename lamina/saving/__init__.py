"""Saving and loading (``lm.saving``): model files, weights files, and the class registry.

- ``model.save("m.lamina")`` / ``lm.load_model(path, custom_objects=None, compile=True,
  safe_mode=True)``: one zip file (``archive.py``, ``model_file.py``).
- ``model.save_weights("w.safetensors")`` / ``model.load_weights(path, skip_mismatch=False)``:
  variables keyed by path (``weights.py``).
- ``@register_serializable`` and ``custom_objects``: the only way a name in a file becomes a
  class (``object_registry.py``, ``serialization.py``).
"""

from lamina.saving.errors import FileFormatError, WeightMismatchError
from lamina.saving.model_file import load_model, save_model
from lamina.saving.object_registry import (
    CustomObjectScope,
    get_registered_name,
    register_serializable,
)
from lamina.saving.serialization import deserialize, deserialize_object, serialize, serialize_object

__all__ = [
    "CustomObjectScope",
    "FileFormatError",
    "WeightMismatchError",
    "deserialize",
    "deserialize_object",
    "get_registered_name",
    "load_model",
    "register_serializable",
    "save_model",
    "serialize",
    "serialize_object",
]
