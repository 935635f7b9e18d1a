"""``AdamLike``: the base of the optimizers whose own arguments are Keras's Adam moments
(``beta_1``, ``beta_2``, ``epsilon``) and nothing else: ``Adamax``, ``Nadam`` and ``Lamb``."""

from __future__ import annotations

from lamina.optimizers.base import Optimizer


class AdamLike(Optimizer):
    """An ``Optimizer`` with Keras's Adam-family arguments and defaults (``learning_rate=0.001``,
    ``beta_1=0.9``, ``beta_2=0.999``, ``epsilon=1e-7``), kept as attributes and in the config.
    A subclass writes ``make_transform`` (and, where the step needs it,
    ``make_update_transform``).

    Example:
        >>> import optax
        >>> class Moments(AdamLike):
        ...     def make_transform(self):
        ...         return optax.scale_by_adam(b1=self.beta_1, b2=self.beta_2, eps=self.epsilon)
        >>> config = Moments(beta_2=0.99).get_config()
        >>> config["beta_1"], config["beta_2"], config["epsilon"]
        (0.9, 0.99, 1e-07)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, *,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}
