"""``stateful_scan``: run stateful code over a leading axis with ``lax.scan``.

``fit`` uses it for ``steps_per_execution``: N train steps run inside one compiled call,
as a loop in the program, never by unrolling the step N times in the trace (Keras #20411).
The variables the step writes (weights, optimizer slots, metrics, seed generators) become the
scan's carry; everything else is read from the enclosing scope.
"""

from __future__ import annotations

from collections.abc import Callable

import jax

from lamina.core.state import StateScope, materialize


def stateful_scan(fn: Callable, xs):
    """``fn(x)`` for each ``x`` along the leading axis of ``xs``; returns the stacked outputs.

    The variables ``fn`` assigns are found by tracing it once abstractly on the first
    element, carried through the loop, and assigned their final values in the caller's
    context (eagerly, or inside ``lm.jit`` / ``fit``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> from lamina.core.scan import stateful_scan
        >>> total = lm.Variable(jnp.zeros(()), trainable=False)
        >>> def add(x):
        ...     total.assign_add(x)
        ...     return total.value
        >>> stateful_scan(add, jnp.arange(4.0)).tolist()
        [0.0, 1.0, 3.0, 6.0]
        >>> float(total.value)
        6.0
    """
    first = jax.tree_util.tree_map(lambda leaf: leaf[0], xs)
    discovery = StateScope(record=True)

    def probe(x):
        with discovery:
            return materialize(fn(x))

    jax.eval_shape(probe, first)
    carried = list(discovery.written.values())

    def body(values, x):
        scope = StateScope(dict(zip(carried, values)))
        with scope:
            out = materialize(fn(x))
        stray = scope.writes_outside(carried)
        if stray:  # only if fn's Python takes a different path after the first element
            names = ", ".join(repr(var.path) for var, _ in stray)
            raise ValueError(f"stateful_scan: the step wrote {names} on a later element but not on the first.")
        return [scope.values[id(v)] for v in carried], out

    final, outputs = jax.lax.scan(body, [v.value for v in carried], xs)
    for variable, value in zip(carried, final):
        variable.assign(value)
    return outputs
