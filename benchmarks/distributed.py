"""Data parallel ``fit`` on 8 simulated CPU devices vs a hand-written sharded ``jax.jit`` + optax loop.

The case: MLP 784-512-512-10 (ReLU), global batch 256 (32 rows per device), Adam(1e-3),
sparse cross-entropy on logits, 16,384 synthetic samples (64 steps per epoch; 4,096 and 16
steps with ``--quick``), under ``lm.distribution.DataParallel()`` over 8 devices made by
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (set here, before JAX starts).

Contenders, all on the same mesh, data and initial weights:

- ``lamina spe=1``: ``model.fit(x, y, batch_size=256, epochs=1, shuffle=True, verbose=0,
  steps_per_execution=1)`` on NumPy arrays: one compiled step per batch;
- ``lamina auto``: the same with the default ``steps_per_execution="auto"``;
- ``hand``: what a JAX user writes for data parallel training: parameters and Adam state
  replicated on the mesh (``NamedSharding(mesh, P())``), each step's batch gathered on the host
  from a NumPy permutation and sent split on the batch axis (``jax.device_put`` with
  ``P("batch")``), one ``jax.jit`` step with parameters, optimizer state and the loss sum
  donated, ``optax.adam(1e-3, eps=1e-7)`` (Keras's defaults).                 target >= 0.95x

Both contenders wait for each compiled call before dispatching the next (one call in flight):
with 8 simulated devices on a 2-core machine, XLA:CPU hangs at a step's gradient all-reduce
when many steps are queued ("Expected 8 threads to join the rendezvous, but only 7 of them
arrived"), the hand-written loop as well as lamina's. Dispatch no longer overlaps compute, so
the ratio compares the cost of a call.

Method: the machine is noisy, so contenders are interleaved: after one warm-up epoch each
(compilation included), every repeat runs one epoch of each, the order rotating. An epoch ends
when its loss is a Python float. The table gives each contender's median epoch time and, as
the ratio, the median over repeats of (hand's time / lamina's time) — above 1 lamina is faster
— for wall time and for the process's CPU time (all threads: the simulated devices' too),
which another program's load disturbs less. "auto" decides in its warm-up epoch (single steps
when one takes 10 ms or more, else it times blocks): the line after the warm-ups says what it
chose, since that depends on the machine's load at that moment.
No timed epoch may compile anything (counted with compile_counter.py).

    python benchmarks/distributed.py            # about two minutes on 2 busy cores
    python benchmarks/distributed.py --quick    # well under a minute, rougher numbers
    python benchmarks/distributed.py --markdown # also print the table as Markdown
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

# Before JAX starts. XLA:CPU's intra-op thread pool is off: with it a device's matmul could
# wait for pool threads that the other simulated devices hold while they wait for it at the
# gradient all-reduce (a hang seen twice on 2 cores). Both contenders run with it off.
os.environ["XLA_FLAGS"] = ("--xla_force_host_platform_device_count=8 --xla_cpu_multi_thread_eigen=false "
                           "--xla_cpu_collective_call_terminate_timeout_seconds=120")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compile_counter  # noqa: E402
import report  # noqa: E402

import lamina as lm  # noqa: E402

BATCH = 256
SIZES = (784, 512, 512, 10)


def make_data(samples: int):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, SIZES[0])).astype("float32")
    teacher = rng.normal(size=(SIZES[0], SIZES[-1])).astype("float32")
    return x, np.argmax(x @ teacher, axis=1).astype("int32")


def lamina_model(spe):
    lm.utils.set_random_seed(0)
    model = lm.Sequential([lm.Input((SIZES[0],)), lm.layers.Dense(SIZES[1], activation="relu"),
                           lm.layers.Dense(SIZES[2], activation="relu"), lm.layers.Dense(SIZES[3])])
    model.compile(lm.optimizers.Adam(1e-3), lm.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=spe)
    return model


class OneCallInFlight(lm.callbacks.Callback):
    """Waits for each compiled call's logs (once per call: blocks of steps stay blocks)."""

    def on_train_batch_end(self, batch, logs=None):
        jax.block_until_ready(logs)

    on_train_batch_end._lm_runs_per_block = True


class Lamina:
    def __init__(self, x, y, spe):
        self.model, self.x, self.y = lamina_model(spe), x, y

    def epoch(self) -> float:
        history = self.model.fit(self.x, self.y, batch_size=BATCH, epochs=1, shuffle=True, verbose=0,
                                 callbacks=[OneCallInFlight()])
        return float(history.history["loss"][-1])


