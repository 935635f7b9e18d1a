"""Writes the Benchmarks page at build time from benchmarks/README.md and benchmarks/RESULTS.md
(run by mkdocs-gen-files), so the site shows the figures as recorded, never a stale copy."""

from __future__ import annotations

import re
from pathlib import Path

import mkdocs_gen_files

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"

INTRO = """# Benchmarks

The scripts in `benchmarks/` time lamina against a hand-written `jax.jit` + optax loop (and
Keras 3 on JAX where it applies) in the same run, interleaved, and print ratios; compare ratios
only between rows of the same run.

## The scripts

"""


def page() -> str:
    # benchmarks/README.md gives one script per line: a list item each here.
    scripts = [line.strip() for line in (BENCHMARKS / "README.md").read_text().splitlines() if line.strip()]
    # RESULTS.md's titles go two levels down, under this page's "Results" (it has no code blocks).
    results = re.sub(r"^(#+) ", r"##\1 ", (BENCHMARKS / "RESULTS.md").read_text(), flags=re.M)
    listing = "\n".join(f"- {line}" for line in scripts)
    return f"{INTRO}{listing}\n\n## Results (benchmarks/RESULTS.md)\n\n{results}"


with mkdocs_gen_files.open("benchmarks.md", "w") as out:
    out.write(page())
