"""How much does lamina's optimizer machinery cost? ``fit`` epochs with Adadelta, Adafactor,
Adamax, Ftrl, Lamb, Muon and Nadam against a hand-written ``jax.jit`` + optax loop applying the
same update rule.

The case: MLP 784-256-10 (ReLU), batch 128, 7,680 synthetic samples (60 steps an epoch),
sparse cross-entropy on logits, each optimizer at a learning rate of 1e-3 and Keras's other
defaults. The hand loop is what a JAX user writes with optax: data on the device once, one
jitted step per batch (``lax.dynamic_slice`` of the batch, ``value_and_grad``, the optax
transformation's ``update``, ``optax.apply_updates``), parameters and optimizer state donated.
Its transformation is the pure optax one lamina's optimizer builds (``optax.scale_by_adadelta``,
``scale_by_keras_nadam``, ``keras_adafactor``...; Muon's masks from the same paths), so both
sides compute the same numbers and the ratio measures only lamina: state in variables, the
step's bookkeeping, ``fit``'s loop. lamina runs ``fit(epochs=1, shuffle=False)`` with its
defaults (``steps_per_execution="auto"``).

Method: one warm-up epoch each (compilation), then ``--repeats`` rounds of one epoch of each
contender, the order alternating (AB, BA, ...); the epoch ends when its loss is a Python float.
Printed: the mean loss of the first epoch on each side (the same numbers: a check), each
side's median epoch time, the median over rounds of the per-round ratio hand / lamina of wall
and of CPU time (< 1: lamina slower), and the compilations the timed epochs did (should be 0).

    python benchmarks/optimizers.py            # about two minutes on 2 busy cores
    python benchmarks/optimizers.py --quick    # a few repeats, rougher
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

SAMPLES, FEATURES, HIDDEN, CLASSES, BATCH, LR, SEED = 7_680, 784, 256, 10, 128, 1e-3, 0
NAMES = ["Adadelta", "Adafactor", "Adamax", "Ftrl", "Lamb", "Muon", "Nadam"]


def make_data():
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((SAMPLES, FEATURES), dtype=np.float32)
    y = np.argmax(x @ rng.standard_normal((FEATURES, CLASSES), dtype=np.float32), axis=1).astype(np.int32)
    return x, y


def cross_entropy(params, x, y):
    w1, b1, w2, b2 = params
    logits = jax.nn.relu(x @ w1 + b1) @ w2 + b2
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def lamina_model(name):
    lm.random.set_seed(SEED)
    model = lm.Sequential([lm.Input((FEATURES,)), lm.layers.Dense(HIDDEN, activation="relu"), lm.layers.Dense(CLASSES)])
    model.compile(optimizer=getattr(lm.optimizers, name)(learning_rate=LR),
                  loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class Hand:
    """The same network and update rule, written with jax.jit and optax."""

    def __init__(self, name, x, y, model):
        weights = model.trainable_weights
        optimizer = getattr(lm.optimizers, name)(learning_rate=LR)
        if name == "Muon":  # the masks come from the weights' paths, as lamina's Muon's
            optimizer._uses_adamw = [optimizer.should_use_adamw(w) for w in weights]
            optimizer._weight_decays = [True] * len(weights)
        # The pure optax transformation lamina's optimizer applies; the dict keys only need to
        # sort like the weights, as lamina's own do.
        transform = optimizer.make_update_transform(jnp.float32(LR))
        keys = [f"p{i}" for i in range(len(weights))]

        @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
        def step(params, opt_state, loss_sum, x, y, start):
            xb = jax.lax.dynamic_slice_in_dim(x, start, BATCH)
            yb = jax.lax.dynamic_slice_in_dim(y, start, BATCH)
            loss, grads = jax.value_and_grad(cross_entropy)([params[k] for k in keys], xb, yb)
            updates, opt_state = transform.update(dict(zip(keys, grads)), opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss_sum + loss

        self.step = step
        self.params = {k: jnp.array(w.numpy()) for k, w in zip(keys, weights)}
        self.opt_state = transform.init(self.params)
        self.x, self.y = jax.device_put(x), jax.device_put(y)

    def epoch(self) -> float:
        state = (self.params, self.opt_state, jnp.zeros((), jnp.float32))
        for start in range(0, SAMPLES, BATCH):
            state = self.step(*state, self.x, self.y, start)
        self.params, self.opt_state, loss_sum = state
        return float(loss_sum) / (SAMPLES // BATCH)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="5 repeats")
    parser.add_argument("--names", nargs="*", default=NAMES)
    args = parser.parse_args()
    repeats = 5 if args.quick else args.repeats
    x, y = make_data()
    rows = []
    for name in args.names:
        model = lamina_model(name)
        hand = Hand(name, x, y, model)
        result = fit_harness.race(fit_harness.LaminaFit(model, x, y, BATCH, shuffle=False).epoch, hand.epoch, repeats)
        rows.append(fit_harness.row(name, result, loss_digits=3))
        print(*rows[-1], flush=True)
    fit_harness.print_rows(
        f"fit epoch, MLP {FEATURES}-{HIDDEN}-{CLASSES}, batch {BATCH}, {SAMPLES // BATCH} steps; "
        f"{repeats} interleaved repeats; load average {os.getloadavg()[0]:.1f}", "optimizer", rows)


if __name__ == "__main__":
    main()
