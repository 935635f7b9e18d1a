"""Utilities (``lm.utils``), with Keras's names: ``to_categorical``, ``normalize``, ``pad_sequences``,
``set_random_seed``, ``unpack_x_y_sample_weight`` / ``pack_x_y_sample_weight`` (the data
helpers of ``lm.data``), ``PyDataset`` (also as ``Sequence``, Keras's old name; it is
``lm.data.PyDataset``) and ``Progbar``.

- ``numerical.py``: ``to_categorical``, ``normalize``; ``sequence.py``: ``pad_sequences``; ``rng.py``:
  ``set_random_seed``; ``session.py``: ``clear_session``; ``progbar.py``: ``Progbar``;
  ``symbolic.py``: ``get_source_inputs``, ``is_keras_tensor``;
  ``model_visualization.py``: ``plot_model``, ``model_to_dot``; ``history_plot.py``: ``plot_history``.
- Datasets (``lm.data.PyDataset``s of NumPy batches where Keras returns tf.data, see
  ``sample_dataset.py``, ``SampleDataset``): ``timeseries_dataset.py``: ``timeseries_dataset_from_array``;
  ``directory_datasets.py``: ``image_dataset_from_directory``, ``text_dataset_from_directory``;
  ``dataset_utils.py``: ``split_dataset``. Images: ``image_utils.py``: ``array_to_img``,
  ``img_to_array``, ``load_img``, ``save_img`` (Pillow, the ``image`` extra).
- ``file_utils.py``: ``get_file`` (download, cache in ``$LAMINA_HOME`` or ``~/.lamina``, safe
  extraction); ``config.py``: ``Config``; ``audio_dataset.py``: ``audio_dataset_from_directory``;
  ``feature_space.py``: ``FeatureSpace`` (structured-data preprocessing, on the host).
- ``logging_control.py``: ``enable_interactive_logging``, ``disable_interactive_logging``,
  ``is_interactive_logging_enabled``; ``dtype_utils.py``: ``standardize_dtype``.

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
from lamina.utils.audio_dataset import audio_dataset_from_directory
from lamina.utils.config import Config
from lamina.utils.dataset_utils import split_dataset
from lamina.utils.directory_datasets import image_dataset_from_directory, text_dataset_from_directory
from lamina.utils.dtype_utils import standardize_dtype
from lamina.utils.feature_space import FeatureSpace
from lamina.utils.file_utils import get_file
from lamina.utils.history_plot import plot_history
from lamina.utils.image_utils import array_to_img, img_to_array, load_img, save_img
from lamina.utils.logging_control import (
    disable_interactive_logging,
    enable_interactive_logging,
    is_interactive_logging_enabled,
)
from lamina.utils.model_visualization import model_to_dot, plot_model
from lamina.utils.numerical import normalize, to_categorical
from lamina.utils.progbar import Progbar
from lamina.utils.rng import set_random_seed
from lamina.utils.sample_dataset import SampleDataset
from lamina.utils.sequence import pad_sequences
from lamina.utils.session import clear_session
from lamina.utils.symbolic import get_source_inputs, is_keras_tensor
from lamina.utils.timeseries_dataset import timeseries_dataset_from_array

__all__ = [
    "Config",
    "CustomObjectScope",
    "FeatureSpace",
    "Progbar",
    "PyDataset",
    "SampleDataset",
    "Sequence",
    "array_to_img",
    "audio_dataset_from_directory",
    "clear_session",
    "custom_object_scope",
    "deserialize_keras_object",
    "disable_interactive_logging",
    "enable_interactive_logging",
    "get_custom_objects",
    "get_file",
    "get_registered_name",
    "get_registered_object",
    "get_source_inputs",
    "image_dataset_from_directory",
    "img_to_array",
    "is_interactive_logging_enabled",
    "is_keras_tensor",
    "load_img",
    "model_to_dot",
    "normalize",
    "pack_x_y_sample_weight",
    "pad_sequences",
    "plot_history",
    "plot_model",
    "register_keras_serializable",
    "save_img",
    "serialize_keras_object",
    "set_random_seed",
    "split_dataset",
    "standardize_dtype",
    "text_dataset_from_directory",
    "timeseries_dataset_from_array",
    "to_categorical",
    "unpack_x_y_sample_weight",
]
