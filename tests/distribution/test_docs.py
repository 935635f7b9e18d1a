"""docs/distribution.md's Python examples run as written (on this process's devices)."""

import re
from pathlib import Path

import lamina as lm

DOC = Path(__file__).parent.parent.parent / "docs" / "distribution.md"


def test_the_examples_of_docs_distribution_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 6
    namespace, fsdp = {"lm": lm}, {}
    try:
        for i, code in enumerate(blocks):
            exec(compile(code, f"docs/distribution.md[{i}]", "exec"), namespace)
            if i == 2:  # the FSDP custom loop; later blocks reuse its names
                fsdp = dict(namespace)
    finally:
        lm.distribution.set_distribution(None)
    assert fsdp["loss"] < fsdp["first"]
    assert tuple(fsdp["kernel"].value.sharding.spec) == (None, "batch")
    assert f"{fsdp['model'].name}/dense/kernel" in capsys.readouterr().out
