"""Grain data as ``x`` / ``validation_data``: ``grain.MapDataset``, ``grain.IterDataset`` and
``grain.DataLoader``.

Keras 3's ``GrainDatasetAdapter`` takes each element as a batch. lamina does so when the
pipeline batches (a ``.batch()`` step in the dataset's chain, a ``grain.transforms.Batch`` in
the loader's operations), and batches the elements itself otherwise, since a single sample is
never a batch:

- a batched source gives ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` batches,
  taken as they come, iterated afresh each epoch (``len()`` of a batched ``MapDataset`` is the
  number of steps); ``shuffle`` and ``batch_size`` are the pipeline's business;
- an unbatched ``MapDataset`` (random access) is batched as arrays are: ``batch_size``
  samples per batch, ``shuffle`` drawing the permutation arrays draw, the partial batch last;
- an unbatched ``IterDataset`` or ``DataLoader`` is cut into batches of ``batch_size`` in the
  order its elements come.

``class_weight`` is applied per batch (Keras refuses it for Grain). An endless source needs
``steps_per_epoch``; an endless unbatched ``MapDataset`` (``.repeat()``) is refused: batch it or
make it an ``IterDataset``.
"""

from __future__ import annotations

from lamina.data.class_origin import defined_in
from lamina.data.source_adapters import (
    BatchedIterable,
    BatchSourceAdapter,
    ConvertedIterable,
    SampleSourceAdapter,
)

_NAMES = ("MapDataset", "IterDataset", "DataLoader")
# Above this many elements a MapDataset is endless (``.repeat()`` gives sys.maxsize).
_ENDLESS = 2**40


def is_grain(obj) -> bool:
    """True for a ``grain.MapDataset``, ``grain.IterDataset`` or ``grain.DataLoader`` (checked
    without importing Grain).

    Example:
        >>> is_grain([1, 2])
        False
    """
    return defined_in(obj, "grain", _NAMES)


def grain_kind(source) -> str:
    """How messages call a Grain object: ``"a grain.MapDataset"``, ``"a grain.DataLoader"``..."""
    name = next(cls.__name__ for cls in type(source).__mro__ if cls.__name__ in _NAMES)
    return f"a grain.{name}"


def is_batched(source) -> bool:
    """Whether the pipeline has a batching step: a dataset with a ``Batch*Dataset`` in its
    chain of parents, a loader with a ``Batch`` operation. Without a way to tell (a loader
    without ``_operations``), the elements are taken as batches, as Keras does."""
    if defined_in(source, "grain", ("DataLoader",)):
        operations = getattr(source, "_operations", None)
        if operations is None:
            return True
        return any(type(op).__name__ in ("Batch", "BatchOperation") for op in operations)
    seen, todo = set(), [source]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if type(node).__name__.startswith("Batch") and "batch" in type(node).__module__:
            return True
        todo.extend(getattr(node, "parents", ()) or ())
    return False


def grain_adapter(
    source, *, kind, batch_size, steps_per_epoch, shuffle, class_weight, require_y, name
):
    """The adapter of a Grain dataset or loader (see the module docstring)."""
    common = dict(
        steps_per_epoch=steps_per_epoch, class_weight=class_weight, require_y=require_y, name=name
    )
    random_access = defined_in(source, "grain", ("MapDataset",))
    length = len(source) if random_access else None
    if length is not None and length >= _ENDLESS:
        length = None
    if is_batched(source):
        if length == 0:
            raise ValueError(f"The {kind[2:]} passed as `{name}` is empty (len 0).")
        return BatchSourceAdapter(ConvertedIterable(source), kind=kind, num_batches=length, **common)
    if random_access:
        if length is None:
            raise ValueError(
                f"The {kind[2:]} passed as `{name}` is endless and unbatched: batch it "
                "(`.batch(batch_size)`) and pass `steps_per_epoch`, or pass it as an "
                "IterDataset (`.to_iter_dataset()`)."
            )
        return SampleSourceAdapter(
            source, kind=kind, batch_size=batch_size, shuffle=shuffle, **common
        )
    batched = BatchedIterable(source, batch_size or 32, where=f"A batch of `{name}` ({kind})")
    return BatchSourceAdapter(batched, kind=kind, **common)
