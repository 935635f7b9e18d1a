"""Which direct sublayer of a subclassed model feeds which, found by tracing one call.

A subclassed model's ``call`` is Python code, so unlike a Functional model it has no recorded
graph. ``traced_links`` traces the model (``jax.make_jaxpr`` at the shape it was built for,
twice, with two batch sizes, to tell the batch axis; nothing runs and no state changes) with each direct sublayer's calls wrapped in a named
scope and an identity barrier, then follows the data through the jaxpr: a value carries the set
of sublayers (or model inputs) it was computed from, through any plain ``jax.numpy`` code in
between, and a sublayer that consumes such a value is linked to each of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re

import jax
import numpy as np
from jax.extend.core import Var

from lamina.core.state import StateScope

_SCOPE = "lm_call_graph_{}"
_SCOPE_RE = re.compile(r"lm_call_graph_(\d+)")


@dataclasses.dataclass
class CallGraph:
    """``links``: ``(source, destination)`` sublayer pairs in call order; ``from_input[k]``:
    the sublayers that read leaf ``k`` of the model's input; ``to_output[k]``: the sublayers
    that leaf ``k`` of the output was computed from; ``shapes[id(sublayer)]``: its first
    call's ``(input shapes, output shapes, output dtypes)``, ``None`` for the batch axis."""

    links: list
    from_input: list
    to_output: list
    shapes: dict = dataclasses.field(default_factory=dict)


def traced_links(model, dtype="float32") -> CallGraph:
    """Trace ``model`` (built, subclassed) and return its :class:`CallGraph`.

    Raises whatever the trace raises (a model that needs integer inputs, data-dependent
    Python control flow, ...); the caller decides how to draw without links.

    Example:
        >>> import jax.numpy as jnp, numpy as np, lamina as lm
        >>> class Residual(lm.Model):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.a = lm.layers.Dense(4, name="a")
        ...         self.b = lm.layers.Dense(4, name="b")
        ...     def call(self, x):
        ...         h = self.a(x)
        ...         return self.b(jnp.tanh(h)) + h
        >>> model = Residual()
        >>> _ = model(np.ones((2, 4), "float32"))
        >>> graph = traced_links(model)
        >>> [(s.name, d.name) for s, d in graph.links], [[l.name for l in ls] for ls in graph.to_output]
        ([('a', 'b')], [['a', 'b']])
        >>> graph.shapes[id(model.b)]
        ((None, 4), (None, 4), 'float32')
    """
    children = model.layers
    index = {id(layer): i for i, layer in enumerate(children)}
    shape = model.__dict__.get("_lm_build_shape")
    if shape is None:
        raise ValueError(f"Model '{model.name}' has no recorded input shape to trace.")
    # Traced at two batch sizes: an axis whose size differs between them is drawn as None.
    (jaxpr, small), (_, large) = (_trace(model, children, index, shape, fill, dtype) for fill in (2, 3))
    graph = _follow(jaxpr, children)
    for position, (first, second) in _pairs(small, large):
        graph.shapes[id(children[position])] = (
            jax.tree_util.tree_map(_merge, first[0], second[0], is_leaf=_is_shape),
            jax.tree_util.tree_map(_merge, first[1], second[1], is_leaf=_is_shape),
            first[2],
        )
    return graph


def _is_shape(value) -> bool:
    return isinstance(value, tuple) and all(d is None or isinstance(d, int) for d in value)


def _merge(a, b):
    return tuple(x if x == y else None for x, y in zip(a, b))


def _pairs(small, large):
    return [(position, (record, large[position])) for position, record in small.items() if position in large]


def _trace(model, children, index, shape, fill, dtype):
    """The jaxpr of one call with the batch axis (the first) of size ``fill``, and the
    shapes of each tagged sublayer's first call."""
    example = jax.tree_util.tree_map(
        lambda s: jax.ShapeDtypeStruct((fill, *(fill if d is None else d for d in s[1:])), np.dtype(dtype)),
        shape, is_leaf=_is_shape,
    )
    records = {}
    with _tagged_calls(children, index, records), StateScope():  # writes made while tracing are dropped
        closed = jax.make_jaxpr(lambda x: model(x))(example)
    return closed.jaxpr, records


@contextlib.contextmanager
def _tagged_calls(children, index, records):
    """Wrap the ``__call__`` of the sublayers' classes so that calls of these sublayers (and
    only these) run inside a named scope, with their array inputs and outputs passed through
    ``optimization_barrier``: a layer that computes nothing (Dropout at inference) still shows
    as a consumer and a producer in the jaxpr. ``records[position]`` gets the input shapes,
    output shapes and output dtypes of each sublayer's first call."""
    patched = []

    def barrier(tree):
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        arrays = [i for i, leaf in enumerate(leaves) if isinstance(leaf, jax.Array)]
        if arrays:
            passed = jax.lax.optimization_barrier([leaves[i] for i in arrays])
            for i, value in zip(arrays, passed):
                leaves[i] = value
        return jax.tree_util.tree_unflatten(treedef, leaves)

    def shapes(tree):
        return jax.tree_util.tree_map(lambda a: tuple(a.shape), tree)

    def wrap(original):
        def __call__(self, *args, **kwargs):
            position = index.get(id(self))
            if position is None:
                return original(self, *args, **kwargs)
            with jax.named_scope(_SCOPE.format(position)):
                args, kwargs = barrier((args, kwargs))
                outputs = barrier(original(self, *args, **kwargs))
            if position not in records and args:
                records[position] = (shapes(args[0]), shapes(outputs),
                                     jax.tree_util.tree_map(lambda a: np.dtype(a.dtype).name, outputs))
            return outputs
        return __call__

    try:
        for cls in {type(layer) for layer in children}:
            patched.append((cls, cls.__dict__.get("__call__")))
            cls.__call__ = wrap(cls.__call__)
        yield
    finally:
        for cls, own in patched:
            if own is None:
                del cls.__call__
            else:
                cls.__call__ = own


def _owner(eqn):
    """The index of the outermost tagged sublayer whose call made ``eqn``, or None."""
    match = _SCOPE_RE.search(str(eqn.source_info.name_stack))
    return int(match.group(1)) if match else None


def _follow(jaxpr, children) -> CallGraph:
    origins = {}  # jaxpr variable -> frozenset of sources: ('layer', i) or ('input', k)
    for k, var in enumerate(jaxpr.invars):
        origins[var] = frozenset({("input", k)})
    links, from_input = [], [[] for _ in jaxpr.invars]

    def sources(var):
        return origins.get(var, frozenset()) if isinstance(var, Var) else frozenset()

    for eqn in jaxpr.eqns:
        owner = _owner(eqn)
        incoming = frozenset().union(*(sources(v) for v in eqn.invars))
        if owner is None:
            produced = incoming
        else:
            produced = frozenset({("layer", owner)})
            for kind, i in sorted(incoming):
                if kind == "input" and children[owner] not in from_input[i]:
                    from_input[i].append(children[owner])
                elif kind == "layer" and i != owner and (children[i], children[owner]) not in links:
                    links.append((children[i], children[owner]))
        for var in eqn.outvars:
            origins[var] = produced
    to_output = [[children[i] for kind, i in sorted(sources(var)) if kind == "layer"] for var in jaxpr.outvars]
    return CallGraph(links, from_input, to_output)
