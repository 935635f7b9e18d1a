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

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import fit_harness  # noqa: E402  (benchmarks/fit_harness.py, beside this script)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
import optimizer_race  # noqa: E402  (benchmarks/optimizer_race.py, beside this script: the case, the hand loop)

import lamina as lm  # noqa: E402

# The Keras guide's custom optimizer, written once and shared with the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "optimizers"))
from optimizer_cases import momentum_sgd  # noqa: E402

CASES = ["MomentumSGD", "SGD", "ScheduleFreeAdamW", "MultiOptimizer"]
MomentumSGD = momentum_sgd(lm.optimizers.Optimizer)  # the Keras 3 custom-optimizer pattern


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


def contenders(name, weights):
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


if __name__ == "__main__":
    optimizer_race.main(__doc__, CASES, contenders)
