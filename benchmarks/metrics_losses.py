"""What do the IoU / constrained-rate metrics and the CTC loss cost in ``fit``? Epochs against
hand-written ``jax.jit`` + optax loops computing the same things.

Two cases, synthetic data (seed 0), SGD(0.01), ``fit(epochs=1, shuffle=False)`` with lamina's
defaults (``steps_per_execution="auto"``):

- **metrics**: MLP 64-64-4 (softmax), one-hot labels, categorical cross-entropy, batch 128,
  32,768 samples (256 steps), compiled with ``OneHotMeanIoU(4, dtype="float32")`` and
  ``PrecisionAtRecall(0.5, class_id=1)`` (200 thresholds). The hand step also accumulates a
  4x4 confusion matrix and the four counts at 200 evenly spaced thresholds (bucketed reverse
  cumulative sums, as lamina and Keras do) and computes both results once per epoch.
- **plain**: the same without the metrics on either side: what ``fit`` itself costs here, to
  read the metrics row against.
- **ctc**: Dense(16 -> 8) on sequences of 30 steps, labels of up to 6 classes padded with 0,
  ``lm.losses.CTC()``, batch 64, 2,048 samples; the hand loss is ``optax.ctc_loss`` with the
  same padding convention, 8,192 samples (128 steps).

Method: one warm-up epoch each (compilation), then ``--repeats`` rounds of one epoch of each
side, the order alternating (AB, BA, ...); an epoch ends when its loss is a Python float.
Printed: the first epoch's mean loss on each side (a check: the same numbers), each side's
median epoch time, the median over rounds of the per-round ratio hand / lamina of wall and
of CPU time (< 1: lamina slower), and the compilations the timed epochs did (should be 0).

    python benchmarks/metrics_losses.py            # a couple of minutes on 2 busy cores
    python benchmarks/metrics_losses.py --quick    # a few repeats, rougher
"""

from __future__ import annotations

import argparse
import functools
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import fit_harness  # noqa: E402  (benchmarks/fit_harness.py, beside this script)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import lamina as lm  # noqa: E402

LR, SEED, THRESHOLDS = 0.01, 0, 200


def metrics_data():
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((32_768, 64), dtype=np.float32)
    y = np.eye(4, dtype=np.float32)[np.argmax(x @ rng.standard_normal((64, 4), dtype=np.float32), axis=1)]
    return x, y


def ctc_data():
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((8_192, 30, 16), dtype=np.float32)
    lengths = rng.integers(1, 7, 8_192)
    y = rng.integers(1, 8, (8_192, 6)) * (np.arange(6)[None] < lengths[:, None])
    return x, y.astype(np.int32)


def lamina_model(case):
    """The case's compiled model and its batch size."""
    lm.random.set_seed(SEED)
    if case in ("metrics", "plain"):
        model = lm.Sequential([lm.Input((64,)), lm.layers.Dense(64, activation="relu"),
                               lm.layers.Dense(4, activation="softmax")])
        metrics = [lm.metrics.OneHotMeanIoU(4, dtype="float32"), lm.metrics.PrecisionAtRecall(0.5, class_id=1)]
        model.compile(lm.optimizers.SGD(LR), "categorical_crossentropy", metrics=metrics if case == "metrics" else None)
        return model, 128
    model = lm.Sequential([lm.Input((30, 16)), lm.layers.Dense(8)])
    model.compile(lm.optimizers.SGD(LR), lm.losses.CTC())
    return model, 64


def _counts(y_true, y_pred):
    """The four counts at evenly spaced thresholds of one batch's class-1 scores."""
    labels, scores = y_true[:, 1], y_pred[:, 1]
    buckets = jnp.ceil(jnp.clip(scores, 0, 1) * (THRESHOLDS - 1)).astype(jnp.int32) - 1
    pos = jax.ops.segment_sum(labels, buckets, num_segments=THRESHOLDS)
    neg = jax.ops.segment_sum(1 - labels, buckets, num_segments=THRESHOLDS)
    tp, fp = jnp.cumsum(pos[::-1])[::-1], jnp.cumsum(neg[::-1])[::-1]
    return jnp.stack([tp, fp, jnp.sum(1 - labels) - fp, jnp.sum(labels) - tp])


