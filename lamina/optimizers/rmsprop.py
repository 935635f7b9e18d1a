"""``RMSprop``, on ``optax.scale_by_rms`` / ``optax.scale_by_stddev`` and ``optax.trace``."""

from __future__ import annotations

import optax

from lamina.optimizers.base import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Keras 3's ``RMSprop``; ``centered=True`` divides by the gradient's variance).

    Keras divides by ``sqrt(v + epsilon)`` (epsilon inside the root, as
    ``optax.scale_by_rms(eps_in_sqrt=True)``), starts ``v`` at zero, and with momentum
    accumulates the learning-rate-scaled step, ``m = momentum * m + lr * g / sqrt(v + eps)``:
    lamina applies the learning rate before ``optax.trace``, so a changing learning rate
    matches Keras too.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.array([1.0]))
        >>> opt = lm.optimizers.RMSprop(learning_rate=0.01, rho=0.0)
        >>> opt.apply([jnp.array([4.0])], [w])
        >>> round(float(w.value[0]), 4)
        0.99
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, *,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)

    def make_transform(self):
        scale = optax.scale_by_stddev if self.centered else optax.scale_by_rms
        return scale(decay=self.rho, eps=self.epsilon, initial_scale=0.0, eps_in_sqrt=True)

    def make_update_transform(self, learning_rate):
        chain = [self.make_transform(), optax.scale_by_learning_rate(learning_rate)]
        if self.momentum > 0:
            chain.append(optax.trace(self.momentum))
        return optax.chain(*chain)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}
