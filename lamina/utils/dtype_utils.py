"""``standardize_dtype``: Keras's canonical dtype names."""

from __future__ import annotations

__all__ = ["standardize_dtype"]

ALLOWED_DTYPES = ("float16", "float32", "float64", "uint8", "uint16", "uint32", "uint64", "int8",
                  "int16", "int32", "int64", "bfloat16", "bool", "string", "float8_e4m3fn",
                  "float8_e5m2", "complex64", "complex128")

# Keras's names for Python types, as on its JAX backend (JAX's default integer is int32).
_PYTHON_TYPES = {bool: "bool", int: "int32", "int": "int32", float: "float32", str: "string",
                 complex: "complex64"}


def standardize_dtype(dtype) -> str:
    """The canonical name of ``dtype`` (a string, a NumPy/JAX dtype or scalar type, or a
    Python type); ``None`` is ``"float32"``. Unknown dtypes raise a ``ValueError``.

    Example:
        >>> import numpy as np, jax.numpy as jnp
        >>> standardize_dtype(None), standardize_dtype(np.float64), standardize_dtype(jnp.bfloat16)
        ('float32', 'float64', 'bfloat16')
        >>> standardize_dtype(int), standardize_dtype("uint8"), standardize_dtype(np.dtype("bool"))
        ('int32', 'uint8', 'bool')
    """
    if dtype is None:
        return "float32"
    try:
        dtype = _PYTHON_TYPES.get(dtype, dtype)
    except TypeError:  # an unhashable object: not a dtype
        pass
    if hasattr(dtype, "name"):
        dtype = dtype.name
    elif hasattr(dtype, "__name__"):
        dtype = dtype.__name__
    elif "torch" in str(dtype) or "jax.numpy" in str(dtype):
        dtype = str(dtype).split(".")[-1]
    if dtype not in ALLOWED_DTYPES:
        raise ValueError(f"Invalid dtype: {dtype}")
    return dtype
