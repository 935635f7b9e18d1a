"""How much does lamina cost on top of plain JAX? Per-call time of lamina vs hand-written JAX.

Rows (each a ratio of two contenders measured in the same run):
- eager ``Linear`` (the seed guide's add_weight version, 4 units, input_dim 2) on ones (2, 2)
  vs ``jnp.matmul(x, w) + b`` on the same arrays;                         target <= 1.5x
- eager ``MLPBlock`` on ones (3, 64) vs the same three matmuls and ReLUs in plain jnp;
- ``lm.jit`` of an SGD step on ``MLPBlock`` (``lm.value_and_grad`` of MSE against zeros,
  ``assign_sub(lr * g)`` per weight) vs a hand-written ``jax.jit`` of the same pure function
  over a list of arrays, with the parameters donated (the honest ceiling);  target <= 1.1x
- for reference, when importable: the same ``Linear`` as a Keras 3 layer on JAX, and as a
  Flax NNX module, eager, vs plain jnp.

The machine is noisy, so contenders are interleaved: each repeat times a short batch of calls
of one contender, then of the other (the order alternating from repeat to repeat). The table
shows the median time per call of each over all repeats, and as the ratio the median of the
per-repeat ratios, since both batches of a repeat ran under the same load. Every batch ends
with ``block_until_ready``, so asynchronous dispatch cannot hide work.

    python benchmarks/overhead.py            # full run (about a minute)
    python benchmarks/overhead.py --quick    # a few seconds, rougher numbers
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import report  # noqa: E402  (benchmarks/report.py, beside this script)

import lamina as lm  # noqa: E402

# The seed guide's layers, translated to lamina once and shared with the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from seed_layers import LinearAddWeight, MLPBlock  # noqa: E402

LEARNING_RATE = 0.01


# -- timing ---------------------------------------------------------------------------------


@dataclass
class Timing:
    """Seconds per call of two contenders, one pair of batches per repeat, timed side by side."""

    a: list[float]
    b: list[float]

    @property
    def a_us(self) -> float:
        return statistics.median(self.a) * 1e6

    @property
    def b_us(self) -> float:
        return statistics.median(self.b) * 1e6

    @property
    def ratio(self) -> float:
        # The median of per-repeat ratios: the two batches of a repeat run back to back, so
        # they share the machine's load of that moment, which a ratio of medians would not.
        return statistics.median(x / y for x, y in zip(self.a, self.b))


@dataclass
class Row:
    """One comparison: median microseconds per call of both contenders and their ratio."""

    name: str
    lamina_label: str
    reference_label: str
    timing: Timing
    target: float | None = None

    @property
    def lamina_us(self) -> float:
        return self.timing.a_us

    @property
    def reference_us(self) -> float:
        return self.timing.b_us

    @property
    def ratio(self) -> float:
        return self.timing.ratio


def _time_batch(fn: Callable[[], object], number: int) -> float:
    """Seconds per call over ``number`` back-to-back calls, waiting for the last result."""
    start = time.perf_counter()
    for _ in range(number):
        out = fn()
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / number


def _calls_per_batch(fn: Callable[[], object], seconds: float) -> int:
    """How many calls of ``fn`` take about ``seconds`` (so timer resolution does not matter)."""
    per_call = min(_time_batch(fn, 20) for _ in range(3))
    return max(10, int(seconds / per_call))


def compare(a: Callable[[], object], b: Callable[[], object], repeats: int, batch_seconds: float) -> Timing:
    """Seconds per call of ``a`` and ``b`` for each repeat, timed in alternation (A B B A ...)."""
    for fn in (a, b):  # warm up: compilation and caches out of the way
        _time_batch(fn, 50)
    number = _calls_per_batch(b, batch_seconds)  # same batch size for both contenders
    times_a, times_b = [], []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection landing in one contender's batch is noise, not overhead
    try:
        for i in range(repeats):
            # Alternate which one goes first, so neither always follows the other.
            first, second = ((a, times_a), (b, times_b)) if i % 2 == 0 else ((b, times_b), (a, times_a))
            for fn, times in (first, second):
                times.append(_time_batch(fn, number))
    finally:
        if gc_was_enabled:
            gc.enable()
    return Timing(times_a, times_b)


# -- (a) eager calls -----------------------------------------------------------------------


def eager_linear_row(repeats, batch_seconds) -> Row:
    """The seed's Linear called eagerly vs its math in jnp on the very same arrays."""
    x = jnp.ones((2, 2))
    layer = LinearAddWeight(4, 2)
    layer(x)
    w, b = layer.w.value, layer.b.value

    def plain():
        return jnp.matmul(x, w) + b

    timing = compare(lambda: layer(x), plain, repeats, batch_seconds)
    return Row("eager Linear (2,2)->(2,4)", "lamina Layer", "jnp", timing, 1.5)


