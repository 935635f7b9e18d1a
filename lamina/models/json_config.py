"""``lm.models.model_from_json``: a model from the JSON text of ``model.to_json()``."""

from __future__ import annotations

import json

from lamina.models.model import Model
from lamina.saving.serialization import deserialize_object


def model_from_json(json_string, custom_objects=None):
    """The (unbuilt unless its config builds it, uncompiled) model that ``model.to_json()`` described.

    Classes resolve only through lamina's registry and ``custom_objects``, as when loading a
    file; nothing in the text is imported or executed.

    Example:
        >>> import lamina as lm
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(5), lm.layers.Dense(1)])
        >>> copy = lm.models.model_from_json(model.to_json())
        >>> type(copy).__name__, copy.output_shape, len(copy.weights)
        ('Sequential', (None, 1), 4)
    """
    try:
        config = json.loads(json_string)
    except (TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"model_from_json() takes the JSON text from model.to_json(); it could not be parsed: "
                         f"{error}.") from error
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError("model_from_json() takes the JSON text from model.to_json() (an object with "
                         f"'class_name' and 'config'); got {type(config).__name__}.")
    model = deserialize_object(config, kind="model", aliases={}, custom_objects=custom_objects)
    if not isinstance(model, Model):
        raise ValueError(f"model_from_json(): the JSON describes a {type(model).__name__}, not a model.")
    return model
