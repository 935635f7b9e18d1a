"""Symbolic tensors: what ``lm.Input`` returns and layers return when called on one.

Calling a layer on symbolic tensors runs nothing: it builds the layer from the input shapes
(``None`` for unknown axes), works out the output shapes with ``jax.eval_shape``, and records
a ``Node`` — the layer and the arguments it was called with — so that a Functional model can
replay the graph on real arrays later. A built-in layer whose output follows from its input by
a rule it states exactly (``Dense``, ``Activation``, ``Dropout``, ``Identity``:
lamina/layers/output_specs.py) is not traced: ``untraced_call`` records the same node, shape,
dtype and mask from the rule. Every other layer (a user's among them) is traced, as Keras
traces a layer that does not override ``compute_output_shape``; unlike Keras, a user's
``compute_output_shape`` is not taken on trust (the trace also gives the dtype and the mask).
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

    __slots__ = ("shape", "dtype", "name", "node", "index", "_keras_mask", "__weakref__")

    def __init__(self, shape, dtype="float32", name=None, node=None, index=0):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.name = name or f"tensor_{next(_ids)}"
        self.node = node
        self.index = index
        # The mask the layer call that made this tensor computed (a SymbolicTensor with the
        # mask's shape and dtype), or None; Keras's name, so code that checks it ports as is.
        self._keras_mask = None

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
    from lamina.layers.masking import get_mask, set_mask  # lamina.layers imports this module

    if not kwargs and len(args) == 1 and type(args[0]) is SymbolicTensor:
        output = untraced_call(layer, args[0])
        if output is not None:
            return output
    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs), is_leaf=is_symbolic)
    positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, SymbolicTensor)]
    if not layer.built:
        first = jax.tree_util.tree_map(lambda t: t.shape, args[0], is_leaf=is_symbolic)
        layer.build_from_shape(first)

    # Inputs that carry a mask get a traced mask too, recorded on the traced input, so the
    # call sees masks exactly as it does on arrays (a `mask=` argument, compute_mask).
    masked = [i for i in positions if leaves[i]._keras_mask is not None]

    def specs(fill):
        return [_spec(leaves[i], fill) for i in positions] + [_spec(leaves[i]._keras_mask, fill) for i in masked]

    def run(*values):
        concrete = list(leaves)
        for i, value in zip(positions, values):
            concrete[i] = value
        for i, mask in zip(masked, values[len(positions):]):
            set_mask(concrete[i], mask)
        call_args, call_kwargs = jax.tree_util.tree_unflatten(treedef, concrete)
        output_leaves = []
        try:
            with StateScope():  # nothing the call writes survives: this only asks for shapes
                outputs = layer(*call_args, **call_kwargs)
                output_leaves = jax.tree_util.tree_leaves(outputs)
                return materialize(outputs), [get_mask(leaf) for leaf in output_leaves]
        finally:  # the registry must not keep tracers alive past this trace
            for leaf in [concrete[i] for i in masked] + output_leaves:
                set_mask(leaf, None)

    # Both fills in one trace: a jax.eval_shape call costs more than tracing a small layer, and
    # a long Sequential pays it once per layer (building or loading 15,000 layers).
    small, large = jax.eval_shape(lambda two, three: (run(*two), run(*three)), specs(2), specs(3))
    return _record(layer, args, kwargs, small, large)


def symbolic_chain(layers, x: SymbolicTensor) -> list:
    """``layer(x)`` for each of ``layers`` in turn, each on the previous one's output (a
    Sequential's stack), recorded as ``symbolic_call`` records each. A layer that states its
    output (``untraced_call``) is not traced at all; each run of the others is traced in ONE
    abstract evaluation (``jax.eval_shape`` has a fixed cost, ~0.2 ms, larger than tracing a
    small layer, which made building or loading a long Sequential cost it once per layer).

    Returns the symbolic outputs of the layers recorded, in order: all of them, or fewer when
    the stack is not a chain of single tensors (a layer returned a structure). The caller
    then goes on layer by layer from the first layer not recorded, which raises the precise
    error.
    """
    outputs, start = [], 0
    while start < len(layers):
        output = untraced_call(layers[start], x)
        if output is not None:
            outputs.append(output)
            x, start = output, start + 1
            continue
        # Traced together: this layer and the following ones that cannot state their output
        # (a layer that can, but declined, ends the run only if it has a rule of its own).
        end = start + 1
        while end < len(layers) and _output_rule(type(layers[end])) is None:
            end += 1
        traced = _traced_chain(layers[start:end], x)
        if traced is None:
            return outputs
        outputs.extend(traced)
        x, start = traced[-1], end
    return outputs


def untraced_call(layer, x: SymbolicTensor) -> SymbolicTensor | None:
    """``layer(x)`` recorded without tracing when the layer's class states its output exactly
    (``_lm_output_spec``, lamina/layers/output_specs.py): the same build, input check, node,
    shape, dtype and mask as the traced call; ``None`` when it does not (the caller traces).
    """
    from lamina.layers.call_context import context  # lamina.layers imports this module

    rule = _output_rule(type(layer))
    if rule is None or any(name in layer.__dict__ for name in _RULE_BOUND):  # a method set on the instance
        return None
    if not layer.built:
        layer.build_from_shape(x.shape)
    spec = rule(layer, x.shape, x.dtype)
    if spec is None:
        return None
    spec_of_input = layer.input_spec
    if spec_of_input is not None:  # checked on both fills, as the trace checks them
        for fill in (2, 3):
            if spec_of_input.problem(tuple(fill if d is None else d for d in x.shape)) is not None:
                return None  # traced: the call raises its own error
    # As the traced call's two runs do: each an outermost call, numbered (add_loss tags).
    if context.depth == 0:
        context.call_id += 2
    layer.__dict__["_lm_last_call_id"] = context.call_id
    node = Node(layer, (x,), {}, None)
    output = SymbolicTensor(spec.shape, spec.dtype, name=f"{layer.name}/out_0", node=node,
                            index=len(layer._lm_inbound_nodes))
    node.outputs = output
    mask = x._keras_mask
    # The input's mask goes on when the layer passes masks (default compute_mask), or when
    # call returns the very input that carries it (no cast made a new array in between).
    if mask is not None and (layer.supports_masking or (spec.returns_input and spec.dtype == x.dtype)):
        output._keras_mask = SymbolicTensor(mask.shape, mask.dtype, name=f"{output.name}/mask")
    layer._lm_inbound_nodes.append(node)
    return output


# What a layer's call may be told by, and what must be the stating class's own for the rule
# to describe it (a subclass overriding any is traced).
_RULE_BOUND = ("__call__", "call", "build", "compute_mask", "compute_output_shape", "build_from_shape")
_rules: dict = {}


def _output_rule(cls):
    """The ``_lm_output_spec`` function that describes ``cls``'s call exactly, or ``None``."""
    try:
        return _rules[cls]
    except KeyError:
        pass
    owner = next((c for c in cls.__mro__ if "_lm_output_spec" in c.__dict__), None)
    rule = None
    if owner is not None and all(getattr(cls, name) is getattr(owner, name) for name in _RULE_BOUND):
        rule = owner.__dict__["_lm_output_spec"]
    _rules[cls] = rule
    return rule


