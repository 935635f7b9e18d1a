"""A built model as a pure inference function of flat input arrays, and the inputs it takes.

Every exporter needs the same two things: ``fn(*arrays)`` that runs the model with
``training=False`` on its current weights without touching its state, and one
``ArgSpec`` (name, shape with ``None`` for free axes, dtype) per array.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from lamina.core import state
from lamina.core.abstract import abstract_eval


@dataclasses.dataclass(frozen=True)
class ArgSpec:
    """One input array of an exported function: ``None`` in ``shape`` marks a free axis.

    Example:
        >>> ArgSpec("image", (None, 28, 28, 1), np.dtype("float32")).symbols(0)
        ('b', '28', '28', '1')
    """

    name: str
    shape: tuple
    dtype: np.dtype

    def symbols(self, index: int) -> tuple:
        """The shape as strings for ``jax.export.symbolic_shape``: the batch axis is ``b`` in
        every input (all inputs share one batch size), other free axes get their own name."""
        return tuple(
            ("b" if axis == 0 else f"d{index}_{axis}") if size is None else str(size)
            for axis, size in enumerate(self.shape)
        )


@dataclasses.dataclass(frozen=True)
class InferenceFunction:
    """``fn(*flat_inputs) -> outputs`` with the model's weights closed over, ``params_fn(params,
    *flat_inputs)`` taking them as an argument instead (``params`` lines up with
    ``variables``), and the flat inputs' specs."""

    fn: object
    params_fn: object
    variables: list
    specs: list


def inference_function(model, input_signature=None) -> InferenceFunction:
    """The pure inference function of a built ``model`` and its input specs.

    ``input_signature`` is a structure (as the model takes its inputs: one spec, a list or a
    dict) of ``lm.Input`` tensors, ``jax.ShapeDtypeStruct`` s, ``tf.TensorSpec`` s or arrays
    (an array's batch axis becomes free, as in Keras). Without it the model's own inputs are
    used (``lm.Input`` of a Functional or Sequential model, or the shape of the first batch a
    subclassed model was called on, with a free batch axis).

    Example:
        >>> import numpy as np, lamina as lm
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
        >>> inference = inference_function(model)
        >>> inference.specs[0].shape, inference.fn(np.ones((4, 3), "float32")).shape
        ((None, 3), (4, 2))
    """
    signature = _model_signature(model) if input_signature is None else input_signature
    leaves, treedef = jax.tree_util.tree_flatten(signature, is_leaf=_is_spec_leaf)
    if not leaves:
        raise ValueError(f"Cannot export model '{model.name}': input_signature {input_signature!r} holds no input.")
    names = _input_names(signature, len(leaves))
    specs = [_arg_spec(leaf, name, model, given=input_signature is not None) for leaf, name in zip(leaves, names)]
    if not model.built:  # given a signature, build as a first call would (nothing is run)
        example = [jax.ShapeDtypeStruct(tuple(1 if d is None else d for d in s.shape), s.dtype) for s in specs]
        abstract_eval(lambda *flat: model(jax.tree_util.tree_unflatten(treedef, list(flat)), training=False),
                      *example)
    variables = list(model.variables)

    def run(*flat):
        inputs = jax.tree_util.tree_unflatten(treedef, list(flat))
        return model(inputs, training=False)

    # Writes the call makes (none for a well-behaved inference pass) are dropped: the export
    # must never change the model.
    pure = state.functionalize(run, variables)

    def params_fn(params, *flat):
        return pure(list(params), *flat)[0]

    def fn(*flat):
        return params_fn([v.value for v in variables], *flat)

    return InferenceFunction(fn=fn, params_fn=params_fn, variables=variables, specs=specs)


def _model_signature(model):
    if not model.built:
        raise ValueError(
            f"Cannot export model '{model.name}': it is not built, so its input shape is unknown. "
            "Call it on a batch of data first (or start it with lm.Input), or pass "
            "input_signature=lm.Input(shape=...)."
        )
    try:
        inputs = model.input  # Functional and Sequential models: the lm.Input structure
    except (AttributeError, ValueError):
        inputs = None
    if inputs is not None:
        return inputs
    shape = model.__dict__.get("_lm_declared_input_shape") or model.__dict__.get("_lm_build_shape")
    if shape is None:
        raise ValueError(
            f"Cannot export model '{model.name}': it was built without recording an input shape. "
            "Pass input_signature=lm.Input(shape=...) (the batch axis is left free)."
        )
    dtype = np.dtype(model.dtype)

    return jax.tree_util.tree_map(lambda s: _FreeBatch(tuple(s), dtype), shape, is_leaf=_is_shape)


@dataclasses.dataclass(frozen=True)
class _FreeBatch:
    """A recorded build shape: its first axis (the batch) is left free."""

    shape: tuple
    dtype: np.dtype


def _is_shape(value) -> bool:
    return isinstance(value, tuple | list) and all(d is None or isinstance(d, int) for d in value)


def _is_spec_leaf(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _input_names(signature, count: int) -> list:
    if isinstance(signature, dict) and len(signature) == count:
        return [str(key) for key in sorted(signature)]  # tree_flatten orders dict keys
    leaves = jax.tree_util.tree_leaves(signature, is_leaf=_is_spec_leaf)
    names = [getattr(leaf, "name", None) for leaf in leaves]
    if count == 1:
        return [names[0] if isinstance(names[0], str) and names[0] else "inputs"]
    names = [n if isinstance(n, str) and n else f"inputs_{i}" for i, n in enumerate(names)]
    # Runtimes feed inputs by name: a repeated one gets its position appended.
    return [n if names.count(n) == 1 else f"{n}_{i}" for i, n in enumerate(names)]


def _arg_spec(leaf, name: str, model, given: bool) -> ArgSpec:
    dtype = getattr(leaf.dtype, "as_numpy_dtype", leaf.dtype)  # a tf.DType
    try:
        dtype = np.dtype(dtype)
        shape = tuple(None if d is None else int(d) for d in tuple(leaf.shape))
    except TypeError as error:
        raise TypeError(
            f"Cannot export model '{model.name}': input {name!r} of input_signature must have a shape of "
            f"integers or None and a NumPy dtype, got shape {getattr(leaf, 'shape', None)} and dtype {leaf.dtype!r}."
        ) from error
    if isinstance(leaf, _FreeBatch) or (given and _is_array(leaf)):
        shape = (None, *shape[1:]) if shape else shape  # Keras frees the batch axis of example arrays
    if not shape:
        raise ValueError(f"Cannot export model '{model.name}': input {name!r} is a scalar; inputs need a batch axis.")
    return ArgSpec(name=name, shape=shape, dtype=dtype)


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray | jax.Array)
