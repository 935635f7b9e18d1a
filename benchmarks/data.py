"""Repeated ``fit`` / ``evaluate`` calls on the same arrays, and the memory one ``fit`` takes.

MLP 784-512-512-10 (ReLU), Adam(1e-3), sparse cross-entropy on logits, batch 128, 16,384
synthetic samples (random float32 features, labels from a fixed random linear teacher; the
arrays are placed 16 bytes past a 64-byte boundary, as NumPy's large allocations usually are,
so that XLA:CPU's ``device_put`` copies them instead of using them in place).

Contenders, each a whole ``fit(epochs=1, shuffle=True, verbose=0)`` call on the same NumPy
arrays again and again (then ``evaluate`` calls, batch 128):

- ``lamina``: the default, the device copy made by the first call reused by the next ones;
- ``lamina, no reuse``: ``lm.data.clear_device_cache()`` before each call, i.e. a fresh device
  copy per call, as before the cache (the filed case: 0.94x Keras 3);
- ``lamina, streamed``: ``lm.data.set_device_budget(0)`` during its calls: every batch gathered
  on the host and sent one item ahead;
- ``hand``: a hand-written ``jax.jit`` + optax step loop with the data put on the device once
  (for ``evaluate``: a jitted loss-sum per batch);
- ``keras``: Keras 3 ``fit`` / ``evaluate`` on the JAX backend.

Method: one warm-up call each (compilation), then interleaved repeats with the order rotating;
the table gives each contender's median seconds per call and lamina's speed over it (the
median of the per-repeat ratios). Target: repeated ``fit`` / ``evaluate`` >= 1.1x Keras.

Memory: the peak RSS (``VmHWM``; ``ru_maxrss`` where there is none) of a fresh process that
makes 60,000 x 784 float32 samples (188 MB) and runs one ``fit(epochs=1)`` of the same MLP:
lamina (default), lamina streamed, Keras 3 -- and a process that only makes the data, the
baseline. Each in fresh processes, interleaved, medians.

    python benchmarks/data.py              # about three minutes on 2 busy cores
    python benchmarks/data.py --quick      # about a minute, rougher numbers
    python benchmarks/data.py --markdown   # also print the tables as Markdown
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import report  # noqa: E402  (benchmarks/report.py, beside this script)

import lamina as lm  # noqa: E402

SAMPLES = 16_384
RSS_SAMPLES = 60_000
FEATURES, HIDDEN, CLASSES = 784, 512, 10
BATCH = 128
SEED = 0


def make_data(n: int):
    """Features and teacher labels, made chunk by chunk straight into their final arrays, so
    that making them never needs more memory than the data themselves (the RSS baseline)."""
    rng = np.random.default_rng(SEED)
    teacher = rng.standard_normal((FEATURES, CLASSES), dtype=np.float32)
    x = off_boundary((n, FEATURES), np.float32)
    y = off_boundary((n,), np.int32)
    for start in range(0, n, 4096):
        chunk = rng.standard_normal((min(4096, n - start), FEATURES), dtype=np.float32)
        x[start:start + len(chunk)] = chunk
        y[start:start + len(chunk)] = np.argmax(chunk @ teacher, axis=1)
    return x, y


def off_boundary(shape, dtype) -> np.ndarray:
    """An array 16 bytes past a 64-byte boundary (where malloc'd NumPy data usually sit)."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = np.empty(nbytes + 128, np.uint8)
    start = -buf.ctypes.data % 64 + 16
    return buf[start:start + nbytes].view(dtype).reshape(shape)


def lamina_model():
    lm.random.set_seed(SEED)
    model = lm.Sequential([lm.layers.Dense(HIDDEN, activation="relu", input_shape=(FEATURES,)),
                           lm.layers.Dense(HIDDEN, activation="relu"), lm.layers.Dense(CLASSES)])
    model.compile(optimizer=lm.optimizers.Adam(1e-3), loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def keras_model(weights):
    import keras

    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(HIDDEN, activation="relu"),
                              keras.layers.Dense(HIDDEN, activation="relu"), keras.layers.Dense(CLASSES)])
    if weights is not None:
        model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def forward(params, x):
    *hidden, last = [params[i:i + 2] for i in range(0, len(params), 2)]
    for w, b in hidden:
        x = jax.nn.relu(x @ w + b)
    return x @ last[0] + last[1]


