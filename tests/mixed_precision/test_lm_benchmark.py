"""benchmarks/lm.py at its tiny size: it runs, the three contenders train the same network
(the same first losses from the same weights and batches), and nothing compiles while timed."""

import sys
from pathlib import Path

import lamina as lm

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))


def test_tiny_lm_benchmark_runs_and_contenders_agree(capsys):
    import lm as lm_benchmark  # benchmarks/lm.py

    # One block and no scan contender: compiling the train steps is most of the test's time.
    result = lm_benchmark.main(["--size", "tiny", "--depth", "1", "--steps", "2", "--scan", "0",
                                "--repeats", "1", "--warmup", "0"])
    printed = capsys.readouterr().out
    assert "MFU" in printed and "n/a" in printed  # no peak FLOP/s known for the CPU
    assert [row.contender for row in result["rows"]] == ["lamina fit", "hand step"]
    assert all(row.ms > 0 for row in result["rows"])
    assert result["compilations"] == 0
    losses = result["first_losses"]
    # Random tokens over 256 ids: every loss starts near log(256) = 5.55.
    assert abs(losses["lamina fit"] - losses["hand step"]) < 0.02
    assert lm.mixed_precision.dtype_policy().name == "float32"  # the benchmark restored it
