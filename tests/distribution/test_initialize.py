"""lm.distribution.initialize in real processes: after ``import lamina``, two processes on
localhost join one run and continue the same seed stream."""

import json
import os
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "LAMINA_COMPILATION_CACHE": "0",
       "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
# jax.distributed.initialize must run before XLA's backend starts: importing lamina must not
# start it (no module-level arrays).


def test_import_lamina_leaves_the_backend_unstarted():
    code = "import lamina; from jax._src import xla_bridge; print(xla_bridge.backends_are_initialized())"
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_two_processes_join_and_share_the_seed_stream():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = str(s.getsockname()[1])
    script = os.path.join(HERE, "two_process_script.py")
    procs = [subprocess.Popen([sys.executable, script, str(i), port], env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err[-2000:]
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:  # never leave one waiting for the other
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [o["joined"] for o in outputs] == [True, True]
    assert [o["processes"] for o in outputs] == [2, 2]
    assert outputs[0]["seed"] == outputs[1]["seed"]
