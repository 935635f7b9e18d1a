"""``Lion``, on ``optax.scale_by_lion``."""

from __future__ import annotations

import optax

from lamina.optimizers.base import Optimizer


class Lion(Optimizer):
    """Lion (Keras 3's ``Lion``): ``w -= lr * sign(beta_1 * m + (1 - beta_1) * g)``, then
    ``m = beta_2 * m + (1 - beta_2) * g``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.array([1.0, 1.0]))
        >>> opt = lm.optimizers.Lion(learning_rate=0.1)
        >>> opt.apply([jnp.array([3.0, -0.01])], [w])
        >>> [round(x, 4) for x in w.value.tolist()]
        [0.9, 1.1]
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, *, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        if beta_1 <= 0 or beta_1 > 1:
            raise ValueError(
                "Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer "
                f"degenerates to SignSGD. Received: beta_1={beta_1}."
            )
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)

    def make_transform(self):
        return optax.scale_by_lion(self.beta_1, self.beta_2)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
