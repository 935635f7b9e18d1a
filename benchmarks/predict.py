"""How fast is ``model.predict`` against a hand-written ``jax.jit`` loop on the same model?

The model is the MLP 784-512-512-10 of issue 10 (item 4); the data are NumPy rows, as a user
passes them. Each case times, interleaved in the same run, lamina's ``predict`` with its
defaults and a hand-written loop (one ``jax.jit`` of the forward pass over slices of the array,
outputs gathered with one ``device_get`` at the end). Row counts that are not a multiple of
the batch size exercise ``predict``'s last batch, which gets its own program (the first
partial batch at a batch size does; later ones are padded to it or to a whole batch). Batches
of 1 MiB or more (512 rows and up here) are staged in reused buffers on the CPU backend
(lamina/data/staging.py); the cases cover both sides of that line. The compilations of each
side's first two calls are counted; each case is a new model, called repeatedly on data of one
size.

    python benchmarks/predict.py              # a few minutes on 2 cores
    python benchmarks/predict.py --quick      # well under a minute
    python benchmarks/predict.py --markdown   # also the table as Markdown, for RESULTS.md
    python benchmarks/predict.py --case 60000x1024 --repeats 101   # one case, finely

Quote medians and the median of pairwise ratios (hand time / lamina time, > 1: lamina faster),
with its 95% bootstrap interval.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import lamina as lm  # noqa: E402

try:
    import report  # noqa: E402  (run as a script from the repo root or benchmarks/)
except ImportError:  # pragma: no cover - run as a module
    from benchmarks import report  # noqa: E402

HEADER = ("rows", "batch", "lamina ms", "hand ms", "hand / lamina", "95% interval", "rows/s lamina",
          "compiles, calls 1 and 2: lamina", "hand")


def build_model():
    return lm.Sequential([lm.Input((784,)), lm.layers.Dense(512, activation="relu"),
                          lm.layers.Dense(512, activation="relu"), lm.layers.Dense(10)])


def hand_predictor(model):
    """The same forward pass, written by hand: one jax.jit, slices in, one transfer out."""
    params = [jax.numpy.asarray(w) for w in model.get_weights()]

    @jax.jit
    def forward(p, x):
        k1, b1, k2, b2, k3, b3 = p
        h = jax.nn.relu(x @ k1 + b1)
        h = jax.nn.relu(h @ k2 + b2)
        return h @ k3 + b3

    def predict(x, batch):
        return np.concatenate(jax.device_get([forward(params, x[i:i + batch]) for i in range(0, len(x), batch)]))

    return predict


class CompileCounter:
    """Counts XLA compilations (JAX's monitoring events) between ``start`` and ``stop``."""

    def __init__(self):
        self.count, self.active = 0, False
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kwargs):
        if self.active and event.endswith("backend_compile_duration"):
            self.count += 1

    def measure(self, fn):
        self.active, before = True, self.count
        try:
            fn()
        finally:
            self.active = False
        return self.count - before


def run_case(model, hand, counter, rows, batch, repeats):
    x = np.random.default_rng(rows).normal(size=(rows, 784)).astype("float32")
    ours = lambda: model.predict(x, batch_size=batch, verbose=0)  # noqa: E731
    theirs = lambda: hand(x, batch)  # noqa: E731
    compiles_ours, compiles_hand = counter.measure(ours), counter.measure(theirs)  # warm-up
    second_ours, second_hand = counter.measure(ours), counter.measure(theirs)
    np.testing.assert_allclose(ours(), theirs(), rtol=1e-4, atol=1e-4)
    times, ratios = interleaved_times(ours, theirs, repeats)
    low, high = median_interval(ratios)
    lamina_s, hand_s = statistics.median(times["lamina"]), statistics.median(times["hand"])
    return (f"{rows:,}", str(batch), f"{lamina_s * 1e3:.1f}", f"{hand_s * 1e3:.1f}",
            f"{statistics.median(ratios):.3f}x", f"{low:.3f}-{high:.3f}", f"{rows / lamina_s:,.0f}",
            f"{compiles_ours}, {second_ours}", f"{compiles_hand}, {second_hand}")


def interleaved_times(ours, theirs, repeats):
    """``repeats`` timed pairs of calls: ``({"lamina": [s...], "hand": [s...]}, [hand / lamina])``.
    Which side runs first alternates: the second of a pair finds warmer caches."""
    times = {"lamina": [], "hand": []}
    for repeat in range(repeats):
        pair = (("lamina", ours), ("hand", theirs))
        for name, fn in pair if repeat % 2 else pair[::-1]:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times, [h / o for h, o in zip(times["hand"], times["lamina"])]


def median_interval(values, draws=2000):
    """A 95% bootstrap interval of the median: how far noise alone moves it on this machine
    (pairs differ by a few percent from run to run on 2 shared cores)."""
    rng = np.random.default_rng(0)
    medians = np.sort(np.median(rng.choice(values, (draws, len(values))), axis=1))
    return medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and repeats")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument("--repeats", type=int, help="interleaved pairs per case (default 12, --quick 4)")
    parser.add_argument("--case", action="append", metavar="ROWSxBATCH",
                        help="only this case, e.g. 60000x1024 (repeatable)")
    args = parser.parse_args()
    # Batches of 1 MiB or more are staged (lamina/data/staging.py), smaller ones streamed:
    # both sides of that line, at the size and at short inputs.
    cases = [(60_000, 1024), (60_000, 2048), (60_000, 512), (60_000, 256), (10_007, 1024), (10_007, 128), (3_001, 32)]
    if args.quick:
        cases = [(12_000, 1024), (3_001, 128)]
    if args.case:
        cases = [tuple(int(part) for part in case.split("x")) for case in args.case]
    repeats = args.repeats or (4 if args.quick else 12)
    counter = CompileCounter()
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    cells = []
    for rows, batch in cases:  # a new model each: a user predicting on data of one size
        model = build_model()
        cells.append(run_case(model, hand_predictor(model), counter, rows, batch, repeats))
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    right = set(HEADER)
    report.print_table("predict: lamina vs a hand-written jax.jit loop (MLP 784-512-512-10)", HEADER, cells, right)
    if args.markdown:
        report.print_markdown(HEADER, cells)


if __name__ == "__main__":
    main()
