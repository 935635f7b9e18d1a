"""``Adagrad``, on ``optax.scale_by_rss``."""

from __future__ import annotations

import optax

from lamina.optimizers.base import Optimizer


class Adagrad(Optimizer):
    """Adagrad (Keras 3's ``Adagrad``): ``w -= lr * g / sqrt(accumulator + epsilon)``, the
    accumulator starting at ``initial_accumulator_value`` and summing squared gradients.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.array([1.0]))
        >>> opt = lm.optimizers.Adagrad(learning_rate=0.1, initial_accumulator_value=0.0, epsilon=0.0)
        >>> opt.apply([jnp.array([2.0])], [w])
        >>> round(float(w.value[0]), 4)
        0.9
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, *,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)

    def make_transform(self):
        return optax.scale_by_rss(self.initial_accumulator_value, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}
