"""Time to the first training step in a fresh process (issue 10 item 5).

The MLP 784-512-512-10 (Adam, sparse categorical cross-entropy on logits, accuracy), one batch
of 128 rows. Each measurement is a fresh Python process, so that nothing compiled earlier is reused
except what a persistent compilation cache holds. Cases, interleaved repeat by repeat:

- ``lamina cold``: lamina with an empty compilation cache (a new folder per run): what a user
  pays the very first time;
- ``lamina warm``: lamina with the cache a previous run filled (its default set-up: every later
  process of the same program);
- ``lamina off``: lamina with ``LAMINA_COMPILATION_CACHE=0``;
- ``keras``: Keras 3 on JAX, ``model.fit`` on the same batch (Keras sets no cache);
- ``hand``: a hand-written ``jax.jit`` + optax step (first call: trace, compile, run).

Printed per case: the median time of the first ``fit`` call (for ``hand``, the first step call),
and of the whole process from before ``import`` to the end of that call; then the ratios
against Keras (< 1: faster than Keras).

    python benchmarks/first_step.py              # 5 repeats, a few minutes on 2 cores
    python benchmarks/first_step.py --quick      # 2 repeats
    python benchmarks/first_step.py --markdown   # also the table as Markdown, for RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

try:
    import report  # noqa: E402  (run as a script from the repo root or benchmarks/)
except ImportError:  # pragma: no cover - run as a module
    from benchmarks import report  # noqa: E402

DATA = """
import numpy as np
x = np.random.default_rng(0).normal(size=(128, 784)).astype("float32")
y = np.random.default_rng(1).integers(0, 10, 128).astype("int32")
"""

LAMINA = DATA + """
import lamina as lm
model = lm.Sequential([lm.Input((784,)), lm.layers.Dense(512, activation="relu"),
                       lm.layers.Dense(512, activation="relu"), lm.layers.Dense(10)])
model.compile("adam", lm.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
start = time.perf_counter()
model.fit(x, y, batch_size=128, epochs=1, verbose=0)
"""

KERAS = DATA + """
import keras
model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(512, activation="relu"),
                          keras.layers.Dense(512, activation="relu"), keras.layers.Dense(10)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
start = time.perf_counter()
model.fit(x, y, batch_size=128, epochs=1, verbose=0)
"""

HAND = DATA + """
import jax, jax.numpy as jnp, optax
def dense(key, n_in, n_out):
    limit = (6 / (n_in + n_out)) ** 0.5
    return jax.random.uniform(key, (n_in, n_out), minval=-limit, maxval=limit), jnp.zeros(n_out)
keys = jax.random.split(jax.random.key(0), 3)
params = [dense(keys[0], 784, 512), dense(keys[1], 512, 512), dense(keys[2], 512, 10)]
optimizer = optax.adam(1e-3)
opt_state = optimizer.init(params)

def loss_fn(params, x, y):
    h = x
    for i, (k, b) in enumerate(params):
        h = h @ k + b
        if i < 2:
            h = jax.nn.relu(h)
    loss = optax.softmax_cross_entropy_with_integer_labels(h, y).mean()
    return loss, jnp.mean(jnp.argmax(h, -1) == y)

@jax.jit
def step(params, opt_state, x, y):
    (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, acc

start = time.perf_counter()
params, opt_state, loss, acc = step(params, opt_state, jnp.asarray(x), jnp.asarray(y))
jax.block_until_ready((params, loss, acc))
"""

WRAPPER = """
import time
process_start = time.perf_counter()
import json, os
os.environ.setdefault("JAX_PLATFORMS", "cpu")
{body}
end = time.perf_counter()
print("RESULT " + json.dumps({{"first_call": end - start, "process": end - process_start}}))
"""

CASES = ("lamina cold", "lamina warm", "lamina off", "keras", "hand")
HEADER = ("case", "first fit call s", "process s", "first call / keras", "process / keras")


def run_case(case: str, warm_dir: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAMINA_COMPILATION_CACHE", "JAX_COMPILATION_CACHE"))}
    env["JAX_PLATFORMS"] = env.get("JAX_PLATFORMS", "cpu")
    env["KERAS_BACKEND"] = "jax"
    body = {"keras": KERAS, "hand": HAND}.get(case, LAMINA)
    with tempfile.TemporaryDirectory(prefix="lamina-cold-") as cold:
        if case == "lamina cold":
            env["LAMINA_COMPILATION_CACHE"] = cold
        elif case == "lamina warm":
            env["LAMINA_COMPILATION_CACHE"] = warm_dir
        elif case == "lamina off":
            env["LAMINA_COMPILATION_CACHE"] = "0"
        code = WRAPPER.format(body=textwrap.indent(textwrap.dedent(body), ""))
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{done.stderr[-3000:]}")
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    results = {case: [] for case in CASES}
    with tempfile.TemporaryDirectory(prefix="lamina-warm-") as warm_dir:
        run_case("lamina warm", warm_dir)  # fills the warm cache; not counted
        for repeat in range(repeats):
            for case in CASES:
                results[case].append(run_case(case, warm_dir))
            print(f"repeat {repeat + 1}/{repeats}: " + ", ".join(
                f"{case} {results[case][-1]['first_call']:.3f}s" for case in CASES), flush=True)
    keras_first = statistics.median(r["first_call"] for r in results["keras"])
    keras_process = statistics.median(r["process"] for r in results["keras"])
    rows = []
    for case in CASES:
        first = statistics.median(r["first_call"] for r in results[case])
        process = statistics.median(r["process"] for r in results[case])
        rows.append((case, f"{first:.3f}", f"{process:.3f}", f"{first / keras_first:.2f}", f"{process / keras_process:.2f}"))
    title = (f"First fit step in a fresh process: MLP 784-512-512-10, Adam, one batch of 128, {repeats} repeats "
             f"(medians); load average {os.getloadavg()[0]:.1f}")
    report.print_table(title, HEADER, rows, right_aligned=HEADER[1:])
    if args.markdown:
        report.print_markdown(HEADER, rows)


if __name__ == "__main__":
    main()
