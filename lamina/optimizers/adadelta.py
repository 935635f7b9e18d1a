"""``Adadelta``, on ``optax.scale_by_adadelta`` (the same update as Keras's)."""

from __future__ import annotations

import optax

from lamina.optimizers.base import Optimizer


class Adadelta(Optimizer):
    """Adadelta (Keras 3's ``Adadelta``): per-weight steps from running averages of the squared
    gradients and of the squared updates.

    ``acc_g = rho * acc_g + (1 - rho) * g**2``, ``delta = sqrt(acc_d + eps) / sqrt(acc_g + eps) * g``,
    ``acc_d = rho * acc_d + (1 - rho) * delta**2``, ``w -= learning_rate * delta``. This is
    ``optax.scale_by_adadelta``'s rule, so lamina uses it as is: the slots are optax's ``e_g``
    (Keras's ``accumulated_grad``) and ``e_x`` (``accumulated_delta_var``). As in Keras, the
    default ``learning_rate`` is 0.001 (the paper's method has none, i.e. 1.0).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.array([1.0]), name="w")
        >>> opt = lm.optimizers.Adadelta(learning_rate=1.0, rho=0.0, epsilon=1.0, name="adadelta")
        >>> opt.apply([jnp.array([3.0])], [w])
        >>> round(float(w.value[0]), 4)  # 1 - sqrt(0 + 1) / sqrt(9 + 1) * 3
        0.0513
        >>> [v.name for v in opt.variables][2:]
        ['adadelta/e_g/w', 'adadelta/e_x/w']
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, *, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        self.rho = rho
        self.epsilon = epsilon
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)

    def make_transform(self):
        return optax.scale_by_adadelta(rho=self.rho, eps=self.epsilon)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
