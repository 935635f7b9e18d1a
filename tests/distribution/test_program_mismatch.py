"""Two processes (jax.distributed on localhost, 4 CPU devices each) that run different programs
get a clear error in both, naming what differs, before any step runs; never a hang.

One pair of processes tries every difference in turn (two_process_mismatch_script.py): a
refusal happens in both before any collective, so they stay in step for the next attempt.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(HERE, "two_process_mismatch_script.py")
TIMEOUT = 150  # both processes are killed after this: a hang fails the test, never blocks it


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mismatch")
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "LAMINA_COMPILATION_CACHE": str(tmp_path_factory.mktemp("compilation_cache")),
           "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = str(s.getsockname()[1])
    procs = [subprocess.Popen([sys.executable, SCRIPT, str(me), port, str(folder)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for me in (0, 1)]
    outputs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT)
            assert p.returncode == 0, err[-3000:]
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:  # never leave one waiting for the other
            if p.poll() is None:
                p.kill()
                p.wait()
    return outputs


def _refused(found, attempt):
    """The message both processes raised (the same text in each)."""
    first, second = (run[attempt] for run in found)
    assert first is not None and first == second, (first, second)
    assert first.startswith("ValueError: ") and "would run a different program in each process" in first
    return first


def test_a_wider_layer_is_named_with_both_shapes(found):
    message = _refused(found, "width")
    assert "fit()" in message
    assert "process 1's model has variable 'hidden/kernel' of shape (8, 8) where process 0's has (8, 16)" in message
    assert "'out/kernel' of shape (8, 4) where process 0's has (16, 4)" in message


def test_one_layer_more_is_named(found):
    message = _refused(found, "layer_count")
    assert "process 1's model has 6 variables where process 0's has 4" in message
    assert "process 1's model has variable 'extra/kernel' (shape (16, 16) float32 replicated) which process 0's lacks" in message


def test_another_optimizer_or_learning_rate_is_named(found):
    assert "process 1 compiled the model with optimizer=SGD where process 0 used Adam" in _refused(found, "optimizer")
    assert ("process 1 compiled the model with optimizer=Adam(beta_1=0.8) where process 0 used "
            "Adam(beta_1=0.9)") in _refused(found, "beta_1")


def test_another_learning_rate_fails_in_both_when_the_optimizer_is_made(found):
    # JAX itself compares a host value placed on a multi-process mesh (the learning-rate
    # variable), before compile: an AssertionError in both, not a hang.
    first, second = (run["learning_rate"] for run in found)
    assert first.startswith("AssertionError: ") and second.startswith("AssertionError: ")
    assert "is not the same on each process" in first and "is not the same on each process" in second


def test_other_loop_arguments_are_named(found):
    assert "process 1 calls fit(epochs=3) where process 0 calls fit(epochs=2)" in _refused(found, "epochs")
    assert "process 1 calls fit(batch_size=16) where process 0 calls fit(batch_size=32)" in _refused(found, "batch_size")
    assert ("process 1 compiled the model with steps_per_execution=2 where process 0 used 1"
            in _refused(found, "steps_per_execution"))
    assert "process 1 runs evaluate() where process 0 runs fit()" in _refused(found, "evaluate_against_fit")


def test_a_model_built_by_its_first_batch_is_compared_before_the_first_step(found):
    message = _refused(found, "built_by_first_batch")
    assert "process 1's model has variable 'hidden/kernel' of shape (8, 8) where process 0's has (8, 16)" in message


def test_a_sharded_checkpoint_of_different_models_is_refused_before_writing(found):
    message = _refused(found, "checkpoint")
    assert message.startswith("ValueError: saving a sharded checkpoint would run a different program")
    assert "process 1 saves tensor 'hidden/kernel' of shape (8, 8) where process 0 saves (8, 16)" in message
    assert "Every process must save the same model" in message


def test_both_stay_in_step_and_train_the_same_program_afterwards(found):
    first, second = found
    assert len(first["matching_fit_loss"]) == 2
    assert first["matching_fit_loss"] == second["matching_fit_loss"]
