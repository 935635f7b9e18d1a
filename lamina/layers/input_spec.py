"""``InputSpec``: what a built layer accepts, checked before ``call`` with a clear message."""

from __future__ import annotations


class InputSpec:
    """Constraints on a layer's first input: rank and the size of given axes.

    Example:
        >>> import lamina as lm
        >>> spec = lm.layers.InputSpec(min_ndim=2, axes={-1: 3})
        >>> spec.describe()
        'rank >= 2 and axis -1 of size 3'
    """

    def __init__(self, ndim=None, min_ndim=None, max_ndim=None, axes=None, dtype=None):
        self.ndim = ndim
        self.min_ndim = min_ndim
        self.max_ndim = max_ndim
        self.axes = dict(axes or {})
        self.dtype = dtype

    def describe(self) -> str:
        parts = []
        if self.ndim is not None:
            parts.append(f"rank {self.ndim}")
        if self.min_ndim is not None:
            parts.append(f"rank >= {self.min_ndim}")
        if self.max_ndim is not None:
            parts.append(f"rank <= {self.max_ndim}")
        parts += [f"axis {axis} of size {size}" for axis, size in self.axes.items()]
        return " and ".join(parts) or "any input"

    def problem(self, shape) -> str | None:
        """Why ``shape`` does not fit, or ``None`` when it does."""
        rank = len(shape)
        if (
            self.ndim is not None and rank != self.ndim
            or self.min_ndim is not None and rank < self.min_ndim
            or self.max_ndim is not None and rank > self.max_ndim
        ):
            return "rank"
        for axis, size in self.axes.items():
            if size is not None and (axis >= rank or -axis > rank or shape[axis] != size):
                return f"axis {axis}"
        return None
