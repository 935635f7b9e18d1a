"""How fast do lamina's recurrent layers train? ``fit`` step time vs Keras 3 and hand-written JAX.

The model of issue 10 (item 2): Embedding(1000, 32) -> LSTM(64) -> Dense(2) on logits, batch
128, sequences of 50 tokens, Adam(1e-3), sparse categorical cross-entropy; and the same with
GRU(64) (``reset_after=True``, Keras's default), or SimpleRNN(64) with ``--cells``. Synthetic
data (seed 0): 4,096 samples of uniform random tokens, labelled by whether the first half of a
sequence has the larger token mean (a learnable rule), so an epoch is 32 steps. Contenders,
all from the same initial weights (lamina's, copied):

  (1) ``lamina fit, spe=1``: ``model.fit(x, y, batch_size=128, epochs=1, verbose=0)`` with
      ``steps_per_execution=1``;
  (2) ``lamina fit, default``: the same with the default ``steps_per_execution="auto"``;
  (3) ``keras fit, spe=1``: Keras 3 on JAX, the same model, data and ``fit`` call;
  (4) ``hand jit step``: a hand-written ``jax.jit`` step (embedding gather, the recurrent layer
      as a ``lax.scan`` whose body does both matmuls, as Keras's cells do, Dense, optax adam with
      Keras's defaults), parameters and optimizer state donated, one call per batch, the batch
      indices sliced on the device from a permutation sent once per epoch (as in fit.py).

Method (as in fit.py and layers.py): after two warm-up epochs each (compilation), every repeat
runs one epoch of each contender, the order rotating from repeat to repeat (ABCD, BCDA, ...);
an epoch ends on a Python float of its loss, so asynchronous dispatch hides nothing. "ms/step"
is a contender's median epoch time over the repeats divided by 32 steps; "lamina / it" is the
contender's epoch time over lamina's (spe=1) epoch time, the median of the per-repeat ratios
(> 1: lamina is faster). "cpu ms/step" and "lamina / it (cpu)" are the same with this
process's CPU time (all threads): less sensitive to other jobs on a busy machine, a check on
what the wall-time ratio says. Target (on wall time): lamina fit (spe=1 and default) >= 1.0x
Keras 3.
Compilations during timed epochs are counted (``jax.monitoring``) and must be 0.

    python benchmarks/rnn.py              # full run (a few minutes on 2 busy cores)
    python benchmarks/rnn.py --quick      # under a minute, rougher numbers
    python benchmarks/rnn.py --cells LSTM # one layer only
    python benchmarks/rnn.py --markdown   # also print the table as Markdown
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import compile_counter  # noqa: E402  (benchmarks/compile_counter.py, beside this script)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import report  # noqa: E402  (benchmarks/report.py, beside this script)

import lamina as lm  # noqa: E402

SEED = 0
SAMPLES, STEPS, VOCAB, EMBED, UNITS, CLASSES, BATCH = 4096, 50, 1000, 32, 64, 2, 128
LEARNING_RATE = 1e-3



def make_data():
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, VOCAB, (SAMPLES, STEPS)).astype(np.int32)
    y = (x[:, : STEPS // 2].mean(axis=1) > x[:, STEPS // 2:].mean(axis=1)).astype(np.int32)
    return x, y


# -- contenders: each runs one epoch per call and returns its mean loss -----------------------


def lamina_model(cell: str, steps_per_execution):
    lm.random.set_seed(SEED)
    model = lm.Sequential([lm.layers.Input((STEPS,), dtype="int32"), lm.layers.Embedding(VOCAB, EMBED),
                           getattr(lm.layers, cell)(UNITS), lm.layers.Dense(CLASSES)])
    model.compile(optimizer=lm.optimizers.Adam(LEARNING_RATE),
                  loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=steps_per_execution)
    return model


def fit_epoch(model, x, y) -> Callable[[], float]:
    def epoch():
        history = model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=True)
        return float(history.history["loss"][-1])

    return epoch


def keras_model(cell: str, weights):
    import keras

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([keras.Input((STEPS,), dtype="int32"), keras.layers.Embedding(VOCAB, EMBED),
                              getattr(keras.layers, cell)(UNITS), keras.layers.Dense(CLASSES)])
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), steps_per_execution=1)
    return model


def lstm_step(params, x, states):
    kernel, recurrent_kernel, bias = params
    h, c = states
    z = x @ kernel + h @ recurrent_kernel + bias
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (h, c)


def gru_step(params, x, states):
    kernel, recurrent_kernel, bias = params
    (h,) = states
    x_z, x_r, x_h = jnp.split(x @ kernel + bias[0], 3, axis=-1)
    r_z, r_r, r_h = jnp.split(h @ recurrent_kernel + bias[1], 3, axis=-1)
    z = jax.nn.sigmoid(x_z + r_z)
    r = jax.nn.sigmoid(x_r + r_r)
    h = z * h + (1 - z) * jnp.tanh(x_h + r * r_h)
    return (h,)


def simple_rnn_step(params, x, states):
    kernel, recurrent_kernel, bias = params
    return (jnp.tanh(x @ kernel + bias + states[0] @ recurrent_kernel),)


STEP_FUNCTIONS = {"LSTM": (lstm_step, 2), "GRU": (gru_step, 1), "SimpleRNN": (simple_rnn_step, 1)}


def hand_loss(cell: str, params, x, y):
    embeddings, *recurrent, dense_kernel, dense_bias = params
    step, n_states = STEP_FUNCTIONS[cell]
    sequence = jnp.swapaxes(jnp.take(embeddings, x, axis=0), 0, 1)  # (time, batch, features)
    states = tuple(jnp.zeros((x.shape[0], UNITS), jnp.float32) for _ in range(n_states))

    def body(states, x_t):
        return step(recurrent, x_t, states), None

    states, _ = jax.lax.scan(body, states, sequence)
    logits = states[0] @ dense_kernel + dense_bias
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def hand_epoch(cell: str, weights, x, y) -> Callable[[], float]:
    optimizer = optax.adam(LEARNING_RATE, b1=0.9, b2=0.999, eps=1e-7)

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def step(params, opt_state, loss_sum, x, y, order, start):
        idx = jax.lax.dynamic_slice_in_dim(order, start, BATCH)
        loss, grads = jax.value_and_grad(functools.partial(hand_loss, cell))(params, x[idx], y[idx])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss_sum + loss

    params = [jnp.array(w) for w in weights]
    state = [params, optimizer.init(params)]
    x, y = jax.device_put(x), jax.device_put(y)
    rng = np.random.default_rng(SEED)

    def epoch():
        order = jax.device_put(rng.permutation(SAMPLES).astype(np.int32))
        params, opt_state, loss_sum = state[0], state[1], jnp.zeros((), jnp.float32)
        for i in range(SAMPLES // BATCH):
            params, opt_state, loss_sum = step(params, opt_state, loss_sum, x, y, order, i * BATCH)
        state[:] = [params, opt_state]
        return float(loss_sum) / (SAMPLES // BATCH)

    return epoch


# -- timing ---------------------------------------------------------------------------------


def interleave(units: dict[str, Callable[[], float]], repeats: int, warmup: int = 2):
    """Epoch seconds (wall and CPU) of every unit for each repeat, the order rotating; also each
    unit's loss after its first epoch, and the compilations seen during timed epochs."""
    first_loss = {}
    for name, fn in units.items():
        first_loss[name] = fn()
        for _ in range(warmup - 1):
            fn()
    names = list(units)
    times = {n: [] for n in names}
    cpu = {n: [] for n in names}
    compiles_before = compile_counter.compilations()
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(repeats):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                start, start_cpu = time.perf_counter(), time.process_time()
                units[name]()
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times, cpu, first_loss, compile_counter.compilations() - compiles_before