def loss_sum(params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(forward(params, x), y).sum()


class Lamina:
    def __init__(self, x, y, mode):
        self.model, self.x, self.y, self.mode = lamina_model(), x, y, mode

    def _call(self, fn):
        if self.mode == "no reuse":
            lm.data.clear_device_cache()
        if self.mode == "streamed":
            lm.data.set_device_budget(0.0)
        try:
            return fn()
        finally:
            lm.data.set_device_budget(None)

    def fit(self):
        return self._call(lambda: self.model.fit(self.x, self.y, batch_size=BATCH, epochs=1, shuffle=True,
                                                 verbose=0).history["loss"][-1])

    def evaluate(self):
        return self._call(lambda: self.model.evaluate(self.x, self.y, batch_size=BATCH, verbose=0))


class Keras:
    def __init__(self, x, y, weights):
        self.model, self.x, self.y = keras_model(weights), x, y

    def fit(self):
        return float(self.model.fit(self.x, self.y, batch_size=BATCH, epochs=1, shuffle=True,
                                    verbose=0).history["loss"][-1])

    def evaluate(self):
        return float(self.model.evaluate(self.x, self.y, batch_size=BATCH, verbose=0))


class Hand:
    """The expert's loop: data on the device once, one jitted step per batch."""

    def __init__(self, x, y, weights):
        optimizer = optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-7)

        @functools.partial(jax.jit, donate_argnums=(0, 1, 2), static_argnames=("size",))
        def step(params, opt_state, total, x, y, order, start, size):
            idx = jax.lax.dynamic_slice_in_dim(order, start, size)
            loss, grads = jax.value_and_grad(lambda p: loss_sum(p, x[idx], y[idx]) / size)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, total + loss * size

        @functools.partial(jax.jit, donate_argnums=(0,), static_argnames=("size",))
        def eval_step(total, params, x, y, start, size):
            xb = jax.lax.dynamic_slice_in_dim(x, start, size)
            yb = jax.lax.dynamic_slice_in_dim(y, start, size)
            return total + loss_sum(params, xb, yb)

        self.step, self.eval_step = step, eval_step
        self.params = [jnp.array(w) for w in weights]
        self.opt_state = optimizer.init(self.params)
        self.x, self.y = jax.device_put(x), jax.device_put(y)
        self.rng = np.random.default_rng(SEED)

    def fit(self):
        order = jax.device_put(self.rng.permutation(SAMPLES).astype(np.int32))
        full, partial = divmod(SAMPLES, BATCH)
        state = (self.params, self.opt_state, jnp.zeros((), jnp.float32))
        for i in range(full):
            state = self.step(*state, self.x, self.y, order, i * BATCH, size=BATCH)
        if partial:
            state = self.step(*state, self.x, self.y, order, full * BATCH, size=partial)
        self.params, self.opt_state, total = state
        return float(total) / SAMPLES

    def evaluate(self):
        total = jnp.zeros((), jnp.float32)
        full, partial = divmod(SAMPLES, BATCH)
        for i in range(full):
            total = self.eval_step(total, self.params, self.x, self.y, i * BATCH, size=BATCH)
        if partial:
            total = self.eval_step(total, self.params, self.x, self.y, full * BATCH, size=partial)
        return float(total) / SAMPLES


NAMES = ("lamina", "lamina, no reuse", "lamina, streamed", "hand", "keras")


def contenders(x, y):
    weights = [np.asarray(w.value) for w in lamina_model().weights]
    return {
        "lamina": Lamina(x, y, "default"),
        "lamina, no reuse": Lamina(x, y, "no reuse"),
        "lamina, streamed": Lamina(x, y, "streamed"),
        "hand": Hand(x, y, weights),
        "keras": Keras(x, y, weights),
    }


def timed(fn) -> tuple[float, float]:
    """Wall and CPU seconds (this process, all threads) of one call."""
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def measure(method: str, runners: dict, repeats: int, log=print) -> dict[str, list[tuple[float, float]]]:
    times = {name: [] for name in runners}
    for name, runner in runners.items():
        log(f"  {method}/{name}: warm-up {timed(getattr(runner, method))[0]:.2f} s")
    names = list(runners)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(timed(getattr(runners[name], method)))
        log(f"  {method} repeat {r + 1}/{repeats}: " + ", ".join(f"{n} {times[n][-1][0]:.3f}" for n in names))
    return times


