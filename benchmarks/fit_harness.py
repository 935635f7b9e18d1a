"""The harness of the benchmarks that race lamina's ``fit`` against a hand-written ``jax.jit`` +
optax loop, one epoch against one epoch (conv_lstm.py, regularization_layers.py,
attention_rnn_layers.py, metrics_losses.py, optimizers.py).

- ``timed(fn)``: one call's wall and CPU seconds, its value and the XLA compilations it did;
- ``race(lamina_epoch, hand_epoch, repeats)``: one warm-up epoch each (compilation), then
  ``repeats`` rounds of one timed epoch each, the order alternating (AB, BA, ...) since the
  second of a pair finds warmer caches; returns a ``Race`` (medians, hand / lamina ratios);
- ``LaminaFit``: lamina's side, one ``fit(epochs=1, verbose=0)`` call per epoch;
- ``HandStepLoop``: the loop a JAX user writes: the data on the device once, a NumPy
  permutation sent per epoch, one jitted step per batch, everything it carries donated;
- ``print_epochs`` (a few plain lines) and ``row`` / ``print_rows`` (one table for several
  cases, through report.py) print the results.

Each script imports it from beside itself (``import fit_harness``), as it does
compile_counter.py and report.py.
"""

from __future__ import annotations

import functools
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import compile_counter  # benchmarks/compile_counter.py, beside this module
import jax
import jax.numpy as jnp
import numpy as np
import optax
import report  # benchmarks/report.py, beside this module

SIDES = ("lamina", "hand")


def timed(fn: Callable[[], float]) -> tuple[float, float, float, int]:
    """One call of ``fn`` (which returns a Python float, so it has synced): wall seconds,
    CPU seconds of this process (all threads), its value, and the XLA compilations it did."""
    gc.collect()  # so that one side's garbage is not collected in the other's epoch
    before = compile_counter.compilations()
    start, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - start, time.process_time() - cpu, value, compile_counter.compilations() - before


@dataclass
class Race:
    """The epochs of one race: the warm-up epoch's loss and every timed epoch's wall seconds,
    CPU seconds and loss, per side (``"lamina"``, ``"hand"``), in the order they ran."""

    first: dict[str, float]
    wall: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})
    losses: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})
    compiles: int = 0  # XLA compilations during the timed epochs (should be 0)

    def median(self, side: str, clock: str = "wall") -> float:
        """The side's median epoch seconds, of wall (``clock="wall"``) or CPU (``"cpu"``) time."""
        return statistics.median(getattr(self, clock)[side])

    def ratio(self, clock: str = "wall") -> float:
        """The median of the per-round ratios hand / lamina (>= 1.0: lamina as fast): both
        epochs of a round ran under the same load."""
        times = getattr(self, clock)
        return statistics.median(h / m for h, m in zip(times["hand"], times["lamina"]))

    def check(self, tolerance: float = 0.1) -> None:
        """Both losses fell, lamina's first-epoch loss is within ``tolerance`` of the hand
        loop's (the two sides train the same network), and no timed epoch compiled."""
        first, losses = self.first, self.losses
        if not (losses["lamina"][-1] < first["lamina"] and losses["hand"][-1] < first["hand"]):
            raise AssertionError("a loss did not fall")
        if abs(first["lamina"] - first["hand"]) > tolerance * first["hand"]:
            raise AssertionError("lamina's loss is off the hand loop's")
        if self.compiles:
            raise AssertionError(f"timed epochs compiled {self.compiles} programs")


def race(lamina_epoch: Callable[[], float], hand_epoch: Callable[[], float], repeats: int) -> Race:
    """Epochs of both sides interleaved: a warm-up epoch each (lamina's first), then ``repeats``
    rounds, lamina first in even rounds and the hand loop first in odd ones."""
    result = Race(first={"lamina": lamina_epoch(), "hand": hand_epoch()})  # warm-up: compiles
    epochs = {"lamina": lamina_epoch, "hand": hand_epoch}
    for repeat in range(repeats):
        for side in SIDES if repeat % 2 == 0 else SIDES[::-1]:
            seconds, cpu_seconds, loss, compiled = timed(epochs[side])
            result.wall[side].append(seconds)
            result.cpu[side].append(cpu_seconds)
            result.losses[side].append(loss)
            result.compiles += compiled
    return result


class LaminaFit:
    """lamina's side: one ``model.fit(x, y, epochs=1, verbose=0)`` call per epoch, which
    returns the epoch's mean loss as a Python float."""

    def __init__(self, model, x, y, batch_size: int, shuffle: bool = True):
        self.model, self.x, self.y = model, x, y
        self.batch_size, self.shuffle = batch_size, shuffle

    def epoch(self) -> float:
        history = self.model.fit(self.x, self.y, batch_size=self.batch_size, epochs=1, verbose=0, shuffle=self.shuffle)
        return float(history.history["loss"][-1])


