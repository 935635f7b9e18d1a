"""Utilities (``lm.utils``), with Keras's names: ``to_categorical``, ``pad_sequences``,
``set_random_seed``, ``unpack_x_y_sample_weight`` / ``pack_x_y_sample_weight`` (the data
helpers of ``lm.data``), ``PyDataset`` (also as ``Sequence``, Keras's old name; it is
``lm.data.PyDataset``) and ``Progbar``.

- ``numerical.py``: ``to_categorical``; ``sequence.py``: ``pad_sequences``; ``rng.py``:
  ``set_random_seed``; ``progbar.py``: ``Progbar``.
"""

from lamina.data.adapters import pack_batch as pack_x_y_sample_weight
from lamina.data.adapters import unpack_batch as unpack_x_y_sample_weight
from lamina.data.dataset import PyDataset
from lamina.data.dataset import PyDataset as Sequence
from lamina.utils.numerical import to_categorical
from lamina.utils.progbar import Progbar
from lamina.utils.rng import set_random_seed
from lamina.utils.sequence import pad_sequences

__all__ = [
    "Progbar",
    "PyDataset",
    "Sequence",
    "pack_x_y_sample_weight",
    "pad_sequences",
    "set_random_seed",
    "to_categorical",
    "unpack_x_y_sample_weight",
]