def mlp_reference(params, x):
    """MLPBlock's forward pass as a pure function of ``[w1, b1, w2, b2, w3, b3]``."""
    w1, b1, w2, b2, w3, b3 = params
    x = jax.nn.relu(jnp.matmul(x, w1) + b1)
    x = jax.nn.relu(jnp.matmul(x, w2) + b2)
    return jnp.matmul(x, w3) + b3


def eager_mlp_row(repeats, batch_seconds) -> Row:
    """MLPBlock called eagerly vs the same three matmuls and ReLUs as plain jnp calls."""
    x = jnp.ones((3, 64))
    mlp = MLPBlock()
    mlp(x)
    params = [v.value for v in mlp.weights]  # w, b of linear_1, linear_2, linear_3

    timing = compare(lambda: mlp(x), lambda: mlp_reference(params, x), repeats, batch_seconds)
    return Row("eager MLPBlock (3,64)->(3,1)", "lamina Layer", "jnp", timing)


# -- (b) compiled training step --------------------------------------------------------------


def lamina_train_step(mlp: MLPBlock):
    """An SGD step written statefully, as a lamina user would, compiled by ``lm.jit``."""
    weights = mlp.trainable_weights

    def loss_fn(x, y):
        return jnp.mean((mlp(x) - y) ** 2)

    loss_and_grads = lm.value_and_grad(loss_fn, weights)

    @lm.jit
    def step(x, y):
        loss, grads = loss_and_grads(x, y)
        for w, g in zip(weights, grads):
            w.assign_sub(LEARNING_RATE * g)
        return loss

    return step


@functools.partial(jax.jit, donate_argnums=(0,))
def reference_train_step(params, x, y):
    """The same step as a pure function of a list of arrays: what one writes by hand in JAX."""

    def loss_fn(params):
        return jnp.mean((mlp_reference(params, x) - y) ** 2)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    return [p - LEARNING_RATE * g for p, g in zip(params, grads)], loss


def jit_train_step_row(repeats, batch_seconds) -> Row:
    """``lm.jit`` SGD step on MLPBlock vs the hand-written ``jax.jit`` with donation."""
    x, y = jnp.ones((3, 64)), jnp.zeros((3, 1))
    mlp = MLPBlock()
    mlp(x)
    step = lamina_train_step(mlp)
    # The reference starts from copies of the same weights; donation consumes its buffers,
    # so it threads its parameters through a cell from call to call.
    state = {"params": [jnp.array(v.value, copy=True) for v in mlp.trainable_weights]}

    def reference():
        state["params"], loss = reference_train_step(state["params"], x, y)
        return loss

    timing = compare(lambda: step(x, y), reference, repeats, batch_seconds)
    return Row("jit SGD step on MLPBlock", "lm.jit", "jax.jit+donate", timing, 1.1)


# -- reference rows: other libraries, when installed ------------------------------------------


