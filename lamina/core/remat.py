"""Rematerialization (gradient checkpointing) as Keras 3 offers it: ``lm.remat(f)`` and
``lm.RematScope(mode=...)``, built on ``jax.checkpoint``.

A rematerialized computation keeps none of its intermediate values for the backward pass: the
gradient recomputes them, trading compute for memory. ``jax.checkpoint`` needs a pure function,
while a layer's ``call`` reads and writes variables (batch-norm statistics, seed generators) and
adds losses; ``remat`` therefore runs ``f`` in a state scope of its own inside the checkpoint,
hands the variables' values in and their new values and the added losses out, and applies
them after, as ``lm.value_and_grad`` does.

``RematScope`` is read when a layer is *created* (as in Keras): layers made inside
``with lm.RematScope(mode="full"):`` rematerialize their ``call``; ``Layer.rematerialized_call``
decides per mode (``"full"``, ``"activations"``, ``"larger_than"``, ``"list_of_layers"``).
"""

from __future__ import annotations

import functools
import threading
from collections import namedtuple

import jax
import numpy as np

from lamina.core import state

RematMode = namedtuple("RematMode", ["mode", "output_size_threshold", "layer_names"])
_MODES = ("full", "activations", "larger_than", "list_of_layers", None)
_scopes = threading.local()


class RematScope:
    """Rematerialize the layers created inside: ``mode`` is ``"full"`` (every layer's call),
    ``"activations"`` (the ``activation`` of layers that have one), ``"larger_than"`` (layers
    whose output has more than ``output_size_threshold`` elements), ``"list_of_layers"`` (the
    layers named in ``layer_names``) or ``None`` (none; turns an outer scope off). Scopes nest;
    the innermost applies. Gradients are the same, only memory and compute change.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> with lm.RematScope(mode="list_of_layers", layer_names=["big"]):
        ...     big, small = lm.layers.Dense(4, name="big"), lm.layers.Dense(4, name="small")
        >>> big.rematerialized_call(big.call) == big.call, small.rematerialized_call(small.call) == small.call
        (False, True)
    """

    def __init__(self, mode="full", output_size_threshold=1024, layer_names=None):
        if mode not in _MODES:
            raise ValueError(f"Invalid mode '{mode}'. Supported modes are: 'full', 'activations', 'larger_than', "
                             "'list_of_layers', or None.")
        self.mode = mode
        self.output_size_threshold = output_size_threshold
        self.layer_names = list(layer_names or [])

    def __enter__(self):
        _stack().append(self)
        return self

    def __exit__(self, *exc):
        _stack().pop()

    def __repr__(self) -> str:
        return f"RematScope(mode={self.mode!r})"


def _stack() -> list:
    stack = getattr(_scopes, "stack", None)
    if stack is None:
        stack = _scopes.stack = []
    return stack


def current_mode():
    """The innermost ``RematScope``'s settings as a ``RematMode``, or ``None`` outside any scope
    (and in a ``mode=None`` one)."""
    stack = getattr(_scopes, "stack", None)
    if not stack or stack[-1].mode is None:
        return None
    scope = stack[-1]
    return RematMode(scope.mode, scope.output_size_threshold, tuple(scope.layer_names))


def remat(f, variables=None):
    """``f`` rematerialized: its intermediate values are recomputed by the gradient instead of
    kept (``jax.checkpoint``), with the same results and gradients.

    ``f`` may be stateful: the variables it writes (and the losses it adds) must be among
    ``variables``, by default the ``variables`` (and metric state) of the layer ``f`` is a method
of (or is); other
    variables may be read. Array arguments are traced; others (``training=True``, Python
    numbers) are passed as they are.

    Example:
        >>> import jax, jax.numpy as jnp, lamina as lm
        >>> f = lm.remat(lambda x: jnp.sin(jnp.sin(x)))
        >>> float(jax.grad(f)(1.0)) == float(jax.grad(lambda x: jnp.sin(jnp.sin(x)))(1.0))
        True
    """

    @functools.wraps(f)
    def rematerialized(*args, **kwargs):
        targets = list(_owner_variables(f) if variables is None else variables)
        leaves, tree = jax.tree_util.tree_flatten((args, kwargs))
        traced = [_is_array(leaf) for leaf in leaves]
        arrays = [leaf for leaf, t in zip(leaves, traced) if t]
        found = {}

        def pure(values, arrays):
            it = iter(arrays)
            call_args, call_kwargs = jax.tree_util.tree_unflatten(
                tree, [next(it) if t else leaf for leaf, t in zip(leaves, traced)])
            scope = state.StateScope(dict(zip(targets, values)), inherit=True)
            with scope:
                outputs = state.materialize(f(*call_args, **call_kwargs))
            stray = scope.writes_outside(targets)
            if stray:
                names = ", ".join(repr(var.path) for var, _ in stray)
                raise ValueError(f"lm.remat({getattr(f, '__qualname__', f)!r}): the function assigned variables "
                                 f"{names} that are not among its variables; pass them as remat(f, variables=...).")
            found["written"] = [i for i, v in enumerate(targets) if id(v) in scope.written]
            found["losses"] = scope.losses
            return outputs, [scope.values[id(targets[i])] for i in found["written"]], scope.losses.values()

        outputs, new_values, losses = jax.checkpoint(pure)([v.value for v in targets], arrays)
        for index, value in zip(found["written"], new_values):
            targets[index].assign(value)
        outer = state._thread.scope
        found["losses"].with_values(losses).merge_into(outer.losses if outer is not None else None)
        return outputs

    return rematerialized


def _owner_variables(f) -> list:
    owner = getattr(f, "__self__", None)
    if owner is None and hasattr(f, "_lm_children"):
        owner = f  # a layer itself
    if owner is None or not hasattr(owner, "_lm_children"):
        return []
    # Metric state too: a call may update a metric the layer holds.
    return list(owner.variables) + [v for v in owner.metrics_variables if all(v is not w for w in owner.variables)]


def _is_array(leaf) -> bool:
    # Python numbers stay static, as a layer's call may branch on them (or use them as sizes).
    return isinstance(leaf, (jax.Array, np.ndarray))
