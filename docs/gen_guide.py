"""Writes the guide's topic pages at build time from docs/guide.md (run by mkdocs-gen-files).

docs/guide.md stays the one source of the guide (it is also published whole). Each of its
``## `` sections goes to the topic page listed in TOPICS; a section not listed joins the page
of the section before it, so a new section needs no change here to appear on the site. A topic
page that also exists as a file under docs/guide/ starts with that file's text.
Links between sections are rewritten to point at the page that now holds the target.
"""

from __future__ import annotations

import re
from pathlib import Path

import mkdocs_gen_files
from markdown.extensions.toc import slugify

DOCS = Path(__file__).parent
GUIDE = DOCS / "guide.md"

# page -> (title, the guide's section titles it gathers, matched by their start)
TOPICS = {
    "guide/layers.md": ("Variables and layers", ["Variables", "Layers", "Randomness"]),
    "guide/models.md": ("Models", ["Models"]),
    "guide/training.md": ("Training", ["Training", "Compilation cache", "Data"]),
    "guide/custom-loops.md": ("Custom loops with lm.jit", ["Compiling stateful code", "Gradients", "Using raw JAX"]),
    "guide/saving.md": ("Saving and checkpoints", ["Saving", "Checkpoints"]),
    "guide/scaling-up.md": ("Scaling up", ["Scaling up", "Distribution"]),
    "guide/mixed-precision.md": ("Mixed precision", ["Mixed precision"]),
    "guide/coming-from-keras.md": ("Coming from Keras", ["Coming from Keras"]),
}

_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def split_sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The text before the first ``## `` heading, then (title, text) per section, fences respected."""
    intro, sections, in_fence = [], [], False
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            sections.append([line[3:].strip(), [line]])
        elif sections:
            sections[-1][1].append(line)
        else:
            intro.append(line)
    return "".join(intro), [(title, "".join(body)) for title, body in sections]


def page_of(title: str, previous: str | None) -> str:
    for page, (_, starts) in TOPICS.items():
        if any(title.startswith(start) for start in starts):
            return page
    if previous is None:
        raise ValueError(f"docs/guide.md: the first section {title!r} matches no topic in docs/gen_guide.py")
    return previous


def _anchors(body: str) -> set[str]:
    return {slugify(m.group(1).strip(), "-") for m in re.finditer(r"^#{2,6} (.+)$", body, re.M)}


def build_pages(text: str) -> dict[str, str]:
    """Page path -> Markdown for every topic page (hand-written text first where it exists)."""
    intro, sections = split_sections(text)
    placed: dict[str, list[str]] = {page: [] for page in TOPICS}
    anchor_page: dict[str, str] = {}
    previous = None
    for title, body in sections:
        previous = page_of(title, previous)
        placed[previous].append(body)
        for anchor in _anchors(body):
            anchor_page[anchor] = previous
    # The guide's imports open every page, so each page's examples read on their own.
    imports = re.search(r"```python\n.*?```\n", intro, re.S)
    pages = {}
    for page, (title, _) in TOPICS.items():
        handwritten = DOCS / page
        head = handwritten.read_text() if handwritten.exists() else f"# {title}\n\n"
        body = "".join(placed[page])
        if not handwritten.exists() and body.startswith(f"## {title}\n"):
            body = body.split("\n", 1)[1]  # the page's title is its first section's: one heading
        if "```python" in body and imports:
            head += "\n" + imports.group(0) + "\n"
        source = "\n*From [the guide](../guide.md).*\n" if body else ""
        pages[page] = head + _relink(body, page, anchor_page) + source
    return pages


def _relink(body: str, page: str, anchor_page: dict[str, str]) -> str:
    """Links written for docs/guide.md, rewritten for a page one folder down."""
    def fix(match):
        target = match.group(1)
        if re.match(r"[a-z]+:", target):
            return match.group(0)
        if target.startswith("#"):
            home = anchor_page.get(target[1:])
            if home is None or home == page:
                return match.group(0)
            return f"]({Path(home).name}{target})"
        return f"](../{target})"
    return _LINK.sub(fix, body)


for path, markdown in build_pages(GUIDE.read_text()).items():
    with mkdocs_gen_files.open(path, "w") as page:
        page.write(markdown)
