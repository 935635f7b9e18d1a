"""The examples run and show what they promise: the seed guide's printed results, and a
digits classifier that learns."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name):
    """Import ``examples/<name>.py`` as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"lamina_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def seed_guide_output(capsys):
    """What ``examples/seed_guide.main()`` prints, split into lines."""
    module = load_example("seed_guide")
    module.main()
    return capsys.readouterr().out.splitlines()


def printed_matrices(lines):
    """The 2-D arrays printed as ``[[a b ...]\\n [c d ...]]`` blocks, parsed back to NumPy."""
    matrices, rows = [], None
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[["):
            rows = []
        if rows is not None:
            rows.append([float(v) for v in stripped.strip("[]").split()])
            if stripped.endswith("]]"):
                matrices.append(np.array(rows))
                rows = None
    return matrices


def test_seed_guide_imports_without_side_effects(capsys):
    load_example("seed_guide")
    assert capsys.readouterr().out == ""


def test_seed_guide_linear_layers_give_equal_rows_of_shape_2_4(seed_guide_output):
    matrices = printed_matrices(seed_guide_output)
    assert len(matrices) == 2  # the tf.Variable version and the add_weight version
    for y in matrices:
        assert y.shape == (2, 4)
        np.testing.assert_array_equal(y[0], y[1])  # ones input: every row is the same
        assert np.any(y != 0)  # random_normal kernel, not an all-zero output
    assert seed_guide_output.count("shape: (2, 4) dtype: float32") == 2
    assert "linear_layer.weights == [linear_layer.w, linear_layer.b]" in seed_guide_output


def test_seed_guide_compute_sum(seed_guide_output):
    first = seed_guide_output.index("[2. 2.]")
    assert seed_guide_output[first + 1] == "[4. 4.]"
    assert seed_guide_output[first + 2: first + 5] == [
        "weights: 1",
        "non-trainable weights: 1",
        "trainable_weights: []",
    ]


def test_seed_guide_lazy_build(seed_guide_output):
    assert "built before the first call: False" in seed_guide_output
    assert "built after the first call: True" in seed_guide_output
    assert "w shape: (2, 32) b shape: (32,) y shape: (2, 32)" in seed_guide_output


def test_seed_guide_mlp_block(seed_guide_output):
    first = seed_guide_output.index("weights: 6")
    assert seed_guide_output[first + 1] == "trainable weights: 6"
    assert seed_guide_output[first + 2] == "y shape: (3, 1)"


def test_seed_guide_add_loss(seed_guide_output):
    losses = {
        line.split(":", 1)[0]: line.split(":", 1)[1].strip()
        for line in seed_guide_output if "losses" in line
    }
    assert losses["layer.losses"] == "[0.04]"  # 1e-2 * sum(ones((2, 2)))
    assert losses["outer.losses before any call"] == "[]"
    assert losses["outer.losses after one call"] == "[0.01]"
    # Reset at each call: one value, the second call's (1e-2 * 2.0), not both.
    assert losses["outer.losses after a second call"] == "[0.02]"


def test_digits_custom_loop_learns_and_reports_each_epoch(capsys):
    digits = load_example("digits_custom_loop")
    accuracy = digits.main(epochs=3, verbose=True, seed=0)
    # Chance is 10%; 3 epochs reach about 96% (95.6% at worst over seeds 0-9).
    assert accuracy >= 0.85
    out = capsys.readouterr().out
    losses = [float(m) for m in re.findall(r"epoch +\d+/3 +loss (\d+\.\d+)", out)]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert f"test accuracy {accuracy:.2%}" in out


def test_digits_demo_trains_with_fit_and_prints_a_progress_bar(capsys):
    digits = load_example("digits")
    accuracy = digits.main(epochs=4, seed=0, verbose=1)
    assert accuracy >= 0.9  # chance is 10%; 4 epochs reach ~95%, the full demo 96-99%
    out = capsys.readouterr().out
    assert "Epoch 4/4" in out and "val_accuracy" in out and "step - " in out
    assert f"held-out accuracy: {accuracy:.2%}" in out
    assert f"reloaded, it scores {accuracy:.2%}" in out
