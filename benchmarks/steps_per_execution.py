"""Is ``fit``'s default ``steps_per_execution="auto"`` ever the slow choice?

Issue 10, item 1: the Keras MNIST convnet's default ``fit`` was 13x slower than its one-step
form, because XLA:CPU runs a convolution's gradient far slower inside a scanned block. "auto"
now times both forms on the first training steps and keeps the faster one. This script checks
the result where it matters, on four model kinds (a small MLP, the MNIST convnet, an LSTM, a
Transformer block) at two epoch lengths each, timing in the same run, interleaved:

- ``auto``: the default, a fresh model whose first ``fit`` call measures and decides;
- ``spe=1``: one step per compiled call;
- ``scan``: blocks of steps (the block the old "auto" picked: an epoch in about sixteen
  calls, at least two steps);
- Keras 3 on JAX with its defaults, for the convnet (target: lamina's default >= 2x Keras).

Every timed call is a whole ``fit(..., epochs=1)``. Target: ``auto`` >= 0.97x the faster of
``spe=1`` and ``scan`` on each case. The first ``fit`` call (compilation, and for ``auto`` the
measurement) is reported separately.

    python benchmarks/steps_per_execution.py             # about 10 minutes on 2 cores
    python benchmarks/steps_per_execution.py --quick     # a couple of minutes
    python benchmarks/steps_per_execution.py --markdown  # also the table as Markdown

The scanned convnet is so slow on CPU that it is timed for one round only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

import lamina as lm  # noqa: E402
from lamina.trainers.auto_block import CALLS_PER_EPOCH, divisor_block  # noqa: E402

try:
    import report  # noqa: E402  (run as a script from the repo root or benchmarks/)
except ImportError:  # pragma: no cover - run as a module
    from benchmarks import report  # noqa: E402

HEADER = ("model", "steps/epoch", "batch", "auto ms", "spe=1 ms", "scan ms", "scan block", "auto picked",
          "auto / best", "target", "", "keras ms", "auto / keras", "1st fit s: auto", "spe=1", "scan")


def _mlp(api):
    return api.Sequential([api.Input((64,)), api.layers.Dense(64, activation="relu"), api.layers.Dense(10)])


def _convnet(api):
    layers = api.layers
    return api.Sequential([
        api.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
        layers.Dropout(0.5), layers.Dense(10, activation="softmax"),
    ])


def _lstm(api):
    return api.Sequential([api.Input((50,), dtype="int32"), api.layers.Embedding(1000, 32),
                           api.layers.LSTM(64), api.layers.Dense(2)])


def _transformer(api):
    layers = api.layers
    inputs = api.Input((32, 32))
    attended = layers.MultiHeadAttention(num_heads=2, key_dim=16)(inputs, inputs)
    h = layers.LayerNormalization()(layers.Add()([inputs, attended]))
    ff = layers.Dense(32)(layers.Dense(64, activation="relu")(h))
    h = layers.LayerNormalization()(layers.Add()([h, ff]))
    return api.Model(inputs, layers.Dense(2)(layers.GlobalAveragePooling1D()(h)))


def _data(kind, n, rng):
    if kind == "lstm":
        return rng.integers(0, 1000, size=(n, 50)).astype("int32"), rng.integers(0, 2, n)
    shape = {"mlp": (64,), "convnet": (28, 28, 1), "transformer": (32, 32)}[kind]
    classes = 10 if kind in ("mlp", "convnet") else 2
    return rng.random((n, *shape), dtype=np.float32), rng.integers(0, classes, n)


# (kind, batch, epoch lengths in steps); the convnet's and the LSTM's steps take milliseconds.
CASES = [("mlp", 32, (40, 400)), ("convnet", 128, (8, 32)), ("lstm", 128, (8, 32)), ("transformer", 64, (16, 128))]
BUILDERS = {"mlp": _mlp, "convnet": _convnet, "lstm": _lstm, "transformer": _transformer}


def _compiled(api, kind, **compile_kwargs):
    model = BUILDERS[kind](api)
    from_logits = kind != "convnet"
    model.compile(api.optimizers.Adam(1e-3), api.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
                  metrics=["accuracy"], **compile_kwargs)
    return model


def _fit_seconds(model, x, y, batch):
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    return time.perf_counter() - start


def run_case(kind, batch, steps, rounds, keras):
    x, y = _data(kind, steps * batch, np.random.default_rng(0))
    scan_block = divisor_block(steps, max(2, steps // CALLS_PER_EPOCH))
    contenders = {"auto": _compiled(lm, kind), "spe=1": _compiled(lm, kind, steps_per_execution=1),
                  "scan": _compiled(lm, kind, steps_per_execution=scan_block)}
    if keras is not None and kind == "convnet":
        contenders["keras"] = _compiled(keras, kind)
    first = {name: _fit_seconds(model, x, y, batch) for name, model in contenders.items()}
    times = {name: [] for name in contenders}
    for index in range(rounds):
        for name, model in contenders.items():
            if name == "scan" and kind == "convnet" and index:
                continue  # one round is enough to see it (and costs tens of seconds)
            times[name].append(_fit_seconds(model, x, y, batch))
    med = {name: statistics.median(values) for name, values in times.items()}
    (chooser,) = contenders["auto"]._lm_auto_blocks.values()
    best = min(med["spe=1"], med["scan"])
    ratio = best / med["auto"]  # > 1: auto faster than the best fixed choice
    row = [kind, steps, batch, f"{1e3 * med['auto']:.1f}", f"{1e3 * med['spe=1']:.1f}", f"{1e3 * med['scan']:.1f}",
           scan_block, f"{chooser.block} ({chooser.phase})", f"{ratio:.2f}x", ">= 0.97x",
           "meets" if ratio >= 0.97 else "misses"]
    if "keras" in med:
        row += [f"{1e3 * med['keras']:.1f}", f"{med['keras'] / med['auto']:.2f}x"]
    else:
        row += ["-", "-"]
    row += [f"{first['auto']:.2f}", f"{first['spe=1']:.2f}", f"{first['scan']:.2f}"]
    return [str(cell) for cell in row]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="three rounds, the shorter epochs only")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument("--models", default=",".join(BUILDERS), help="comma-separated subset of " + ", ".join(BUILDERS))
    args = parser.parse_args()
    try:
        import keras
    except ImportError:  # Keras is a dev extra, not a dependency
        keras = None
    rounds = 3 if args.quick else 7
    rows = []
    for kind, batch, lengths in [case for case in CASES if case[0] in args.models.split(",")]:
        for steps in lengths[:1] if args.quick else lengths:
            rows.append(run_case(kind, batch, steps, rounds, keras))
            print(" | ".join(str(cell) for cell in rows[-1]), flush=True)
    report.print_table("fit with steps_per_execution='auto' vs fixed choices (medians of whole epochs)",
                       HEADER, rows, right_aligned=range(1, len(HEADER)), width=220)
    if args.markdown:
        report.print_markdown(HEADER, rows)


if __name__ == "__main__":
    main()
