"""Shared test set-up: Keras (the numeric reference) runs on JAX, everything on the CPU."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests compile thousands of tiny programs and run each only a few times, so LLVM's optimisation
# of their machine code costs more than it saves: XLA's backend level 0 cut the CPU time of two
# test files by a fifth (70 -> 55 s) and changes no arithmetic (XLA's HLO passes still run, and
# without fast-math LLVM keeps IEEE semantics at every level). Benchmarks and users keep XLA's
# default; a level already in XLA_FLAGS is respected.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

# One persistent compilation cache for the whole run, made by the process that starts first
# (the pytest-xdist controller, whose environment its workers inherit) and removed by it at
# the end: the same programs (an initializer of a given shape, a metric reset, the same
# model's step in several tests, Keras's reference programs) then compile once per run instead
# of once per test and worker, about a quarter of the suite's CPU time. Never the user's own
# cache folder; tests of the cache set their own. LAMINA_COMPILATION_CACHE=0 turns it off.
_RUN_CACHE = None
if "LAMINA_COMPILATION_CACHE" not in os.environ:
    _RUN_CACHE = os.environ["LAMINA_COMPILATION_CACHE"] = tempfile.mkdtemp(prefix="lamina-tests-jax-cache-")

import pytest  # noqa: E402

# Shared helpers (tests/seed_layers.py, tests/layer_checker.py) import from any test folder.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def keras():
    """Keras 3 on JAX, imported lazily so that tests that do not compare numbers stay fast."""
    import keras as keras_module  # a dev extra: missing means the environment is broken

    return keras_module


def pytest_sessionfinish(session):
    """The run's compilation cache goes when the run ends (by the process that made it)."""
    if _RUN_CACHE is not None:
        shutil.rmtree(_RUN_CACHE, ignore_errors=True)
