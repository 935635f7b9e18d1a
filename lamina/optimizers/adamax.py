"""``Adamax``: Keras's update written with optax's building blocks.

``optax.scale_by_adamax`` puts epsilon inside the running maximum
(``u = max(beta_2 * u, |g| + eps)``), Keras adds it after (``u = max(beta_2 * u, |g|)``, step
``m / ((1 - beta_1**t) * (u + eps))``): the states differ, so lamina writes Keras's rule as an
``optax.GradientTransformation``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from lamina.optimizers.adam_like import AdamLike


class ScaleByKerasAdamaxState(NamedTuple):
    """Keras's Adamax slots (``momentum``, the infinity ``norm``) and a step counter."""

    count: jax.Array
    momentum: optax.Updates
    norm: optax.Updates


def scale_by_keras_adamax(beta_1=0.9, beta_2=0.999, epsilon=1e-7) -> optax.GradientTransformation:
    """Keras 3's Adamax step without the learning rate: ``m / ((1 - beta_1**t) * (u + eps))``.

    Example:
        >>> import jax.numpy as jnp
        >>> t = scale_by_keras_adamax(epsilon=0.0)
        >>> update, _ = t.update({"w": jnp.array([2.0])}, t.init({"w": jnp.zeros(1)}))
        >>> round(float(update["w"][0]), 4)  # (0.1 * 2) / ((1 - 0.9) * 2)
        1.0
    """

    def init(params):
        return ScaleByKerasAdamaxState(count=jnp.zeros([], jnp.int32),
                                       momentum=optax.tree.zeros_like(params),
                                       norm=optax.tree.zeros_like(params))

    def update(updates, state, params=None):
        del params
        count = optax.safe_increment(state.count)
        momentum = jax.tree.map(lambda g, m: m + (g - m) * (1 - beta_1), updates, state.momentum)
        norm = jax.tree.map(lambda g, u: jnp.maximum(beta_2 * u, jnp.abs(g)), updates, state.norm)

        def step(m, u):
            correction = 1 - jnp.power(jnp.asarray(beta_1, m.dtype), count.astype(m.dtype))
            return m / (correction * (u + epsilon))

        return jax.tree.map(step, momentum, norm), ScaleByKerasAdamaxState(count, momentum, norm)

    return optax.GradientTransformation(init, update)


class Adamax(AdamLike):
    """Adamax (Keras 3's ``Adamax``): Adam with the infinity norm in place of the second moment.

    ``m = beta_1 * m + (1 - beta_1) * g``, ``u = max(beta_2 * u, |g|)``,
    ``w -= learning_rate * m / ((1 - beta_1**t) * (u + epsilon))``, Keras's numbers (see
    ``scale_by_keras_adamax``); the slots are ``momentum`` and ``norm`` as in Keras.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.array([1.0, 2.0]), name="w")
        >>> opt = lm.optimizers.Adamax(learning_rate=0.1, name="adamax")
        >>> opt.apply([jnp.array([0.5, -3.0])], [w])
        >>> [round(x, 4) for x in w.value.tolist()]
        [0.9, 2.1]
        >>> [v.name for v in opt.variables][2:]
        ['adamax/count', 'adamax/momentum/w', 'adamax/norm/w']
    """

    def make_transform(self):
        return scale_by_keras_adamax(self.beta_1, self.beta_2, self.epsilon)
