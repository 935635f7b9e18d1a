"""Saving and loading (``lm.saving``): the class registry and config (de)serialization."""

from lamina.saving.object_registry import (
    CustomObjectScope,
    get_registered_name,
    register_serializable,
)
from lamina.saving.serialization import deserialize_object, serialize_object

__all__ = [
    "CustomObjectScope",
    "deserialize_object",
    "get_registered_name",
    "register_serializable",
    "serialize_object",
]
