"""``Adam`` and ``AdamW``, with Keras's epsilon placement, on ``optax.scale_by_adam``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from lamina.optimizers.base import Optimizer


def scale_by_keras_adam(b1=0.9, b2=0.999, eps=1e-7, amsgrad=False) -> optax.GradientTransformation:
    """optax's Adam/AMSGrad scaling with the epsilon where Keras puts it.

    Keras computes ``lr * sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v) + eps)``, which is
    optax's ``m_hat / (sqrt(v_hat) + eps_t)`` with ``eps_t = eps / sqrt(1 - b2**t)``: we pass
    that ``eps_t`` to ``optax.scale_by_adam`` at every step. Keras's AMSGrad takes the maximum
    of the *uncorrected* second moments, which is ``optax.scale_by_amsgrad(...,
    bias_correction_nu=False)``, times ``sqrt(1 - b2**t)``. The state is optax's own
    (``count``, ``mu``, ``nu`` and, for AMSGrad, ``nu_max``).
    """

    def make(eps_value):
        if amsgrad:
            return optax.scale_by_amsgrad(b1, b2, eps_value, bias_correction_nu=False)
        return optax.scale_by_adam(b1, b2, eps_value)

    def init(params):
        return make(eps).init(params)

    def update(updates, state, params=None):
        t = (state.count + 1).astype(jnp.float32)
        correction = jnp.sqrt(1 - jnp.power(jnp.asarray(b2, jnp.float32), t))
        if amsgrad:
            updates, state = make(eps).update(updates, state, params)
            return jax.tree.map(lambda u: u * correction.astype(u.dtype), updates), state
        return make(eps / correction).update(updates, state, params)

    return optax.GradientTransformation(init, update)


class Adam(Optimizer):
    """Adam (Keras 3's ``Adam``; ``amsgrad=True`` for AMSGrad).

    Numerically Keras's: ``epsilon`` is added to ``sqrt(v)`` *before* the bias correction
    (see ``scale_by_keras_adam``), so ``Adam(epsilon=e)`` equals ``keras.optimizers.Adam(
    epsilon=e)``, not ``optax.adam(eps=e)``; AMSGrad keeps the maximum of the uncorrected
    second moment, as Keras does.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.array([1.0, 2.0]))
        >>> opt = lm.optimizers.Adam(learning_rate=0.1, name="adam")
        >>> opt.apply([jnp.array([0.5, -3.0])], [w])
        >>> [round(x, 4) for x in w.value.tolist()]
        [0.9, 2.1]
        >>> [v.name for v in opt.variables][:3]
        ['adam/iterations', 'adam/learning_rate', 'adam/count']
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, *,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)

    def make_transform(self):
        return scale_by_keras_adam(self.beta_1, self.beta_2, self.epsilon, self.amsgrad)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras 3's ``AdamW``).

    As in Keras, each weight first decays, ``w -= w * weight_decay * lr``, then takes the Adam
    step; ``exclude_from_weight_decay(var_names=["bias"])`` skips some weights.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.array([1.0, 2.0]))
        >>> opt = lm.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
        >>> opt.apply([jnp.array([0.0, 1.0])], [w])
        >>> [round(x, 4) for x in w.value.tolist()]
        [0.95, 1.8]
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, *, clipnorm=None, clipvalue=None,
                 global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        if weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
