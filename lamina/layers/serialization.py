"""``lm.layers.serialize`` / ``lm.layers.deserialize``: a layer to a JSON-ready config and back."""

from __future__ import annotations

from lamina.layers.layer import Layer
from lamina.saving.serialization import deserialize as _deserialize
from lamina.saving.serialization import serialize as _serialize


def serialize(layer):
    """``{"class_name": ..., "config": {...}}`` for ``layer`` (Keras's ``layers.serialize``).

    Example:
        >>> import lamina as lm
        >>> lm.layers.serialize(lm.layers.Dropout(0.5, name="drop"))["config"]["rate"]
        0.5
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"lm.layers.serialize expects a layer (an lm.Layer); got {type(layer).__name__}.")
    return _serialize(layer)


def deserialize(config, custom_objects=None):
    """The layer a ``serialize`` config describes (Keras's ``layers.deserialize``).

    Classes resolve through ``custom_objects`` (``{"MyLayer": MyLayer}``), an active
    ``custom_object_scope``, ``register_serializable`` and lamina's layers; nothing is
    imported. A ``Lambda`` layer follows the safe mode of the enclosing ``lm.load_model``
    (refused under ``safe_mode=True``), so a custom ``from_config`` that rebuilds its sublayer
    with this function gets the load's own setting. A config that is not a layer's raises a
    ``ValueError``.

    Example:
        >>> import lamina as lm
        >>> layer = lm.layers.deserialize(lm.layers.serialize(lm.layers.Dense(3, name="d")))
        >>> type(layer).__name__, layer.name, layer.units
        ('Dense', 'd', 3)
    """
    if not isinstance(config, dict):
        raise ValueError(f"lm.layers.deserialize expects a config dict ({{'class_name': ..., 'config': "
                         f"{{...}}}}); got {config!r}.")
    layer = _deserialize(config, custom_objects)
    if not isinstance(layer, Layer):
        raise ValueError(f"lm.layers.deserialize was given a config of {type(layer).__name__}, which is not a "
                         f"layer: {config!r}.")
    return layer


__all__ = ["deserialize", "serialize"]
