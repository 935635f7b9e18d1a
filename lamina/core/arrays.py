"""Host values (NumPy arrays, lists, scalars) to ``jax.Array`` without an XLA compile per shape.

On jax 0.10, ``jnp.asarray(numpy_array)`` lifts the array with ``lax.stage``, a jitted
identity: one XLA compilation (30-120 ms on a 2-core CPU) for every new shape and dtype. An
eager ``layer(batch)``, ``variable.assign(array)`` (hence ``set_weights``) or
``metric.update_state(y_true, y_pred)`` paid it each time it met a new shape. A
``jax.device_put`` of a private copy gives the same array (dtype canonicalised the same way:
float64 becomes float32 unless x64 is on) in a fraction of a millisecond.

The copy matters: on the CPU ``device_put`` may *share* an aligned NumPy buffer, so a caller
who changes their array in place afterwards would change the weights too.

Example:
    >>> import numpy as np
    >>> from lamina.core.arrays import as_jax_array
    >>> host = np.ones((2, 3))
    >>> array = as_jax_array(host)
    >>> host[0, 0] = 5.0
    >>> array.dtype, float(array[0, 0])
    (dtype('float32'), 1.0)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def as_jax_array(x) -> jax.Array:
    """``jnp.asarray(x)``, without a compilation for a NumPy array or scalar of a new shape."""
    if type(x) is np.ndarray or isinstance(x, np.generic):
        x = np.asarray(x)
        if x.dtype.kind not in "biufc" and x.dtype.name != "bfloat16":
            return jnp.asarray(x)  # strings, objects, ml_dtypes: JAX's own answer or error
        if jax.dtypes.canonicalize_dtype(x.dtype) == x.dtype:
            x = np.array(x, copy=True)  # device_put may alias the caller's buffer
        return jax.device_put(x)  # a dtype it narrows (float64 -> float32) is converted anyway
    return jnp.asarray(x)
