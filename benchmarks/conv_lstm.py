"""What ``ConvLSTM2D`` costs in ``fit``: lamina against the same network written by hand
(``jax.jit`` + optax, one ``lax.scan`` over time), epochs interleaved in the same run.

The network, on synthetic data (1,024 sequences of 6 frames of 16x16x1 random float32 pixels,
labels from a fixed random linear teacher of the mean frame, seed 0), batch 32, Adam(1e-3),
sparse cross-entropy on logits:

    ConvLSTM2D(8, 3, padding="same") -> Flatten -> Dense(10)

``lamina fit`` (``epochs=1, verbose=0, shuffle=True``, default ``steps_per_execution``) against
a hand-written per-step loop: data on the device once, a NumPy permutation sent per epoch, one
jitted step per batch (parameters, optimizer state and loss sum donated) whose forward pass is
what a JAX user writes: a ``lax.scan`` over the frames, each step one convolution of the
frame and one of the hidden state with all four gates' kernels, the LSTM gate formulas, then
the dense head. Both start from lamina's initial weights. Each repeat times one epoch of each,
the order alternating (AB, BA, ...); the table gives each side's median epoch time and the
median of the per-repeat ratios hand / lamina of wall and CPU time (>= 1.0: lamina as fast).
Sanity checks printed first: both losses fall, lamina's first-epoch loss is within 10% of the
hand loop's, and no timed epoch compiled anything.

    python benchmarks/conv_lstm.py            # 7 repeats, a few minutes on 2 busy cores
    python benchmarks/conv_lstm.py --quick    # 3 repeats
"""

from __future__ import annotations

import argparse
import functools
import gc
import statistics
import time

import compile_counter  # benchmarks/compile_counter.py, beside this script
import jax
import jax.numpy as jnp
import numpy as np
import optax

import lamina as lm

SAMPLES, STEPS, SIDE, FILTERS, CLASSES, BATCH = 1024, 6, 16, 8, 10, 32
SEED = 0


def make_data():
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((SAMPLES, STEPS, SIDE, SIDE, 1), dtype=np.float32)
    teacher = rng.standard_normal((SIDE * SIDE, CLASSES), dtype=np.float32)
    y = np.argmax(x.mean(axis=1).reshape(SAMPLES, -1) @ teacher, axis=1).astype(np.int32)
    return x, y


def lamina_model():
    lm.random.set_seed(SEED)
    model = lm.Sequential([lm.Input((STEPS, SIDE, SIDE, 1)), lm.layers.ConvLSTM2D(FILTERS, 3, padding="same"),
                           lm.layers.Flatten(), lm.layers.Dense(CLASSES)])
    model.compile(optimizer=lm.optimizers.Adam(1e-3), loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def hand_forward(params, x):
    """The same network as a pure function of [kernel, recurrent_kernel, bias, w, b]."""
    kernel, recurrent_kernel, bias, w, b = params
    dn = ("NHWC", "HWIO", "NHWC")

    def step(carry, frame):
        h, c = carry
        z = (jax.lax.conv_general_dilated(frame, kernel, (1, 1), "SAME", dimension_numbers=dn) + bias
             + jax.lax.conv_general_dilated(h, recurrent_kernel, (1, 1), "SAME", dimension_numbers=dn))
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), None

    zeros = jnp.zeros((x.shape[0], SIDE, SIDE, FILTERS), x.dtype)
    (h, _), _ = jax.lax.scan(step, (zeros, zeros), jnp.swapaxes(x, 0, 1))
    return h.reshape(h.shape[0], -1) @ w + b


class LaminaFit:
    def __init__(self, x, y):
        self.model = lamina_model()
        self.x, self.y = x, y

    def epoch(self) -> float:
        history = self.model.fit(self.x, self.y, batch_size=BATCH, epochs=1, verbose=0, shuffle=True)
        return float(history.history["loss"][-1])


class HandLoop:
    def __init__(self, x, y, weights):
        optimizer = optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-7)

        def loss_fn(params, xb, yb):
            return optax.softmax_cross_entropy_with_integer_labels(hand_forward(params, xb), yb).mean()

        @functools.partial(jax.jit, donate_argnums=(0, 1, 2), static_argnames=("size",))
        def step(params, opt_state, loss_sum, x, y, order, start, size):
            idx = jax.lax.dynamic_slice_in_dim(order, start, size)
            loss, grads = jax.value_and_grad(loss_fn)(params, x[idx], y[idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss_sum + loss * size

        self.step = step
        self.params = [jnp.array(w) for w in weights]
        self.opt_state = optimizer.init(self.params)
        self.x, self.y = jax.device_put(x), jax.device_put(y)
        self.rng = np.random.default_rng(SEED)

    def epoch(self) -> float:
        order = jax.device_put(self.rng.permutation(SAMPLES).astype(np.int32))
        state = (self.params, self.opt_state, jnp.zeros((), jnp.float32))
        for i in range(SAMPLES // BATCH):
            state = self.step(*state, self.x, self.y, order, i * BATCH, size=BATCH)
        self.params, self.opt_state, loss_sum = state
        return float(loss_sum) / SAMPLES


def timed(fn):
    gc.collect()
    compiled = compile_counter.compilations()
    start, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - start, time.process_time() - cpu, value, compile_counter.compilations() - compiled


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    x, y = make_data()
    lamina = LaminaFit(x, y)
    hand = HandLoop(x, y, [np.asarray(w.value) for w in lamina.model.weights])
    first = {"lamina": lamina.epoch(), "hand": hand.epoch()}  # warm-up: compiles
    wall = {"lamina": [], "hand": []}
    cpu = {"lamina": [], "hand": []}
    losses = {"lamina": [], "hand": []}
    compiles = 0
    for repeat in range(repeats):
        order = ("lamina", "hand") if repeat % 2 == 0 else ("hand", "lamina")
        for name in order:
            seconds, cpu_seconds, loss, compiled = timed((lamina if name == "lamina" else hand).epoch)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
            losses[name].append(loss)
            compiles += compiled
    print(f"loss after epoch 1: lamina {first['lamina']:.4f}, hand {first['hand']:.4f}; "
          f"last: lamina {losses['lamina'][-1]:.4f}, hand {losses['hand'][-1]:.4f}")
    assert losses["lamina"][-1] < first["lamina"] and losses["hand"][-1] < first["hand"], "a loss did not fall"
    assert abs(first["lamina"] - first["hand"]) <= 0.1 * first["hand"], "lamina's loss is off the hand loop's"
    assert compiles == 0, f"timed epochs compiled {compiles} programs"
    wall_ratio = statistics.median(h / m for h, m in zip(wall["hand"], wall["lamina"]))
    cpu_ratio = statistics.median(h / m for h, m in zip(cpu["hand"], cpu["lamina"]))
    print(f"{repeats} repeats, {SAMPLES // BATCH} steps per epoch")
    print(f"{'':22}{'epoch s':>9}{'cpu s':>9}")
    for name, label in (("lamina", "lamina fit"), ("hand", "hand jit step loop")):
        print(f"{label:22}{statistics.median(wall[name]):9.3f}{statistics.median(cpu[name]):9.3f}")
    print(f"hand / lamina: wall {wall_ratio:.2f}x, cpu {cpu_ratio:.2f}x (>= 1.0: lamina as fast)")


if __name__ == "__main__":
    main()
