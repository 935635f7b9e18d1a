"""``TensorLayout`` (how one array is split over a mesh) and ``LayoutMap`` (layouts by path)."""

from __future__ import annotations

import collections.abc
import re

from jax.sharding import NamedSharding, PartitionSpec

from lamina.distribution.mesh import DeviceMesh


class TensorLayout:
    """One entry per array dimension: the mesh axis it is split along, or ``None`` (whole).

    An entry may also be a tuple of axis names (the dimension split over several axes).
    ``device_mesh`` may be left out when the layout goes into a ``LayoutMap``, which sets it.

    Example:
        >>> import jax, lamina as lm
        >>> mesh = lm.distribution.DeviceMesh((1, len(jax.devices())), ("batch", "model"))
        >>> layout = lm.distribution.TensorLayout((None, "model"), mesh)
        >>> layout.spec
        P(None, 'model')
        >>> layout.sharding.mesh.axis_names
        ('batch', 'model')
    """

    def __init__(self, axes, device_mesh: DeviceMesh | None = None):
        axes = (axes,) if isinstance(axes, str) or axes is None else tuple(axes)
        for a in axes:
            names = a if isinstance(a, tuple) else (a,)
            if not all(n is None or isinstance(n, str) for n in names):
                raise ValueError(
                    f"TensorLayout axes must be mesh axis names, None or tuples of names; got {axes}."
                )
        self.axes = axes
        self._device_mesh = None
        if device_mesh is not None:
            self.device_mesh = device_mesh

    @property
    def device_mesh(self) -> DeviceMesh | None:
        return self._device_mesh

    @device_mesh.setter
    def device_mesh(self, mesh: DeviceMesh) -> None:
        if not isinstance(mesh, DeviceMesh):
            raise TypeError(f"TensorLayout.device_mesh must be a DeviceMesh; got {mesh!r}.")
        unknown = [n for n in _axis_names(self.axes) if n not in mesh.axis_names]
        if unknown:
            raise ValueError(
                f"TensorLayout{self.axes} names mesh axes {unknown} that {mesh} does not have."
            )
        self._device_mesh = mesh

    @property
    def spec(self) -> PartitionSpec:
        return PartitionSpec(*self.axes)

    @property
    def sharding(self) -> NamedSharding:
        """The ``jax.sharding.NamedSharding`` of this layout on its mesh."""
        if self._device_mesh is None:
            raise ValueError(
                f"TensorLayout{self.axes} has no device_mesh: pass one, or put it in a LayoutMap."
            )
        return NamedSharding(self._device_mesh.jax_mesh, self.spec)

    def check(self, shape, path: str, pattern: str | None = None) -> None:
        """Raise a ValueError naming ``path`` (and ``pattern``) unless this layout fits ``shape``:
        one entry per dimension, known axis names, each dimension divisible by its axes' size."""
        check_fits(self.axes, self._device_mesh, shape, path, pattern)

    def __eq__(self, other):
        return (isinstance(other, TensorLayout) and other.axes == self.axes
                and other._device_mesh == self._device_mesh)

    __hash__ = None

    def __repr__(self) -> str:
        return f"TensorLayout(axes={self.axes}, device_mesh={self._device_mesh})"


