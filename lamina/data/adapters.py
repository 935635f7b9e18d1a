"""Data adapters: turn what ``fit`` / ``evaluate`` / ``predict`` accept into device batches.

``get_data_adapter(x, y, sample_weight, ...)`` picks one of three adapters and checks the data
before any step runs; ``adapter.epoch(epoch_index, block=N)`` then yields ``(steps, data)`` with
``data = (x, y, sample_weight)`` made of device arrays (``y`` / ``sample_weight`` may be None):

- ``steps == 1``: one batch, leaves shaped ``(batch, ...)``;
- ``steps > 1`` (only when ``block > 1``): ``steps == block`` full batches stacked on a new
  leading axis, leaves shaped ``(block, batch, ...)``, ready for ``lax.scan``.

``block`` may also be a callable returning the block size: it is asked again before each item,
so that ``fit``'s ``steps_per_execution="auto"`` can change it in the middle of an epoch.

Modules: ``standardize.py`` checks and standardizes user data, ``array_adapter.py`` batches
in-memory arrays, ``device_copy.py`` decides where they live (the device-copy cache and the
device budget), ``batchwise_adapters.py`` takes generators, iterables and Datasets, and this
module picks the adapter. Objects of other libraries (tf.data, PyTorch, Grain) are recognized
in ``ecosystem.py`` and adapted by ``source_adapters.py`` (rules in ``tf_adapter.py``,
``torch_adapter.py``, ``grain_adapter.py``); pandas objects are arrays
(``pandas_conversion.py``).

In-memory arrays (``ArrayDataAdapter``) are placed when the first batch is drawn
(``lamina/data/device_copy.py``): JAX arrays as they are; NumPy arrays copied to the device
once and the copy reused by later calls on the same unchanged arrays (found by identity,
checked by a hash of the content), when they fit in ``lm.data.device_budget()`` (a fraction
of the free device memory, 0.5 by default); otherwise streamed, each item gathered on the host
and sent one item ahead. ``evaluate`` and ``predict`` set ``from_host``: they make no new copy
(a copy ``fit`` made is used). On the device each yielded item is one small jitted gather
(``jnp.take(leaf, idx, axis=0)``) compiled once per item shape, so an epoch compiles at most
three programs (block, single batch, last partial batch) and later epochs none. The order of
an epoch: whole blocks first, then the remaining full batches one by one, then the partial
batch. Shuffling draws a permutation per pass over the data with NumPy's global generator
(``lm.random.set_seed`` seeds it, so runs repeat), the same on both paths.
``adapter.get_state()`` / ``set_state()`` save and restore the position in the data (the order
of the current pass and the batches taken from it) and ``epoch(i, block, start_step=k)``
finishes an epoch of which k batches ran: ``BackupAndRestore`` resumes ``fit`` with them.

Keras 3 semantics, with the deviations written down:

- ``steps_per_epoch`` with arrays or an ``lm.data.Dataset``: an epoch takes at most that many
  batches and the next epoch goes on where it stopped; a pass over the data never spans two
  epochs, so the epoch in which a pass ends is cut short (with Keras's "ran out of data"
  warning) and the next epoch starts a new pass with a new permutation. With
  ``steps_per_execution`` Keras may overshoot ``steps_per_epoch``; lamina never does.
- Generators / iterators are one-shot: without ``steps_per_epoch`` the first epoch runs until
  they are exhausted and later epochs yield nothing (with a warning, and ``adapter.exhausted``
  is True); with it, each epoch draws that many batches from the same iterator. Keras replays
  the two batches it peeked at instead. Re-iterable objects (``iter(obj) is not obj``) start
  over each epoch. ``shuffle`` is ignored for them without Keras's warning.
- ``shuffle="batch"`` shuffles the order of the full batches and keeps the samples of each
  batch together (the partial batch stays last), as Keras 2 and Keras's documentation
  describe; Keras 3's array adapter instead permutes the samples inside each batch.
- ``class_weight`` is multiplied into ``sample_weight`` (Keras 3 refuses both at once), and
  also works for generators and datasets (per batch). Class ids: integer labels, ``(n, 1)``
  labels squeezed, or the argmax of one-hot ``y``, rounded, as in Keras.
- Arrays: float64 becomes float32, int64 int32, uint64 uint32, complex128 complex64; sample
  weights become float32. ``sample_weight`` without ``y`` is an error (Keras drops it).
- ``for_training=False`` (evaluate / predict) never shuffles.
"""

from __future__ import annotations

from lamina.data.array_adapter import ArrayDataAdapter
from lamina.data.base import _RAN_OUT, DataAdapter, _block_now
from lamina.data.batchwise_adapters import DatasetAdapter, IterableDataAdapter, _IterNext
from lamina.data.dataset import Dataset
from lamina.data.device_copy import _gather, host_rows
from lamina.data.ecosystem import ecosystem_adapter, source_kind
from lamina.data.standardize import (
    _arg_labels,
    _check_class_weight,
    _check_positive_int,
    _check_shuffle,
    _describe,
    _is_array,
    _is_structure,
    _prepare_arrays,
    _prepare_batch,
    _standardize,
    pack_batch,
    unpack_batch,
)

