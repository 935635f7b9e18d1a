"""The documentation: every Python example in docs/ and README.md runs as written, and the site
builds with ``mkdocs build --strict`` with a reference entry for every public name.

Each page's ```` ```python ```` blocks run in order in one namespace (a page reads as one
session), in a fresh working folder. A block that cannot run here (it needs a GPU, a network or
files the reader has) is preceded by the line ``<!-- not run: <why> -->``; use it sparingly.
"""

import html
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lamina as lm

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
# A fence may be indented (inside a list item); its closing fence has the same indentation.
_BLOCK = re.compile(r"^(?P<skip>[ \t]*<!-- not run: .+? -->\n)?(?P<indent>[ \t]*)```(?:python|py)\b[^\n]*\n(?P<code>.*?)^(?P=indent)```",
                    re.M | re.S)


def python_blocks(text):
    """The page's Python blocks to run, in order (those marked ``not run`` left out)."""
    return [textwrap.dedent(m["code"]) for m in _BLOCK.finditer(text) if m["skip"] is None]


def test_the_block_finder_keeps_order_and_honours_the_marker():
    text = "```python\na = 1\n```\n<!-- not run: needs a GPU -->\n```python\nb = 2\n```\n```bash\nc\n```\n```python\nd = a\n```\n"
    assert python_blocks(text) == ["a = 1\n", "d = a\n"]
    in_a_list = "- item:\n\n    ```py\n    if a:\n        e = 3\n    ```\n"
    assert python_blocks(in_a_list) == ["if a:\n    e = 3\n"]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_the_python_examples_of_a_page_run(page, tmp_path, monkeypatch, capsys):
    blocks = python_blocks(page.read_text())
    if not blocks:
        pytest.skip("no Python examples")
    monkeypatch.chdir(tmp_path)  # examples save files
    namespace = {"__name__": "__docs__"}
    name = page.relative_to(ROOT)
    try:
        for i, code in enumerate(blocks):
            exec(compile(code, f"{name}[python block {i + 1}]", "exec"), namespace)
    finally:
        lm.distribution.set_distribution(None)


def test_the_site_builds_strict_with_every_public_name_and_every_guide_section(tmp_path):
    # One test for the one build (about 20 s): under pytest-xdist a shared fixture would build
    # the site once per worker.
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"

    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import gen_ref
    finally:
        sys.path.pop(0)
    missing = []
    for page, module_path, names in gen_ref.reference_entries():
        page_html = (site / "reference" / f"{page}.html").read_text()
        missing += [f"{module_path}.{n}" for n in names if f'id="{module_path}.{n}"' not in page_html]
    assert not missing, f"public names without a reference entry: {missing}"
    # The training API comes from a base class in lamina/trainers/: it must be on the model pages.
    models_html = (site / "reference" / "models.html").read_text()
    for method in ("compile", "fit", "evaluate", "predict"):
        assert f'id="lamina.models.Model.{method}"' in models_html, method

    guide = (ROOT / "docs" / "guide.md").read_text()
    titles = re.findall(r"^## (.+)$", re.sub(r"^```.*?^```", "", guide, flags=re.M | re.S), re.M)
    topic_pages = re.sub(r"</?code>", "", "".join(p.read_text() for p in (site / "guide").glob("*.html")))
    assert titles
    for title in titles:
        shown = re.escape(html.escape(title.replace("`", ""), quote=False))
        assert re.search(rf"<h[12] id=[^>]*>{shown}", topic_pages), f"guide section {title!r} is on no topic page"
