"""The distributions: ``DataParallel``, ``ModelParallel`` and ``FSDP``.

Each one answers two questions, and the rest of lamina asks them: which
``jax.sharding.NamedSharding`` a variable gets (``get_variable_layout``), and which a batch
gets (``get_data_layout``). XLA's SPMD partitioner does the rest; there are no collectives here.
"""

from __future__ import annotations

import contextlib
import math

import jax
from jax.sharding import NamedSharding, PartitionSpec

from lamina.distribution import current
from lamina.distribution.layout import LayoutMap
from lamina.distribution.mesh import DeviceMesh


def set_distribution(value) -> None:
    """Make ``value`` (a distribution, or ``None`` for none) the global distribution.

    Variables created afterwards are placed by it; ``with d.scope():`` overrides it inside.

    Example:
        >>> import lamina as lm
        >>> lm.distribution.set_distribution(lm.distribution.DataParallel())
        >>> type(lm.distribution.distribution()).__name__
        'DataParallel'
        >>> lm.distribution.set_distribution(None)
        >>> lm.distribution.distribution() is None
        True
    """
    if value is not None and not isinstance(value, Distribution):
        raise TypeError(
            "set_distribution takes a DataParallel, ModelParallel or FSDP (or None); "
            f"got {value!r}."
        )
    current.set_global(value)


class Distribution:
    """Base class: a device mesh and the name of its batch axis. Its own rule replicates every
    variable; subclasses override ``_variable_sharding(path, shape)``.

    Example:
        >>> import jax, lamina as lm
        >>> mesh = lm.distribution.DeviceMesh((len(jax.devices()),), ("data",))
        >>> d = lm.distribution.Distribution(mesh, batch_dim_name="data")
        >>> d.get_data_layout((8, 3)).spec, d.get_variable_layout(("w", (3, 3))).spec
        (P('data', None), P())
    """

    def __init__(self, device_mesh: DeviceMesh, batch_dim_name: str):
        if not isinstance(device_mesh, DeviceMesh):
            raise TypeError(f"{type(self).__name__} needs a DeviceMesh; got {device_mesh!r}.")
        if batch_dim_name not in device_mesh.axis_names:
            raise ValueError(
                f"{type(self).__name__}: the batch axis {batch_dim_name!r} is not an axis of "
                f"{device_mesh}; name one of {device_mesh.axis_names} (batch_dim_name=)."
            )
        self.device_mesh = device_mesh
        self.batch_dim_name = batch_dim_name

    def get_variable_layout(self, variable) -> NamedSharding:
        """The sharding of a variable: a ``lm.Variable``, or a ``(path, shape)`` pair."""
        path, shape = _path_and_shape(variable)
        return self._variable_sharding(path, shape)

    def _variable_sharding(self, path: str, shape: tuple) -> NamedSharding:
        return self.replicated()

    def get_tensor_layout(self, path: str):
        """The layout of a tensor named ``path`` (a layer's output is ``"<layer path>/output"``),
        or ``None``: leave it where XLA puts it. Only ``ModelParallel``'s layout map names any."""
        return None

    def get_data_layout(self, shape) -> NamedSharding:
        """The sharding of a (global) batch of ``shape``: split on its first dimension along the
        batch axis, whole along the others. A scalar is replicated."""
        shape = tuple(shape)
        if not shape:
            return self.replicated()
        return NamedSharding(self.device_mesh.jax_mesh,
                             PartitionSpec(self.batch_dim_name, *([None] * (len(shape) - 1))))

    def replicated(self) -> NamedSharding:
        """A whole copy on every device of the mesh (metrics, seeds, counters, small weights)."""
        return NamedSharding(self.device_mesh.jax_mesh, PartitionSpec())

    @contextlib.contextmanager
    def scope(self):
        """Inside, this distribution is the active one on this thread (over the global one)."""
        current.push(self)
        try:
            yield self
        finally:
            current.pop(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device_mesh={self.device_mesh}, batch_dim_name={self.batch_dim_name!r})"


class DataParallel(Distribution):
    """Each device holds every variable whole and a slice of each batch.

    The mesh is one axis ``"batch"`` over ``devices`` (default: all of ``jax.devices()``);
    with ``device_mesh=`` its first axis is the batch axis.

    Example:
        >>> import jax, lamina as lm
        >>> dp = lm.distribution.DataParallel()
        >>> dp.get_data_layout((64, 10)).spec
        P('batch', None)
        >>> dp.get_variable_layout(("dense/kernel", (10, 4))).spec
        P()
        >>> with dp.scope():
        ...     w = lm.Variable("ones", shape=(3,))
        >>> w.value.sharding.is_fully_replicated
        True
    """

    def __init__(self, device_mesh: DeviceMesh | None = None, devices=None):
        if device_mesh is None:
            devices = list(jax.devices()) if devices is None else list(devices)
            device_mesh = DeviceMesh((len(devices),), ("batch",), devices)
        elif devices is not None:
            raise ValueError("DataParallel: pass device_mesh= or devices=, not both.")
        super().__init__(device_mesh, device_mesh.axis_names[0])


