"""How fast is ``model.fit``? Epoch throughput of lamina vs hand-written JAX loops and Keras 3.

Two cases, on synthetic data (60,000 samples of random float32 features; integer labels from
a fixed random linear "teacher", so that the loss has something to learn; seed 0):

- **big**: MLP 784-512-512-10 (ReLU), batch 128, Adam(1e-3), sparse cross-entropy on logits.
  ``lamina fit`` (``epochs=1, verbose=0, shuffle=True``) vs a hand-written per-step
  ``jax.jit`` + optax loop;                                                target >= 1.0x
- **small**: MLP 64-64-10, batch 32, Adam(1e-3). ``lamina fit`` with its default arguments
  (batch size 32, ``steps_per_execution="auto"``; ``verbose=0``, so that no bar is printed)
  vs (a) the hand-written per-step loop and (b) a hand-written ``lax.scan`` over the epoch's
  batches, one jitted call per epoch (the limit);                     target >= 0.8x of (b)
- in both cases, for reference: Keras 3 ``fit`` on the JAX backend, same data, same initial
  weights, Adam(1e-3), ``verbose=0``, default ``steps_per_execution`` and
  ``steps_per_execution=32``.

The hand-written loops are what an experienced JAX user writes: the data is put on the device
once, each epoch sends a permutation to the device (drawn with NumPy: on the CPU backend
``jax.random.permutation`` costs about 22 ms for 60,000 samples, NumPy and the transfer about
1 ms), and one jitted step per batch slices its indices from that permutation
(``lax.dynamic_slice``), gathers the batch, and applies ``optax.adam(1e-3, b1=0.9, b2=0.999,
eps=1e-7)`` (Keras's defaults) to the parameters, with parameters, optimizer state and the
running loss sum donated. The last partial batch (60,000 % 128 = 96 samples) is one more call,
so that every contender trains on all 60,000 samples. The ``lax.scan`` loop gathers the
epoch's batches at once, ``(steps, batch, ...)``, and runs the steps over them inside one
compiled call. lamina and Keras get the data as NumPy arrays, as a user passes them.
All contenders start from the same initial weights (lamina's ``glorot_uniform``, copied).

Method. The machine is noisy, so contenders are interleaved: after one warm-up epoch each
(which includes compilation; its mean training loss is the "loss after epoch 1" column),
every repeat runs one epoch of each contender, the order rotating from repeat to repeat
(ABC, BCA, CAB, ...). An epoch is a whole ``fit(..., epochs=1)`` call for lamina and Keras and
ends when its loss is a Python float (for the hand loops: the float of the epoch's summed
loss), so asynchronous dispatch cannot hide work. "epoch s" is each contender's median over the
repeats and samples/s is 60,000 divided by it; the ratio "lamina / it" is lamina's samples/s
over the contender's, taken as the median of the per-repeat ratios (both epochs of a repeat ran
under the same load). "cpu s" is the median CPU time of this process (all threads) over the
same epochs and "lamina / it (cpu)" the median per-repeat ratio of CPU times, the contender's
over lamina's: less sensitive than wall time to other jobs on the machine (though not immune,
the caches are shared), a check on what the wall-time ratio says; the targets are on wall time.
"1st epoch s" is the time of the first epoch of a fresh model in a fresh Python process
(model creation, ``compile`` and the first ``fit``, compilation included; imports and data
generation excluded), the median over three processes; with ``--quick``, the warm-up epoch of
the fresh model in the benchmark's own process instead (where jax's caches are warm and one
contender's compilations can help another's).

Sanity checks, printed before the table: every contender's loss falls (initial loss of the
shared initial weights > loss after epoch 1 > loss of its final weights on a held-in subset),
lamina's loss after one epoch is within 10% of the hand loop's, and no timed epoch compiled
anything (counted with a ``jax.monitoring`` listener: a timed epoch must not hide a recompile).

    python benchmarks/fit.py              # full run (about 5 to 8 minutes on 2 busy cores)
    python benchmarks/fit.py --quick      # about a minute, rougher numbers
    python benchmarks/fit.py --markdown   # also print the table as Markdown
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import report  # noqa: E402  (benchmarks/report.py, beside this script)
from fit_harness import timed  # noqa: E402  (benchmarks/fit_harness.py: wall, CPU, compilations)

import lamina as lm  # noqa: E402

SAMPLES = 60_000
CLASSES = 10
LEARNING_RATE = 1e-3
SEED = 0
EVAL_SAMPLES = 10_000  # the held-in subset the final losses are computed on


@dataclass(frozen=True)
class Case:
    name: str
    features: int
    hidden: tuple[int, ...]
    batch_size: int | None  # None: lamina's default (32), passed explicitly to the others
    contenders: tuple[str, ...]
    target: tuple[str, float] | None  # (contender, minimum of lamina / contender)

    @property
    def batch(self) -> int:
        return self.batch_size or 32

    @property
    def title(self) -> str:
        sizes = "-".join(str(n) for n in (self.features, *self.hidden, CLASSES))
        return f"MLP {sizes}, batch {self.batch}"


CASES = {
    "big": Case("big", 784, (512, 512), 128, ("lamina", "hand", "keras", "keras_spe32"), ("hand", 1.0)),
    "small": Case("small", 64, (64,), None, ("lamina", "hand", "hand_scan", "keras", "keras_spe32"),
                  ("hand_scan", 0.8)),
}

LABELS = {
    "lamina": "lamina fit",
    "hand": "hand jit step loop",
    "hand_scan": "hand lax.scan epoch",
    "keras": "keras fit",
    "keras_spe32": "keras fit, spe=32",
}


# -- data and the shared initial weights ----------------------------------------------------


def make_data(case: Case):
    """Random features and teacher labels, the same for every contender (NumPy, host)."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((SAMPLES, case.features), dtype=np.float32)
    teacher = rng.standard_normal((case.features, CLASSES), dtype=np.float32)
    y = np.argmax(x @ teacher, axis=1).astype(np.int32)
    return x, y


