"""Runs a test's script in a fresh Python process and returns what it found.

Scripts that need simulated devices set ``XLA_FLAGS`` themselves before JAX starts, which a
pytest process (whose JAX is already started) cannot do. The script imports this checkout's
lamina, not an installed one, uses its own compilation cache folder, and prints one JSON
object as its last line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_json_script(script: str, *args: str, cache_dir: str, timeout: float) -> dict:
    """Run ``python script *args``; the JSON object of its last line (its stderr on failure)."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "LAMINA_COMPILATION_CACHE": cache_dir,
           "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, script, *args], env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