class ModelParallel(Distribution):
    """Variables split as a ``LayoutMap`` says (unmatched ones replicated); batches split on
    ``batch_dim_name`` (default: the mesh's first axis). A key ``"<layer path>/output"`` lays
    out that layer's output inside the compiled step (as Keras: e.g. ``".*dense_1/output"``).

    Example:
        >>> import jax, lamina as lm
        >>> mesh = lm.distribution.DeviceMesh((1, len(jax.devices())), ("batch", "model"))
        >>> layout_map = lm.distribution.LayoutMap(mesh, {r".*kernel": (None, "model")})
        >>> mp = lm.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
        >>> mp.get_variable_layout(("dense/kernel", (8, 4))).spec
        P(None, 'model')
        >>> mp.get_variable_layout(("dense/bias", (4,))).spec
        P()
    """

    def __init__(self, *, layout_map: LayoutMap, batch_dim_name: str | None = None):
        if not isinstance(layout_map, LayoutMap):
            raise TypeError(f"ModelParallel needs layout_map=LayoutMap(...); got {layout_map!r}.")
        mesh = layout_map.device_mesh
        super().__init__(mesh, mesh.axis_names[0] if batch_dim_name is None else batch_dim_name)
        self.layout_map = layout_map

    def _variable_sharding(self, path, shape):
        layout = self.layout_map.layout_for(path, shape)
        return self.replicated() if layout is None else layout.sharding

    def get_tensor_layout(self, path: str):
        return self.layout_map[path]


class FSDP(Distribution):
    """Fully sharded data parallel: every variable of at least ``min_size`` elements is split
    along ``axis`` on its largest dimension that the axis size divides; smaller ones (and those
    with no such dimension) are replicated. Batches are split along ``axis`` too.

    The mesh is one axis named ``axis`` over ``devices`` (default: all of ``jax.devices()``),
    or ``device_mesh=`` (which must have that axis).

    Example:
        >>> import jax, lamina as lm
        >>> fsdp = lm.distribution.FSDP(axis="batch", min_size=1024)
        >>> n = len(jax.devices())
        >>> fsdp.get_variable_layout(("dense/kernel", (64, 128 * n))).spec
        P(None, 'batch')
        >>> fsdp.get_variable_layout(("dense/bias", (128,))).spec
        P()
    """

    def __init__(self, axis: str = "batch", min_size: int = 2**18, device_mesh: DeviceMesh | None = None,
                 devices=None):
        if device_mesh is None:
            devices = list(jax.devices()) if devices is None else list(devices)
            device_mesh = DeviceMesh((len(devices),), (axis,), devices)
        elif devices is not None:
            raise ValueError("FSDP: pass device_mesh= or devices=, not both.")
        if int(min_size) < 1:
            raise ValueError(f"FSDP: min_size must be a positive number of elements; got {min_size}.")
        super().__init__(device_mesh, axis)
        self.axis = axis
        self.min_size = int(min_size)

    def _variable_sharding(self, path, shape):
        dim = self.sharded_dimension(shape)
        if dim is None:
            return self.replicated()
        spec = [None] * len(shape)
        spec[dim] = self.axis
        return NamedSharding(self.device_mesh.jax_mesh, PartitionSpec(*spec))

    def sharded_dimension(self, shape) -> int | None:
        """The dimension a variable of ``shape`` is split on, or ``None`` (replicated)."""
        shape = tuple(shape)
        if math.prod(shape) < self.min_size:
            return None
        parts = self.device_mesh.axis_size(self.axis)
        divisible = [d for d, size in enumerate(shape) if size % parts == 0]
        if not divisible:
            return None
        return max(divisible, key=lambda d: (shape[d], -d))  # the largest; the first on ties

    def __repr__(self) -> str:
        return f"FSDP(axis={self.axis!r}, min_size={self.min_size}, device_mesh={self.device_mesh})"


def _path_and_shape(variable) -> tuple:
    if hasattr(variable, "path") and hasattr(variable, "shape"):
        return variable.path, tuple(variable.shape)
    try:
        path, shape = variable
        return str(path), tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise TypeError(
            f"get_variable_layout takes a lm.Variable or a (path, shape) pair; got {variable!r}."
        ) from None
