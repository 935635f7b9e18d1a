"""griffe extensions for the API reference (listed in mkdocs.yml).

``ExampleSections``: lamina's docstrings head their doctests ``Example:``; griffe's
Google-style parser knows only ``Examples:`` as a section of code examples and would otherwise
render the doctest lines as Markdown (a printed list such as ``['kernel', 'bias']`` then reads
as a broken link).

``FolderModules``: griffe loads no sub-package without an ``__init__.py`` inside a regular
package, and ``lamina/trainers/`` has none, so ``Model``'s base class ``Trainer`` (``compile``,
``fit``, ``evaluate``, ``predict``...) would be unknown and those methods missing from the
reference. This loads such folders' modules by static analysis, as griffe loads the others.
"""

from __future__ import annotations

import re
from pathlib import Path

import griffe

_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", re.M)


class ExampleSections(griffe.Extension):
    """Renames ``Example:`` section headings to ``Examples:`` before the docstring is parsed."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _HEADING.sub(r"\1Examples:", obj.docstring.value)


class FolderModules(griffe.Extension):
    """Adds the modules of ``__init__``-less folders directly under a loaded package."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
        if not pkg.is_package or pkg.parent is not None:
            return
        root = Path(pkg.filepath).parent
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not (p / "__init__.py").exists()):
            files = sorted(folder.glob("*.py"))
            if not files or folder.name in pkg.members:
                continue
            namespace = griffe.Module(folder.name, filepath=[folder], parent=pkg,
                                      lines_collection=loader.lines_collection, modules_collection=loader.modules_collection)
            pkg.set_member(folder.name, namespace)
            for file in files:
                code = file.read_text(encoding="utf-8")
                loader.lines_collection[file] = code.splitlines()
                module = griffe.visit(file.stem, filepath=file, code=code, parent=namespace, extensions=loader.extensions,
                                      docstring_parser=loader.docstring_parser, docstring_options=loader.docstring_options,
                                      lines_collection=loader.lines_collection, modules_collection=loader.modules_collection)
                namespace.set_member(file.stem, module)
