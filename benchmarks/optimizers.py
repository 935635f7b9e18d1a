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

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax.numpy as jnp  # noqa: E402
import optimizer_race  # noqa: E402  (benchmarks/optimizer_race.py, beside this script: the case, the hand loop)

import lamina as lm  # noqa: E402

LR = 1e-3
NAMES = ["Adadelta", "Adafactor", "Adamax", "Ftrl", "Lamb", "Muon", "Nadam"]


def contenders(name, weights):
    """(lamina's optimizer, the hand loop's transformation: the pure optax one lamina's
    optimizer builds, so that both sides compute the same numbers)."""
    optimizer = getattr(lm.optimizers, name)(learning_rate=LR)
    if name == "Muon":  # the masks come from the weights' paths, as lamina's Muon's
        optimizer._uses_adamw = [optimizer.should_use_adamw(w) for w in weights]
        optimizer._weight_decays = [True] * len(weights)
    transform = optimizer.make_update_transform(jnp.float32(LR))
    return getattr(lm.optimizers, name)(learning_rate=LR), transform


if __name__ == "__main__":
    optimizer_race.main(__doc__, NAMES, contenders, option="--names")
