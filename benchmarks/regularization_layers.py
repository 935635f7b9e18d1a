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
import math

import fit_harness  # benchmarks/fit_harness.py, beside this script
import jax
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 9")
    args = parser.parse_args()
    repeats = 3 if args.quick else 9
    x, y = make_data()
    model = lamina_model()

    def loss_fn(params, key, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(hand_forward(params, key, xb), yb).mean()

    hand = fit_harness.HandStepLoop(loss_fn, [np.asarray(w.value) for w in model.weights], x, y, BATCH,
                                    key=jax.random.PRNGKey(SEED), seed=SEED)
    result = fit_harness.race(fit_harness.LaminaFit(model, x, y, BATCH).epoch, hand.epoch, repeats)
    fit_harness.print_epochs(result, repeats, SAMPLES // BATCH)


if __name__ == "__main__":
    main()
