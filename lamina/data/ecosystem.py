"""Input objects of other libraries: which one ``x`` is, and its adapter.

``fit`` / ``evaluate`` / ``predict`` take a ``tf.data.Dataset``, a PyTorch ``DataLoader``,
``Dataset`` or ``IterableDataset``, and Grain's ``MapDataset``, ``IterDataset`` and
``DataLoader`` as they are (pandas objects are arrays: ``lamina/data/pandas_conversion.py``).
No library is imported to find out: an object belongs to a library when one of its classes
is defined in that library's modules, which are then already imported (``class_origin.py``).
The semantics of each source are in its module (``tf_adapter.py``, ``torch_adapter.py``,
``grain_adapter.py``).
"""

from __future__ import annotations

import sys

from lamina.data.dataset import Dataset


def _builders():
    # Needed only once tensorflow, torch or grain is imported (``_find`` checks first): the
    # adapters and the source adapters under them stay out of ``import lamina``.
    from lamina.data import grain_adapter, tf_adapter, torch_adapter

    return (
        (tf_adapter.is_tf_dataset, tf_adapter.KIND, tf_adapter.tf_dataset_adapter),
        (torch_adapter.is_torch_dataloader, torch_adapter.LOADER_KIND, torch_adapter.dataloader_adapter),
        (torch_adapter.is_torch_dataset, torch_adapter.dataset_kind, torch_adapter.dataset_adapter),
        (grain_adapter.is_grain, grain_adapter.grain_kind, grain_adapter.grain_adapter),
    )


def _find(x):
    if isinstance(x, Dataset):  # lamina's own, even if it also subclasses a torch Dataset
        return None, None
    if not any(package in sys.modules for package in ("tensorflow", "torch", "grain")):
        return None, None
    for test, kind, build in _builders():
        if test(x):
            return kind(x) if callable(kind) else kind, build
    return None, None


def source_kind(x) -> str | None:
    """How messages call ``x`` (``"a tf.data.Dataset"``) if it comes from another library,
    else None.

    Example:
        >>> source_kind([1, 2]) is None
        True
    """
    return _find(x)[0]


def ecosystem_adapter(
    x, *, batch_size, steps_per_epoch, shuffle, class_weight, require_y, name
):
    """The adapter for an input object of tf.data, PyTorch or Grain; None for anything else.

    ``batch_size`` and ``shuffle`` apply to sources of single samples only (a PyTorch
    ``Dataset``, an unbatched Grain dataset); ready-made batches are taken as they come.

    Example:
        >>> import numpy as np
        >>> ecosystem_adapter(np.zeros(3), batch_size=2, steps_per_epoch=None, shuffle=False,
        ...                   class_weight=None, require_y=False, name="x") is None
        True
    """
    kind, build = _find(x)
    if build is None:
        return None
    return build(
        x,
        kind=kind,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        shuffle=shuffle,
        class_weight=class_weight,
        require_y=require_y,
        name=name,
    )
