"""``format="stablehlo"``: ``jax.export`` with a symbolic batch axis, weights embedded, one file.

The file holds exactly ``jax.export.Exported.serialize()`` (JAX's versioned StableHLO
container); ``load_stablehlo`` (or ``jax.export.deserialize``) runs it with no lamina model
class, only JAX.
"""

from __future__ import annotations

import jax

from lamina.saving.atomic import atomic_write


def symbolic_specs(specs) -> list:
    """``jax.ShapeDtypeStruct`` s for ``specs``: free axes symbolic, one shared scope (so all
    inputs share the batch size ``b``)."""
    scope = jax.export.SymbolicScope()
    return [jax.ShapeDtypeStruct(jax.export.symbolic_shape(", ".join(spec.symbols(i)), scope=scope), spec.dtype)
            for i, spec in enumerate(specs)]


def export_stablehlo(inference, path, platforms=None) -> None:
    """Serialize ``inference.fn`` (see ``lamina.export.signature``) to ``path``, atomically.
    ``platforms`` (e.g. ``("cpu", "cuda")``) are the backends the file may run on; by
    default the one JAX runs on now."""
    exported = jax.export.export(jax.jit(inference.fn), platforms=platforms)(*symbolic_specs(inference.specs))
    data = exported.serialize()
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


class StableHLOFunction:
    """A model exported with ``format="stablehlo"``, reloaded: call it on arrays.

    ``exported`` is the ``jax.export.Exported``; ``input_shapes`` lists each input's shape
    with ``None`` where the size is free (the batch axis).

    Example:
        >>> import os, tempfile, numpy as np, lamina as lm
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
        >>> path = os.path.join(tempfile.mkdtemp(), "model.stablehlo")
        >>> model.export(path, format="stablehlo", verbose=False)
        >>> served = lm.export.load_stablehlo(path)
        >>> served.input_shapes, served(np.ones((5, 3), "float32")).shape
        ([(None, 3)], (5, 2))
    """

    def __init__(self, exported):
        self.exported = exported
        self._call = jax.jit(exported.call)

    @property
    def input_shapes(self) -> list:
        return [tuple(d if isinstance(d, int) else None for d in aval.shape) for aval in self.exported.in_avals]

    def __call__(self, *inputs):
        """The outputs for ``inputs``: one array per model input, in order, or the structure
        the model takes (a list, or a dict, whose values go in key order)."""
        if len(inputs) == 1 and len(self.exported.in_avals) > 1 and isinstance(inputs[0], dict | list | tuple):
            inputs = jax.tree_util.tree_leaves(inputs[0])
        if len(inputs) != len(self.exported.in_avals):
            raise TypeError(f"This exported model takes {len(self.exported.in_avals)} input arrays of shapes "
                            f"{self.input_shapes}, got {len(inputs)}.")
        return self._call(*inputs)


def load_stablehlo(path) -> StableHLOFunction:
    """Read a file written by ``model.export(path, format="stablehlo")``.

    Needs only JAX: none of the model's Python classes (custom layers included) have to be
    importable. Raises ``ValueError`` naming the file when it is not such a file.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        exported = jax.export.deserialize(bytearray(data))
    except Exception as error:  # flatbuffers raises assorted errors on foreign bytes
        raise ValueError(f"{path!r} is not a StableHLO export (model.export(..., format='stablehlo')): "
                         f"{type(error).__name__}: {error}") from error
    return StableHLOFunction(exported)
