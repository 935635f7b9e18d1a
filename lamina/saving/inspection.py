"""``python -m lamina inspect FILE``: what a saved model or weights file holds, without loading it.

Everything shown comes from the file's JSON (``metadata.json``, ``config.json``) and the
safetensors header (tensor keys, shapes, dtypes); no class named in the file is looked up,
imported or instantiated, and no tensor data is read (a model file's weights are only
CRC-checked, as every read of a model file does). So a file from anywhere can be inspected.

What the file can and cannot tell:

- **Layers**: a Sequential or Functional config lists its layers (class name and name) in
  order. A subclassed model's config holds only what its ``get_config`` returned: its class
  and config keys are shown, and its tensors are grouped by attribute path instead.
- **Parameters by layer**: counted from the header's shapes, grouping the keys by their first
  path segment (``dense/kernel`` belongs to ``dense``; ``encoder/dense_1/bias`` to
  ``encoder``). lamina's ``count_params`` counts the same tensors. Seed generator and RNN
  states (keys ending in ``seed_generator_state`` or ``rnn_state_N``, lamina's own names) are
  state, not parameters, and are counted apart; so is the optimizer state (``optimizer/...``).
  Which parameters are trainable is not recorded in the file, so no split is shown.
- **Assets**: the files layers saved with ``save_assets`` are listed (name, owning layer key,
  size), from the zip directory only: none is extracted or read.

Every string from the file is printed as plain text (no rich markup) with control
characters escaped, so a crafted name cannot restyle or hijack the terminal.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
from dataclasses import dataclass, field

from lamina.saving import assets as assets_lib
from lamina.saving.archive import ModelArchive
from lamina.saving.safetensors_reader import MappedSafetensorsFile
from lamina.saving.variable_keys import OPTIMIZER_PREFIX, STRUCTURE_METADATA

_STATE_NAME = re.compile(r"(seed_generator_state|rnn_state_\d+)(_\d+)?")
_MAX_TEXT = 160  # characters of one value from the file shown before it is cut


@dataclass(frozen=True)
class Tensor:
    key: str
    dtype: str
    shape: tuple
    count: int
    nbytes: int


@dataclass
class Group:
    """The tensors under one first path segment (a layer, or a subclassed model's attribute)."""

    name: str
    params: int = 0
    nbytes: int = 0
    tensors: int = 0
    state: int = 0  # values in seed generator / RNN state tensors (not parameters)

    def add(self, tensor: Tensor) -> None:
        if is_state_key(tensor.key):
            self.state += tensor.count
        else:
            self.params += tensor.count
            self.nbytes += tensor.nbytes
        self.tensors += 1


@dataclass
class FileContents:
    path: str
    kind: str  # "model" or "weights"
    metadata: dict  # metadata.json (model file) or the safetensors __metadata__
    header_metadata: dict
    config: dict | None
    tensors: list = field(default_factory=list)
    assets: list = field(default_factory=list)  # [Asset] (model files only)


@dataclass(frozen=True)
class Asset:
    name: str  # the zip member, "assets/<layer key>/<relative path>"
    layer: str  # the owning layer key ("" for the model itself)
    size: int  # declared uncompressed bytes


def is_state_key(key: str) -> bool:
    """Whether ``key`` names a seed generator or RNN state (lamina's names), not a parameter.

    >>> is_state_key("dropout/seed_generator_state"), is_state_key("lstm/rnn_state_0")
    (True, True)
    >>> is_state_key("dense/kernel")
    False
    """
    return bool(_STATE_NAME.fullmatch(key.rsplit("/", 1)[-1]))


def group_tensors(tensors) -> tuple[dict, Group]:
    """``({first path segment: Group}, optimizer Group)``, in the order the keys come.

    >>> groups, opt = group_tensors([Tensor("dense/kernel", "float32", (3, 2), 6, 24),
    ...                              Tensor("dense/bias", "float32", (2,), 2, 8),
    ...                              Tensor("optimizer/iterations", "int32", (), 1, 4)])
    >>> groups["dense"].params, groups["dense"].tensors, opt.params
    (8, 2, 1)
    """
    groups, optimizer = {}, Group("optimizer")
    for tensor in tensors:
        if tensor.key.startswith(OPTIMIZER_PREFIX):
            optimizer.params += tensor.count
            optimizer.nbytes += tensor.nbytes
            optimizer.tensors += 1
            continue
        name = tensor.key.split("/", 1)[0]
        groups.setdefault(name, Group(name)).add(tensor)
    return groups, optimizer


def read_file(path) -> FileContents:
    """The metadata, config and tensor list of a ``.lamina`` or ``.safetensors`` file.

    Raises ``FileFormatError`` (a ``ValueError``) for a file that is not valid, ``OSError``
    for one that cannot be read.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    if path.endswith(".lamina") or zipfile.is_zipfile(path):
        with ModelArchive(path) as archive:
            assets = [Asset(info.filename, assets_lib.owner(info.filename, archive.asset_keys)[0], info.file_size)
                      for info in archive.assets]
            return FileContents(path, "model", archive.metadata, archive.weights.metadata,
                                archive.config, _tensors(archive.weights), assets)
    with MappedSafetensorsFile(path) as view:
        return FileContents(path, "weights", view.metadata, view.metadata, None, _tensors(view))


def _tensors(view) -> list:
    result = []
    for key, entry in view.entries.items():
        count = math.prod(entry.shape)
        result.append(Tensor(key, entry.dtype.name, entry.shape, count, count * entry.dtype.itemsize))
    return result


# -- rendering ------------------------------------------------------------------------------


def render(contents: FileContents, stream, *, show_weights: bool = False, width: int | None = None) -> None:
    """Print the report on ``stream`` (rich tables; plain text when ``stream`` is not a tty)."""
    from rich.console import Console

    if width is None and not _isatty(stream):
        width = 120  # off a terminal rich assumes 80 columns and would wrap every table
    console = Console(file=stream, width=width, highlight=False, markup=False, emoji=False)
    what = "Model file" if contents.kind == "model" else "Weights file (safetensors)"
    console.print(_text(f"{what}: {contents.path}"))
    _print_metadata(console, contents)
    groups, optimizer = group_tensors(contents.tensors)
    if contents.config is not None:
        _print_model(console, contents.config, groups)
    else:
        _print_groups(console, "Parameters by first key segment (layer or attribute)", list(groups.values()))
    _print_totals(console, groups, optimizer)
    if contents.config is not None:
        _print_compile(console, contents.config.get("compile_config"))
    if contents.assets:
        _print_assets(console, contents.assets)
    if show_weights:
        _print_weights(console, contents.tensors)
    console.print(_text(
        "Read from the file's JSON and safetensors header only: no class named in it was imported "
        "or run. Parameter counts come from tensor shapes; the file does not record which are "
        "trainable."
    ), style="dim")


def _print_metadata(console, contents: FileContents) -> None:
    from rich.table import Table

    table = Table(title="Metadata", title_justify="left", show_header=False, box=None, padding=(0, 2))
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    items = dict(contents.metadata)
    items.pop(assets_lib.ASSETS_METADATA, None)  # the assets table shows the owners
    if contents.kind == "model":
        # The structural-key map repeats every tensor key: the --weights table shows those.
        items.update({f"weights header: {k}": v for k, v in contents.header_metadata.items()
                      if k != STRUCTURE_METADATA})
    for key, value in items.items():
        table.add_row(_text(key), _text(_short(value)))
    if not items:
        table.add_row(_text("(none)"), _text(""))
    console.print(table)


def _print_model(console, config: dict, groups: dict) -> None:
    class_name = config.get("class_name")
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    name = inner.get("name")
    console.print(_text(f"Model: {_short(class_name)}" + (f' "{_short(name)}"' if name is not None else "")))
    build = config.get("build_config")
    inputs = _input_shapes(inner)
    if isinstance(build, dict) and build.get("input_shape") is not None:
        console.print(_text(f"Built from input shape: {_shape_text(build['input_shape'])}"))
    elif inputs:
        console.print(_text("Inputs: " + ", ".join(inputs)))
    else:
        console.print(_text("Built from input shape: not recorded"))

    layers = inner.get("layers")
    if isinstance(layers, list):
        rows, named = [], set()
        for layer in layers:
            layer = layer if isinstance(layer, dict) else {}
            layer_config = layer.get("config") if isinstance(layer.get("config"), dict) else {}
            layer_name = layer_config.get("name")
            key = layer_name if isinstance(layer_name, str) else None
            group = groups.get(key) if key is not None else None
            named.add(key)
            rows.append((f"{_short(layer_name)} ({_short(layer.get('class_name'))})", group or Group(key or "?")))
        rows += [(f"{g.name} (not in the config's layers)", g) for n, g in groups.items() if n not in named]
        _print_table(console, "Layers (config.json), parameters (weights header)", rows, "Layer (class)")
    else:
        keys = ", ".join(_short(k) for k in inner)
        console.print(_text(f"Subclassed model: config.json holds no layer list; its config keys: {keys or '(none)'}"))
        for key, value in inner.items():
            if isinstance(value, (str, int, float, bool)) or value is None:
                console.print(_text(f"  {_short(key)} = {_short(value)}"))
        _print_groups(console, "Parameters by attribute (first key segment)", list(groups.values()))


def _input_shapes(inner: dict) -> list:
    """A Functional config's inputs, as ``name batch_shape`` from its InputLayer entries."""
    shapes = []
    for layer in inner.get("layers") or []:
        if isinstance(layer, dict) and layer.get("class_name") == "InputLayer":
            layer_config = layer.get("config") if isinstance(layer.get("config"), dict) else {}
            shapes.append(f"{_short(layer_config.get('name'))} (batch shape "
                          f"{_shape_text(layer_config.get('batch_shape'))})")
    return shapes


def _print_groups(console, title, groups) -> None:
    _print_table(console, title, [(g.name, g) for g in groups], "Name")


def _print_table(console, title, rows, label_header) -> None:
    from rich.table import Table

    with_state = any(g.state for _, g in rows)
    table = Table(title=title, title_justify="left")
    table.add_column(label_header, overflow="fold")
    table.add_column("Parameters", justify="right", no_wrap=True)
    table.add_column("Size", justify="right", no_wrap=True)
    table.add_column("Tensors", justify="right", no_wrap=True)
    if with_state:
        table.add_column("Other state", justify="right", no_wrap=True)
    for label, group in rows:
        cells = [_text(label), _text(f"{group.params:,}"), _text(_bytes(group.nbytes)), _text(str(group.tensors))]
        if with_state:
            cells.append(_text(f"{group.state:,}" if group.state else ""))
        table.add_row(*cells)
    console.print(table)


def _print_totals(console, groups: dict, optimizer: Group) -> None:
    params = sum(g.params for g in groups.values())
    nbytes = sum(g.nbytes for g in groups.values())
    state = sum(g.state for g in groups.values())
    console.print(_text(f"Total parameters: {params:,} ({_bytes(nbytes)})"))
    if state:
        console.print(_text(f"Other state (seed generators, RNN states; not parameters): {state:,} values"))
    if optimizer.tensors:
        console.print(_text(f"Optimizer state: {optimizer.params:,} values ({_bytes(optimizer.nbytes)}) "
                            f"in {optimizer.tensors} tensors"))
    else:
        console.print(_text("Optimizer state: none saved"))


def _print_compile(console, compile_config) -> None:
    if not isinstance(compile_config, dict):
        console.print(_text("Compiled: no (no compile config saved)"))
        return
    optimizer = compile_config.get("optimizer")
    text = _describe(optimizer)
    if isinstance(optimizer, dict) and isinstance(optimizer.get("config"), dict):
        rate = optimizer["config"].get("learning_rate")
        if rate is not None:
            text += f", learning rate {_describe(rate)}"
    console.print(_text(f"Compiled with optimizer: {text}"))
    console.print(_text(f"  loss: {_describe(compile_config.get('loss'))}"))
    console.print(_text(f"  metrics: {_describe(compile_config.get('metrics'))}"))
    for key in ("loss_weights", "weighted_metrics"):
        if compile_config.get(key) is not None:
            console.print(_text(f"  {key}: {_describe(compile_config[key])}"))


def _print_assets(console, assets) -> None:
    from rich.table import Table

    total = sum(a.size for a in assets)
    table = Table(title=f"Assets ({len(assets)} files, {_bytes(total)})", title_justify="left")
    table.add_column("File", overflow="fold")
    table.add_column("Layer", overflow="fold")
    table.add_column("Bytes", justify="right", no_wrap=True)
    for asset in assets:
        table.add_row(_text(asset.name), _text(asset.layer or "(the model)"), _text(f"{asset.size:,}"))
    console.print(table)
    console.print(_text("Asset files are listed from the zip directory; none was extracted or read."), style="dim")


def _print_weights(console, tensors) -> None:
    from rich.table import Table

    table = Table(title=f"Tensors ({len(tensors)})", title_justify="left")
    table.add_column("Key", overflow="fold")
    table.add_column("Shape", no_wrap=True)
    table.add_column("DType", no_wrap=True)
    table.add_column("Bytes", justify="right", no_wrap=True)
    for tensor in tensors:
        table.add_row(_text(tensor.key), _text(str(tensor.shape)), _text(tensor.dtype), _text(f"{tensor.nbytes:,}"))
    console.print(table)


def _describe(value) -> str:
    """A short description of a config value: names for serialized objects, JSON otherwise."""
    if value is None:
        return "-"
    if isinstance(value, dict) and "class_name" in value:
        return _short(value["class_name"])
    if isinstance(value, list):
        return "[" + ", ".join(_describe(v) for v in value) + "]" if value else "[]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_short(k)}: {_describe(v)}" for k, v in value.items()) + "}"
    return _short(value)


def _shape_text(shape) -> str:
    """A JSON shape as Python writes it: ``[null, 4]`` -> ``(None, 4)``."""
    if isinstance(shape, list) and all(d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in shape):
        return _short("(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")")
    if isinstance(shape, list):
        return _short("[" + ", ".join(_shape_text(s) for s in shape) + "]")
    return _short(shape)


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = _clean(text)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT - 3] + "..."


def _clean(text: str) -> str:
    """``text`` with control characters (terminal escapes, newlines) escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _text(value: str):
    from rich.text import Text

    return Text(_clean(value))


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{size:,.2f} {unit}"
        size /= 1024
    return f"{count} B"


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def inspect(path, stream, *, show_weights: bool = False) -> None:
    """Read ``path`` and print its report on ``stream`` (errors propagate)."""
    render(read_file(path), stream, show_weights=show_weights)


__all__ = ["Asset", "FileContents", "group_tensors", "inspect", "is_state_key", "read_file", "render"]
