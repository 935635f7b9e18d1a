"""lm.distribution.initialize in real processes: after ``import lamina``, two processes on
localhost join one run and continue the same seed stream."""

import os
import subprocess
import sys

from script_runner import free_port, run_json_scripts, script_env

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = script_env("0")
# jax.distributed.initialize must run before XLA's backend starts: importing lamina must not
# start it (no module-level arrays).


def test_import_lamina_leaves_the_backend_unstarted():
    code = "import lamina; from jax._src import xla_bridge; print(xla_bridge.backends_are_initialized())"
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_two_processes_join_and_share_the_seed_stream():
    script = os.path.join(HERE, "two_process_script.py")
    port = free_port()
    outputs = run_json_scripts([[script, i, port] for i in range(2)], cache_dir="0", timeout=120)
    assert [o["joined"] for o in outputs] == [True, True]
    assert [o["processes"] for o in outputs] == [2, 2]
    assert outputs[0]["seed"] == outputs[1]["seed"]
