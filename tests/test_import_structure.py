"""lamina's modules import each other in one direction only: no import cycle, not even one
hidden behind an import inside a function.

The graph is read from the source (no module is imported): every ``import`` and ``from ...
import`` statement of every module under ``lamina/``, at any depth, is an edge to the module
it names. ``from a.b import c`` names ``a.b.c`` when that is a module, else ``a.b``; relative
imports resolve against the importing module's package. The implicit import of the parent
packages (``import a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first) is not an
edge: a package's ``__init__`` re-exporting its children would otherwise make every child
that imports a sibling part of a cycle.

On top of that, the layering: the low level (variables, random, initializers, regularizers,
constraints, serialization, the registry) never reaches ``lamina.layers`` or ``lamina.models``,
and ``lamina.saving`` never reaches the models, trainers or callbacks, which call it.

Run as a script (``python tests/test_import_structure.py``) to print the cycles, or with
``--edges MODULE`` to list what one module imports.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "lamina"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    file: str
    line: int
    nested: bool  # inside a function or class body, or under an if/try

    def __str__(self):
        where = " (not at module level)" if self.nested else ""
        return f"{self.source} -> {self.target}   {self.file}:{self.line}{where}"


def module_files(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of ``package`` by dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _owning_module(name: str, modules) -> str | None:
    """``name`` if it is a module, else the nearest enclosing one (``a.b.func`` -> ``a.b``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(node, module: str, is_package: bool, modules) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
            for alias in node.names]


def _imports(tree):
    """``(node, nested)`` for every import statement; ``nested`` unless directly at module level."""
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, id(node) not in top


def import_edges(root: Path = ROOT, package: str = PACKAGE) -> list[Edge]:
    """One edge per import statement and module it names, between modules of ``package``."""
    modules = module_files(root, package)
    edges = set()
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        relative = str(path.relative_to(root))
        for node, nested in _imports(tree):
            for name in _targets(node, module, path.name == "__init__.py", modules):
                if name != package and not name.startswith(package + "."):
                    continue
                target = _owning_module(name, modules)
                if target is not None and target != module:
                    edges.add(Edge(module, target, relative, node.lineno, nested))
    return sorted(edges, key=lambda e: (e.source, e.target, e.line))


def strongly_connected(nodes, edges: list[Edge]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    successors = {node: [] for node in nodes}
    for edge in edges:
        successors[edge.source].append(edge.target)
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = 0
    for start in successors:
        if start in index:
            continue
        work = [(start, iter(successors[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components)


def cycle_report(components, edges: list[Edge]) -> str:
    lines = []
    for component in components:
        members = set(component)
        lines.append(f"cycle of {len(component)} modules: {', '.join(component)}")
        lines.extend(f"    {edge}" for edge in edges if edge.source in members and edge.target in members)
    return "\n".join(lines)


def test_lamina_has_no_import_cycle():
    edges = import_edges()
    components = strongly_connected(module_files(), edges)
    assert not components, "lamina's modules import each other in a cycle:\n" + cycle_report(
        components, edges)


# Which packages a module may not reach, even through others: the low level sits below the
# layers, and saving below the models, trainers and callbacks that call it.
_LOW_LEVEL = ("lamina.core.variable", "lamina.random", "lamina.initializers", "lamina.regularizers",
              "lamina.constraints", "lamina.saving.serialization", "lamina.saving.object_registry")
_FORBIDDEN = {
    **{module: ("lamina.layers", "lamina.models") for module in _LOW_LEVEL},
    "lamina.saving": ("lamina.models", "lamina.trainers", "lamina.callbacks"),
}


def _within(module: str, packages) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def forbidden_paths(edges: list[Edge], rules: dict) -> list[str]:
    """Each import chain from a module under a rule's key to a package it may not reach."""
    successors = {}
    for edge in edges:
        successors.setdefault(edge.source, []).append(edge)
    found = []
    for source in sorted(successors):
        banned = [b for key, packages in rules.items() if _within(source, (key,)) for b in packages]
        if not banned:
            continue
        via, stack = {source: None}, [source]
        while stack:  # depth-first, remembering the edge that reached each module
            for edge in successors.get(stack.pop(), []):
                if edge.target not in via:
                    via[edge.target] = edge
                    stack.append(edge.target)
        for target, edge in via.items():
            # Only where a chain first enters a banned package: what that module imports is noise.
            if edge is not None and _within(target, banned) and not _within(edge.source, banned):
                chain = []
                while edge is not None:
                    chain.append(str(edge))
                    edge = via[edge.source]
                found.append(f"{source} reaches {target}:\n    " + "\n    ".join(reversed(chain)))
    return found


def test_the_low_level_and_saving_import_only_downward():
    found = forbidden_paths(import_edges(), _FORBIDDEN)
    assert not found, "A module imports a package above it:\n" + "\n".join(found)


def test_the_graph_reader_sees_nested_relative_and_from_imports(tmp_path):
    # The reader itself: a cycle closed only by an import inside a function, written as a
    # relative import of a name (not a module), must be found, with its file and line.
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg import a\n")
    (package / "a.py").write_text("import os\nfrom pkg.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from ..a import something\n")
    (package / "c.py").write_text("from pkg import sub\n")
    edges = import_edges(tmp_path, "pkg")
    assert {(e.source, e.target) for e in edges} == {
        ("pkg", "pkg.a"), ("pkg.a", "pkg.sub.b"), ("pkg.sub.b", "pkg.a"), ("pkg.c", "pkg.sub")}
    components = strongly_connected(module_files(tmp_path, "pkg"), edges)
    assert components == [["pkg.a", "pkg.sub.b"]]
    report = cycle_report(components, edges)
    assert "pkg.sub.b -> pkg.a" in report and "sub/b.py:2 (not at module level)" in report
    # The layering rule follows chains of imports, and names each link.
    (package / "d.py").write_text("import pkg.c\n")
    found = forbidden_paths(import_edges(tmp_path, "pkg"), {"pkg.d": ("pkg.sub",)})
    assert found == ["pkg.d reaches pkg.sub:\n    pkg.d -> pkg.c   pkg/d.py:1\n"
                     "    pkg.c -> pkg.sub   pkg/c.py:1"]
    # pkg.c imports the package pkg.sub, whose __init__ imports nothing: pkg.a is out of reach.
    assert forbidden_paths(edges, {"pkg.c": ("pkg.a",)}) == []


if __name__ == "__main__":
    all_edges = import_edges()
    if len(sys.argv) > 2 and sys.argv[1] == "--edges":
        for edge in all_edges:
            if edge.source == sys.argv[2]:
                print(edge)
    else:
        found = strongly_connected(module_files(), all_edges)
        print(cycle_report(found, all_edges) if found else "no import cycle")
