"""What do Keras-style optimizers cost in ``fit``? An ``update_step`` subclass (the Keras 3
custom-optimizer pattern), ``ScheduleFreeAdamW`` (written that way too) and a
``MultiOptimizer`` against hand-written ``jax.jit`` + optax loops applying the same rules.

The case: MLP 784-256-10 (ReLU), batch 128, 7,680 synthetic samples (60 steps an epoch),
sparse cross-entropy on logits. Contenders:

- ``MomentumSGD``: the Keras guide's custom optimizer (``build`` with
  ``add_optimizer_variables``, ``update_step`` with ``self.assign``), lr 0.01, momentum 0.9;
  the hand loop applies ``optax.chain(scale_by_learning_rate, trace(0.9))``, the same rule;
- ``SGD(momentum=0.9)``, lamina's built-in (optax-based) optimizer, against the same hand
  loop: the reference the ``update_step`` path should match;
- ``ScheduleFreeAdamW`` (lr 1e-3), against Keras's schedule-free rule written as an optax
  ``GradientTransformation``;
- ``MultiOptimizer``: Adam for the hidden layer, SGD for the output layer (an ``OptimizerMap``),
  against ``optax.multi_transform`` with the same split.

Method: fit_harness.race: one warm-up epoch each (compilation), then ``--repeats`` rounds of one
epoch of each contender, the order alternating; printed: the first epoch's mean loss on both
sides (a check), median epoch times, median per-round hand / lamina ratios of wall and CPU time
(< 1: lamina slower), and the compilations the timed epochs did (should be 0).

    python benchmarks/custom_optimizers.py            # a few minutes on 2 busy cores
    python benchmarks/custom_optimizers.py --quick    # 5 repeats, rougher
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

SAMPLES, FEATURES, HIDDEN, CLASSES, BATCH, SEED = 7_680, 784, 256, 10, 128, 0
CASES = ["MomentumSGD", "SGD", "ScheduleFreeAdamW", "MultiOptimizer"]


class MomentumSGD(lm.optimizers.Optimizer):
    """The Keras 3 custom-optimizer pattern, as a Keras user writes it."""

    def __init__(self, learning_rate=0.01, momentum=0.9, name="momentum_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = momentum

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.momentums = self.add_optimizer_variables(var_list, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        m = self.momentums[self._get_variable_index(variable)]
        self.assign(m, self.momentum * m - learning_rate * gradient)
        self.assign_add(variable, m)


def schedule_free_keras(lr, b1=0.9, b2=0.999, eps=1e-8) -> optax.GradientTransformation:
    """Keras's ScheduleFreeAdamW rule by hand: ``z`` from the weights, ``v`` zeros; the update
    moves each weight ``y`` to ``(1 - b1) z + b1 x`` with ``x`` the 1/step average of ``z``."""

    def init(params):
        return {"z": jax.tree.map(jnp.copy, params), "v": jax.tree.map(jnp.zeros_like, params),
                "count": jnp.zeros((), jnp.int32)}

    def update(grads, state, params):
        step = (state["count"] + 1).astype(jnp.float32)

        def one(g, z, v, y):
            v = v + (g * g - v) * (1 - b2)
            z_new = z - lr * g / (jnp.sqrt(v / (1 - b2 ** step)) + eps)
            x_new = (1 - 1 / step) * ((y - (1 - b1) * z) / b1) + z_new / step
            return (1 - b1) * z_new + b1 * x_new - y, z_new, v

        out = jax.tree.map(one, grads, state["z"], state["v"], params)
        pick = lambda i: jax.tree.map(lambda t: t[i], out, is_leaf=lambda t: isinstance(t, tuple))  # noqa: E731
        return pick(0), {"z": pick(1), "v": pick(2), "count": state["count"] + 1}

    return optax.GradientTransformation(init, update)


def make_data():
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((SAMPLES, FEATURES), dtype=np.float32)
    y = np.argmax(x @ rng.standard_normal((FEATURES, CLASSES), dtype=np.float32), axis=1).astype(np.int32)
    return x, y


def cross_entropy(params, x, y):
    w1, b1, w2, b2 = params
    logits = jax.nn.relu(x @ w1 + b1) @ w2 + b2
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def contenders(name):
    """(lamina optimizer, the hand loop's optax transformation over params p0..p3)."""
    if name == "MomentumSGD":
        return MomentumSGD(0.01, 0.9), optax.chain(optax.scale_by_learning_rate(0.01), optax.trace(0.9))
    if name == "SGD":
        return lm.optimizers.SGD(0.01, momentum=0.9), optax.chain(optax.scale_by_learning_rate(0.01),
                                                                 optax.trace(0.9))
    if name == "ScheduleFreeAdamW":
        return lm.optimizers.ScheduleFreeAdamW(1e-3), schedule_free_keras(1e-3)
    opt_map = lm.optimizers.OptimizerMap(lm.optimizers.SGD(0.01), {"net/hidden/.*": lm.optimizers.Adam(1e-3)})
    labels = {"p0": "adam", "p1": "adam", "p2": "sgd", "p3": "sgd"}
    return (lm.optimizers.MultiOptimizer(opt_map),
            optax.multi_transform({"adam": fit_harness.keras_adam(1e-3), "sgd": optax.sgd(0.01)}, labels))


def lamina_model(optimizer):
    lm.random.set_seed(SEED)
    model = lm.Sequential([lm.Input((FEATURES,)), lm.layers.Dense(HIDDEN, activation="relu", name="hidden"),
                           lm.layers.Dense(CLASSES, name="out")], name="net")
    model.compile(optimizer=optimizer, loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class Hand:
    """The same network and rule with jax.jit and optax: data on the device once, one jitted
    step per batch (sequential batches, as ``fit(shuffle=False)``), everything carried donated."""

    def __init__(self, transform, x, y, model):
        keys = [f"p{i}" for i in range(len(model.trainable_weights))]

        @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
        def step(params, opt_state, loss_sum, x, y, start):
            xb = jax.lax.dynamic_slice_in_dim(x, start, BATCH)
            yb = jax.lax.dynamic_slice_in_dim(y, start, BATCH)
            loss, grads = jax.value_and_grad(cross_entropy)([params[k] for k in keys], xb, yb)
            updates, opt_state = transform.update(dict(zip(keys, grads)), opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss_sum + loss

        self.step = step
        self.params = {k: jnp.array(w.numpy()) for k, w in zip(keys, model.trainable_weights)}
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
    parser.add_argument("--cases", nargs="*", default=CASES)
    args = parser.parse_args()
    repeats = 5 if args.quick else args.repeats
    x, y = make_data()
    rows = []
    for name in args.cases:
        optimizer, transform = contenders(name)
        model = lamina_model(optimizer)
        hand = Hand(transform, x, y, model)
        result = fit_harness.race(fit_harness.LaminaFit(model, x, y, BATCH, shuffle=False).epoch, hand.epoch, repeats)
        rows.append(fit_harness.row(name, result, loss_digits=3))
        print(*rows[-1], flush=True)
    fit_harness.print_rows(
        f"fit epoch, MLP {FEATURES}-{HIDDEN}-{CLASSES}, batch {BATCH}, {SAMPLES // BATCH} steps; "
        f"{repeats} interleaved repeats; load average {os.getloadavg()[0]:.1f}", "optimizer", rows)


if __name__ == "__main__":
    main()
