"""``InputSpec``: what a built layer accepts, checked before ``call`` with a clear message."""

from __future__ import annotations


class InputSpec:
    """Constraints on a layer's first input: rank, shape and the size of given axes (Keras's
    arguments; ``dtype`` and ``name`` are recorded, ``optional`` marks an input that may be None).

    Example:
        >>> import lamina as lm
        >>> spec = lm.layers.InputSpec(min_ndim=2, axes={-1: 3})
        >>> spec.describe()
        'rank >= 2 and axis -1 of size 3'
        >>> lm.layers.InputSpec.from_config(spec.get_config()).problem((5, 4))
        'axis -1'
    """

    def __init__(self, dtype=None, shape=None, ndim=None, max_ndim=None, min_ndim=None, axes=None,
                 allow_last_axis_squeeze=False, name=None, optional=False):
        self.dtype = dtype
        self.shape = None if shape is None else tuple(shape)
        self.ndim = len(self.shape) if self.shape is not None else ndim
        self.max_ndim = max_ndim
        self.min_ndim = min_ndim
        self.axes = {int(axis): size for axis, size in (axes or {}).items()}
        self.allow_last_axis_squeeze = allow_last_axis_squeeze
        self.name = name
        self.optional = optional

    def describe(self) -> str:
        parts = []
        if self.shape is not None:
            parts.append(f"shape {self.shape}")
        elif self.ndim is not None:
            parts.append(f"rank {self.ndim}")
        if self.min_ndim is not None:
            parts.append(f"rank >= {self.min_ndim}")
        if self.max_ndim is not None:
            parts.append(f"rank <= {self.max_ndim}")
        parts += [f"axis {axis} of size {size}" for axis, size in self.axes.items()]
        return " and ".join(parts) or "any input"

    def problem(self, shape) -> str | None:
        """Why ``shape`` does not fit, or ``None`` when it does."""
        shape = tuple(shape)
        rank = len(shape)
        if self.ndim is not None and rank != self.ndim and not self._squeezes_to(shape):
            return "rank"
        if self.min_ndim is not None and rank < self.min_ndim or self.max_ndim is not None and rank > self.max_ndim:
            return "rank"
        if self.shape is not None:
            given, wanted = (_squeezed(shape), _squeezed(self.shape)) if self.allow_last_axis_squeeze else (shape, self.shape)
            for axis, (size, want) in enumerate(zip(given, wanted)):
                if want is not None and size is not None and size != want:
                    return f"axis {axis}"
        for axis, size in self.axes.items():
            if size is not None and (axis >= rank or -axis > rank or shape[axis] != size):
                return f"axis {axis}"
        return None

    def _squeezes_to(self, shape) -> bool:
        """Keras's ``allow_last_axis_squeeze``: one more axis of size 1 than the spec's rank, or
        one fewer when the spec's last axis has size 1."""
        if not self.allow_last_axis_squeeze:
            return False
        last = self.shape[-1] if self.shape else None
        return (len(shape) == self.ndim + 1 and shape[-1] == 1) or (len(shape) == self.ndim - 1 and last == 1)

    def get_config(self) -> dict:
        """Keras's config keys (``from_config`` rebuilds the spec)."""
        return {"dtype": self.dtype, "shape": self.shape, "ndim": self.ndim, "max_ndim": self.max_ndim,
                "min_ndim": self.min_ndim, "axes": dict(self.axes), "optional": self.optional}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self) -> str:
        fields = {"dtype": self.dtype, "shape": self.shape, "ndim": self.ndim, "max_ndim": self.max_ndim,
                  "min_ndim": self.min_ndim, "axes": self.axes or None}
        return "InputSpec(" + ", ".join(f"{k}={v}" for k, v in fields.items() if v is not None) + ")"


def _squeezed(shape) -> tuple:
    """``shape`` without a last axis of size 1 (Keras's ``allow_last_axis_squeeze``)."""
    return tuple(shape[:-1]) if shape and shape[-1] == 1 else tuple(shape)
