"""``DeviceMesh``: named axes over a grid of devices (a ``jax.sharding.Mesh`` inside)."""

from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import Mesh


class DeviceMesh:
    """Devices laid out in a grid whose axes have names, e.g. ``("batch", "model")``.

    ``devices`` defaults to all of ``jax.devices()`` (every process's, in a multi-process
    run); the grid must hold exactly as many devices as given. Layouts name these axes to say
    how an array's dimensions are split across devices.

    Example:
        >>> import jax, lamina as lm
        >>> mesh = lm.distribution.DeviceMesh((len(jax.devices()),), ("batch",))
        >>> mesh.axis_names, mesh.axis_size("batch") == len(jax.devices())
        (('batch',), True)
    """

    def __init__(self, shape, axis_names, devices=None):
        shape = tuple(int(s) for s in np.atleast_1d(shape))
        axis_names = (axis_names,) if isinstance(axis_names, str) else tuple(axis_names)
        if len(shape) != len(axis_names):
            raise ValueError(
                f"DeviceMesh: shape {shape} has {len(shape)} axes but axis_names {axis_names} "
                f"names {len(axis_names)}: give one name per axis."
            )
        if not all(isinstance(a, str) and a for a in axis_names) or len(set(axis_names)) != len(axis_names):
            raise ValueError(f"DeviceMesh: axis_names must be distinct non-empty strings; got {axis_names}.")
        if any(s < 1 for s in shape):
            raise ValueError(f"DeviceMesh: every axis needs at least one device; got shape {shape}.")
        given = devices is not None
        devices = list(jax.devices()) if devices is None else [_device(d) for d in np.ravel(np.asarray(devices, dtype=object))]
        if math.prod(shape) != len(devices):
            where = "devices were given" if given else "devices are visible (jax.devices())"
            raise ValueError(
                f"DeviceMesh: shape {shape} holds {math.prod(shape)} devices, but {len(devices)} "
                f"{where}. Choose a shape whose product is {len(devices)}, or pass devices=."
            )
        if len({id(d) for d in devices}) != len(devices):
            raise ValueError(f"DeviceMesh: a device appears twice in devices={devices}.")
        self._mesh = Mesh(np.array(devices, dtype=object).reshape(shape), axis_names)

    @property
    def shape(self) -> tuple:
        return tuple(self._mesh.devices.shape)

    @property
    def axis_names(self) -> tuple:
        return tuple(self._mesh.axis_names)

    @property
    def devices(self) -> np.ndarray:
        """The devices, as an array of the mesh's shape."""
        return self._mesh.devices

    @property
    def jax_mesh(self) -> Mesh:
        """The ``jax.sharding.Mesh`` (Keras calls it ``backend_mesh``)."""
        return self._mesh

    backend_mesh = jax_mesh

    def axis_size(self, name: str) -> int:
        """How many devices lie along axis ``name``."""
        if name not in self.axis_names:
            raise ValueError(f"DeviceMesh has no axis {name!r}; its axes are {self.axis_names}.")
        return self.shape[self.axis_names.index(name)]

    def __eq__(self, other):
        return isinstance(other, DeviceMesh) and other._mesh == self._mesh

    def __hash__(self):
        return hash(self._mesh)

    def __repr__(self) -> str:
        return f"DeviceMesh(shape={self.shape}, axis_names={self.axis_names})"


def _device(d):
    """A ``jax.Device``, or one named as Keras names them: ``"cpu:0"``, ``"gpu:3"``."""
    if isinstance(d, jax.Device):
        return d
    if isinstance(d, str) and ":" in d:
        platform, _, index = d.partition(":")
        for device in jax.devices(platform):
            if str(device.id) == index:
                return device
    raise ValueError(f"DeviceMesh: {d!r} is not a device (a jax.Device or a name like 'cpu:0').")
