"""A griffe extension for the API reference: lamina's docstrings head their doctests
``Example:``; griffe's Google-style parser knows only ``Examples:`` as a section of code
examples and would otherwise render the doctest lines as Markdown (a printed list such as
``['kernel', 'bias']`` then reads as a broken link)."""

from __future__ import annotations

import re

import griffe

_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", re.M)


class ExampleSections(griffe.Extension):
    """Renames ``Example:`` section headings to ``Examples:`` before the docstring is parsed."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _HEADING.sub(r"\1Examples:", obj.docstring.value)