__all__ = [
    "ArrayDataAdapter",
    "DataAdapter",
    "DatasetAdapter",
    "IterableDataAdapter",
    "get_data_adapter",
    "pack_batch",
    "unpack_batch",
]

# Names other modules and tests import from here (this module was once all of lamina/data).
_REEXPORTED = (_RAN_OUT, _block_now, _gather, host_rows, _prepare_arrays, _prepare_batch, _standardize)


def get_data_adapter(
    x,
    y=None,
    sample_weight=None,
    *,
    batch_size=32,
    steps_per_epoch=None,
    shuffle=True,
    class_weight=None,
    for_training=True,
    require_y=False,
    name="x",
) -> DataAdapter:
    """Check the data and choose its adapter; every problem is a ValueError naming the argument.

    Args:
        x: NumPy/JAX arrays (or dicts, lists, tuples of them), an ``lm.data.Dataset``, or a
            generator / iterable of ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``
            batches, or a tf.data / PyTorch / Grain dataset or loader (``ecosystem.py``);
            pandas objects count as arrays. An existing ``DataAdapter`` is returned as is.
        y, sample_weight: arrays (structures) alongside array ``x`` only. ``sample_weight`` is
            one array per output of ``y``, or one ``(num_samples,)`` array for all outputs.
        batch_size: samples per batch for arrays (None: ``ceil(n / steps_per_epoch)`` or 32);
            ignored for datasets and generators, which make their own batches.
        steps_per_epoch: cap on batches per epoch (Keras semantics, see the module docstring).
        shuffle: True, False or ``"batch"``; ignored for generators.
        class_weight: dict class id -> weight, multiplied into the sample weights.
        for_training: False for evaluation / prediction: never shuffles.
        require_y: a missing ``y`` is an error (the caller's loss needs targets).
        name: how messages call the data: ``"x"`` gives ``x`` / ``y`` / ``sample_weight``,
            another name (e.g. ``"validation_data"``) gives ``name[0]`` / ``[1]`` / ``[2]``.

    Example:
        >>> import numpy as np
        >>> from lamina.data import get_data_adapter
        >>> adapter = get_data_adapter(np.zeros((10, 3)), np.ones(10), batch_size=4,
        ...                            shuffle=False)
        >>> adapter.steps_per_epoch, adapter.num_samples
        (3, 10)
        >>> [(steps, data[0].shape) for steps, data in adapter.epoch(0, block=2)]
        [(2, (2, 4, 3)), (1, (2, 3))]
    """
    if isinstance(x, DataAdapter):
        return x
    batch_size = _check_positive_int(batch_size, "batch_size")
    steps_per_epoch = _check_positive_int(steps_per_epoch, "steps_per_epoch")
    shuffle = _check_shuffle(shuffle) if for_training else False
    class_weight = _check_class_weight(class_weight)
    require_y = bool(require_y)
    x_label, y_label, sw_label = _arg_labels(name)

    if x is None:
        raise ValueError(f"`{x_label}` is None; pass the input data.")
    if not isinstance(x, Dataset) and (_is_array(x) or _is_structure(x)):
        return ArrayDataAdapter(
            x,
            y,
            sample_weight,
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
            shuffle=shuffle,
            class_weight=class_weight,
            require_y=require_y,
            name=name,
        )
    kind = "an lm.data.Dataset" if isinstance(x, Dataset) else source_kind(x) or "a generator or iterable"
    for given, label, what in ((y, y_label, "targets"), (sample_weight, sw_label, "weights")):
        if given is not None:
            raise ValueError(
                f"`{label}` must not be given when `{x_label}` is {kind}: its batches carry "
                f"the {what}, as `(x, y)` or `(x, y, sample_weight)`."
            )
    external = ecosystem_adapter(  # tf.data, PyTorch, Grain (lamina/data/ecosystem.py)
        x, batch_size=batch_size, steps_per_epoch=steps_per_epoch, shuffle=shuffle,
        class_weight=class_weight, require_y=require_y, name=x_label,
    )
    if external is not None:
        return external
    if isinstance(x, Dataset):
        return DatasetAdapter(
            x,
            steps_per_epoch=steps_per_epoch,
            shuffle=shuffle,
            class_weight=class_weight,
            require_y=require_y,
            name=x_label,
        )
    if not isinstance(x, (str, bytes)) and (hasattr(x, "__iter__") or hasattr(x, "__next__")):
        if not hasattr(x, "__iter__"):
            x = _IterNext(x)
        return IterableDataAdapter(
            x,
            steps_per_epoch=steps_per_epoch,
            class_weight=class_weight,
            require_y=require_y,
            name=x_label,
        )
    raise ValueError(
        f"`{x_label}` has an unsupported type: {_describe(x)}. Expected NumPy/JAX arrays (or a "
        "dict/list/tuple of them), an lm.data.Dataset, or a generator/iterable of batches."
    )
