"""Symbolic tensors: what ``lm.Input`` returns and layers return when called on one.

Calling a layer on symbolic tensors runs nothing: it builds the layer from the input shapes
(``None`` for unknown axes), works out the output shapes with ``jax.eval_shape``, and records
a ``Node`` — the layer and the arguments it was called with — so that a Functional model can
replay the graph on real arrays later.
"""

from __future__ import annotations

import itertools

import jax
import numpy as np

from lamina.core.state import StateScope, materialize

_ids = itertools.count()


class SymbolicTensor:
    """A placeholder with a shape (``None`` for unknown axes) and a dtype.

    Example:
        >>> import lamina as lm
        >>> x = lm.Input(shape=(784,))
        >>> x.shape, str(x.dtype)
        ((None, 784), 'float32')
        >>> lm.layers.Dense(10)(x).shape
        (None, 10)
    """

    __slots__ = ("shape", "dtype", "name", "node", "index", "__weakref__")

    def __init__(self, shape, dtype="float32", name=None, node=None, index=0):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.name = name or f"tensor_{next(_ids)}"
        self.node = node
        self.index = index

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype.name} name={self.name!r}>"

    def __jax_array__(self):
        raise _no_values()


def _no_values() -> TypeError:
    return TypeError(
        "A symbolic tensor (from lm.Input) has no values: JAX functions cannot run on it. "
        "Use lamina layers between Input and the outputs, or wrap the computation in "
        "lm.layers.Lambda(lambda x: ...)."
    )


def _refuse_flatten(tensor):
    raise _no_values()


# jnp functions flatten their arguments as pytrees first; this turns their generic complaint
# into advice. lamina's own code walks structures with ``is_leaf=is_symbolic``.
jax.tree_util.register_pytree_node(SymbolicTensor, _refuse_flatten, lambda aux, children: None)


class Node:
    """One call of ``layer`` on symbolic ``args``/``kwargs`` producing ``outputs``."""

    __slots__ = ("layer", "args", "kwargs", "outputs")

    def __init__(self, layer, args, kwargs, outputs):
        self.layer = layer
        self.args = args
        self.kwargs = kwargs
        self.outputs = outputs

    @property
    def input_tensors(self) -> list:
        return [leaf for leaf in jax.tree_util.tree_leaves((self.args, self.kwargs), is_leaf=is_symbolic)
                if isinstance(leaf, SymbolicTensor)]

    @property
    def output_tensors(self) -> list:
        return jax.tree_util.tree_leaves(self.outputs, is_leaf=is_symbolic)


def is_symbolic(value) -> bool:
    return isinstance(value, SymbolicTensor)


def contains_symbolic(value) -> bool:
    if type(value) is SymbolicTensor:
        return True
    if isinstance(value, (list, tuple)):
        return any(contains_symbolic(v) for v in value)
    if isinstance(value, dict):
        return any(contains_symbolic(v) for v in value.values())
    return False


def symbolic_call(layer, args, kwargs):
    """Record ``layer(*args, **kwargs)`` on symbolic inputs; returns symbolic outputs."""
    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs), is_leaf=is_symbolic)
    positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, SymbolicTensor)]
    if not layer.built:
        first = jax.tree_util.tree_map(lambda t: t.shape, args[0], is_leaf=is_symbolic)
        layer.build_from_shape(first)

    def output_shapes(fill):
        specs = [jax.ShapeDtypeStruct(tuple(fill if d is None else d for d in leaves[i].shape), leaves[i].dtype)
                 for i in positions]

        def run(*values):
            concrete = list(leaves)
            for i, value in zip(positions, values):
                concrete[i] = value
            call_args, call_kwargs = jax.tree_util.tree_unflatten(treedef, concrete)
            with StateScope():  # nothing the call writes survives: this only asks for shapes
                return materialize(layer(*call_args, **call_kwargs))

        return jax.eval_shape(run, *specs)

    small, large = output_shapes(2), output_shapes(3)  # axes that follow an unknown one stay None
    node = Node(layer, args, kwargs, None)
    counter = itertools.count()

    def to_symbolic(a, b):
        shape = tuple(x if x == y else None for x, y in zip(a.shape, b.shape))
        return SymbolicTensor(shape, a.dtype, name=f"{layer.name}/out_{next(counter)}", node=node,
                              index=len(layer._lm_inbound_nodes))

    node.outputs = jax.tree_util.tree_map(to_symbolic, small, large)
    layer._lm_inbound_nodes.append(node)
    return node.outputs