class Hand:
    """The same network, loss and metrics, written with jax.jit and optax."""

    def __init__(self, case, x, y, model, batch):
        self.case, self.batch = case, batch
        self.params = [jnp.array(w.numpy()) for w in model.trainable_weights]
        transform = optax.sgd(LR)
        self.opt_state = transform.init(self.params)
        self.x, self.y = jax.device_put(x), jax.device_put(y)
        self.steps = len(x) // self.batch

        def forward(params, xb):
            if case != "ctc":
                w1, b1, w2, b2 = params
                return jax.nn.softmax(jax.nn.relu(xb @ w1 + b1) @ w2 + b2)
            w, b = params
            return xb @ w + b

        def loss_fn(params, xb, yb):
            out = forward(params, xb)
            if case != "ctc":
                p = jnp.clip(out / jnp.sum(out, -1, keepdims=True), 1e-7, 1 - 1e-7)  # Keras's order
                return -jnp.mean(jnp.sum(yb * jnp.log(p), -1)), out
            paddings = (jnp.arange(yb.shape[1])[None] >= jnp.sum(yb != 0, -1, keepdims=True)).astype(out.dtype)
            return jnp.mean(optax.ctc_loss(out, jnp.zeros(out.shape[:2]), yb, paddings)), out

        @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
        def step(params, opt_state, stats, x, y, start):
            xb = jax.lax.dynamic_slice_in_dim(x, start, self.batch)
            yb = jax.lax.dynamic_slice_in_dim(y, start, self.batch)
            (loss, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, xb, yb)
            updates, opt_state = transform.update(grads, opt_state, params)
            loss_sum, cm, counts = stats
            if case == "metrics":
                rows, cols = jnp.argmax(yb, -1), jnp.argmax(out, -1)
                cm = cm.at[rows, cols].add(1.0)
                counts = counts + _counts(yb, out)
            return optax.apply_updates(params, updates), opt_state, (loss_sum + loss, cm, counts)

        @jax.jit
        def results(cm, counts):
            tp = jnp.diag(cm)
            union = cm.sum(0) + cm.sum(1) - tp
            iou = jnp.sum(jnp.where(union > 0, tp / (union + 1e-7), 0)) / (jnp.sum(union > 0) + 1e-7)
            tp_t, fp_t, _, fn_t = counts
            recall = jnp.where(tp_t + fn_t > 0, tp_t / jnp.maximum(tp_t + fn_t, 1e-12), 0)
            precision = jnp.where(tp_t + fp_t > 0, tp_t / jnp.maximum(tp_t + fp_t, 1e-12), 0)
            return iou, jnp.max(jnp.where(recall >= 0.5, precision, 0), initial=0.0)

        self.step, self.results = step, results

    def epoch(self) -> float:
        stats = (jnp.zeros((), jnp.float32), jnp.zeros((4, 4), jnp.float32), jnp.zeros((4, THRESHOLDS), jnp.float32))
        state = (self.params, self.opt_state, stats)
        for i in range(self.steps):
            state = self.step(*state, self.x, self.y, i * self.batch)
        self.params, self.opt_state, (loss_sum, cm, counts) = state
        if self.case == "metrics":
            jax.block_until_ready(self.results(cm, counts))  # fit reports its metrics each epoch too
        return float(loss_sum) / self.steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="5 repeats")
    parser.add_argument("--cases", nargs="*", default=["plain", "metrics", "ctc"])
    args = parser.parse_args()
    repeats = 5 if args.quick else args.repeats
    rows = []
    for case in args.cases:
        x, y = ctc_data() if case == "ctc" else metrics_data()
        model, batch = lamina_model(case)
        hand = Hand(case, x, y, model, batch)
        result = fit_harness.race(fit_harness.LaminaFit(model, x, y, batch, shuffle=False).epoch, hand.epoch, repeats)
        rows.append(fit_harness.row(case, result))
        print(*rows[-1], flush=True)
    fit_harness.print_rows(
        f"fit epoch with the IoU/PrecisionAtRecall metrics and with the CTC loss; {repeats} interleaved repeats; "
        f"load average {os.getloadavg()[0]:.1f}", "case", rows)


if __name__ == "__main__":
    main()