LAMINA = "lamina fit, spe=1"


def measure(cell: str, repeats: int):
    x, y = make_data()
    lamina_1 = lamina_model(cell, 1)
    weights = [np.asarray(w.value) for w in lamina_1.weights]
    lamina_auto = lamina_model(cell, "auto")
    lamina_auto.set_weights(weights)
    units = {
        LAMINA: fit_epoch(lamina_1, x, y),
        "lamina fit, default": fit_epoch(lamina_auto, x, y),
        "keras fit, spe=1": fit_epoch(keras_model(cell, weights), x, y),
        "hand jit step": hand_epoch(cell, weights, x, y),
    }
    times, cpu, first_loss, compiles = interleave(units, repeats)
    steps = SAMPLES // BATCH
    rows = []
    for name, ts in times.items():
        ratio = cpu_ratio = None
        if name != LAMINA:
            ratio = statistics.median(t / l for t, l in zip(ts, times[LAMINA]))
            cpu_ratio = statistics.median(c / l for c, l in zip(cpu[name], cpu[LAMINA]))
        rows.append((cell, name, statistics.median(ts) / steps * 1e3, ratio,
                     statistics.median(cpu[name]) / steps * 1e3, cpu_ratio, first_loss[name]))
    # The target is on the default too: its speed against Keras, per repeat.
    default_vs_keras = statistics.median(k / d for k, d in zip(times["keras fit, spe=1"], times["lamina fit, default"]))
    return rows, default_vs_keras, compiles


