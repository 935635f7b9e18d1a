"""The case optimizers.py and custom_optimizers.py race: ``fit`` epochs of an MLP 784-256-10
(ReLU, batch 128, 7,680 synthetic samples: 60 steps an epoch, sparse cross-entropy on logits)
against a hand-written ``jax.jit`` + optax loop applying the same rule.

- ``mlp()``: lamina's network, seeded and built (layers ``net/hidden`` and ``net/out``, so that
  an ``OptimizerMap`` can split them by path);
- ``Hand(transform, x, y, weights)``: the loop a JAX user writes with optax: data on the device
  once, one jitted step per batch (``lax.dynamic_slice`` of the batch, ``value_and_grad``, the
  transformation's ``update``, ``optax.apply_updates``; sequential batches as
  ``fit(shuffle=False)``), parameters and optimizer state donated;
- ``main(doc, cases, contenders, option)``: the command line (``--repeats``, ``--quick``, the
  cases) and the race of every case through fit_harness, printing one table.

Each script imports it from beside itself (``import optimizer_race``), as it does fit_harness.py.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable

import fit_harness  # benchmarks/fit_harness.py, beside this module
import jax
import jax.numpy as jnp
import numpy as np
import optax

import lamina as lm

SAMPLES, FEATURES, HIDDEN, CLASSES, BATCH, SEED = 7_680, 784, 256, 10, 128, 0


def make_data():
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((SAMPLES, FEATURES), dtype=np.float32)
    y = np.argmax(x @ rng.standard_normal((FEATURES, CLASSES), dtype=np.float32), axis=1).astype(np.int32)
    return x, y


def cross_entropy(params, x, y):
    w1, b1, w2, b2 = params
    logits = jax.nn.relu(x @ w1 + b1) @ w2 + b2
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def mlp():
    """The network, seeded and built (not compiled)."""
    lm.random.set_seed(SEED)
    return lm.Sequential([lm.Input((FEATURES,)), lm.layers.Dense(HIDDEN, activation="relu", name="hidden"),
                          lm.layers.Dense(CLASSES, name="out")], name="net")


class Hand:
    """The same network and rule with jax.jit and optax, starting from lamina's ``weights``; the
    parameters are a dict ``p0..p3`` (keys that sort like the weights, as lamina's own do)."""

    def __init__(self, transform, x, y, weights):
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


def main(doc: str, cases: list[str], contenders: Callable, option: str = "--cases") -> None:
    """Parse the command line (the description: ``doc``'s first line; ``option`` picks among
    ``cases``) and race each case: ``contenders(name, weights)`` gives lamina's optimizer
    and the hand loop's optax transformation for lamina's initial ``weights``; lamina's model
    is compiled with that optimizer and sparse cross-entropy on logits."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="5 repeats")
    parser.add_argument(option, nargs="*", default=cases, dest="cases")
    args = parser.parse_args()
    repeats = 5 if args.quick else args.repeats
    x, y = make_data()
    rows = []
    for name in args.cases:
        model = mlp()
        optimizer, transform = contenders(name, model.trainable_weights)
        model.compile(optimizer=optimizer, loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True))
        hand = Hand(transform, x, y, model.trainable_weights)
        result = fit_harness.race(fit_harness.LaminaFit(model, x, y, BATCH, shuffle=False).epoch, hand.epoch, repeats)
        rows.append(fit_harness.row(name, result, loss_digits=3))
        print(*rows[-1], flush=True)
    fit_harness.print_rows(
        f"fit epoch, MLP {FEATURES}-{HIDDEN}-{CLASSES}, batch {BATCH}, {SAMPLES // BATCH} steps; "
        f"{repeats} interleaved repeats; load average {os.getloadavg()[0]:.1f}", "optimizer", rows)
