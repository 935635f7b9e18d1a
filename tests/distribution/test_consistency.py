"""The program fingerprint of lamina/distribution/consistency.py in one process: nothing is
compared there, and the message that several processes raise names each difference (the
two-process runs are in test_program_mismatch.py)."""

import numpy as np

import lamina as lm
from lamina.distribution import consistency


def _variables(*entries):
    """A fingerprint's variable fact from ``(path, shape, layout)`` entries."""
    return ("variables", [[list(shape), "float32", layout] for _, shape, layout in entries],
            [path for path, _, _ in entries])


def test_one_process_compares_nothing_and_leaves_no_check_pending():
    model = lm.Sequential([lm.layers.Dense(2)])  # not built: several processes would check its first batch
    model.compile("sgd", "mse")
    with lm.distribution.DataParallel().scope():
        assert not consistency.active()
        consistency.check_loop(model, "fit", {"epochs": 1})
    assert consistency.first_step_check(model) is None
    model.fit(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"), verbose=0)  # the loops run as before


def test_generated_names_are_matched_and_each_process_path_is_named():
    ours = [("loop", "fit", None), _variables(("hidden/kernel", (8, 16), "replicated"),
                                              ("hidden/bias", (16,), "replicated"))]
    theirs = [("loop", "fit", None), _variables(("hidden_1/kernel", (8, 8), "replicated"),
                                                ("hidden_1/bias", (16,), "replicated"),
                                                ("out/kernel", (16, 4), "split ('batch', None)"))]
    message = consistency._message("fit()", [ours, theirs], "Fix it.")
    assert message.startswith("fit() would run a different program in each process")
    assert "process 1's model has 3 variables where process 0's has 2" in message
    assert "process 1's model has variable 'hidden_1/kernel' of shape (8, 8) where process 0's has (8, 16)" in message
    assert "variable 'out/kernel' (shape (16, 4) float32 split ('batch', None)) which process 0's lacks" in message
    assert "hidden_1/bias" not in message  # equal apart from its generated name
    assert message.endswith("Fix it.")


def test_a_layout_difference_is_named_and_other_loops_arguments_are_not_listed():
    ours = [("loop", "fit", None), ("setting:fit:epochs", 2, None),
            _variables(("d/kernel", (4, 4), "replicated"))]
    theirs = [("loop", "fit", None), ("setting:fit:epochs", 2, None),
              _variables(("d/kernel", (4, 4), "split ('batch', None)"))]
    message = consistency._message("fit()", [ours, theirs], "")
    assert "variable 'd/kernel' of shape (4, 4) split ('batch', None) where process 0's has (4, 4) replicated" in message
    evaluating = [("loop", "evaluate", None), ("setting:evaluate:steps", None, None)]
    message = consistency._message("fit()", [ours[:2], evaluating], "")
    assert "process 1 runs evaluate() where process 0 runs fit()" in message and "epochs" not in message


def test_many_differences_are_counted_after_six():
    ours = [(f"setting:fit:a{i}", i, None) for i in range(9)]
    theirs = [(f"setting:fit:a{i}", -i - 1, None) for i in range(9)]
    message = consistency._message("fit()", [ours, theirs], "")
    assert message.count("process 1 calls fit(") == 6 and "and 3 more differences" in message


def test_on_batch_calls_name_the_batch_shapes_that_differ():
    ours = [("loop", "train_on_batch", None), ("setting:train_on_batch:batch", ["(16, 8) float32", "(16,) int64"], None)]
    theirs = [("loop", "train_on_batch", None), ("setting:train_on_batch:batch", ["(16, 6) float32", "(16,) int64"], None)]
    message = consistency._message("train_on_batch()", [ours, theirs], "")
    assert ("process 1 passes train_on_batch() a batch of (16, 6) float32, (16,) int64 where process 0 passes "
            "(16, 8) float32, (16,) int64") in message


def test_a_failure_in_one_process_becomes_the_same_error_of_the_same_class_everywhere():
    from lamina.saving.errors import WeightMismatchError

    ok = {"ok": True, "described": None}
    failed = {"ok": False, "class": "lamina.saving.errors:WeightMismatchError", "message": "w does not fit.",
              "problems": ["'d/kernel': the model has shape (2, 2), the file (3, 2)"]}
    error = consistency._shared_error("loading w", [ok, failed, failed])
    assert type(error) is WeightMismatchError and error.problems == failed["problems"]
    assert str(error).startswith("loading w failed in process 1 (and in process 2); it went through in process 0: "
                                 "w does not fit. Every process raises this error")
    # A class named by another process is only looked up among builtins and lamina's own.
    foreign = dict(failed, **{"class": "os:PathLike", "problems": None})
    assert type(consistency._shared_error("loading w", [foreign, ok])) is RuntimeError
    missing = dict(failed, **{"class": "builtins:FileNotFoundError", "problems": None})
    assert type(consistency._shared_error("loading w", [ok, missing])) is FileNotFoundError


def test_results_that_differ_are_named():
    outcomes = [{"ok": True, "described": {"the latest backup": "ckpt-1"}},
                {"ok": True, "described": {"the latest backup": None}}]
    error = consistency._shared_error("restoring", outcomes)
    assert type(error) is ValueError
    assert "restoring would differ between the processes of this run: process 1 has the latest backup None where " \
           "process 0 has 'ckpt-1'" in str(error)
