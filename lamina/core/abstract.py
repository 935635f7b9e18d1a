"""Abstract evaluation of stateful code: shapes out, nothing changed.

Building a model from a batch's shapes, making the compiled metrics, asking a layer for its
output shape: each runs stateful code (layers, metrics) on shapes only. ``abstract_eval``
runs it under ``jax.eval_shape`` inside a throwaway ``StateScope``, so that whatever the code
assigns (counters, statistics, metric totals) and every ``add_loss`` are dropped, while
layers built during the trace keep their real weights (``build`` runs outside the trace).
"""

from __future__ import annotations

from collections.abc import Callable

import jax

from lamina.core.state import StateScope, materialize


def abstract_eval(fn: Callable, *specs):
    """``fn(*specs)`` evaluated on shapes: its outputs as ``jax.ShapeDtypeStruct`` pytrees.

    ``specs`` are pytrees of ``jax.ShapeDtypeStruct`` (or arrays). Variable writes and losses
    made by ``fn`` are thrown away; variables created by it (a layer built on its first call)
    stay.

    Example:
        >>> import jax, jax.numpy as jnp, lamina as lm
        >>> layer = lm.layers.Dense(4)
        >>> out = abstract_eval(layer, jax.ShapeDtypeStruct((2, 3), jnp.float32))
        >>> out.shape, layer.built, [tuple(w.shape) for w in layer.weights]
        ((2, 4), True, [(3, 4), (4,)])
    """

    def run(*args):
        with StateScope():
            return materialize(fn(*args))

    return jax.eval_shape(run, *specs)
