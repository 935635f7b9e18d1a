"""What a built-in layer's call returns, told without tracing it.

Building or loading a long stack of layers is dominated by tracing each ``call`` abstractly
(every ``jax.numpy`` function inside is a nested ``jit``). A built-in layer whose output
shape and dtype follow from its input's by a rule it can state exactly defines
``_lm_output_spec(shape, dtype)`` and answers ``OutputSpec(shape, dtype, returns_input)``,
or ``None`` where the rule does not cover the case (an activation it does not know, an
integer input): the caller then traces as before. ``lamina.core.symbolic`` uses the answer
only for a class whose ``call``, ``build``, ``compute_mask`` and ``compute_output_shape`` are
those of the class that stated the rule, so a subclass that changes any of them is traced.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

_FLOATS = frozenset(map(np.dtype, ("float16", "bfloat16", "float32", "float64")))

_shape_preserving = []  # filled on first use: lamina.activations is still loading when this is


def keeps_shape_and_dtype(activation) -> bool:
    """Whether ``activation`` is a built-in activation whose output has the shape and dtype of
    its float input (all but glu, which halves an axis, and threshold, which needs arguments
    that a name cannot give).

    Example:
        >>> import lamina as lm
        >>> keeps_shape_and_dtype(lm.activations.relu), keeps_shape_and_dtype(lm.activations.glu)
        (True, False)
        >>> keeps_shape_and_dtype(lambda x: x.sum(-1))
        False
    """
    from lamina import activations  # imports lamina.saving, which imports this module

    if not _shape_preserving:
        _shape_preserving.append(frozenset(
            fn for fn in activations._FUNCTIONS if fn not in (activations.glu, activations.threshold)))
    try:
        return activation in _shape_preserving[0]
    except TypeError:  # an unhashable callable object
        return False


class OutputSpec(NamedTuple):
    """A call's output: ``shape`` (``None`` for unknown axes), ``dtype``, and whether the call
    returns its (cast) input itself, which keeps that input's mask."""

    shape: tuple
    dtype: np.dtype
    returns_input: bool = False


def input_dtype_in_call(layer, dtype) -> np.dtype | None:
    """The dtype a float input of ``dtype`` has inside ``layer.call`` (Keras's autocast to the
    compute dtype, unless ``autocast=False``); ``None`` for any other input, which no rule
    here covers."""
    dtype = np.dtype(dtype)
    if dtype not in _FLOATS:
        return None
    cast = layer._lm_autocast_dtype
    return np.dtype(cast) if cast is not None else dtype


def read_dtype(layer, variable) -> np.dtype:
    """The dtype ``variable.value`` reads in inside ``layer.call``: the compute dtype under a
    mixed policy for a float variable created with ``autocast=True``, else its own."""
    cast = layer._lm_variable_cast
    own = np.dtype(variable._dtype)
    return np.dtype(cast) if cast is not None and variable._autocast and own in _FLOATS else own


def promoted(*dtypes) -> np.dtype:
    """The dtype JAX's arithmetic on arrays of ``dtypes`` gives (remembered: JAX's type
    promotion costs more than the rest of a layer's rule).

    Example:
        >>> import numpy as np
        >>> promoted(np.dtype("float16"), np.dtype("float32"))
        dtype('float32')
    """
    return _promoted(bool(jax.config.jax_enable_x64), dtypes)


@functools.lru_cache(maxsize=256)
def _promoted(x64: bool, dtypes: tuple) -> np.dtype:  # x64: the answer depends on it
    return np.dtype(jnp.result_type(*dtypes))
