"""Data adapters: turn what ``fit`` / ``evaluate`` / ``predict`` accept into device batches.

``get_data_adapter(x, y, sample_weight, ...)`` picks one of three adapters and checks the data
before any step runs; ``adapter.epoch(epoch_index, block=N)`` then yields ``(steps, data)`` with
``data = (x, y, sample_weight)`` made of device arrays (``y`` / ``sample_weight`` may be None):

- ``steps == 1``: one batch, leaves shaped ``(batch, ...)``;
- ``steps > 1`` (only when ``block > 1``): ``steps == block`` full batches stacked on a new
  leading axis, leaves shaped ``(block, batch, ...)``, ready for ``lax.scan``.

``block`` may also be a callable returning the block size: it is asked again before each item,
so that ``fit``'s ``steps_per_execution="auto"`` can change it in the middle of an epoch.

In-memory arrays (``ArrayDataAdapter``) are moved to the default device once, when the first
batch is drawn, and never come back to the host (``predict`` instead draws NumPy slices, see
``ArrayDataAdapter.from_host``): each yielded item is one small jitted gather
(``jnp.take(leaf, idx, axis=0)``) compiled once per item shape, so an epoch compiles at most
three programs (block, single batch, last partial batch) and later epochs none. The order of
an epoch: whole blocks first, then the remaining full batches one by one, then the partial
batch. Shuffling draws a permutation per pass over the data with NumPy's global generator
(``lm.random.set_seed`` seeds it, so runs repeat) and sends it to the device once per pass.
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

import functools
import itertools
import math
import warnings
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from lamina.data.dataset import Dataset, PyDataset
from lamina.data.loading import load_batches

__all__ = [
    "ArrayDataAdapter",
    "DataAdapter",
    "DatasetAdapter",
    "IterableDataAdapter",
    "get_data_adapter",
    "unpack_batch",
]

# 64-bit types become their 32-bit kin: JAX runs with x64 disabled, and silent truncation
# warnings on every batch help nobody.
_NARROW = {
    np.dtype("float64"): np.dtype("float32"),
    np.dtype("int64"): np.dtype("int32"),
    np.dtype("uint64"): np.dtype("uint32"),
    np.dtype("complex128"): np.dtype("complex64"),
}

_RAN_OUT = (
    "Your input ran out of data; interrupting the epoch. Make sure that your data can "
    "generate at least `steps_per_epoch * epochs` batches."
)


# ----------------------------------------------------------------------------------------
# Small helpers shared by the adapters (and by splitting.py).
# ----------------------------------------------------------------------------------------


def pack_batch(x, y=None, sample_weight=None):
    """The inverse of ``unpack_batch``, as Keras packs a batch for ``train_step``: ``x`` (or
    ``(x,)`` when x is itself a tuple), ``(x, y)`` or ``(x, y, sample_weight)``.

    Example:
        >>> from lamina.data import pack_batch
        >>> pack_batch("x", "y"), pack_batch("x"), pack_batch("x", "y", "w")
        (('x', 'y'), 'x', ('x', 'y', 'w'))
    """
    if y is None and sample_weight is None:
        return (x,) if isinstance(x, (tuple, list)) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def unpack_batch(data):
    """Split a user batch into ``(x, y, sample_weight)`` (Keras's ``unpack_x_y_sample_weight``).

    A tuple or list of length 1, 2 or 3 is ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``;
    anything else is a bare ``x``. Missing parts come back as None.

    Example:
        >>> import numpy as np
        >>> from lamina.data import unpack_batch
        >>> x, y, sw = unpack_batch((np.ones((2, 3)), np.zeros(2)))
        >>> x.shape, y.shape, sw
        ((2, 3), (2,), None)
    """
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data[0], data[1], data[2]
    raise ValueError(
        "A batch must be `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`; got a "
        f"{type(data).__name__} of length {len(data)}."
    )


def _arg_labels(name: str) -> tuple[str, str, str]:
    """How error messages call x / y / sample_weight for data named ``name``."""
    if name == "x":
        return "x", "y", "sample_weight"
    return f"{name}[0]", f"{name}[1]", f"{name}[2]"


def _is_array(obj) -> bool:
    return isinstance(obj, (jax.Array, np.ndarray)) or (
        hasattr(obj, "__array__") and not isinstance(obj, (str, bytes))
    )


def _is_structure(obj) -> bool:
    return isinstance(obj, (Mapping, list, tuple))


def _describe(obj) -> str:
    if isinstance(obj, (int, float, bool, str, bytes)):
        return f"{type(obj).__name__} {obj!r}"[:80]
    return type(obj).__name__


def _standardize_leaf(leaf, label: str, *, weight: bool = False):
    """A NumPy or JAX array of a supported dtype with a leading sample axis, or a ValueError."""
    if not _is_array(leaf):
        hint = (
            " (wrap Python lists of numbers in np.asarray: lists and tuples are read as "
            "several inputs)"
            if isinstance(leaf, (int, float, bool))
            else ""
        )
        raise ValueError(
            f"`{label}` must be a NumPy or JAX array (or a dict/list/tuple of them); got "
            f"{_describe(leaf)}{hint}."
        )
    if not isinstance(leaf, jax.Array):
        try:
            leaf = np.asarray(leaf)
        except Exception as err:  # noqa: BLE001 - reported with the argument's name
            raise ValueError(f"`{label}` could not be converted to an array: {err}") from err
    dtype = np.dtype(leaf.dtype)
    if not (jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_)):
        raise ValueError(
            f"`{label}` has dtype {dtype} (kind {dtype.kind!r}); expected a numeric or boolean "
            "array. Encode strings or Python objects as numbers (e.g. integer class ids) "
            "before passing them."
        )
    if leaf.ndim == 0:
        raise ValueError(
            f"`{label}` is a scalar (shape ()); expected an array whose first axis indexes "
            "the samples, shape (num_samples, ...)."
        )
    target = np.dtype("float32") if weight and not jnp.issubdtype(dtype, jnp.floating) else None
    target = target or _NARROW.get(dtype)
    if target is not None:
        leaf = leaf.astype(target)
    return leaf


def _standardize(tree, label: str, *, weight: bool = False):
    """Standardize every leaf of a structure; errors name the leaf (``x['image']``, ``y[1]``)."""
    if tree is None:
        return None
    if not _is_structure(tree):
        return _standardize_leaf(tree, label, weight=weight)
    # Anything JAX does not know as a container is a leaf, so a stray string or number is
    # reported by name instead of being walked into.
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: _standardize_leaf(
            leaf, label + jax.tree_util.keystr(path), weight=weight
        ),
        tree,
    )


def _labeled_leaves(tree, label: str) -> list[tuple[str, object]]:
    if tree is None:
        return []
    if not _is_structure(tree):
        return [(label, tree)]
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [(label + jax.tree_util.keystr(path), leaf) for path, leaf in flat]


def _check_num_samples(named: list[tuple[str, object]], what: str) -> int:
    """The common first-axis length of every leaf, or a ValueError listing them all."""
    what = what[0].upper() + what[1:]
    lengths = [(label, int(leaf.shape[0])) for label, leaf in named]
    if not lengths:
        raise ValueError(f"{what} holds no arrays at all.")
    if len({n for _, n in lengths}) > 1:
        listing = ", ".join(f"{label}: {n}" for label, n in lengths)
        raise ValueError(
            f"{what}: every array in x, y and sample_weight must have the same number of "
            f"samples (first axis), but they differ: {listing}."
        )
    return lengths[0][1]


def _match_sample_weight(y, sample_weight, labels):
    """Keras's rules: one weight array per output, or one per-sample array shared by all."""
    _, y_label, sw_label = labels
    if sample_weight is None:
        return None
    if y is None:
        raise ValueError(
            f"`{sw_label}` was given but `{y_label}` is None: sample weights weigh the "
            "per-sample loss against targets, so pass `y` as well (or drop the weights)."
        )
    y_nested = _is_structure(y)
    if not _is_structure(sample_weight):
        if not y_nested:
            return sample_weight
        shape = tuple(sample_weight.shape)
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise ValueError(
                f"With several outputs in `{y_label}`, a single `{sw_label}` array must hold "
                f"one weight per sample, shape (num_samples,); got shape {shape}. Pass one "
                "weight array per output (same structure as y) for other shapes."
            )
        return jax.tree_util.tree_map(lambda _: sample_weight, y)
    y_def = jax.tree_util.tree_structure(y)
    sw_def = jax.tree_util.tree_structure(sample_weight)
    if y_def != sw_def:
        raise ValueError(
            f"`{sw_label}` must be one array, or one array per output with the same structure "
            f"as `{y_label}`; the structures differ:\n- {y_label}: {y_def}\n- {sw_label}: {sw_def}"
        )
    return sample_weight


def _check_class_weight(class_weight):
    if class_weight is None:
        return None
    if not isinstance(class_weight, Mapping):
        raise ValueError(
            "`class_weight` must be a dict mapping class ids (ints) to weights; got "
            f"{_describe(class_weight)}."
        )
    try:
        return {int(k): float(v) for k, v in class_weight.items()}
    except (TypeError, ValueError) as err:
        raise ValueError(
            "`class_weight` must map integer class ids to float weights; got "
            f"{dict(class_weight)!r}."
        ) from err


def _class_weight_to_sample_weight(y, class_weight: dict, y_label: str) -> np.ndarray:
    """Per-sample weights from class weights, with Keras's class-id rule (float32, (n,))."""
    if y is None:
        raise ValueError(
            f"`class_weight` needs targets to read the class of each sample, but `{y_label}` "
            "is None."
        )
    if _is_structure(y):
        raise ValueError(
            "`class_weight` is only supported for a single output; for several outputs pass "
            f"`sample_weight` per output instead. Got a {type(y).__name__} `{y_label}`."
        )
    ids = np.asarray(y)
    if ids.ndim > 1:
        ids = np.argmax(ids, axis=-1) if ids.shape[-1] != 1 else np.squeeze(ids, axis=-1)
    if ids.ndim != 1:
        raise ValueError(
            f"`class_weight` needs one class per sample: integer labels (n,) or (n, 1), or "
            f"one-hot labels (n, classes); got `{y_label}` of shape {tuple(np.shape(y))}."
        )
    ids = np.round(ids).astype(np.int64)
    weights = np.ones(ids.shape, dtype=np.float32)
    for cls, w in class_weight.items():
        weights[ids == cls] = w
    return weights


def _apply_class_weight(y, sample_weight, class_weight, y_label):
    weights = _class_weight_to_sample_weight(y, class_weight, y_label)
    if sample_weight is None:
        return weights
    sw = sample_weight
    weights = weights.reshape(weights.shape + (1,) * (sw.ndim - 1))
    if isinstance(sw, jax.Array):
        return sw * jnp.asarray(weights)
    return (sw * weights).astype(np.float32)


def _check_positive_int(value, label, *, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{label}` must be a positive integer; got {value!r}.")
    return int(value)


def _check_shuffle(shuffle):
    if shuffle is True or shuffle is False or shuffle == "batch":
        return shuffle
    if isinstance(shuffle, (bool, np.bool_)):
        return bool(shuffle)
    raise ValueError(f'`shuffle` must be True, False or "batch"; got {shuffle!r}.')


def _prepare_arrays(x, y, sample_weight, *, class_weight, require_y, labels, what):
    """Standardize, check and class-weight in-memory data; returns ((x, y, sw), num_samples)."""
    x_label, y_label, sw_label = labels
    if x is None:
        raise ValueError(f"`{x_label}` is None; pass the input data.")
    if require_y and y is None:
        raise ValueError(
            f"`{y_label}` is missing: the compiled loss needs targets. Pass `y` (or batches "
            "`(x, y)`), or compile without a loss / override `train_step`."
        )
    x = _standardize(x, x_label)
    y = _standardize(y, y_label)
    sample_weight = _standardize(sample_weight, sw_label, weight=True)
    sample_weight = _match_sample_weight(y, sample_weight, labels)
    named = (
        _labeled_leaves(x, x_label)
        + _labeled_leaves(y, y_label)
        + _labeled_leaves(sample_weight, sw_label)
    )
    n = _check_num_samples(named, what)
    if class_weight is not None:
        sample_weight = _apply_class_weight(y, sample_weight, class_weight, y_label)
    return (x, y, sample_weight), n


# ----------------------------------------------------------------------------------------
# Adapters
# ----------------------------------------------------------------------------------------


def _block_now(block) -> int:
    """The block size for the next item: ``block``, or what the callable ``block`` says now."""
    return block() if callable(block) else block


class DataAdapter:
    """What the trainer iterates: ``epoch(epoch_index, block)`` and three facts about size."""

    _steps_per_epoch: int | None = None
    _num_samples: int | None = None
    _batch_size: int | None = None
    _exhausted: bool = False

    @property
    def steps_per_epoch(self) -> int | None:
        """Batches per epoch; None when unknown (a generator run until it is exhausted)."""
        return self._steps_per_epoch

    @property
    def num_samples(self) -> int | None:
        """Number of samples for in-memory data, else None."""
        return self._num_samples

    @property
    def batch_size(self) -> int | None:
        """The batch size for in-memory data, else None (the source makes the batches)."""
        return self._batch_size

    @property
    def has_partial_batch(self) -> bool:
        """True when in-memory data ends with a smaller batch (False for other sources)."""
        return False

    @property
    def exhausted(self) -> bool:
        """True once a one-shot generator has nothing left to give."""
        return self._exhausted

    def epoch(self, epoch_index: int = 0, block: int = 1, start_step: int = 0):
        """Yield ``(steps, (x, y, sample_weight))`` for one epoch; see the module docstring.

        ``epoch_index`` is informational: shuffling draws from NumPy's global generator, and
        with ``steps_per_epoch`` the position in the data carries over from the last epoch.
        ``start_step > 0`` finishes an epoch of which that many batches already ran: the
        position in the data is kept as it is (restored with ``set_state``) and only the
        remaining batches are yielded (``fit`` resuming from a ``BackupAndRestore`` backup).
        """
        if not callable(block):
            block = _check_positive_int(block, "block", allow_none=False)
        if isinstance(start_step, bool) or not isinstance(start_step, (int, np.integer)) or start_step < 0:
            raise ValueError(f"`start_step` must be a non-negative integer; got {start_step!r}.")
        # Only a resumed epoch passes start_step on (adapters written before it take one argument).
        return self._epoch(block, int(start_step)) if start_step else self._epoch(block)

    def get_state(self) -> dict:
        """Where the adapter is in its data: ``{"pos": int, "order": array or None}`` for
        arrays and Datasets (the batches of the current pass already given, and the pass's
        sample or batch order), ``{}`` for generators (whose position cannot be saved)."""
        return {}

    def set_state(self, state: dict) -> None:
        """Go back to a position ``get_state`` returned (a no-op for generators)."""

    def _epoch(self, block: int, start_step: int = 0):
        raise NotImplementedError


@functools.partial(jax.jit, static_argnames=("shape",))
def _gather(leaves, order, start, shape):
    """Rows ``order[start : start + prod(shape)]`` of every leaf, the index shaped ``shape``;
    positions past the end of ``order`` repeat its last row (a padded last batch)."""
    positions = start + jnp.arange(math.prod(shape), dtype=order.dtype)
    idx = jnp.take(order, positions, mode="clip").reshape(shape)
    return [jnp.take(leaf, idx, axis=0, mode="clip", unique_indices=True) for leaf in leaves]


def _host_rows(leaf: np.ndarray, start: int, shape: tuple) -> np.ndarray:
    """Rows ``start : start + prod(shape)`` of a NumPy leaf (the last row repeated past its
    end), shaped ``shape + leaf.shape[1:]``; a view when no padding is needed."""
    rows = leaf[start : start + math.prod(shape)]
    missing = math.prod(shape) - rows.shape[0]
    if missing:
        rows = np.concatenate([rows, np.repeat(leaf[-1:], missing, axis=0)])
    return rows.reshape(shape + leaf.shape[1:])


class ArrayDataAdapter(DataAdapter):
    """NumPy / JAX arrays (or dicts, lists, tuples of them), kept on the device.

    ``pad_partial_batch = True`` (set by ``predict``) makes the last, partial batch a full one
    whose extra rows repeat the last sample, so that every batch has one shape and the step
    compiles once; the caller drops the extra rows.

    ``from_host = True`` (set by ``predict`` before the first epoch) hands out NumPy slices of
    NumPy data instead of device gathers: a single unshuffled pass gains nothing from a device
    copy of the whole data, and each step's transfer then overlaps the previous step's compute.
    """

    pad_partial_batch = False
    from_host = False

    def __init__(
        self,
        x,
        y=None,
        sample_weight=None,
        *,
        batch_size=32,
        steps_per_epoch=None,
        shuffle=True,
        class_weight=None,
        require_y=False,
        name="x",
    ):
        labels = _arg_labels(name)
        data, n = _prepare_arrays(
            x,
            y,
            sample_weight,
            class_weight=class_weight,
            require_y=require_y,
            labels=labels,
            what=f"The data passed as `{name}`",
        )
        if n == 0:
            raise ValueError(
                f"The data passed as `{name}` is empty (0 samples); expected at least one."
            )
        if batch_size is None:  # Keras: derived from steps_per_epoch, else 32
            batch_size = math.ceil(n / steps_per_epoch) if steps_per_epoch else 32
        leaves, self._treedef = jax.tree_util.tree_flatten(data)
        self._host_leaves = leaves
        self._device_leaves = None  # the device copy, made when the first batch is gathered
        self._num_samples = n
        self._batch_size = batch_size
        self._shuffle = shuffle
        self._num_full = n // batch_size
        self._partial = n % batch_size
        self._num_batches = self._num_full + (1 if self._partial else 0)
        self._requested_steps = steps_per_epoch
        self._steps_per_epoch = steps_per_epoch or self._num_batches
        self._pos = 0  # batches of the current pass already yielded
        self._order = None  # device permutation of the current pass; None: no pass running
        self._identity = None

    @property
    def has_partial_batch(self) -> bool:
        return self._partial > 0

    @property
    def _leaves(self) -> list:
        """The data on the device, copied there once, when first needed."""
        if self._device_leaves is None:
            self._device_leaves = jax.device_put(self._host_leaves)
            self._host_leaves = None  # the device copy replaces it (no second copy kept)
        return self._device_leaves

    def _new_order(self):
        n, bs = self._num_samples, self._batch_size
        if not self._shuffle:
            if self._identity is None:
                self._identity = jax.device_put(np.arange(n, dtype=np.int32))
            return self._identity
        if self._shuffle == "batch":
            full = self._num_full * bs
            blocks = np.random.permutation(self._num_full)
            order = (blocks[:, None] * bs + np.arange(bs)).reshape(-1)
            order = np.concatenate([order, np.arange(full, n)])
        else:
            order = np.random.permutation(n)
        return jax.device_put(order.astype(np.int32))

    def _item(self, steps, start_batch):
        bs = self._batch_size
        if start_batch >= self._num_full:  # the partial batch
            shape = (bs,) if self.pad_partial_batch else (self._partial,)
        elif steps == 1:
            shape = (bs,)
        else:
            shape = (steps, bs)
        host = self._host_leaves if self.from_host and not self._shuffle else None
        if host is not None and all(isinstance(a, np.ndarray) for a in host):
            leaves = [_host_rows(leaf, start_batch * bs, shape) for leaf in host]
        else:
            leaves = _gather(self._leaves, self._order, start_batch * bs, shape)
        return jax.tree_util.tree_unflatten(self._treedef, leaves)

    def get_state(self) -> dict:
        order = None if self._order is None else np.asarray(jax.device_get(self._order))
        return {"pos": int(self._pos), "order": order}

    def set_state(self, state: dict) -> None:
        order = state.get("order")
        if order is not None:
            order = np.asarray(order, dtype=np.int32)
            if order.shape != (self._num_samples,):
                raise ValueError(
                    f"The saved data order has {order.shape[0]} entries but the data has "
                    f"{self._num_samples} samples: resume with the data of the saved run."
                )
            order = jax.device_put(order)
        self._order, self._pos = order, int(state.get("pos", 0))

    def _epoch(self, block: int, start_step: int = 0):
        if self._requested_steps is None and not start_step:  # every epoch is one whole pass
            self._pos, self._order = 0, None
        budget = self._steps_per_epoch - start_step
        drawn = 0
        while drawn < budget:
            if self._order is None:
                self._order = self._new_order()
                self._pos = 0
            pos = self._pos
            room = min(budget - drawn, self._num_full - pos)
            size = _block_now(block)
            steps = size if size > 1 and room >= size else 1
            # Book-keeping before the yield: a consumer may stop at any item.
            self._pos += steps
            drawn += steps
            pass_done = self._pos >= self._num_batches
            item = self._item(steps, pos)
            if pass_done:
                self._order = None
            yield steps, item
            if pass_done:
                break
        if drawn < budget and self._requested_steps is not None:
            warnings.warn(_RAN_OUT, stacklevel=2)


def _prepare_batch(batch, *, index, class_weight, require_y, name, kind):
    """Check and standardize one host batch from a generator or Dataset; returns (leaves, def)."""
    where = f"Batch {index} from `{name}` ({kind})"
    if isinstance(batch, (list, tuple)) and not 1 <= len(batch) <= 3:
        raise ValueError(
            f"{where} must be `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`; got a "
            f"{type(batch).__name__} of length {len(batch)}."
        )
    x, y, sw = unpack_batch(batch)
    try:
        data, _ = _prepare_arrays(
            x,
            y,
            sw,
            class_weight=class_weight,
            require_y=require_y,
            labels=("x", "y", "sample_weight"),
            what="the batch",
        )
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return jax.tree_util.tree_flatten(data)


def _to_device(leaves, treedef):
    return jax.tree_util.tree_unflatten(treedef, jax.device_put(leaves))


def _emit(batches, block):
    """Yield prepared host batches: stacked into one block when possible, else one by one."""
    if len(batches) == block > 1:
        treedef = batches[0][1]
        sig = [(np.shape(a), np.dtype(a.dtype)) for a in batches[0][0]]
        if all(
            d == treedef and [(np.shape(a), np.dtype(a.dtype)) for a in ls] == sig
            for ls, d in batches[1:]
        ):
            columns = list(zip(*(ls for ls, _ in batches)))
            stacked = [
                jnp.stack(col) if any(isinstance(a, jax.Array) for a in col) else np.stack(col)
                for col in columns
            ]
            yield block, _to_device(stacked, treedef)
            return
    for leaves, treedef in batches:
        yield 1, _to_device(leaves, treedef)


class _BatchwiseAdapter(DataAdapter):
    """Adapters whose data arrive as ready-made batches, each checked as it is drawn."""

    def _check(self, batch, index):
        return _prepare_batch(
            batch,
            index=index,
            class_weight=self._class_weight,
            require_y=self._require_y,
            name=self._name,
            kind=self._kind,
        )


class IterableDataAdapter(_BatchwiseAdapter):
    """Generators, iterators and other iterables yielding ``(x, y, sample_weight)`` batches."""

    def __init__(
        self, source, *, steps_per_epoch=None, class_weight=None, require_y=False, name="x"
    ):
        self._source = source
        self._name = name
        self._class_weight = class_weight
        self._require_y = require_y
        iterator = iter(source)
        self._reiterable = iterator is not source
        self._kind = "an iterable" if self._reiterable else "a generator"
        try:
            first = next(iterator)
        except StopIteration:
            raise ValueError(
                f"`{name}` yielded no batch at all; a generator or iterable must yield at "
                "least one batch `(x, y)`."
            ) from None
        self._check(first, 0)  # fail before training, not in the middle of it
        self._iterator = itertools.chain([first], iterator)
        self._fresh = True  # the iterator has not been drawn from yet
        self._steps_per_epoch = steps_per_epoch
        self._count = 0

    def _epoch(self, block: int, start_step: int = 0):
        budget = self._steps_per_epoch
        if budget is not None:
            budget = max(budget - start_step, 0)
        if self._reiterable and (
            self._iterator is None or (budget is None and not self._fresh)
        ):
            self._iterator, self._count = iter(self._source), 0
        if self._iterator is None:
            self._exhausted = True
            warnings.warn(
                f"The generator passed as `{self._name}` is exhausted: this epoch has no data. "
                "Pass `steps_per_epoch` (with a generator that yields "
                "`steps_per_epoch * epochs` batches), an endless generator, or a re-iterable "
                "object (e.g. an lm.data.Dataset) to train for several epochs.",
                stacklevel=2,
            )
            return
        self._fresh = False
        iterator = self._iterator
        drawn = 0
        while budget is None or drawn < budget:
            size = _block_now(block)
            want = size if size > 1 and (budget is None or budget - drawn >= size) else 1
            batches, ran_out = [], False
            for _ in range(want):
                try:
                    raw = next(iterator)
                except StopIteration:
                    ran_out = True
                    break
                batches.append(self._check(raw, self._count))
                self._count += 1
            drawn += len(batches)
            if ran_out:
                self._iterator = None
            yield from _emit(batches, size)
            if ran_out:
                if budget is not None:
                    warnings.warn(_RAN_OUT, stacklevel=2)
                return


class DatasetAdapter(_BatchwiseAdapter):
    """An ``lm.data.Dataset``: batches by index, shuffled by index order."""

    def __init__(
        self,
        dataset,
        *,
        steps_per_epoch=None,
        shuffle=True,
        class_weight=None,
        require_y=False,
        name="x",
    ):
        self._dataset = dataset
        self._name = name
        self._kind = "a Dataset"
        self._class_weight = class_weight
        self._require_y = require_y
        self._shuffle = bool(shuffle)
        try:
            n = dataset.num_batches if isinstance(dataset, PyDataset) else len(dataset)
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"len() of the Dataset passed as `{name}` failed: {err}") from err
        if n is None and steps_per_epoch is None:
            raise ValueError(
                f"The PyDataset passed as `{name}` is endless (num_batches is None): pass "
                "`steps_per_epoch` (and `validation_steps` / `steps` for evaluation) to say how "
                "many batches an epoch takes."
            )
        if n is None:  # endless (Keras): batch indices 0, 1, 2, ... carry on across epochs
            self._num_batches = None
            self._check(dataset[0], 0)
            self._requested_steps = self._steps_per_epoch = steps_per_epoch
            self._order, self._pos = None, 0
            return
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(
                f"The Dataset passed as `{name}` must have a length (number of batches) that "
                f"is a non-negative int; __len__ returned {n!r}."
            )
        if n == 0:
            raise ValueError(
                f"The Dataset passed as `{name}` is empty (__len__ returned 0); expected at "
                "least one batch."
            )
        self._num_batches = int(n)
        self._check(dataset[0], 0)  # fail before training, not in the middle of it
        self._requested_steps = steps_per_epoch
        self._steps_per_epoch = steps_per_epoch or self._num_batches
        self._order = None
        self._pos = 0

    def get_state(self) -> dict:
        return {"pos": int(self._pos), "order": None if self._order is None else np.asarray(self._order)}

    def set_state(self, state: dict) -> None:
        order = state.get("order")
        if order is not None and self._num_batches is not None:
            order = np.asarray(order)
            if order.shape != (self._num_batches,):
                raise ValueError(
                    f"The saved batch order has {order.shape[0]} entries but the Dataset has "
                    f"{self._num_batches} batches: resume with the data of the saved run."
                )
        self._order, self._pos = order, int(state.get("pos", 0))

    def _epoch(self, block: int, start_step: int = 0):
        if self._requested_steps is None and not start_step:
            self._order, self._pos = None, 0
        budget = self._steps_per_epoch - start_step
        drawn = 0
        self._dataset.on_epoch_begin()
        try:
            if self._num_batches is None:  # endless: no passes, no shuffling
                indices = np.arange(self._pos, self._pos + budget)
            else:
                if self._order is None:
                    n = self._num_batches
                    self._order = np.random.permutation(n) if self._shuffle else np.arange(n)
                    self._pos = 0
                # An epoch never spans two passes: it ends with the pass at the latest.
                indices = self._order[self._pos : self._pos + min(budget, self._num_batches - self._pos)]
            # A PyDataset with workers loads these ahead, in this order (lamina/data/loading.py);
            # closing the loader stops its pool before on_epoch_end runs.
            loader = load_batches(self._dataset, indices)
            try:
                while drawn < len(indices):
                    size = _block_now(block)
                    want = size if size > 1 and len(indices) - drawn >= size else 1
                    batches = [self._check(next(loader), int(i)) for i in indices[drawn : drawn + want]]
                    self._pos += want
                    drawn += want
                    if self._num_batches is not None and self._pos >= self._num_batches:
                        self._order = None
                    yield from _emit(batches, size)
            finally:
                loader.close()
            if drawn < budget and self._requested_steps is not None:
                warnings.warn(_RAN_OUT, stacklevel=2)
        finally:
            self._dataset.on_epoch_end()


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
            batches. An existing ``DataAdapter`` is returned as is.
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
    kind = "an lm.data.Dataset" if isinstance(x, Dataset) else "a generator or iterable"
    for given, label, what in ((y, y_label, "targets"), (sample_weight, sw_label, "weights")):
        if given is not None:
            raise ValueError(
                f"`{label}` must not be given when `{x_label}` is {kind}: its batches carry "
                f"the {what}, as `(x, y)` or `(x, y, sample_weight)`."
            )
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


class _IterNext:
    """An object with ``__next__`` but no ``__iter__`` behaves as the iterator it is."""

    def __init__(self, obj):
        self._obj = obj

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._obj)
