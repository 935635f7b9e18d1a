"""Utilities (``lm.utils``), with Keras's names: ``to_categorical``, ``normalize``, ``pad_sequences``,
``set_random_seed``, ``unpack_x_y_sample_weight`` / ``pack_x_y_sample_weight`` (the data
helpers of ``lm.data``), ``PyDataset`` (also as ``Sequence``, Keras's old name; it is
``lm.data.PyDataset``) and ``Progbar``.

- ``numerical.py``: ``to_categorical``, ``normalize``; ``sequence.py``: ``pad_sequences``; ``rng.py``:
  ``set_random_seed``; ``session.py``: ``clear_session``; ``progbar.py``: ``Progbar``;
  ``symbolic.py``: ``get_source_inputs``, ``is_keras_tensor``;
  ``model_visualization.py``: ``plot_model``, ``model_to_dot``; ``history_plot.py``: ``plot_history``.

As in Keras, the registry helpers of ``lm.saving`` are here too (``custom_object_scope``,
``get_custom_objects``, ``register_keras_serializable``, ...).
"""

from lamina.data.adapters import pack_batch as pack_x_y_sample_weight
from lamina.data.adapters import unpack_batch as unpack_x_y_sample_weight
from lamina.data.dataset import PyDataset
from lamina.data.dataset import PyDataset as Sequence
from lamina.saving import (
    CustomObjectScope,
    custom_object_scope,
    deserialize_keras_object,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
    serialize_keras_object,
)
from lamina.utils.history_plot import plot_history
from lamina.utils.model_visualization import model_to_dot, plot_model
from lamina.utils.numerical import normalize, to_categorical
from lamina.utils.progbar import Progbar
from lamina.utils.rng import set_random_seed
from lamina.utils.sequence import pad_sequences
from lamina.utils.session import clear_session
from lamina.utils.symbolic import get_source_inputs, is_keras_tensor

__all__ = [
    "CustomObjectScope",
    "Progbar",
    "PyDataset",
    "Sequence",
    "clear_session",
    "custom_object_scope",
    "deserialize_keras_object",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "get_source_inputs",
    "is_keras_tensor",
    "model_to_dot",
    "normalize",
    "pack_x_y_sample_weight",
    "pad_sequences",
    "plot_history",
    "plot_model",
    "register_keras_serializable",
    "serialize_keras_object",
    "set_random_seed",
    "to_categorical",
    "unpack_x_y_sample_weight",
]