def keras_linear_row(repeats, batch_seconds) -> Row | None:
    """The same Linear as a Keras 3 layer on the JAX backend, eager, vs plain jnp."""
    try:
        import keras
    except ImportError:
        return None
    if keras.backend.backend() != "jax":
        return None

    class KerasLinear(keras.layers.Layer):
        def __init__(self, units=32, input_dim=32):
            super().__init__()
            self.w = self.add_weight(shape=(input_dim, units), initializer="random_normal", trainable=True)
            self.b = self.add_weight(shape=(units,), initializer="zeros", trainable=True)

        def call(self, inputs):
            return keras.ops.matmul(inputs, self.w) + self.b

    x = jnp.ones((2, 2))
    layer = KerasLinear(4, 2)
    layer(x)
    w, b = layer.w.value, layer.b.value

    timing = compare(lambda: layer(x), lambda: jnp.matmul(x, w) + b, repeats, batch_seconds)
    return Row(f"eager Linear, Keras {keras.__version__} (jax)", "keras Layer", "jnp", timing)


def nnx_linear_row(repeats, batch_seconds) -> Row | None:
    """The same Linear as a Flax NNX module, eager, vs plain jnp (only if flax is installed)."""
    try:
        import flax
        from flax import nnx
    except ImportError:
        return None

    class NNXLinear(nnx.Module):
        def __init__(self, units, input_dim, rngs):
            self.w = nnx.Param(jax.random.normal(rngs.params(), (input_dim, units)) * 0.05)
            self.b = nnx.Param(jnp.zeros((units,)))

        def __call__(self, inputs):
            return jnp.matmul(inputs, self.w[...]) + self.b[...]

    x = jnp.ones((2, 2))
    module = NNXLinear(4, 2, nnx.Rngs(0))
    w, b = module.w[...], module.b[...]

    timing = compare(lambda: module(x), lambda: jnp.matmul(x, w) + b, repeats, batch_seconds)
    return Row(f"eager Linear, Flax {flax.__version__} NNX", "nnx Module", "jnp", timing)


# -- report ---------------------------------------------------------------------------------


def verdict(row: Row) -> str:
    if row.target is None:
        return "-"
    return "meets" if row.ratio <= row.target else "misses"


HEADER = ("case", "contender", "us/call", "reference", "us/call", "extra us", "ratio", "target", "")


def table_cells(rows: list[Row]) -> list[tuple[str, ...]]:
    return [
        (r.name, r.lamina_label, f"{r.lamina_us:.1f}", r.reference_label, f"{r.reference_us:.1f}",
         f"{r.lamina_us - r.reference_us:+.1f}", f"{r.ratio:.2f}x", "-" if r.target is None else f"<= {r.target}x", verdict(r))
        for r in rows
    ]


def print_table(rows: list[Row], title: str) -> None:
    report.print_table(title, HEADER, table_cells(rows), right_aligned=("us/call", "extra us", "ratio"), width=140)


def print_markdown(rows: list[Row]) -> None:
    """The same table as Markdown, for benchmarks/RESULTS.md."""
    report.print_markdown(HEADER, table_cells(rows))


def main(argv=None) -> list[Row]:
    parser = argparse.ArgumentParser(description="lamina's per-call overhead vs plain JAX.")
    parser.add_argument("--quick", action="store_true", help="few repeats: a rough number fast")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args(argv)
    repeats, batch_seconds = (21, 0.002) if args.quick else (1001, 0.002)

    lm.random.set_seed(0)
    measurements = (eager_linear_row, eager_mlp_row, jit_train_step_row, keras_linear_row, nnx_linear_row)
    rows = []
    for measure in measurements:
        row = measure(repeats, batch_seconds)
        if row is not None:
            rows.append(row)
            print(f"{row.name}: {row.lamina_us:.1f} us vs {row.reference_us:.1f} us "
                  f"-> {row.ratio:.2f}x", flush=True)

    device = jax.devices()[0]
    title = (f"lamina overhead, median of {repeats} interleaved repeats "
             f"(jax {jax.__version__}, {device.platform}, {os.cpu_count()} cores)")
    print_table(rows, title)
    if args.markdown:
        print_markdown(rows)
    return rows


if __name__ == "__main__":
    main()
