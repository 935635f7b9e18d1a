"""PyTorch data as ``x`` / ``validation_data``: ``DataLoader``, map-style ``Dataset`` and
``IterableDataset``.

- A ``torch.utils.data.DataLoader`` gives ready-made batches (Keras 3's
  ``TorchDataLoaderAdapter``): ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` (the
  default collate makes lists of tuples; they count as tuples), each part a tensor or a dict /
  tuple of tensors. Tensors become NumPy arrays sharing their memory (``Tensor.numpy()`` on
  the CPU tensor; bfloat16 as ``ml_dtypes.bfloat16``). The loader is iterated afresh each
  epoch, so its own ``shuffle=True`` sampler reshuffles; ``len(loader)``, when defined, is
  the number of steps; ``fit``'s ``shuffle`` and ``batch_size`` are ignored (the loader's own
  settings rule), ``class_weight`` is applied per batch (Keras refuses it here).
- A map-style ``torch.utils.data.Dataset`` (``len`` and ``dataset[i]`` giving one sample), which
  Keras 3 does not take, is batched by lamina as arrays are: ``batch_size`` samples per batch,
  stacked leaf by leaf, the partial batch last, ``shuffle`` (True / ``"batch"``) drawing the same
  permutation as for arrays, ``steps_per_epoch`` with the array rules. The same samples as
  arrays give the same batches.
- An ``IterableDataset`` yields samples: lamina groups them into batches of ``batch_size`` in
  the order they come (no shuffling), iterating it afresh each epoch.
"""

from __future__ import annotations

from lamina.data.class_origin import defined_in
from lamina.data.source_adapters import (
    BatchedIterable,
    BatchSourceAdapter,
    ConvertedIterable,
    SampleSourceAdapter,
)

LOADER_KIND = "a torch DataLoader"


def dataset_kind(dataset) -> str:
    """How messages call a torch dataset: ``"a torch Dataset"`` or ``"a torch IterableDataset"``."""
    return f"a torch {'IterableDataset' if _is_iterable(dataset) else 'Dataset'}"


def is_torch_dataloader(obj) -> bool:
    """True for a ``torch.utils.data.DataLoader`` (checked without importing torch).

    Example:
        >>> is_torch_dataloader([1, 2])
        False
    """
    return defined_in(obj, "torch", ("DataLoader",))


def is_torch_dataset(obj) -> bool:
    """True for a ``torch.utils.data.Dataset`` or ``IterableDataset`` (checked without importing
    torch).

    Example:
        >>> is_torch_dataset([1, 2])
        False
    """
    return defined_in(obj, "torch", ("Dataset", "IterableDataset"))


def _is_iterable(dataset) -> bool:
    return defined_in(dataset, "torch", ("IterableDataset",))


def to_numpy(leaf):
    """A torch tensor as a NumPy array sharing its memory where it can; anything else as is.

    Example:
        >>> to_numpy(3)
        3
    """
    import torch  # already imported: the data came from it

    if not isinstance(leaf, torch.Tensor):
        return leaf
    leaf = leaf.detach().cpu().resolve_conj().resolve_neg()
    if leaf.dtype == torch.bfloat16:  # NumPy has no bfloat16; JAX's ml_dtypes has
        import ml_dtypes

        return leaf.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return leaf.numpy()


def _batch_to_numpy(batch):
    import jax

    return jax.tree_util.tree_map(to_numpy, batch)


def dataloader_adapter(
    loader, *, kind, batch_size, steps_per_epoch, shuffle, class_weight, require_y, name
):
    """The adapter of a ``DataLoader`` (see the module docstring): its batches as they come."""
    try:
        num_batches = len(loader)
    except TypeError:  # an IterableDataset without __len__
        num_batches = None
    if num_batches == 0:
        raise ValueError(f"The torch DataLoader passed as `{name}` is empty (len 0).")
    return BatchSourceAdapter(
        ConvertedIterable(loader, _batch_to_numpy),
        kind=kind,
        num_batches=num_batches,
        steps_per_epoch=steps_per_epoch,
        class_weight=class_weight,
        require_y=require_y,
        name=name,
    )


def dataset_adapter(
    dataset, *, kind, batch_size, steps_per_epoch, shuffle, class_weight, require_y, name
):
    """The adapter of a torch ``Dataset`` of single samples, batched by lamina (see the module
    docstring)."""
    if _is_iterable(dataset):
        return BatchSourceAdapter(
            BatchedIterable(
                dataset, batch_size or 32, where=f"A batch of `{name}` ({kind})", convert=to_numpy
            ),
            kind=kind,
            steps_per_epoch=steps_per_epoch,
            class_weight=class_weight,
            require_y=require_y,
            name=name,
        )
    return SampleSourceAdapter(
        dataset,
        kind=kind,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        shuffle=shuffle,
        class_weight=class_weight,
        require_y=require_y,
        convert=to_numpy,
        name=name,
    )
