"""``Ftrl``: Keras's update written with optax's building blocks (optax has no FTRL).

FTRL-Proximal does not take a step along a direction: it solves for the new weight in closed
form, so the transformation is built per learning rate (``make_update_transform``) and returns
``new_weight - weight``, the update the base ``Optimizer`` adds.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from lamina.optimizers.base import Optimizer
from lamina.optimizers.decayed_weights import with_decayed_params


class KerasFtrlState(NamedTuple):
    """Keras's FTRL slots: the sum of squared gradients and the linear term."""

    accumulator: optax.Updates
    linear: optax.Updates


def keras_ftrl(learning_rate, learning_rate_power=-0.5, initial_accumulator_value=0.1,
               l1_regularization_strength=0.0, l2_regularization_strength=0.0,
               l2_shrinkage_regularization_strength=0.0, beta=0.0) -> optax.GradientTransformation:
    """Keras 3's FTRL-Proximal update at ``learning_rate``: its ``update`` needs the weights
    (``params``) and returns ``new_weight - weight``.

    With ``n`` the accumulator, ``p = -learning_rate_power`` and ``lr`` the learning rate:
    ``sigma = ((n + g**2)**p - n**p) / lr``, ``z += g + 2 * l2_shrinkage * w - sigma * w``,
    ``n += g**2``, ``w = (clip(z, -l1, l1) - z) / (n**p / lr + 2 * (l2 + beta / (2 * lr)))``.

    Example:
        >>> import jax.numpy as jnp
        >>> t = keras_ftrl(1.0, initial_accumulator_value=0.0)
        >>> w = {"w": jnp.array([0.0])}
        >>> update, _ = t.update({"w": jnp.array([2.0])}, t.init(w), w)
        >>> update["w"].tolist()  # z = 2, n = 4: w = -2 / sqrt(4)
        [-1.0]
    """
    power = -learning_rate_power

    def init(params):
        return KerasFtrlState(accumulator=optax.tree.full_like(params, initial_accumulator_value),
                              linear=optax.tree.zeros_like(params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("keras_ftrl's update needs the weights (params): FTRL solves for them.")

        def solve(g, n, z, w):
            lr = jnp.asarray(learning_rate).astype(w.dtype)
            l2 = l2_regularization_strength + beta / (2.0 * lr)
            new_n = n + jnp.square(g)
            new_z = z + ((g + 2 * l2_shrinkage_regularization_strength * w)
                         - (jnp.power(new_n, power) - jnp.power(n, power)) / lr * w)
            quadratic = jnp.power(new_n, power) / lr + 2 * l2
            clipped = jnp.clip(new_z, -l1_regularization_strength, l1_regularization_strength)
            return (clipped - new_z) / quadratic - w, new_n, new_z

        solved = jax.tree.map(solve, updates, state.accumulator, state.linear, params)
        pick = lambda i: jax.tree.map(lambda _, out: out[i], updates, solved)  # noqa: E731
        return pick(0), KerasFtrlState(accumulator=pick(1), linear=pick(2))

    return optax.GradientTransformation(init, update)


class Ftrl(Optimizer):
    """FTRL-Proximal (Keras 3's ``Ftrl``), with Keras's arguments and numbers.

    ``learning_rate_power`` (<= 0) shapes the per-coordinate rate, ``l1_regularization_strength``
    and ``l2_regularization_strength`` regularize the solution (l1 makes it sparse),
    ``l2_shrinkage_regularization_strength`` adds an L2 penalty to the gradient and ``beta``
    adds ``beta / (2 * learning_rate)`` to the L2 term. The slots are ``accumulator`` (starting
    at ``initial_accumulator_value``) and ``linear``, as in Keras. See ``keras_ftrl``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.array([0.0, 0.0]), name="w")
        >>> opt = lm.optimizers.Ftrl(learning_rate=1.0, initial_accumulator_value=0.0,
        ...                          l1_regularization_strength=1.0)
        >>> opt.apply([jnp.array([3.0, -0.5])], [w])  # |z| <= l1: the weight stays at 0
        >>> [round(x, 4) for x in w.value.tolist()]
        [-0.6667, 0.0]
    """

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                 l2_shrinkage_regularization_strength=0.0, beta=0.0, *, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        for argument, value, sign in (
                ("initial_accumulator_value", initial_accumulator_value, 1),
                ("learning_rate_power", learning_rate_power, -1),
                ("l1_regularization_strength", l1_regularization_strength, 1),
                ("l2_regularization_strength", l2_regularization_strength, 1),
                ("l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength, 1)):
            if sign * value < 0.0:
                expected = "positive or zero" if sign > 0 else "negative or zero"
                raise ValueError(f"Ftrl: `{argument}` needs to be {expected}. Received: {argument}={value}.")
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)

    def make_update_transform(self, learning_rate):
        # The learning rate is inside the closed form, not a final scaling of the update.
        return with_decayed_params(self, keras_ftrl(
            learning_rate, self.learning_rate_power, self.initial_accumulator_value,
            self.l1_regularization_strength, self.l2_regularization_strength,
            self.l2_shrinkage_regularization_strength, self.beta), learning_rate)

    def get_config(self):
        return {**super().get_config(), "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
                "beta": self.beta}
