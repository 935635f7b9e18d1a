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

import fit_harness  # benchmarks/fit_harness.py, beside this script
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    x, y = make_data()
    model = lamina_model()

    def loss_fn(params, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(hand_forward(params, xb), yb).mean()

    hand = fit_harness.HandStepLoop(loss_fn, [np.asarray(w.value) for w in model.weights], x, y, BATCH, seed=SEED)
    result = fit_harness.race(fit_harness.LaminaFit(model, x, y, BATCH).epoch, hand.epoch, repeats)
    fit_harness.print_epochs(result, repeats, SAMPLES // BATCH)


if __name__ == "__main__":
    main()