def keras_adam(learning_rate: float = 1e-3):
    """optax's Adam with Keras's defaults (``epsilon=1e-7``), as lamina's ``Adam`` computes it."""
    return optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-7)


class HandStepLoop:
    """The hand-written per-step loop: ``x`` and ``y`` on the device once, a NumPy permutation
    sent per epoch (on the CPU backend about 1 ms, where ``jax.random.permutation`` sorts), and
    one jitted step per full batch that slices its indices from the permutation, gathers the
    batch and applies ``optimizer`` (default ``keras_adam()``), with parameters, optimizer state,
    PRNG key and loss sum donated.

    ``loss_fn(params, xb, yb)`` is the batch's mean loss; with a ``key`` it is
    ``loss_fn(params, key, xb, yb)`` and every step splits a fresh key off, as lamina's seed
    generators do. ``weights`` (lamina's initial ones, in order) become ``params``, a list.
    """

    def __init__(self, loss_fn, weights, x, y, batch_size: int, optimizer=None, key=None, seed: int = 0):
        optimizer = optimizer if optimizer is not None else keras_adam()

        @functools.partial(jax.jit, donate_argnums=(0, 1, 2, 3))
        def step(params, opt_state, key, loss_sum, x, y, order, start):
            idx = jax.lax.dynamic_slice_in_dim(order, start, batch_size)
            if key is None:
                loss, grads = jax.value_and_grad(loss_fn)(params, x[idx], y[idx])
            else:
                key, draw = jax.random.split(key)
                loss, grads = jax.value_and_grad(loss_fn)(params, draw, x[idx], y[idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, key, loss_sum + loss * batch_size

        self.step, self.batch_size = step, batch_size
        self.params = [jnp.array(w) for w in weights]
        self.opt_state = optimizer.init(self.params)
        self.key = key
        self.x, self.y = jax.device_put(x), jax.device_put(y)
        self.rng = np.random.default_rng(seed)

    def epoch(self) -> float:
        """One pass over every full batch; the mean loss as a Python float (so it has synced)."""
        samples = len(self.x)
        order = jax.device_put(self.rng.permutation(samples).astype(np.int32))
        steps = samples // self.batch_size
        state = (self.params, self.opt_state, self.key, jnp.zeros((), jnp.float32))
        for i in range(steps):
            state = self.step(*state, self.x, self.y, order, i * self.batch_size)
        self.params, self.opt_state, self.key, loss_sum = state
        return float(loss_sum) / (steps * self.batch_size)


def print_epochs(result: Race, repeats: int, steps: int, tag: str = "") -> None:
    """The race as a few plain lines: the losses, then (after ``result.check()``) each side's
    median epoch wall and CPU seconds and the ratios; ``tag`` prefixes the lines in brackets."""
    prefix = f"[{tag}] " if tag else ""
    first, losses = result.first, result.losses
    print(f"{prefix}loss after epoch 1: lamina {first['lamina']:.4f}, hand {first['hand']:.4f}; "
          f"last: lamina {losses['lamina'][-1]:.4f}, hand {losses['hand'][-1]:.4f}")
    result.check()
    print(f"{prefix}{repeats} repeats, {steps} steps per epoch")
    print(f"{'':22}{'epoch s':>9}{'cpu s':>9}")
    for side, label in (("lamina", "lamina fit"), ("hand", "hand jit step loop")):
        print(f"{label:22}{result.median(side):9.3f}{result.median(side, 'cpu'):9.3f}")
    print(f"{prefix}hand / lamina: wall {result.ratio():.2f}x, cpu {result.ratio('cpu'):.2f}x (>= 1.0: lamina as fast)")


def row(label: str, result: Race, loss_digits: int = 4) -> list[str]:
    """One case's cells for ``print_rows``: the first epoch's loss of both sides, the median
    epoch milliseconds, the hand / lamina ratios of wall and CPU time, the compilations."""
    first = result.first
    return [label, f"{first['lamina']:.{loss_digits}f} / {first['hand']:.{loss_digits}f}",
            f"{result.median('lamina') * 1e3:.1f}", f"{result.median('hand') * 1e3:.1f}",
            f"{result.ratio():.2f}x", f"{result.ratio('cpu'):.2f}x", str(result.compiles)]


def print_rows(title: str, first_column: str, rows: list[list[str]]) -> None:
    """Cases' ``row``s as one table (report.py's), the number columns right-aligned."""
    header = [first_column, "loss 1 (l / h)", "lamina ms", "hand ms", "h / l wall", "h / l cpu", "compiles"]
    report.print_table(title, header, rows, right_aligned=header[1:])  # names: report.py matches columns by name