def table(method: str, times: dict[str, list[tuple[float, float]]]):
    """Medians, and lamina's speed over each contender: the median of per-repeat ratios, of wall
    time (the target) and of CPU time (less sensitive to other jobs on the machine)."""
    cells = []
    ref = times["lamina"]
    for name, ts in times.items():
        ratio = statistics.median(t / lt for (t, _), (lt, _) in zip(ts, ref))
        cpu_ratio = statistics.median(c / lc for (_, c), (_, lc) in zip(ts, ref))
        wall = statistics.median(t for t, _ in ts)
        target = ">= 1.1x" if name == "keras" else "-"
        met = ("meets" if ratio >= 1.1 else "misses") if name == "keras" else "-"
        cells.append((f"{method}()", name, f"{wall:.3f}", f"{SAMPLES / wall:,.0f}",
                      "1 (ref)" if name == "lamina" else f"{ratio:.2f}x", target, met,
                      f"{statistics.median(c for _, c in ts):.3f}", "1 (ref)" if name == "lamina" else f"{cpu_ratio:.2f}x"))
    return cells


HEADER = ("call", "contender", "s per call", "samples/s", "lamina / it", "target", "", "cpu s", "lamina / it (cpu)")
RSS_HEADER = ("process", "peak RSS MiB", "over the data alone MiB", "lamina default / it")


# -- peak memory of one fit, each in a fresh process -------------------------------------------


def rss_child(kind: str) -> None:
    x, y = make_data(RSS_SAMPLES)
    if kind.startswith("lamina"):
        model = lamina_model()
        if kind == "lamina, streamed":
            lm.data.set_device_budget(0.0)
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    elif kind == "keras":
        keras_model(None).fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    elif kind == "keras imported":  # the baseline for Keras: data made, keras imported
        import keras  # noqa: F401
    print(json.dumps({"maxrss_kib": peak_rss_kib()}))


def peak_rss_kib() -> int:
    """This process's peak RSS: ``VmHWM`` where Linux gives it. ``ru_maxrss`` survives
    ``execve`` (a child started by this big benchmark process would report the parent's peak),
    the high-water mark of the new address space does not."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


RSS_KINDS = ("data alone", "keras imported", "lamina", "lamina, streamed", "keras")


def measure_rss(processes: int, log=print) -> dict[str, list[float]]:
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    out = {kind: [] for kind in RSS_KINDS}
    for r in range(processes):
        for kind in RSS_KINDS[r % len(RSS_KINDS):] + RSS_KINDS[: r % len(RSS_KINDS)]:
            done = subprocess.run([sys.executable, __file__, "--rss-child", kind], capture_output=True, text=True,
                                  env=env, check=True)
            out[kind].append(json.loads(done.stdout.strip().splitlines()[-1])["maxrss_kib"] / 1024)
            log(f"  peak RSS {kind}: {out[kind][-1]:.0f} MiB")
    return out


def rss_table(rss: dict[str, list[float]]):
    base = statistics.median(rss["data alone"])
    lamina = statistics.median(rss["lamina"])
    cells = []
    for kind, values in rss.items():
        m = statistics.median(values)
        cells.append((kind, f"{m:.0f}", f"{m - base:.0f}", "-" if kind in ("data alone", "keras imported") else
                      f"{lamina / m:.2f}x"))
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--rss-child")
    parser.add_argument("--no-rss", action="store_true")
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return
    repeats = 3 if args.quick else 15
    x, y = make_data(SAMPLES)
    print(f"{SAMPLES} samples, x {x.nbytes / 2**20:.0f} MiB, x at a 64-byte boundary: {x.ctypes.data % 64 == 0}; "
          f"jax {jax.__version__} on {jax.default_backend()}, load average {os.getloadavg()[0]:.2f}")
    runners = contenders(x, y)
    cells = []
    for method in ("fit", "evaluate"):
        cells += table(method, measure(method, runners, repeats))
    report.print_table("Repeated calls on the same arrays", HEADER, cells,
                       right_aligned=("s per call", "samples/s", "lamina / it", "cpu s", "lamina / it (cpu)"), width=160)
    rss_cells = []
    if not args.no_rss:
        rss_cells = rss_table(measure_rss(1 if args.quick else 3))
        report.print_table(f"Peak RSS of one fit on {RSS_SAMPLES} x {FEATURES} float32 (fresh processes)",
                           RSS_HEADER, rss_cells, right_aligned=RSS_HEADER[1:], width=120)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.markdown:
        report.print_markdown(HEADER, cells)
        if rss_cells:
            report.print_markdown(RSS_HEADER, rss_cells)


if __name__ == "__main__":
    main()
