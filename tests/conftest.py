"""Shared test set-up: Keras (the numeric reference) runs on JAX, everything on the CPU."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The suite never writes into the user's cache folder (tests of the cache set their own).
os.environ.setdefault("LAMINA_COMPILATION_CACHE", "0")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# Shared helpers (tests/seed_layers.py, tests/layer_checker.py) import from any test folder.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def keras():
    """Keras 3 on JAX, imported lazily so that tests that do not compare numbers stay fast."""
    import keras as keras_module  # a dev extra: missing means the environment is broken

    return keras_module
