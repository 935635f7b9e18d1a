"""Checking and standardizing user data: what every adapter does before it makes batches.

``_prepare_arrays`` turns ``x`` / ``y`` / ``sample_weight`` (arrays or dicts, lists, tuples of
them) into standardized arrays with one sample count, or raises a ValueError naming the
argument and the leaf (``x['image']``, ``validation_data[1]``); ``_prepare_batch`` does the
same for one batch drawn from a generator or Dataset. The rules (64-bit types narrowed, sample
weights matched to outputs, ``class_weight`` multiplied into the sample weights) are listed in
``lamina/data/adapters.py``'s docstring.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from lamina.data.pandas_conversion import is_pandas, pandas_to_numpy

# 64-bit types become their 32-bit kin: JAX runs with x64 disabled, and silent truncation
# warnings on every batch help nobody.
_NARROW = {
    np.dtype("float64"): np.dtype("float32"),
    np.dtype("int64"): np.dtype("int32"),
    np.dtype("uint64"): np.dtype("uint32"),
    np.dtype("complex128"): np.dtype("complex64"),
}


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


def _standardize_leaf(leaf, label: str, *, weight: bool = False, origins: dict | None = None):
    """A NumPy or JAX array of a supported dtype with a leading sample axis, or a ValueError.

    When the result is a new array, ``origins[id(result)]`` records the user's object it came
    from (the device-copy cache follows the user's arrays, not converted copies)."""
    given = leaf
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
    if is_pandas(leaf):  # by column: a mixed frame must not become an object array
        leaf = pandas_to_numpy(leaf, label)
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
    if origins is not None and leaf is not given:
        origins[id(leaf)] = given
    return leaf


def _standardize(tree, label: str, *, weight: bool = False, origins: dict | None = None):
    """Standardize every leaf of a structure; errors name the leaf (``x['image']``, ``y[1]``)."""
    if tree is None:
        return None
    if not _is_structure(tree):
        return _standardize_leaf(tree, label, weight=weight, origins=origins)
    # Anything JAX does not know as a container is a leaf, so a stray string or number is
    # reported by name instead of being walked into.
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: _standardize_leaf(
            leaf, label + jax.tree_util.keystr(path), weight=weight, origins=origins
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


def _prepare_arrays(x, y, sample_weight, *, class_weight, require_y, labels, what, origins=None):
    """Standardize, check and class-weight in-memory data; returns ((x, y, sw), num_samples).

    ``origins``, if given, gets ``id(converted leaf) -> user's object`` for each leaf that
    standardizing replaced by a new array."""
    x_label, y_label, sw_label = labels
    if x is None:
        raise ValueError(f"`{x_label}` is None; pass the input data.")
    if require_y and y is None:
        raise ValueError(
            f"`{y_label}` is missing: the compiled loss needs targets. Pass `y` (or batches "
            "`(x, y)`), or compile without a loss / override `train_step`."
        )
    x = _standardize(x, x_label, origins=origins)
    y = _standardize(y, y_label, origins=origins)
    sample_weight = _standardize(sample_weight, sw_label, weight=True, origins=origins)
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

