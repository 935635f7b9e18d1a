"""The devices a distribution can use, and placing one array by a layout (Keras's helpers).

``list_devices``/``get_device_count`` name devices as Keras does (``"gpu:3"``), names that
``DeviceMesh(devices=...)`` accepts; ``distribute_tensor`` puts one array where a
``TensorLayout`` says, or, inside a traced function, asks XLA to lay it out so.
"""

from __future__ import annotations

import jax

from lamina.core.symbolic import SymbolicTensor
from lamina.distribution import current
from lamina.distribution.layout import TensorLayout


def list_devices(device_type: str | None = None) -> list[str]:
    """The devices of one kind, every process's, named ``"<platform>:<id>"``.

    ``device_type`` is ``"cpu"``, ``"gpu"`` or ``"tpu"``; left out, the default kind
    (accelerators when there are any, else the CPU). Kinds are never mixed.

    Example:
        >>> import lamina as lm
        >>> lm.distribution.list_devices("cpu")[0]
        'cpu:0'
    """
    return [f"{d.platform}:{d.id}" for d in jax.devices(_backend(device_type))]


def get_device_count(device_type: str | None = None) -> int:
    """How many devices of one kind there are, every process's (see ``list_devices``).

    Example:
        >>> import lamina as lm
        >>> lm.distribution.get_device_count("cpu") == len(lm.distribution.list_devices("cpu"))
        True
    """
    return jax.device_count(_backend(device_type))


def distribute_tensor(tensor, layout):
    """``tensor`` laid out as ``layout`` says (a ``TensorLayout`` or a ``jax.sharding.Sharding``).

    Outside a traced function the array is moved (nothing moves when it already lies so);
    inside one (a ``call`` under ``fit`` or ``lm.jit``) it becomes a sharding constraint
    that XLA honours. A symbolic tensor of a functional model is returned as it is.

    Example:
        >>> import jax, numpy as np, lamina as lm
        >>> mesh = lm.distribution.DeviceMesh((len(jax.devices()),), ("batch",))
        >>> layout = lm.distribution.TensorLayout(("batch", None), mesh)
        >>> x = lm.distribution.distribute_tensor(np.ones((8, 3), "float32"), layout)
        >>> x.sharding.spec
        P('batch', None)
    """
    if isinstance(tensor, SymbolicTensor):
        return tensor
    if isinstance(layout, TensorLayout):
        layout = layout.sharding
    elif not isinstance(layout, jax.sharding.Sharding):
        raise TypeError(
            f"distribute_tensor: layout must be a TensorLayout or a jax.sharding.Sharding; "
            f"got {type(layout).__name__}."
        )
    if isinstance(tensor, jax.core.Tracer):
        return jax.lax.with_sharding_constraint(tensor, layout)
    if isinstance(tensor, jax.Array) and tensor.sharding.is_equivalent_to(layout, tensor.ndim):
        return tensor
    return jax.device_put(tensor, layout)


def lay_out_output(layer_path: str, outputs):
    """A layer's ``outputs`` laid out as the active distribution names ``"<layer_path>/output"``
    (``Layer.__call__`` asks, as Keras's does), else unchanged."""
    dist = current.distribution()
    layout = None if dist is None else dist.get_tensor_layout(f"{layer_path}/output")
    if layout is None:
        return outputs
    return jax.tree_util.tree_map(lambda t: distribute_tensor(t, layout), outputs)


def _backend(device_type: str | None) -> str | None:
    if device_type is None:
        return None
    if not isinstance(device_type, str) or device_type.lower() not in ("cpu", "gpu", "tpu", "cuda", "rocm"):
        raise ValueError(f"device_type must be 'cpu', 'gpu' or 'tpu' (or None for the default); got {device_type!r}.")
    return device_type.lower()
