"""Two processes on localhost (``jax.distributed``, 4 CPU devices each) train one data
parallel model, each passing only its own rows: they end with the same weights as each other
and as one process on 8 devices given the whole batches."""

import os

import numpy as np
import pytest
from script_runner import free_port, run_json_scripts

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "two_process_training_script.py")
TIMEOUT = 240  # both processes are killed after this: a hang fails the test, never blocks it


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    port = free_port()
    return run_json_scripts([[SCRIPT, "0", port], [SCRIPT, "1", port], [SCRIPT, "reference"]], timeout=TIMEOUT,
                            cache_dir=str(tmp_path_factory.mktemp("compilation_cache")))


def test_two_processes_of_four_devices_join_one_mesh(runs):
    first, second, reference = runs
    assert [r["processes"] for r in runs] == [2, 2, 1]
    assert first["devices"] == second["devices"] == reference["devices"] == 8
    assert first["local_devices"] == second["local_devices"] == 4
    assert first["rows"] == second["rows"] == 640  # each passes its half of every batch


def test_both_processes_end_with_the_weights_of_one_process_on_eight_devices(runs):
    first, second, reference = runs
    for a, b in zip(first["weights"], second["weights"]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(first["weights"], reference["weights"]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    np.testing.assert_allclose(first["loss"], reference["loss"], rtol=0, atol=1e-6)
    assert first["loss"] == second["loss"]


def test_evaluate_is_global_and_predict_returns_each_process_its_rows(runs):
    first, second, reference = runs
    assert first["evaluate"] == second["evaluate"]  # one global evaluation, seen by both
    for name, value in reference["evaluate"].items():
        assert abs(first["evaluate"][name] - value) <= 1e-6, name
    whole = np.asarray(reference["predict"])
    for process, run in enumerate(runs[:2]):
        rows = np.arange(100)  # its rows j: global batch j // 32, its half, position j % 32
        index = rows // 32 * 64 + process * 32 + rows % 32
        np.testing.assert_allclose(run["predict"], whole[index], rtol=0, atol=1e-6)


def test_a_global_batch_size_the_processes_do_not_divide_is_an_error_naming_the_fix(runs):
    for run in runs[:2]:
        assert "batch_size`=63" in run["odd_batch_error"]
        assert "multiple of 2" in run["odd_batch_error"]
    assert runs[2]["odd_batch_error"] is None  # one process: any batch size


def test_processes_passing_different_sample_counts_fail_in_both_instead_of_hanging(runs):
    for run in runs[:2]:
        error = run["uneven_processes_error"]
        assert "differ between processes" in error and "process 0: (640," in error and "process 1: (608," in error
    assert runs[2]["uneven_processes_error"] is None
