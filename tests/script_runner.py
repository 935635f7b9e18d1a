"""Runs a test's script in a fresh Python process and returns what it found.

Scripts that need simulated devices set ``XLA_FLAGS`` themselves before JAX starts, which a
pytest process (whose JAX is already started) cannot do. The script imports this checkout's
lamina, not an installed one, uses its own compilation cache folder, and prints one JSON
object as its last line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script_env(cache_dir: str) -> dict:
    """The environment a test script runs in: CPU, this checkout's lamina, ``cache_dir`` as
    its compilation cache (``"0"``: none)."""
    return {**os.environ, "JAX_PLATFORMS": "cpu", "LAMINA_COMPILATION_CACHE": cache_dir,
            "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}


def last_json(output: str) -> dict:
    """The last JSON object a script printed. Text around it is skipped: a ``jax.distributed``
    run's collectives library (gloo) writes "[Gloo] Rank 0 is connected..." to the same stdout
    as the process shuts down, unbuffered, so it can land on the JSON object's own line (CI
    saw ``{"joined": true, ...}[Gloo] Rank 0 ...``)."""
    decoder, found = json.JSONDecoder(), []
    for line in output.splitlines():
        start = line.find('{"')
        while start != -1:
            try:
                found.append(decoder.raw_decode(line, start)[0])
                break
            except ValueError:
                start = line.find('{"', start + 1)
    assert found, f"the script printed no JSON object:\n{output[-3000:]}"
    return found[-1]


def run_json_script(script: str, *args: str, cache_dir: str, timeout: float) -> dict:
    """Run ``python script *args``; the JSON object of its last line (its stderr on failure)."""
    result = subprocess.run([sys.executable, script, *args], env=script_env(cache_dir), capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return last_json(result.stdout)


def free_port() -> str:
    """A TCP port free on localhost now: for a ``jax.distributed`` coordinator."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return str(s.getsockname()[1])


def run_json_scripts(commands: list, *, cache_dir: str, timeout: float) -> list:
    """Start every ``[script, *args]`` of ``commands`` at once (processes that wait for each
    other, such as the ranks of one ``jax.distributed`` run) and return each one's JSON object.
    Every process still running is killed when one fails or ``timeout`` seconds pass, so a hang
    fails the test and never blocks it."""
    env = script_env(cache_dir)
    procs = [subprocess.Popen([sys.executable, *map(str, c)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in commands]
    outputs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, err[-3000:]
            outputs.append(last_json(out))
    finally:
        for p in procs:  # never leave one waiting for the other
            if p.poll() is None:
                p.kill()
                p.wait()
    return outputs


def kill_when_marked(process: subprocess.Popen, marker, timeout: float = 120) -> None:
    """SIGKILL ``process`` once it has created the file ``marker`` (the point a test wants it
    killed at); fails if it exits first or never gets there."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(marker):
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the script never reached the point to be killed at"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL


def assert_same_tensors(got_path, want_path) -> dict:
    """Both safetensors files hold the same tensors, bit for bit (dtype included); returns the
    second file's tensors."""
    import numpy as np  # noqa: PLC0415 - kept out of the scripts' own imports
    import safetensors.numpy  # noqa: PLC0415

    got, want = safetensors.numpy.load_file(str(got_path)), safetensors.numpy.load_file(str(want_path))
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key].dtype == want[key].dtype and np.array_equal(got[key], want[key]), key
    return want