def _traced_chain(layers, x: SymbolicTensor) -> list | None:
    """``symbolic_chain`` for layers that are all traced, in one abstract evaluation. Layers
    are built inside it on the shapes they get (``None`` where the two fills differ), eagerly,
    as ``symbolic_call`` builds them before it."""
    from lamina.layers.masking import get_mask, set_mask  # lamina.layers imports this module

    mask = x._keras_mask

    def chain(two, three):
        for value, value_mask in (two, three):  # the input for fill 2 and for fill 3, with its mask
            if value_mask is not None:
                set_mask(value, value_mask)
        current = [two[0], three[0]]
        results, made = [], list(current)
        try:
            for layer in layers:
                if not all(isinstance(value, jax.Array) for value in current):
                    raise _NotAChain
                if not layer.built:
                    with jax.ensure_compile_time_eval():  # weights get real values, as outside
                        layer.build_from_shape(_merged_shape(current[0], current[1]))
                outputs = []
                for value in current:
                    with StateScope():  # nothing the call writes survives: this only asks for shapes
                        out = materialize(layer(value))
                    outputs.append(out)
                    made.append(out)
                results.append([(out, get_mask(out) if isinstance(out, jax.Array) else None) for out in outputs])
                current = outputs
            if not all(isinstance(value, jax.Array) for value in current):
                raise _NotAChain
            return results
        finally:  # the registry must not keep tracers alive past this trace
            for value in made:
                if isinstance(value, jax.Array):
                    set_mask(value, None)

    fills = [(_spec(x, fill), None if mask is None else _spec(mask, fill)) for fill in (2, 3)]
    try:
        results = jax.eval_shape(chain, *fills)
    except _NotAChain:
        return None
    outputs = []
    for layer, ((small, small_mask), (large, large_mask)) in zip(layers, results):
        x = _record(layer, (x,), {}, (small, [small_mask]), (large, [large_mask]))
        outputs.append(x)
    return outputs


class _NotAChain(Exception):
    """A layer of a would-be chain returned a structure, not one tensor."""


def _spec(tensor, fill):
    return jax.ShapeDtypeStruct(tuple(fill if d is None else d for d in tensor.shape), tensor.dtype)


def _merged_shape(a, b) -> tuple:
    """The shape two fills agree on: ``None`` where they differ (an unknown axis)."""
    return tuple(x if x == y else None for x, y in zip(a.shape, b.shape))


def _record(layer, args, kwargs, small, large):
    """The node of ``layer`` called on ``args``/``kwargs``, from the abstract outputs (and
    output masks) of the two fills; returns its symbolic outputs."""
    (small, small_masks), (large, large_masks) = small, large
    node = Node(layer, args, kwargs, None)
    counter = itertools.count()

    def to_symbolic(a, b):
        return SymbolicTensor(_merged_shape(a, b), a.dtype, name=f"{layer.name}/out_{next(counter)}", node=node,
                              index=len(layer._lm_inbound_nodes))

    node.outputs = jax.tree_util.tree_map(to_symbolic, small, large)
    for tensor, a, b in zip(node.output_tensors, small_masks, large_masks):
        if a is not None and b is not None:
            tensor._keras_mask = SymbolicTensor(_merged_shape(a, b), a.dtype, name=f"{tensor.name}/mask")
    layer._lm_inbound_nodes.append(node)
    return node.outputs