class LayoutMap(collections.abc.MutableMapping):
    """Layouts for variables by path: ordered regular-expression keys, the first that matches wins.

    A key matches a path when it equals it or ``re.fullmatch``-es it (as in Keras). Values are
    ``TensorLayout``s or, as a shortcut, tuples of axis names. Keys are tried in the order they
    were added, so put the specific ones first. Keras 3 instead raises when a path matches two
    keys (keras-hub#2750 asks for this ordering); ``layout_map[path]`` returns ``None`` when no
    key matches, and the distribution then replicates the variable.

    Example:
        >>> import jax, lamina as lm
        >>> mesh = lm.distribution.DeviceMesh((1, len(jax.devices())), ("batch", "model"))
        >>> layout_map = lm.distribution.LayoutMap(mesh)
        >>> layout_map[r".*attention/query/kernel"] = (None, "model", None)
        >>> layout_map[r".*kernel"] = ("batch", "model")
        >>> layout_map["block/attention/query/kernel"].axes   # both keys match: the first wins
        (None, 'model', None)
        >>> layout_map["block/dense/kernel"].axes
        ('batch', 'model')
        >>> layout_map["block/dense/bias"] is None
        True
    """

    def __init__(self, device_mesh: DeviceMesh, mapping=None):
        if not isinstance(device_mesh, DeviceMesh):
            raise TypeError(f"LayoutMap needs a DeviceMesh; got {device_mesh!r}.")
        self.device_mesh = device_mesh
        self._layouts: dict[str, TensorLayout] = {}
        self._compiled: dict[str, re.Pattern] = {}
        for key, layout in dict(mapping or {}).items():
            self[key] = layout

    def __setitem__(self, key: str, layout) -> None:
        if not isinstance(key, str):
            raise TypeError(f"LayoutMap keys are regular expressions (str); got {key!r}.")
        if key in self._layouts:
            raise ValueError(
                f"LayoutMap already has the key {key!r} (layout {self._layouts[key].axes}); keys "
                "are tried in order, so delete it first to replace it."
            )
        try:
            compiled = re.compile(key)
        except re.error as e:
            raise ValueError(f"LayoutMap key {key!r} is not a valid regular expression: {e}.") from None
        if not isinstance(layout, TensorLayout):
            layout = TensorLayout(layout)
        if layout.device_mesh is None:
            layout.device_mesh = self.device_mesh
        elif layout.device_mesh != self.device_mesh:
            raise ValueError(
                f"LayoutMap key {key!r}: its layout is on {layout.device_mesh}, but the map is on "
                f"{self.device_mesh}."
            )
        self._layouts[key] = layout
        self._compiled[key] = compiled

    def __getitem__(self, path: str) -> TensorLayout | None:
        return self.match(path)[1]

    def match(self, path: str) -> tuple:
        """``(key, layout)`` of the first key matching ``path``, or ``(None, None)``."""
        for key, layout in self._layouts.items():
            if key == path or self._compiled[key].fullmatch(path):
                return key, layout
        return None, None

    def layout_for(self, path: str, shape) -> TensorLayout | None:
        """The layout of ``path``, checked against the variable's ``shape`` (None if unmatched)."""
        key, layout = self.match(path)
        if layout is not None:
            layout.check(shape, path, key)
        return layout

    def __delitem__(self, key: str) -> None:
        del self._layouts[key]
        del self._compiled[key]

    def __iter__(self):
        return iter(self._layouts)

    def __len__(self) -> int:
        return len(self._layouts)

    def __contains__(self, key) -> bool:
        return key in self._layouts

    def __repr__(self) -> str:
        items = ", ".join(f"{k!r}: {v.axes}" for k, v in self._layouts.items())
        return f"LayoutMap({self.device_mesh}, {{{items}}})"


def _axis_names(axes) -> list:
    names = []
    for a in axes:
        names.extend(n for n in (a if isinstance(a, tuple) else (a,)) if n is not None)
    return names


def check_fits(axes, mesh: DeviceMesh | None, shape, path: str, pattern: str | None = None) -> None:
    """Raise a ValueError unless the spec ``axes`` fits a variable of ``shape`` on ``mesh``."""
    shape = tuple(shape)
    where = f"Variable '{path}'" + (f" (layout key {pattern!r})" if pattern is not None else "")
    if len(axes) != len(shape):
        raise ValueError(
            f"{where}: the spec {tuple(axes)} has {len(axes)} entries but the variable has shape "
            f"{shape} ({len(shape)} dimensions): give one mesh axis or None per dimension."
        )
    if mesh is None:
        return
    names = _axis_names(axes)
    unknown = [n for n in names if n not in mesh.axis_names]
    if unknown:
        raise ValueError(
            f"{where}: the spec {tuple(axes)} names mesh axes {unknown}, but the mesh's axes are "
            f"{mesh.axis_names} (variable shape {shape})."
        )
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: the spec {tuple(axes)} uses a mesh axis twice (variable shape {shape}).")
    for dim, (size, a) in enumerate(zip(shape, axes)):
        parts = 1
        for n in (a if isinstance(a, tuple) else (a,)):
            parts *= mesh.axis_size(n) if n is not None else 1
        if size % parts:
            raise ValueError(
                f"{where}: dimension {dim} of shape {shape} has size {size}, which the spec "
                f"{tuple(axes)} splits over mesh axis {a!r} of {parts} devices ({mesh}): "
                f"{size} is not divisible by {parts}."
            )
