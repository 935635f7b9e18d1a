"""``lm.distribution.explain(model)``: where each variable goes, and what looks wrong."""

from __future__ import annotations

import io
import math

import numpy as np

from lamina.distribution import current
from lamina.distribution.distributions import FSDP, ModelParallel

_LARGE_BYTES = 2**20
_LARGE_SIZE = 2**18  # FSDP's default min_size


class Explanation:
    """The rows of ``explain``: ``rows`` is a list of dicts (``path``, ``shape``, ``dtype``,
    ``spec``, ``bytes_per_device``, ``note``); ``str()`` is a table."""

    def __init__(self, title: str, rows: list):
        self.title = title
        self.rows = rows

    @property
    def flagged(self) -> list:
        """The paths of the rows with a note (unmatched large variables, misplaced ones, errors)."""
        return [r["path"] for r in self.rows if r["note"]]

    def __str__(self) -> str:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=self.title, title_justify="left")
        for name, justify in [("Variable path", "left"), ("Shape", "left"), ("Spec", "left"),
                              ("Bytes/device", "right"), ("Note", "left")]:
            table.add_column(name, justify=justify)
        for r in self.rows:
            table.add_row(r["path"], str(r["shape"]), r["spec"], f"{r['bytes_per_device']:,}", r["note"])
        console = Console(file=io.StringIO(), width=140, record=True, color_system=None,
                          force_terminal=False)
        console.print(table)
        return console.export_text().rstrip("\n")

    __repr__ = __str__


def explain(model, distribution=None) -> Explanation:
    """Each variable's path, shape, spec and bytes per device under ``distribution`` (default:
    the active one), with a note on large variables (at least FSDP's ``min_size`` elements or
    1 MiB) that no key of a ``LayoutMap`` matched or that FSDP cannot split, on variables whose
    array is not placed that way (created before the distribution), and on layout errors.

    ``model`` is a layer or model (its variables, and its optimizer's when built) or a list of
    variables.

    Example:
        >>> import jax, lamina as lm
        >>> mesh = lm.distribution.DeviceMesh((1, len(jax.devices())), ("batch", "model"))
        >>> mp = lm.distribution.ModelParallel(layout_map=lm.distribution.LayoutMap(mesh, {"dense/kernel": (None, "model")}))
        >>> with mp.scope():
        ...     layer = lm.layers.Dense(8, name="dense")
        ...     layer.build((None, 4))
        >>> report = lm.distribution.explain(layer, mp)
        >>> [(r["path"], r["spec"]) for r in report.rows]
        [('dense/kernel', "(None, 'model')"), ('dense/bias', '()')]
    """
    d = distribution if distribution is not None else current.distribution()
    if d is None:
        raise ValueError(
            "explain: no distribution is active; pass one (explain(model, distribution)) or call "
            "lm.distribution.set_distribution(...) first."
        )
    variables, name = _variables(model)
    rows = []
    for v in variables:
        rows.append(_row(d, v))
    return Explanation(f"{name} under {type(d).__name__} on mesh {dict(zip(d.device_mesh.axis_names, d.device_mesh.shape))}", rows)


def _variables(model):
    if isinstance(model, (list, tuple)):
        return list(model), "Variables"
    variables = list(model.variables)
    optimizer = model.__dict__.get("optimizer")
    if optimizer is not None and getattr(optimizer, "built", False):
        variables += list(optimizer.variables)
    return variables, f'Model "{model.name}"' if hasattr(model, "name") else "Variables"


def _row(d, v) -> dict:
    shape, itemsize = tuple(v.shape), np.dtype(v.dtype).itemsize
    row = {"path": v.path, "shape": shape, "dtype": str(v.dtype), "spec": "?",
           "bytes_per_device": math.prod(shape) * itemsize, "note": ""}
    try:
        sharding = d.get_variable_layout(v)
    except ValueError as e:
        row["note"] = f"error: {e}"
        return row
    row["spec"] = str(tuple(sharding.spec))
    row["bytes_per_device"] = math.prod(sharding.shard_shape(shape)) * itemsize
    large = math.prod(shape) >= getattr(d, "min_size", _LARGE_SIZE) or math.prod(shape) * itemsize >= _LARGE_BYTES
    notes = []
    if large and isinstance(d, ModelParallel) and d.layout_map.match(v.path)[0] is None:
        notes.append("large, no layout key matched: replicated")
    if isinstance(d, FSDP) and math.prod(shape) >= d.min_size and d.sharded_dimension(shape) is None:
        notes.append(f"no dimension divisible by {d.device_mesh.axis_size(d.axis)}: replicated")
    actual = getattr(v.value, "sharding", None)
    if actual is None or not actual.is_equivalent_to(sharding, len(shape)):
        # Created before the distribution, or left otherwise by a compiled step (until fit
        # keeps the layouts, issue 11 item 3).
        where = str(tuple(actual.spec)) if hasattr(actual, "spec") else "on one device"
        notes.append(f"not placed so: its array is {where}")
    row["note"] = "; ".join(notes)
    return row
