"""Questions about symbolic tensors (what ``lm.Input`` and layers called on it return), with
Keras's names: ``is_keras_tensor`` and ``get_source_inputs``."""

from __future__ import annotations

from lamina.core.symbolic import SymbolicTensor


def is_keras_tensor(x) -> bool:
    """Whether ``x`` is a symbolic tensor (``lm.Input`` or a layer's output on one), Keras's name.

    Example:
        >>> import numpy as np
        >>> import lamina as lm
        >>> x = lm.Input(shape=(3,))
        >>> lm.utils.is_keras_tensor(x), lm.utils.is_keras_tensor(lm.layers.Dense(2)(x))
        (True, True)
        >>> lm.utils.is_keras_tensor(np.ones((1, 3)))
        False
    """
    return isinstance(x, SymbolicTensor)


def get_source_inputs(tensor) -> list:
    """The inputs (``lm.Input`` tensors) that ``tensor`` is computed from, each once, in the
    order the graph reaches them.

    Example:
        >>> import lamina as lm
        >>> a, b = lm.Input(shape=(2,), name="a"), lm.Input(shape=(2,), name="b")
        >>> y = lm.layers.Dense(1)(lm.layers.Add()([a, b]))
        >>> [t.name for t in lm.utils.get_source_inputs(y)]
        ['a', 'b']
    """
    if not isinstance(tensor, SymbolicTensor):
        # Keras hands a non-symbolic value back unchanged; a list of inputs is the only answer
        # that a caller can use, and an array has none.
        raise TypeError(
            "get_source_inputs expects a symbolic tensor (from lm.Input or a layer called on one); "
            f"got {type(tensor).__name__}."
        )
    sources: list = []
    # Iterative, so a deep graph cannot exhaust Python's recursion limit; nodes already walked
    # are skipped, so a graph with shared branches costs time linear in its size.
    pending, seen = [tensor], set()
    while pending:
        current = pending.pop()
        node = current.node
        if node is None or not node.input_tensors:
            # A tensor made by hand, or an input: an input node's outputs are the inputs.
            found = [current] if node is None else node.output_tensors
            sources.extend(t for t in found if all(t is not s for s in sources))
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        pending.extend(reversed(node.input_tensors))  # the first argument is walked first
    return sources