def forward(params, x):
    for i, (w, b) in enumerate(params):
        x = x @ w + b
        if i < len(params) - 1:
            x = jax.nn.relu(x)
    return x


class Hand:
    """A hand-written data parallel loop: replicated state, batches split on the batch axis."""

    def __init__(self, x, y, weights, mesh):
        self.x, self.y = x, y
        replicated = NamedSharding(mesh, P())
        self.data_x, self.data_y = NamedSharding(mesh, P("batch", None)), NamedSharding(mesh, P("batch"))
        self.params = jax.device_put([(jnp.asarray(w), jnp.asarray(b)) for w, b in weights], replicated)
        self.optimizer = optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-7)
        self.opt_state = jax.jit(self.optimizer.init, out_shardings=replicated)(self.params)

        def step(params, opt_state, loss_sum, x, y):
            def loss_fn(p):
                logits = forward(p, x)
                return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss_sum + loss

        self.step = jax.jit(step, donate_argnums=(0, 1, 2))
        self.replicated = replicated

    def epoch(self) -> float:
        order = np.random.permutation(len(self.x))
        loss_sum = jax.device_put(jnp.zeros(()), self.replicated)
        steps = len(self.x) // BATCH
        for i in range(steps):
            rows = order[i * BATCH:(i + 1) * BATCH]
            x = jax.device_put(self.x[rows], self.data_x)
            y = jax.device_put(self.y[rows], self.data_y)
            self.params, self.opt_state, loss_sum = self.step(self.params, self.opt_state, loss_sum, x, y)
            loss_sum.block_until_ready()  # one step in flight (see the module docstring)
        return float(loss_sum) / steps


def timed(fn):
    gc.collect()
    before = compile_counter.compilations()
    start, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - start, time.process_time() - cpu, value, compile_counter.compilations() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    samples, repeats = (4096, 5) if args.quick else (16384, 9)
    assert len(jax.devices()) == 8, "XLA_FLAGS must be set before JAX starts"
    x, y = make_data(samples)
    lm.distribution.set_distribution(lm.distribution.DataParallel())
    contenders = {"lamina spe=1": Lamina(x, y, 1), "lamina auto": Lamina(x, y, "auto")}
    model = contenders["lamina spe=1"].model
    model.build((None, SIZES[0]))
    weights = [(np.asarray(layer.kernel.value.addressable_shards[0].data),
                np.asarray(layer.bias.value.addressable_shards[0].data)) for layer in model.layers]
    contenders["hand"] = Hand(x, y, weights, lm.distribution.distribution().device_mesh.jax_mesh)
    times = {name: [] for name in contenders}
    cpu_times = {name: [] for name in contenders}
    compiles = 0
    for name, contender in contenders.items():
        seconds, _, loss, _ = timed(contender.epoch)
        print(f"  {name}: warm-up epoch {seconds:.2f} s, loss {loss:.4f}")
    for chooser in contenders["lamina auto"].model.__dict__.get("_lm_auto_blocks", {}).values():
        measured = ("an epoch too short for blocks" if chooser.single_seconds is None else
                    f"a single step measured {1000 * chooser.single_seconds:.1f} ms; blocks are tried below 10 ms")
        print(f"  lamina auto chose {chooser.block} step(s) per call ({measured})")
    names = list(contenders)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            seconds, cpu, _, compiled = timed(contenders[name].epoch)
            times[name].append(seconds)
            cpu_times[name].append(cpu)
            compiles += compiled
        print(f"  repeat {r + 1}/{repeats}: " + ", ".join(f"{n} {times[n][-1]:.3f} s" for n in names))
    steps = samples // BATCH
    header = ("contender", "epoch s (median)", "ms/step", "hand / it", "CPU s (median)", "CPU hand / it")
    cells = []
    for name in names:
        ratio = statistics.median(h / t for h, t in zip(times["hand"], times[name]))
        cpu_ratio = statistics.median(h / t for h, t in zip(cpu_times["hand"], cpu_times[name]))
        median = statistics.median(times[name])
        cells.append((name, f"{median:.3f}", f"{1000 * median / steps:.2f}", f"{ratio:.3f}x",
                      f"{statistics.median(cpu_times[name]):.3f}", f"{cpu_ratio:.3f}x"))
    print(f"compilations during timed epochs: {compiles} (should be 0); load average "
          f"{os.getloadavg()[0]:.1f}")
    report.print_table(f"Data parallel fit on 8 simulated CPU devices, {samples} samples, batch {BATCH} "
                       "(target: lamina >= 0.95x of hand)", header, cells, right_aligned=header[1:])
    if args.markdown:
        report.print_markdown(header, cells)


if __name__ == "__main__":
    main()
