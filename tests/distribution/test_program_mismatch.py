"""Two processes (jax.distributed on localhost, 4 CPU devices each) that run different programs
get a clear error in both, naming what differs, before any step runs; never a hang. Loading a
checkpoint (load_weights, lm.load_model, BackupAndRestore) fails in both or in neither, and the
*_on_batch calls compare their program too.

One pair of processes tries every difference in turn (two_process_mismatch_script.py): a
refusal happens in both before any collective, so they stay in step for the next attempt.
"""

import os

import pytest
from script_runner import free_port, run_json_scripts

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "two_process_mismatch_script.py")
TIMEOUT = 150  # both processes are killed after this: a hang fails the test, never blocks it


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    folder, port = tmp_path_factory.mktemp("mismatch"), free_port()
    return run_json_scripts([[SCRIPT, me, port, folder] for me in (0, 1)], timeout=TIMEOUT,
                            cache_dir=str(tmp_path_factory.mktemp("compilation_cache")))


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


def test_another_learning_rate_names_the_variable_and_each_value_when_the_optimizer_is_made(found):
    # JAX itself compares a host value placed on a multi-process mesh (the learning-rate
    # variable) before compile; lamina names the variable and each process's value.
    first, second = (run["learning_rate"] for run in found)
    assert first == second, (first, second)
    assert first.startswith("ValueError: Variable 'adam")
    assert ("/learning_rate' (shape (), float32) differs between processes: process 0 has 0.01, "
            "process 1 has 0.001") in first


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


def test_on_batch_calls_name_the_difference(found):
    assert ("train_on_batch() would run a different program" in _refused(found, "train_on_batch_width")
            and "process 1's model has variable 'hidden/kernel' of shape (8, 8) where process 0's has (8, 16)"
            in _refused(found, "train_on_batch_width"))
    assert "process 1 runs test_on_batch() where process 0 runs train_on_batch()" in _refused(found, "on_batch_kind")
    assert "'out/kernel' of shape (8, 4) where process 0's has (16, 4)" in _refused(found, "predict_on_batch_width")


def test_on_batch_calls_compare_once_then_run_in_step(found):
    first, second = found
    # Four train_on_batch calls on equal batches compare once; then one test and one predict.
    assert first["compared"] == ["train_on_batch()", "test_on_batch()", "predict_on_batch()"]
    assert first["on_batch_losses"] == second["on_batch_losses"] and len(set(first["on_batch_losses"])) == 4
    assert first["test_on_batch"] == second["test_on_batch"]
    assert first["predict_on_batch_shape"] == [8, 4]  # each process gets its own 8 rows back


def _same_error(found, attempt, kind):
    first, second = (run[attempt] for run in found)
    assert first == second, (first, second)
    assert first.startswith(f"{kind}: ")
    assert first.endswith("Every process raises this error, so that none waits for the others; nothing "
                          "was changed in any process.")
    return first


def test_loading_into_a_model_that_does_not_fit_in_one_process_raises_in_both(found):
    message = _same_error(found, "load_weights_into_other_model", "WeightMismatchError")
    assert "good.safetensors' failed in process 1; it went through in process 0:" in message
    assert "'hidden/kernel': the model has shape (8, 8), the file (8, 16)" in message
    assert all(run["unchanged_after_refused_load"] for run in found)


def test_a_file_missing_in_one_process_raises_in_both(found):
    message = _same_error(found, "load_weights_missing_file", "FileNotFoundError")
    assert "failed in process 1; it went through in process 0: [Errno 2] No such file" in message
    assert "absent.safetensors" in message


def test_load_model_of_a_file_without_config_in_one_process_raises_in_both(found):
    message = _same_error(found, "load_model_of_weights_only", "FileFormatError")
    assert message.startswith("FileFormatError: lm.load_model(") and "holds no model config" in message


def test_a_backup_found_in_one_process_only_is_restored_in_neither(found):
    message = _same_error(found, "restore_backup_in_one_process", "ValueError")
    assert "restoring would differ between the processes of this run: process 1 has the latest backup 'ckpt-" in message
    assert "where process 0 has None" in message


def test_matching_loads_agree(found):
    first, second = found
    assert first["loaded_kernel_sum"] == second["loaded_kernel_sum"]
