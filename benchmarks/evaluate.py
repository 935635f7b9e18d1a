"""How fast is ``model.evaluate`` against a hand-written ``jax.jit`` loop on the same model,
and how many programs do input sizes cost?

The model is predict.py's MLP 784-512-512-10 (issue 10 item 4), compiled with sparse
categorical cross-entropy and accuracy; the data are NumPy rows and integer labels. Each case
times, interleaved in the same run, lamina's ``evaluate`` with its defaults and a hand-written
loop: one ``jax.jit`` computing a batch's summed loss and correct count, the last batch at its
own size, the totals divided at the end. Row counts that are not a multiple of the batch size
exercise ``evaluate``'s last batch, which lamina pads to a whole batch and runs with a second
program that leaves the padding out (so it computes up to one batch of extra rows); the hand
loop compiles a program for each last-batch size instead. The last table counts the step
programs each side compiles for ten input sizes at one batch size.

    python benchmarks/evaluate.py              # about a minute on 2 cores
    python benchmarks/evaluate.py --markdown   # also the tables as Markdown, for RESULTS.md

Quote medians and the median of pairwise ratios (hand time / lamina time, > 1: lamina faster),
with its 95% bootstrap interval.
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import lamina as lm  # noqa: E402

try:
    import report  # noqa: E402  (run as a script from the repo root or benchmarks/)
    from predict import CompileCounter, build_model, interleaved_times, median_interval  # noqa: E402
except ImportError:  # pragma: no cover - run as a module
    from benchmarks import report  # noqa: E402
    from benchmarks.predict import CompileCounter, build_model, interleaved_times, median_interval  # noqa: E402

HEADER = ("rows", "batch", "lamina ms", "hand ms", "hand / lamina", "95% interval")
SIZES = (1, 5, 16, 17, 23, 40, 61, 77, 90, 131)


def compiled_model():
    model = build_model()
    model.compile("adam", lm.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def hand_evaluator(model):
    """The same evaluation, written by hand: a jitted batch sum, exact batches, one transfer."""
    params = [jnp.asarray(w) for w in model.get_weights()]

    @jax.jit
    def batch_sums(p, x, y):
        k1, b1, k2, b2, k3, b3 = p
        h = jax.nn.relu(x @ k1 + b1)
        h = jax.nn.relu(h @ k2 + b2)
        logits = h @ k3 + b3
        losses = -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1)[:, 0]
        return jnp.sum(losses), jnp.sum(jnp.argmax(logits, axis=1) == y)

    def evaluate(x, y, batch):
        sums = jax.device_get([batch_sums(params, x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)])
        return float(sum(s[0] for s in sums) / len(x)), float(sum(s[1] for s in sums) / len(x))

    return evaluate


def data(rows):
    rng = np.random.default_rng(rows)
    return rng.normal(size=(rows, 784)).astype("float32"), rng.integers(0, 10, rows).astype("int32")


def run_case(rows, batch, repeats):
    model = compiled_model()
    hand = hand_evaluator(model)
    x, y = data(rows)
    ours = lambda: model.evaluate(x, y, batch_size=batch, verbose=0)  # noqa: E731
    theirs = lambda: hand(x, y, batch)  # noqa: E731
    np.testing.assert_allclose(ours(), theirs(), rtol=1e-4)
    times, ratios = interleaved_times(ours, theirs, repeats)
    low, high = median_interval(ratios)
    return (f"{rows:,}", str(batch), f"{statistics.median(times['lamina']) * 1e3:.1f}",
            f"{statistics.median(times['hand']) * 1e3:.1f}", f"{statistics.median(ratios):.3f}x", f"{low:.3f}-{high:.3f}")


def count_programs(counter, batch=16):
    """Programs compiled by evaluating ten input sizes, after a first call that compiled the
    whole-batch step (both sides)."""
    model = compiled_model()
    hand = hand_evaluator(model)
    x, y = data(max(SIZES))
    model.evaluate(x[:batch], y[:batch], batch_size=batch, verbose=0)
    hand(x[:batch], y[:batch], batch)
    ours = counter.measure(lambda: [model.evaluate(x[:n], y[:n], batch_size=batch, verbose=0) for n in SIZES])
    theirs = counter.measure(lambda: [hand(x[:n], y[:n], batch) for n in SIZES])
    return (f"{len(SIZES)} sizes {SIZES[0]}..{SIZES[-1]}", str(batch), str(ours), str(theirs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="also print the tables as Markdown")
    parser.add_argument("--repeats", type=int, default=12, help="interleaved pairs per case")
    args = parser.parse_args()
    counter = CompileCounter()
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    cells = [run_case(rows, batch, args.repeats) for rows, batch in
             [(60_000, 1024), (59_392, 1024), (10_007, 128), (3_001, 32)]]
    programs = [count_programs(counter)]
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    report.print_table("evaluate: lamina vs a hand-written jax.jit loop (MLP 784-512-512-10)", HEADER, cells, set(HEADER))
    counts = ("input sizes", "batch", "lamina programs", "hand programs")
    report.print_table("programs compiled for new input sizes", counts, programs, set(counts))
    if args.markdown:
        report.print_markdown(HEADER, cells)
        report.print_markdown(counts, programs)


if __name__ == "__main__":
    main()
