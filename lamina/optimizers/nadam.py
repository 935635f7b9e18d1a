"""``Nadam``: Keras's update written with optax's building blocks.

Keras's Nadam is Dozat's, with the momentum schedule ``u_t = beta_1 * (1 - 0.5 * 0.96**t)``
and its running product; ``optax.nadam`` (``scale_by_adam(nesterov=True)``) has a constant
momentum, so lamina writes Keras's rule as an ``optax.GradientTransformation``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lamina.optimizers.adam_like import AdamLike


class ScaleByKerasNadamState(NamedTuple):
    """Keras's Nadam slots (``momentum``, ``velocity``), the product of the momentum schedule
    (``u_product``, one scalar as in Keras) and a step counter."""

    count: jax.Array
    momentum: optax.Updates
    velocity: optax.Updates
    u_product: jax.Array


def scale_by_keras_nadam(beta_1=0.9, beta_2=0.999, epsilon=1e-7) -> optax.GradientTransformation:
    """Keras 3's Nadam step without the learning rate.

    With ``u_t = beta_1 * (1 - 0.5 * 0.96**t)`` and ``P_t = u_1 * ... * u_t``:
    ``m_hat = u_{t+1} * m / (1 - P_{t+1}) + (1 - u_t) * g / (1 - P_t)``,
    ``v_hat = v / (1 - beta_2**t)``, step ``m_hat / (sqrt(v_hat) + epsilon)``.

    Example:
        >>> import jax.numpy as jnp
        >>> t = scale_by_keras_nadam()
        >>> state = t.init({"w": jnp.zeros(2)})
        >>> update, state = t.update({"w": jnp.array([1.0, -1.0])}, state)
        >>> [round(x, 3) for x in update["w"].tolist()], round(float(state.u_product), 4)
        ([1.063, -1.063], 0.468)
    """

    def init(params):
        leaves = jax.tree.leaves(params)
        # Keras gives the product the dtype of the first weight.
        dtype = leaves[0].dtype if leaves else jnp.float32
        return ScaleByKerasNadamState(count=jnp.zeros([], jnp.int32),
                                      momentum=optax.tree.zeros_like(params),
                                      velocity=optax.tree.zeros_like(params),
                                      u_product=jnp.ones([], dtype))

    def update(updates, state, params=None):
        del params
        count = optax.safe_increment(state.count)
        product_dtype = state.u_product.dtype
        u_product = state.u_product * np.asarray(beta_1, product_dtype) * (
            1.0 - 0.5 * jnp.power(jnp.asarray(0.96, product_dtype), count.astype(product_dtype)))
        momentum = jax.tree.map(lambda g, m: m + (g - m) * (1 - beta_1), updates, state.momentum)
        velocity = jax.tree.map(lambda g, v: v + (jnp.square(g) - v) * (1 - beta_2), updates, state.velocity)

        def step(g, m, v):
            dtype = g.dtype
            t = count.astype(dtype)
            decay, b1 = jnp.asarray(0.96, dtype), jnp.asarray(beta_1, dtype)
            u_t = b1 * (1.0 - 0.5 * jnp.power(decay, t))
            u_next = b1 * (1.0 - 0.5 * jnp.power(decay, t + 1))
            product = u_product.astype(dtype)
            product_next = product * u_next
            m_hat = u_next * m / (1 - product_next) + (1 - u_t) * g / (1 - product)
            v_hat = v / (1 - jnp.power(jnp.asarray(beta_2, dtype), t))
            return m_hat / (jnp.sqrt(v_hat) + epsilon)

        steps = jax.tree.map(step, updates, momentum, velocity)
        return steps, ScaleByKerasNadamState(count, momentum, velocity, u_product)

    return optax.GradientTransformation(init, update)


class Nadam(AdamLike):
    """Nadam (Keras 3's ``Nadam``): Adam with Nesterov momentum and Dozat's momentum schedule.

    Keras's numbers (see ``scale_by_keras_nadam``); the slots are ``momentum`` and
    ``velocity`` per weight and one ``u_product`` scalar, as in Keras.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.array([1.0, 2.0]), name="w")
        >>> opt = lm.optimizers.Nadam(learning_rate=0.1, name="nadam")
        >>> opt.apply([jnp.array([0.5, -3.0])], [w])
        >>> [round(x, 4) for x in w.value.tolist()]
        [0.8937, 2.1063]
        >>> [v.name for v in opt.variables][2:]
        ['nadam/count', 'nadam/momentum/w', 'nadam/velocity/w', 'nadam/u_product']
    """

    def make_transform(self):
        return scale_by_keras_nadam(self.beta_1, self.beta_2, self.epsilon)
