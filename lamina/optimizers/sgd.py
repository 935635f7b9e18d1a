"""``SGD``: gradient descent with optional (Nesterov) momentum, as Keras computes it."""

from __future__ import annotations

import optax

from lamina.optimizers.base import Optimizer


class SGD(Optimizer):
    """Gradient descent with optional momentum (Keras 3's ``SGD``).

    Without momentum ``w -= learning_rate * g``. With momentum Keras keeps a velocity that
    already contains the learning rate, ``m = momentum * m - learning_rate * g`` and
    ``w += m`` (Nesterov: ``w += momentum * m - learning_rate * g``). lamina builds it as
    ``optax.chain(optax.scale_by_learning_rate(lr), optax.trace(momentum, nesterov))``: the
    learning rate is applied *before* the momentum trace, so a learning rate changed during
    training (a schedule, ``ReduceLROnPlateau``) scales only new gradients, as in Keras —
    ``optax.sgd`` would rescale the accumulated momentum too.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.array([1.0, 2.0]))
        >>> opt = lm.optimizers.SGD(learning_rate=0.1, momentum=0.9)
        >>> for _ in range(2):
        ...     opt.apply([jnp.array([1.0, -1.0])], [w])
        >>> [round(x, 4) for x in w.value.tolist()]
        [0.71, 2.29]
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, *, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        if not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: momentum={momentum}")
        self.momentum = momentum
        self.nesterov = nesterov
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)

    def make_transform(self):
        return optax.trace(self.momentum, self.nesterov) if self.momentum else optax.identity()

    def make_update_transform(self, learning_rate):
        scale = optax.scale_by_learning_rate(learning_rate)
        if not self.momentum:
            return scale
        return optax.chain(scale, self.make_transform())

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
