"""How fast does an exported model serve, against lamina's own ``predict``?

The digits MLP of examples/digits.py (64-128-64-10, Dropout) is exported to ONNX and StableHLO;
each case times, interleaved in the same run, ``model.predict`` (batch size = the rows), the
ONNX file in onnxruntime (CPU), the reloaded StableHLO function (``lm.export.load_stablehlo``)
and a hand-written ``jax.jit`` of the forward pass, on the same NumPy rows, at 1 and 256 rows.

    python benchmarks/export.py              # about a minute on 2 cores
    python benchmarks/export.py --quick      # a few seconds
    python benchmarks/export.py --markdown   # also the table as Markdown, for RESULTS.md

Medians, and medians of pairwise ratios against ``predict`` (> 1: faster than predict).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import lamina as lm  # noqa: E402

try:
    import report  # noqa: E402  (run as a script from the repo root or benchmarks/)
except ImportError:  # pragma: no cover - run as a module
    from benchmarks import report  # noqa: E402

# "x" columns: predict's time over the other's (pairwise medians; > 1: faster than predict).
HEADER = ("rows", "predict ms", "ORT ms", "StableHLO ms", "jit ms", "ORT x", "StableHLO x", "jit x")


def build_model():
    return lm.Sequential([lm.Input((64,)), lm.layers.Dense(128, activation="relu"), lm.layers.Dropout(0.2),
                          lm.layers.Dense(64, activation="relu"), lm.layers.Dense(10)])


def hand_forward(model):
    k1, b1, k2, b2, k3, b3 = [jax.numpy.asarray(w) for w in model.get_weights()]
    forward = jax.jit(lambda x: jax.nn.relu(jax.nn.relu(x @ k1 + b1) @ k2 + b2) @ k3 + b3)
    return lambda x: np.asarray(forward(x))


def run_case(runners, rows, repeats):
    x = np.random.default_rng(rows).normal(size=(rows, 64)).astype("float32")
    reference = runners["predict"](x)
    for fn in runners.values():  # warm-up (compiles) and agreement
        np.testing.assert_allclose(fn(x), reference, rtol=1e-5, atol=1e-5)
    times = {name: [] for name in runners}
    for _ in range(repeats):
        for name, fn in runners.items():
            start = time.perf_counter()
            fn(x)
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) for name, t in times.items()}
    ratio = {name: statistics.median(p / o for p, o in zip(times["predict"], t)) for name, t in times.items()}
    return (str(rows), *(f"{med[n] * 1e3:.3f}" for n in ("predict", "onnxruntime", "stablehlo", "hand")),
            *(f"{ratio[n]:.2f}x" for n in ("onnxruntime", "stablehlo", "hand")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args()
    import onnxruntime

    model = build_model()
    folder = tempfile.mkdtemp()
    model.export(os.path.join(folder, "digits.onnx"), format="onnx", verbose=False)
    model.export(os.path.join(folder, "digits.stablehlo"), format="stablehlo", verbose=False)
    session = onnxruntime.InferenceSession(os.path.join(folder, "digits.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    served = lm.export.load_stablehlo(os.path.join(folder, "digits.stablehlo"))
    runners = {
        "predict": lambda x: model.predict(x, batch_size=len(x), verbose=0),
        "onnxruntime": lambda x: session.run(None, {name: x})[0],
        "stablehlo": lambda x: np.asarray(served(x)),
        "hand": hand_forward(model),
    }
    repeats = 20 if args.quick else 300
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    cells = [run_case(runners, rows, repeats) for rows in (1, 256)]
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    report.print_table("Serving the digits MLP: predict vs exported ONNX / StableHLO (CPU)", HEADER, cells, set(HEADER))
    if args.markdown:
        report.print_markdown(HEADER, cells)


if __name__ == "__main__":
    main()
