"""What the activation and regularization layers cost in ``fit``: lamina against the same
network written by hand (``jax.jit`` + optax), epochs interleaved in the same run.

The network, on synthetic data (8,192 samples of 784 random float32 features, labels from a
fixed random linear teacher, seed 0), batch 128, Adam(1e-3), sparse cross-entropy on logits:

    Dense(256) -> PReLU -> GaussianNoise(0.1) -> Dense(256) -> LeakyReLU(0.2)
    -> AlphaDropout(0.1) -> GaussianDropout(0.1) -> Dense(10)

``lamina fit`` (``epochs=1, verbose=0, shuffle=True``, default ``steps_per_execution``) against
a hand-written per-step loop: data on the device once, a NumPy permutation sent per epoch, one
jitted step per batch (parameters, optimizer state, PRNG key and loss sum donated) computing
the same formulas, its three noise draws from one key split per step, as lamina's seed
generators do. Both start from lamina's initial weights. Each repeat times one epoch of each,
the order alternating (AB, BA, ...); the table gives each side's median epoch time and the
median of the per-repeat ratios hand / lamina of wall and CPU time (>= 1.0: lamina as fast).
Sanity checks printed first: both losses fall, lamina's first-epoch loss is within 10% of the
hand loop's, and no timed epoch compiled anything.

    python benchmarks/regularization_layers.py            # 9 repeats, about a minute
    python benchmarks/regularization_layers.py --quick    # 3 repeats
"""

from __future__ import annotations

import argparse
import functools
import gc
import math
import statistics
import time

import compile_counter  # benchmarks/compile_counter.py, beside this script
import jax
import jax.numpy as jnp
import numpy as np
import optax

import lamina as lm

SAMPLES, FEATURES, HIDDEN, CLASSES, BATCH = 8192, 784, 256, 10, 128
NOISE, ALPHA_RATE, GAUSS_RATE, SLOPE = 0.1, 0.1, 0.1, 0.2
SEED = 0
_SELU = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946


def make_data():
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((SAMPLES, FEATURES), dtype=np.float32)
    y = np.argmax(x @ rng.standard_normal((FEATURES, CLASSES), dtype=np.float32), axis=1).astype(np.int32)
    return x, y


def lamina_model():
    lm.random.set_seed(SEED)
    model = lm.Sequential([
        lm.Input((FEATURES,)), lm.layers.Dense(HIDDEN), lm.layers.PReLU(alpha_initializer=lm.initializers.Constant(0.1)),
        lm.layers.GaussianNoise(NOISE), lm.layers.Dense(HIDDEN), lm.layers.LeakyReLU(SLOPE),
        lm.layers.AlphaDropout(ALPHA_RATE), lm.layers.GaussianDropout(GAUSS_RATE), lm.layers.Dense(CLASSES),
    ])
    model.compile(optimizer=lm.optimizers.Adam(1e-3), loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def hand_forward(params, key, x):
    """The same network in training mode, as a pure function of [w1, b1, alpha, w2, b2, w3, b3]."""
    w1, b1, alpha, w2, b2, w3, b3 = params
    k_noise, k_alpha, k_gauss = jax.random.split(key, 3)
    h = x @ w1 + b1
    h = jax.nn.relu(h) - alpha * jax.nn.relu(-h)
    h = h + NOISE * jax.random.normal(k_noise, h.shape)
    h = jax.nn.leaky_relu(h @ w2 + b2, SLOPE)
    kept = (jax.random.uniform(k_alpha, h.shape) >= ALPHA_RATE).astype(h.dtype)
    a = ((1 - ALPHA_RATE) * (1 + ALPHA_RATE * _SELU**2)) ** -0.5
    h = a * (h * kept + _SELU * (1 - kept)) - a * _SELU * ALPHA_RATE
    h = h * (1.0 + math.sqrt(GAUSS_RATE / (1 - GAUSS_RATE)) * jax.random.normal(k_gauss, h.shape))
    return h @ w3 + b3


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

        def loss_fn(params, key, xb, yb):
            return optax.softmax_cross_entropy_with_integer_labels(hand_forward(params, key, xb), yb).mean()

        @functools.partial(jax.jit, donate_argnums=(0, 1, 2, 3), static_argnames=("size",))
        def step(params, opt_state, key, loss_sum, x, y, order, start, size):
            idx = jax.lax.dynamic_slice_in_dim(order, start, size)
            key, draw = jax.random.split(key)
            loss, grads = jax.value_and_grad(loss_fn)(params, draw, x[idx], y[idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, key, loss_sum + loss * size

        self.step = step
        self.params = [jnp.array(w) for w in weights]
        self.opt_state = optimizer.init(self.params)
        self.key = jax.random.PRNGKey(SEED)
        self.x, self.y = jax.device_put(x), jax.device_put(y)
        self.rng = np.random.default_rng(SEED)

    def epoch(self) -> float:
        order = jax.device_put(self.rng.permutation(SAMPLES).astype(np.int32))
        state = (self.params, self.opt_state, self.key, jnp.zeros((), jnp.float32))
        for i in range(SAMPLES // BATCH):
            state = self.step(*state, self.x, self.y, order, i * BATCH, size=BATCH)
        self.params, self.opt_state, self.key, loss_sum = state
        return float(loss_sum) / SAMPLES


def timed(fn):
    gc.collect()
    compiled = compile_counter.compilations()
    start, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - start, time.process_time() - cpu, value, compile_counter.compilations() - compiled


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 9")
    args = parser.parse_args()
    repeats = 3 if args.quick else 9
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
