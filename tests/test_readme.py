"""The README's quickstart runs as written and trains."""

import re
from pathlib import Path


def test_readme_quickstart_runs_and_lowers_the_loss(capsys):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert float(namespace["loss"]) < 1e-3
    assert [w.path.split("/")[-1] for w in namespace["model"].weights] == ["w", "b"]
