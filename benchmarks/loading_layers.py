"""How long do building and loading a very long Sequential take? (issue 10, item 13)

A ``Sequential([lm.Input((4,))] + [layer() for _ in range(n)])`` of ``Activation("linear")``
or ``Dense(4)`` layers: the time to build it (the constructor, given the whole stack: shapes,
weights with their initializers) and the time ``lm.load_model`` takes on the file it saves,
for several ``n``, printing the per-layer cost. The target is absolute (15,000 layers load in
under 2 s), so there is no hand-written JAX loop to compare with: a hand-written program has
no layers to rebuild.

Method. Each measurement runs in a fresh Python process (imports excluded; the model is
built, saved, then loaded and timed), so that no cache of an earlier measurement helps and
the garbage collector sees what a user's process sees. Measurements are interleaved: every
repeat runs each (kind, n) once, in rotating order, and with ``--baseline PATH`` (another
lamina checkout, e.g. ``git worktree add /tmp/old <commit>``) that checkout's run of the same
case right next to it; medians over the repeats, and "baseline / this" is the median of the
per-repeat ratios (both runs of a repeat saw the same load).

    python benchmarks/loading_layers.py                      # 1,000 / 5,000 / 15,000 layers, 3 repeats
    python benchmarks/loading_layers.py --quick              # 2,000 layers, 1 repeat
    python benchmarks/loading_layers.py --baseline /tmp/old  # against another checkout
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = r"""
import json, os, sys, tempfile, time
os.environ.setdefault("JAX_PLATFORMS", "cpu")
import lamina as lm
n, kind = int(sys.argv[1]), sys.argv[2]
make = (lambda: lm.layers.Activation("linear")) if kind == "Activation" else (lambda: lm.layers.Dense(4))
layers = [make() for _ in range(n)]
start = time.perf_counter()
model = lm.Sequential([lm.Input((4,))] + layers)
build = time.perf_counter() - start
path = os.path.join(tempfile.mkdtemp(), "m.lamina")
model.save(path)
start = time.perf_counter()
loaded = lm.load_model(path)
load = time.perf_counter() - start
assert len(loaded.layers) == n
os.remove(path)
print(json.dumps({"build": build, "load": load}))
"""


def _run(n: int, kind: str, checkout: str) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": checkout}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(n), kind], capture_output=True, text=True,
                          env=env, cwd=checkout, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} x {n} in {checkout} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="1000,5000,15000", help="layer counts, comma-separated")
    parser.add_argument("--kinds", default="Activation,Dense")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", help="another lamina checkout, run interleaved with this one")
    parser.add_argument("--quick", action="store_true", help="2,000 layers, one repeat")
    args = parser.parse_args()
    counts = [2000] if args.quick else [int(c) for c in args.counts.split(",")]
    repeats = 1 if args.quick else args.repeats
    cases = [(kind, n) for kind in args.kinds.split(",") for n in counts]
    sides = [("this", _ROOT)] + ([("baseline", os.path.abspath(args.baseline))] if args.baseline else [])
    results = {(side, case): [] for side, _ in sides for case in cases}
    for repeat in range(repeats):
        shift = repeat % len(cases)
        for kind, n in cases[shift:] + cases[:shift]:
            order = sides if repeat % 2 == 0 else sides[::-1]
            for side, checkout in order:
                results[(side, (kind, n))].append(_run(n, kind, checkout))
                print(f"  repeat {repeat + 1}: {side:8s} {kind:10s} {n:6d} {results[(side, (kind, n))][-1]}",
                      file=sys.stderr, flush=True)

    print(f"{'kind':10s} {'layers':>7s} {'':8s} {'build s':>8s} {'load s':>8s} {'build us/layer':>15s} "
          f"{'load us/layer':>14s}")
    for kind, n in cases:
        for side, _ in sides:
            runs = results[(side, (kind, n))]
            build = statistics.median(r["build"] for r in runs)
            load = statistics.median(r["load"] for r in runs)
            print(f"{kind:10s} {n:7d} {side:8s} {build:8.2f} {load:8.2f} {build / n * 1e6:15.0f} {load / n * 1e6:14.0f}")
        if args.baseline:
            mine, theirs = results[("this", (kind, n))], results[("baseline", (kind, n))]
            ratio = {what: statistics.median(b[what] / a[what] for a, b in zip(mine, theirs)) for what in ("build", "load")}
            print(f"{'':10s} {'':7s} {'ratio':8s} {ratio['build']:7.2f}x {ratio['load']:7.2f}x   (baseline / this)")
    target = [statistics.median(r["load"] for r in results[("this", (kind, n))]) for kind, n in cases if n == 15000]
    if target:
        print(f"target: 15,000 layers load in under 2 s: {'met' if max(target) < 2 else 'NOT met'} "
              f"(slowest kind {max(target):.2f} s)")


if __name__ == "__main__":
    main()
