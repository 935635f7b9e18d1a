"""Input pipelines (``lm.data``): what ``fit``, ``evaluate`` and ``predict`` accept.

``Dataset`` is the base class for batch sequences and ``PyDataset`` Keras's version of it
(``workers``, ``use_multiprocessing``, ``max_queue_size``: batches loaded ahead by a pool);
``get_data_adapter`` checks any accepted input and turns it into device batches
(``adapter.epoch(i, block=N)``);
``train_validation_split`` and ``unpack_batch`` are the helpers the trainer (and custom
``train_step`` overrides) use. See ``lamina/data/adapters.py`` for the semantics.
``set_device_budget`` / ``device_budget`` say how much of the device's free memory in-memory
data may take before they are streamed, ``clear_device_cache`` drops the device copies kept
for later calls (``lamina/data/device_copy.py``).
"""

from lamina.data.adapters import (
    ArrayDataAdapter,
    DataAdapter,
    DatasetAdapter,
    IterableDataAdapter,
    get_data_adapter,
    pack_batch,
    unpack_batch,
)
from lamina.data.dataset import Dataset, PyDataset
from lamina.data.device_copy import clear_device_cache, device_budget, set_device_budget
from lamina.data.splitting import train_validation_split

__all__ = [
    "ArrayDataAdapter",
    "DataAdapter",
    "Dataset",
    "DatasetAdapter",
    "IterableDataAdapter",
    "PyDataset",
    "clear_device_cache",
    "device_budget",
    "get_data_adapter",
    "pack_batch",
    "set_device_budget",
    "train_validation_split",
    "unpack_batch",
]
