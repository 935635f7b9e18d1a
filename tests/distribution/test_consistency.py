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