HEADER = ("layer", "contender", "ms/step", "lamina / it", "cpu ms/step", "lamina / it (cpu)", "loss, epoch 1")


def cells_of(rows):
    def ratio(r):
        return "-" if r is None else f"{r:.2f}x"

    return [(c, n, f"{ms:.2f}", ratio(r), f"{cms:.2f}", ratio(cr), f"{loss:.4f}")
            for c, n, ms, r, cms, cr, loss in rows]


def main(argv=None):
    parser = argparse.ArgumentParser(description="lamina RNN training step time vs Keras 3 and hand JAX.")
    parser.add_argument("--quick", action="store_true", help="few repeats: a rough number fast")
    parser.add_argument("--cells", nargs="+", default=["LSTM", "GRU"], choices=sorted(STEP_FUNCTIONS),
                        help="the recurrent layers to measure (default: LSTM GRU)")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 11
    rows, verdicts, compiles = [], [], 0
    for cell in args.cells:
        cell_rows, default_vs_keras, c = measure(cell, repeats)
        rows += cell_rows
        compiles += c
        spe1_vs_keras = next(row[3] for row in cell_rows if row[1] == "keras fit, spe=1")
        verdicts.append((cell, spe1_vs_keras, default_vs_keras))
    title = (f"lamina RNN fit, Embedding({VOCAB}, {EMBED}) -> layer({UNITS}) -> Dense({CLASSES}), batch {BATCH}, "
             f"seq {STEPS}, median of {repeats} interleaved epochs of {SAMPLES // BATCH} steps "
             f"(jax {jax.__version__}, {jax.devices()[0].platform}, {os.cpu_count()} cores, "
             f"load {os.getloadavg()[0]:.2f})")
    report.print_table(title, HEADER, cells_of(rows), width=130,
                       right_aligned=("ms/step", "lamina / it", "cpu ms/step", "lamina / it (cpu)"))
    print(f"compilations during timed epochs: {compiles}")
    for cell, spe1, default in verdicts:
        for label, ratio in (("spe=1", spe1), ("default", default)):
            print(f"target {cell}: lamina fit ({label}) vs keras fit {ratio:.2f}x, >= 1.0x: "
                  f"{'meets' if ratio >= 1.0 else 'misses'}")
    if args.markdown:
        report.print_markdown(HEADER, cells_of(rows))
    return rows


if __name__ == "__main__":
    main()