def lamina_model(case: Case):
    layers = [lm.layers.Dense(case.hidden[0], activation="relu", input_shape=(case.features,))]
    layers += [lm.layers.Dense(n, activation="relu") for n in case.hidden[1:]]
    layers.append(lm.layers.Dense(CLASSES))
    model = lm.Sequential(layers)
    model.compile(optimizer=lm.optimizers.Adam(LEARNING_RATE),
                  loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def initial_weights(case: Case) -> list[np.ndarray]:
    """lamina's initial weights for the case (seeded): [kernel, bias, kernel, bias, ...]."""
    lm.random.set_seed(SEED)
    return [np.asarray(w.value) for w in lamina_model(case).weights]


def forward(params, x):
    """The MLP as a pure function of ``[kernel, bias, ...]``: ReLU between, logits out."""
    *hidden, last = [params[i:i + 2] for i in range(0, len(params), 2)]
    for w, b in hidden:
        x = jax.nn.relu(x @ w + b)
    return x @ last[0] + last[1]


def cross_entropy(params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(forward(params, x), y).mean()


eval_loss = jax.jit(cross_entropy)


# -- contenders: each is made from (case, data, weights) and runs one epoch per call ---------


class Contender:
    """One way of training an epoch; ``epoch()`` returns the epoch's mean training loss."""

    def epoch(self) -> float:
        raise NotImplementedError

    def weights(self) -> list:
        raise NotImplementedError


class LaminaFit(Contender):
    def __init__(self, case, x, y, weights, **fit_kwargs):
        lm.random.set_seed(SEED)  # the shuffling order (NumPy's global generator)
        self.model = lamina_model(case)
        for variable, value in zip(self.model.weights, weights):
            variable.assign(jnp.asarray(value))
        self.x, self.y = x, y
        self.kwargs = {"epochs": 1, "verbose": 0, "shuffle": True, **fit_kwargs}
        if case.batch_size is not None:
            self.kwargs.setdefault("batch_size", case.batch_size)

    def epoch(self) -> float:
        history = self.model.fit(self.x, self.y, **self.kwargs)
        return float(history.history["loss"][-1])

    def weights(self):
        return [w.value for w in self.model.weights]


class KerasFit(Contender):
    def __init__(self, case, x, y, weights, steps_per_execution=1):
        import keras

        keras.utils.set_random_seed(SEED)
        self.model = keras.Sequential(
            [keras.Input((case.features,))]
            + [keras.layers.Dense(n, activation="relu") for n in case.hidden]
            + [keras.layers.Dense(CLASSES)]
        )
        self.model.set_weights(weights)
        self.model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                           steps_per_execution=steps_per_execution)
        self.x, self.y, self.batch = x, y, case.batch

    def epoch(self) -> float:
        history = self.model.fit(self.x, self.y, batch_size=self.batch, epochs=1, verbose=0, shuffle=True)
        return float(history.history["loss"][-1])

    def weights(self):
        return self.model.get_weights()


def _adam():
    return optax.adam(LEARNING_RATE, b1=0.9, b2=0.999, eps=1e-7)


class HandLoop(Contender):
    """The expert's per-step loop: one jitted step per batch, everything on the device."""

    def __init__(self, case, x, y, weights):
        optimizer = _adam()

        @functools.partial(jax.jit, donate_argnums=(0, 1, 2), static_argnames=("size",))
        def step(params, opt_state, loss_sum, x, y, order, start, size):
            idx = jax.lax.dynamic_slice_in_dim(order, start, size)
            loss, grads = jax.value_and_grad(cross_entropy)(params, x[idx], y[idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss_sum + loss * size

        self.step = step
        self.params = [jnp.array(w) for w in weights]
        self.opt_state = optimizer.init(self.params)
        self.x, self.y = jax.device_put(x), jax.device_put(y)
        self.batch = case.batch
        self.rng = np.random.default_rng(SEED)

    def new_order(self):
        # Drawn on the host and sent over once per epoch: on the CPU backend this costs about
        # 1 ms where jax.random.permutation (a sort) costs about 22 ms for 60,000 samples.
        return jax.device_put(self.rng.permutation(SAMPLES).astype(np.int32))

    def epoch(self) -> float:
        order = self.new_order()
        full, partial = divmod(SAMPLES, self.batch)
        state = (self.params, self.opt_state, jnp.zeros((), jnp.float32))
        for i in range(full):
            state = self.step(*state, self.x, self.y, order, i * self.batch, size=self.batch)
        if partial:
            state = self.step(*state, self.x, self.y, order, full * self.batch, size=partial)
        self.params, self.opt_state, loss_sum = state
        return float(loss_sum) / SAMPLES

    def weights(self):
        return self.params


class HandScan(HandLoop):
    """The limit: a whole epoch of steps in one compiled call (``lax.scan`` over batches)."""

    def __init__(self, case, x, y, weights):
        super().__init__(case, x, y, weights)
        optimizer = _adam()
        batch = case.batch
        full = SAMPLES // batch

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def run_epoch(params, opt_state, x, y, order):
            def body(carry, batch):
                params, opt_state = carry
                loss, grads = jax.value_and_grad(cross_entropy)(params, *batch)
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), loss

            # The epoch's batches gathered at once, (steps, batch, ...), then scanned over:
            # about 40% faster here than gathering each batch inside the loop body.
            blocks = order[: full * batch].reshape(full, batch)
            (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), (x[blocks], y[blocks]))
            return params, opt_state, losses.sum() * batch

        self.run_epoch = run_epoch

    def epoch(self) -> float:
        order = self.new_order()
        self.params, self.opt_state, loss_sum = self.run_epoch(
            self.params, self.opt_state, self.x, self.y, order)
        full, partial = divmod(SAMPLES, self.batch)
        if partial:  # the remainder, as in the per-step loop
            self.params, self.opt_state, loss_sum = self.step(
                self.params, self.opt_state, loss_sum, self.x, self.y, order, full * self.batch, size=partial)
        return float(loss_sum) / SAMPLES


def make_contender(name: str, case: Case, x, y, weights) -> Contender:
    if name == "lamina":
        return LaminaFit(case, x, y, weights)
    if name == "hand":
        return HandLoop(case, x, y, weights)
    if name == "hand_scan":
        return HandScan(case, x, y, weights)
    if name == "keras":
        return KerasFit(case, x, y, weights)
    if name == "keras_spe32":
        return KerasFit(case, x, y, weights, steps_per_execution=32)
    raise ValueError(name)


# -- timing (each epoch through fit_harness.timed) ------------------------------------------


@dataclass
class Result:
    """One contender of one case: epoch times of every repeat, losses, first-epoch times."""

    case: Case
    name: str
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # process CPU seconds of the same epochs
    compiles: int = 0  # XLA compilations during the timed epochs (should be 0)
    first_loss: float = float("nan")
    last_loss: float = float("nan")
    final_eval: float = float("nan")
    warmup: float = float("nan")  # the warm-up epoch in this process (a fresh model, compiling)
    first_epoch: list[float] = field(default_factory=list)  # ... in fresh processes
    ratio: float | None = None  # lamina's samples/s over this contender's (median per repeat)
    cpu_ratio: float | None = None  # the same with CPU seconds instead of wall seconds

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    @property
    def samples_per_s(self) -> float:
        return SAMPLES / self.median


def measure_case(case: Case, repeats: int, log=print) -> tuple[list[Result], float]:
    """Warm up and time every contender of ``case`` in interleaved repeats."""
    x, y = make_data(case)
    weights = initial_weights(case)
    x_eval, y_eval = jnp.asarray(x[:EVAL_SAMPLES]), jnp.asarray(y[:EVAL_SAMPLES])
    initial = float(eval_loss([jnp.asarray(w) for w in weights], x_eval, y_eval))
    contenders = {name: make_contender(name, case, x, y, weights) for name in case.contenders}
    results = {name: Result(case, name) for name in case.contenders}
    for name, contender in contenders.items():  # warm-up: the first epoch, compilation included
        seconds, _, results[name].first_loss, _ = timed(contender.epoch)
        results[name].warmup = seconds
        log(f"  {case.name}/{name}: warm-up epoch {seconds:.2f} s, loss {results[name].first_loss:.4f}")
    names = list(case.contenders)
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            seconds, cpu, results[name].last_loss, compiles = timed(contenders[name].epoch)
            results[name].times.append(seconds)
            results[name].cpu.append(cpu)
            results[name].compiles += compiles
        log(f"  {case.name} repeat {r + 1}/{repeats}: "
            + ", ".join(f"{n} {results[n].times[-1]:.3f} s" for n in names))
    lamina_times = results["lamina"].times
    for name, result in results.items():
        params = [jnp.asarray(w) for w in contenders[name].weights()]
        result.final_eval = float(eval_loss(params, x_eval, y_eval))
        result.ratio = statistics.median(t / lt for t, lt in zip(result.times, lamina_times))
        result.cpu_ratio = statistics.median(c / lc for c, lc in zip(result.cpu, results["lamina"].cpu))
    return [results[name] for name in names], initial


# -- first epoch in a fresh process ----------------------------------------------------------


def first_epoch_child(case_name: str, name: str) -> None:
    """Runs in a fresh process: time a new contender's first epoch, print it as JSON."""
    case = CASES[case_name]
    x, y = make_data(case)
    weights = initial_weights(case)
    if name.startswith("keras"):
        import keras  # noqa: F401 - imported before the clock starts, like jax and lamina
    start = time.perf_counter()
    contender = make_contender(name, case, x, y, weights)
    loss = contender.epoch()
    print(json.dumps({"seconds": time.perf_counter() - start, "loss": loss}))


def measure_first_epochs(results: list[Result], processes: int, log=print) -> None:
    """First-epoch time of each contender, ``processes`` fresh processes each, interleaved."""
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    for r in range(processes):
        order = results[r % len(results):] + results[: r % len(results)]
        for result in order:
            out = subprocess.run(
                [sys.executable, __file__, "--first-epoch-child", result.case.name, result.name],
                capture_output=True, text=True, env=env, check=True,
            )
            result.first_epoch.append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
            log(f"  {result.case.name}/{result.name}: first epoch in a fresh process "
                f"{result.first_epoch[-1]:.2f} s")


# -- report ---------------------------------------------------------------------------------


HEADER = ("case", "contender", "epoch s", "samples/s", "lamina / it", "target", "", "cpu s",
          "lamina / it (cpu)", "1st epoch s", "loss ep. 1", "final loss")


def verdict(result: Result) -> tuple[str, str]:
    target = result.case.target
    if target is None or target[0] != result.name:
        return "-", "-"
    return f">= {target[1]}x", "meets" if result.ratio >= target[1] else "misses"


def table_cells(results: list[Result]) -> list[tuple[str, ...]]:
    cells = []
    for r in results:
        target, met = verdict(r)
        first = f"{statistics.median(r.first_epoch):.2f}" if r.first_epoch else "-"
        ratio = "1 (ref)" if r.name == "lamina" else f"{r.ratio:.2f}x"
        cpu_ratio = "1 (ref)" if r.name == "lamina" else f"{r.cpu_ratio:.2f}x"
        cells.append((r.case.title, LABELS[r.name], f"{r.median:.3f}", f"{r.samples_per_s:,.0f}",
                      ratio, target, met, f"{r.cpu_median:.3f}", cpu_ratio, first,
                      f"{r.first_loss:.4f}", f"{r.final_eval:.4f}"))
    return cells


def print_table(results: list[Result], title: str) -> None:
    numeric = ("epoch s", "cpu s", "samples/s", "lamina / it", "lamina / it (cpu)", "1st epoch s", "loss ep. 1", "final loss")
    report.print_table(title, HEADER, table_cells(results), right_aligned=numeric, width=200)


def print_markdown(results: list[Result]) -> None:
    """The same table as Markdown, for benchmarks/RESULTS.md."""
    report.print_markdown(HEADER, table_cells(results))


def sanity(results: list[Result], initial: dict[str, float]) -> list[str]:
    """The loss checks; returns the problems found (also printed)."""
    problems = []
    for r in results:
        start = initial[r.case.name]
        ok = start > r.first_loss > r.final_eval
        print(f"  {r.case.name}/{r.name}: initial {start:.4f} > epoch 1 {r.first_loss:.4f} "
              f"> final {r.final_eval:.4f}: {'ok' if ok else 'NO'}")
        if not ok:
            problems.append(f"{r.case.name}/{r.name}: the loss does not fall")
        if r.compiles:
            print(f"  {r.case.name}/{r.name}: {r.compiles} XLA compilation(s) during the timed epochs")
            problems.append(f"{r.case.name}/{r.name}: compiled during the timed epochs")
    if not any(r.compiles for r in results):
        print("  no XLA compilation during any timed epoch")
    for case in dict.fromkeys(r.case for r in results):
        by_name = {r.name: r for r in results if r.case == case}
        lam, hand = by_name["lamina"].first_loss, by_name["hand"].first_loss
        close = abs(lam - hand) <= 0.1 * hand
        print(f"  {case.name}: loss after epoch 1, lamina {lam:.4f} vs hand loop {hand:.4f}: "
              f"{'within 10%' if close else 'NOT within 10%'}")
        if not close:
            problems.append(f"{case.name}: lamina and the hand loop disagree after one epoch")
    return problems


def main(argv=None) -> list[Result]:
    parser = argparse.ArgumentParser(description="lamina fit throughput vs hand-written JAX and Keras.")
    parser.add_argument("--quick", action="store_true", help="few repeats: a rough number in about a minute")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument("--cases", default="big,small", help="comma-separated: big, small")
    parser.add_argument("--first-epoch-child", nargs=2, metavar=("CASE", "CONTENDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.first_epoch_child:
        first_epoch_child(*args.first_epoch_child)
        return []
    repeats = {"big": 1, "small": 3} if args.quick else {"big": 9, "small": 15}
    processes = 0 if args.quick else 3

    import keras  # noqa: F401 - its import (a few seconds) out of every measurement

    results, initial = [], {}
    for name in args.cases.split(","):
        case = CASES[name]
        print(f"{case.title}: {repeats[name]} interleaved repeats", flush=True)
        case_results, initial[name] = measure_case(case, repeats[name], log=lambda s: print(s, flush=True))
        results += case_results
    if processes:
        print(f"first epochs, {processes} fresh processes per contender", flush=True)
        for name in args.cases.split(","):
            measure_first_epochs([r for r in results if r.case.name == name], processes,
                                 log=lambda s: print(s, flush=True))
    else:  # --quick: the warm-up epoch of the fresh model in this process stands in
        for r in results:
            r.first_epoch = [r.warmup]

    print("sanity:")
    sanity(results, initial)
    device = jax.devices()[0]
    counts = "/".join(str(repeats[n]) for n in args.cases.split(","))
    title = (f"fit throughput, {SAMPLES:,} samples/epoch, median of {counts} interleaved epochs "
             f"(jax {jax.__version__}, {device.platform}, {os.cpu_count()} cores)")
    print_table(results, title)
    first = (f"the median of {processes} fresh processes" if processes
             else "the warm-up epoch of a fresh model in this process (--quick)")
    print(f"1st epoch s: {first}")
    if args.markdown:
        print_markdown(results)
    return results


if __name__ == "__main__":
    main()
