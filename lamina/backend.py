"""``lm.backend``: the backend utilities Keras 3 exports as ``keras.backend``, for ported code.

Example:
    >>> import lamina as lm
    >>> lm.backend.backend(), lm.backend.standardize_dtype(float)
    ('jax', 'float32')
    >>> lm.backend.get_uid("block"), lm.backend.get_uid("block")
    (1, 2)
    >>> lm.backend.is_float_dtype("bfloat16"), lm.backend.is_int_dtype("uint8")
    (True, True)
"""

from __future__ import annotations

import collections
import threading

import jax.numpy as jnp
import numpy as np

from lamina.config import backend
from lamina.core.settings import epsilon, floatx, image_data_format, set_epsilon, set_floatx, set_image_data_format
from lamina.core.symbolic import SymbolicTensor
from lamina.utils.session import clear_session

_PYTHON_DTYPES = {"int": "int32", int: "int32", float: "float32", bool: "bool"}  # Keras's mapping
_uids = collections.defaultdict(int)
_uids_lock = threading.Lock()


def get_uid(prefix: str = "") -> int:
    """1, 2, 3, ... on successive calls with the same ``prefix`` (Keras's name counter)."""
    with _uids_lock:
        _uids[prefix] += 1
        return _uids[prefix]


def standardize_dtype(dtype=None) -> str:
    """A dtype's canonical name: ``None`` gives ``floatx()``, ``"int"`` and ``int`` give
    ``"int32"``, ``float`` gives ``"float32"``; NumPy/JAX dtypes and arrays' dtypes give their
    names."""
    if dtype is None:
        return floatx()
    if dtype in _PYTHON_DTYPES:
        return _PYTHON_DTYPES[dtype]
    if not isinstance(dtype, (str, type, np.dtype)) and hasattr(dtype, "dtype"):
        dtype = dtype.dtype  # an array or a Variable
    return jnp.dtype(dtype).name


def is_float_dtype(dtype) -> bool:
    """True for float dtypes (``bfloat16`` included)."""
    return jnp.issubdtype(jnp.dtype(standardize_dtype(dtype)), jnp.floating)


def is_int_dtype(dtype) -> bool:
    """True for signed and unsigned integer dtypes."""
    return jnp.issubdtype(jnp.dtype(standardize_dtype(dtype)), jnp.integer)


def result_type(*dtypes) -> str:
    """The dtype that an operation on values of ``dtypes`` gives (JAX's promotion rules)."""
    return np.dtype(jnp.result_type(*[standardize_dtype(d) for d in dtypes])).name


def is_keras_tensor(x) -> bool:
    """True for the symbolic tensors of the Functional API (what ``lm.Input`` returns)."""
    return isinstance(x, SymbolicTensor)


__all__ = [
    "backend",
    "clear_session",
    "epsilon",
    "floatx",
    "get_uid",
    "image_data_format",
    "is_float_dtype",
    "is_int_dtype",
    "is_keras_tensor",
    "result_type",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
    "standardize_dtype",
]
