"""What GroupedQueryAttention + RMSNormalization and stacked RNN cells cost in ``fit``: lamina
against the same networks written by hand (``jax.jit`` + optax), epochs interleaved in the
same run.

Two networks on synthetic data (4,096 samples, seed 0; labels from a fixed random linear
"teacher" of the sequence mean), batch 64, Adam(1e-3), sparse cross-entropy on logits:

- **gqa**: sequences (32, 64) -> x + GroupedQueryAttention(head_dim=16, num_query_heads=8,
  num_key_value_heads=2)(x, x, use_causal_mask=True) -> RMSNormalization -> mean over time
  -> Dense(10). The hand step projects with einsums, repeats the key/value heads and calls
  ``jax.nn.dot_product_attention(is_causal=True)`` (the kernel lamina's fused path takes).
- **stacked**: sequences (20, 16) -> RNN(StackedRNNCells([LSTMCell(64), LSTMCell(64)])) ->
  Dense(10). The hand step is one ``lax.scan`` running both LSTM cells per timestep
  (Keras's gate order i, f, c, o).

``lamina fit`` (``epochs=1, verbose=0, shuffle=True``, default ``steps_per_execution``) against a
hand-written per-step loop: data on the device once, a NumPy permutation sent per epoch, one
jitted step per batch (parameters, optimizer state and loss sum donated). Both start from
lamina's initial weights. Each repeat times one epoch of each, the order alternating (AB,
BA, ...); the table gives each side's median epoch time and the median of the per-repeat
ratios hand / lamina of wall and CPU time (>= 1.0: lamina as fast). Sanity checks printed
first: both losses fall, lamina's first-epoch loss is within 10% of the hand loop's, and no
timed epoch compiled anything.

    python benchmarks/attention_rnn_layers.py            # 7 repeats per network, a few minutes
    python benchmarks/attention_rnn_layers.py --quick    # 3 repeats
    python benchmarks/attention_rnn_layers.py --case gqa
"""

from __future__ import annotations

import argparse

import fit_harness  # benchmarks/fit_harness.py, beside this script
import jax
import jax.numpy as jnp
import numpy as np
import optax

import lamina as lm

SAMPLES, CLASSES, BATCH, SEED = 4096, 10, 64, 0
HEAD_DIM, QUERY_HEADS, KV_HEADS, EPSILON = 16, 8, 2, 1e-6
SHAPES = {"gqa": (32, 64), "stacked": (20, 16)}
UNITS = 64


def make_data(case):
    rng = np.random.default_rng(SEED)
    steps, features = SHAPES[case]
    x = rng.standard_normal((SAMPLES, steps, features), dtype=np.float32)
    teacher = rng.standard_normal((features, CLASSES), dtype=np.float32)
    y = np.argmax(x.mean(axis=1) @ teacher, axis=1).astype(np.int32)
    return x, y


def lamina_model(case):
    lm.random.set_seed(SEED)
    inputs = lm.Input(SHAPES[case])
    if case == "gqa":
        attended = lm.layers.GroupedQueryAttention(HEAD_DIM, QUERY_HEADS, KV_HEADS)(inputs, inputs,
                                                                                 use_causal_mask=True)
        hidden = lm.layers.RMSNormalization(epsilon=EPSILON)(lm.layers.Add()([inputs, attended]))
        hidden = lm.layers.GlobalAveragePooling1D()(hidden)
    else:
        hidden = lm.layers.RNN(lm.layers.StackedRNNCells([lm.layers.LSTMCell(UNITS), lm.layers.LSTMCell(UNITS)]))(inputs)
    model = lm.Model(inputs, lm.layers.Dense(CLASSES)(hidden))
    model.compile(optimizer=lm.optimizers.Adam(1e-3), loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def gqa_forward(params, x):
    """The gqa network as a pure function of lamina's weights in order."""
    wq, bq, wk, bk, wv, bv, wo, bo, scale, wd, bd = params
    q = jnp.einsum("btm,muh->btuh", x, wq) + bq
    k = jnp.repeat(jnp.einsum("bsm,mvh->bsvh", x, wk) + bk, QUERY_HEADS // KV_HEADS, axis=2)
    v = jnp.repeat(jnp.einsum("bsm,mvh->bsvh", x, wv) + bv, QUERY_HEADS // KV_HEADS, axis=2)
    attended = jax.nn.dot_product_attention(q, k, v, scale=HEAD_DIM ** -0.5, is_causal=True)
    h = x + jnp.einsum("btuh,uhm->btm", attended, wo) + bo
    h = h * jax.lax.rsqrt(jnp.mean(h * h, axis=-1, keepdims=True) + EPSILON) * scale
    return h.mean(axis=1) @ wd + bd


def _lstm(kernel, recurrent, bias, x, h, c):
    i, f, g, o = jnp.split(x @ kernel + h @ recurrent + bias, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c


def stacked_forward(params, x):
    """The stacked network as a pure function of lamina's weights in order."""
    k1, r1, b1, k2, r2, b2, wd, bd = params
    zeros = jnp.zeros((x.shape[0], UNITS), x.dtype)

    def step(carry, x_t):
        h1, c1, h2, c2 = carry
        h1, c1 = _lstm(k1, r1, b1, x_t, h1, c1)
        h2, c2 = _lstm(k2, r2, b2, h1, h2, c2)
        return (h1, c1, h2, c2), None

    (_, _, h2, _), _ = jax.lax.scan(step, (zeros,) * 4, jnp.swapaxes(x, 0, 1))
    return h2 @ wd + bd


def run(case, repeats):
    x, y = make_data(case)
    model = lamina_model(case)
    forward = gqa_forward if case == "gqa" else stacked_forward

    def loss_fn(params, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(forward(params, xb), yb).mean()

    hand = fit_harness.HandStepLoop(loss_fn, [np.asarray(w.value) for w in model.weights], x, y, BATCH, seed=SEED)
    result = fit_harness.race(fit_harness.LaminaFit(model, x, y, BATCH).epoch, hand.epoch, repeats)
    fit_harness.print_epochs(result, repeats, SAMPLES // BATCH, tag=case)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    parser.add_argument("--case", choices=sorted(SHAPES), action="append", help="one network (default: both)")
    args = parser.parse_args()
    for case in args.case or sorted(SHAPES):
        run(case, 3 if args.quick else 7)


if __name__ == "__main__":
    main()
