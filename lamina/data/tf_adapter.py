"""``tf.data.Dataset`` as ``x`` / ``validation_data``: Keras 3's ``TFDatasetAdapter`` semantics.

- Its elements are batches: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``, each part
  a tensor or a dict / tuple of tensors. They reach lamina through ``as_numpy_iterator()``
  (NumPy views of the tensors, no copies) and are checked like a generator's batches.
- The dataset is iterated afresh each epoch; with ``steps_per_epoch`` an epoch takes that many
  batches and the next one goes on from there (a new iteration once it runs out), as in Keras.
- ``cardinality()``, when known, is the number of steps the progress bar shows.
- ``shuffle`` is ignored (shuffle in the pipeline: ``.shuffle(buffer_size)``);
  ``class_weight`` is applied per batch as for generators.

Deviations from Keras: an unbatched dataset whose elements hold a scalar is refused (Keras
would feed each scalar as a batch); an infinite dataset without ``steps_per_epoch`` is refused
(Keras would run the first epoch forever). Other unbatched datasets cannot be told from
batched ones and are taken as batches, as in Keras. Ragged and sparse tensors are refused.
"""

from __future__ import annotations

import jax

from lamina.data.class_origin import defined_in
from lamina.data.source_adapters import BatchSourceAdapter, ConvertedIterable

KIND = "a tf.data.Dataset"


def is_tf_dataset(obj) -> bool:
    """True for a ``tf.data.Dataset`` (checked without importing TensorFlow).

    Example:
        >>> is_tf_dataset([1, 2])
        False
    """
    return defined_in(obj, "tensorflow", ("DatasetV2",))


def _check_elements(dataset, label: str) -> None:
    specs, _ = jax.tree_util.tree_flatten_with_path(dataset.element_spec)
    for path, spec in specs:
        where = f"element part {jax.tree_util.keystr(path)}" if path else "each element"
        kind = type(spec).__name__
        if kind in ("RaggedTensorSpec", "SparseTensorSpec"):
            raise ValueError(
                f"The tf.data.Dataset passed as `{label}`: {where} is a {kind[:-4]}; expected "
                "dense tensors. Convert it in the pipeline (e.g. `.map(lambda x, y: "
                "(x.to_tensor(), y))` or tf.sparse.to_dense)."
            )
        if getattr(spec, "shape", None) is not None and spec.shape.rank == 0:
            raise ValueError(
                f"The tf.data.Dataset passed as `{label}` looks unbatched: {where} is a scalar "
                f"({spec}), but each element must be a batch with a leading batch axis. Batch "
                "the dataset first: `dataset.batch(batch_size)`."
            )


def tf_dataset_adapter(
    dataset, *, kind, batch_size, steps_per_epoch, shuffle, class_weight, require_y, name
):
    """The adapter of a ``tf.data.Dataset`` (see the module docstring); ``batch_size`` and
    ``shuffle`` are the pipeline's business and not used. Examples run in
    ``tests/data/test_ecosystem_tf.py`` (TensorFlow takes seconds to import).
    """
    import tensorflow as tf  # already imported: the dataset came from it

    _check_elements(dataset, name)
    cardinality = int(dataset.cardinality())
    if cardinality == 0:
        raise ValueError(f"The tf.data.Dataset passed as `{name}` is empty (cardinality 0).")
    if cardinality == tf.data.INFINITE_CARDINALITY and steps_per_epoch is None:
        raise ValueError(
            f"The tf.data.Dataset passed as `{name}` is infinite (it repeats): pass "
            "`steps_per_epoch` (`validation_steps` for validation data, `steps` for evaluate "
            "and predict) to say how many batches an epoch takes."
        )
    return BatchSourceAdapter(
        ConvertedIterable(dataset, iterate=lambda ds: ds.as_numpy_iterator()),
        kind=kind,
        num_batches=cardinality if cardinality > 0 else None,
        steps_per_epoch=steps_per_epoch,
        class_weight=class_weight,
        require_y=require_y,
        name=name,
    )
