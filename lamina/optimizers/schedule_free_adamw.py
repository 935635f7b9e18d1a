"""``ScheduleFreeAdamW``: Keras 3's schedule-free AdamW, written the Keras way (``update_step``).

optax has a schedule-free wrapper (``optax.contrib.schedule_free_adamw``), but it is not
Keras's algorithm: it averages with weights ``lr**2`` (Keras: ``1 / step``), warms up inside the
averaging and bias-corrects differently. Keras's numbers come from its own rule, so this class
is an ``update_step`` optimizer, the way a Keras user writes one.
"""

from __future__ import annotations

import jax.numpy as jnp

from lamina.optimizers.base import Optimizer


class ScheduleFreeAdamW(Optimizer):
    """Schedule-Free AdamW (Keras 3's ``ScheduleFreeAdamW``; Defazio et al., 2024).

    No learning-rate schedule is needed: the optimizer keeps ``momentum`` (the sequence ``z``
    the Adam steps are applied to, starting at the weights) and ``velocity`` (Adam's second
    moment), and sets each weight to ``y = (1 - beta_1) * z + beta_1 * x``, where ``x`` is the
    running average of ``z`` with weight ``1 / step``. ``warmup_steps`` ramps the rate up
    linearly. Weight decay (``weight_decay``), as for every Keras optimizer, is decoupled and
    applied to the weights before the step.

    Arguments (Keras's, with its defaults): ``learning_rate=0.0025``, ``beta_1=0.9``,
    ``beta_2=0.999``, ``epsilon=1e-8``, ``warmup_steps=0``, and the options every optimizer
    takes (``weight_decay``, clipping, ``use_ema``, ``loss_scale_factor``,
    ``gradient_accumulation_steps``, ``name``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.array([1.0, -1.0]))
        >>> opt = lm.optimizers.ScheduleFreeAdamW(learning_rate=0.1)
        >>> opt.apply([jnp.array([0.5, 0.5])], [w])
        >>> [round(x, 4) for x in w.value.tolist()]
        [0.9, -1.1]
        >>> [v.name.split("/")[-1] for v in opt.variables[2:]]
        ['variable_momentum', 'variable_velocity']
    """

    def __init__(self, learning_rate=0.0025, beta_1=0.9, beta_2=0.999, epsilon=1e-8, warmup_steps=0, *,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.warmup_steps = warmup_steps

    def build(self, var_list):
        """``momentum`` (starting at the weights) and ``velocity`` (zeros) for every weight."""
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])
        for momentum, variable in zip(self._momentums, var_list):
            self.assign(momentum, variable)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = jnp.asarray(learning_rate, dtype)
        gradient = jnp.asarray(gradient, dtype)
        step = (self.iterations.value + 1).astype(dtype)
        beta_1 = jnp.asarray(self.beta_1, dtype)
        beta_2 = jnp.asarray(self.beta_2, dtype)
        if self.warmup_steps > 0:
            lr = lr * jnp.minimum(step / jnp.asarray(self.warmup_steps, dtype), 1.0)
        index = self._get_variable_index(variable)
        momentum, velocity = self._momentums[index], self._velocities[index]
        momentum_old = momentum.value
        self.assign_add(velocity, (jnp.square(gradient) - velocity.value) * (1 - beta_2))
        denominator = jnp.sqrt(velocity.value / (1 - jnp.power(beta_2, step))) + jnp.asarray(self.epsilon, dtype)
        self.assign_sub(momentum, lr * gradient / denominator)
        weight = 1.0 / step
        # The weights hold y = (1 - beta_1) z + beta_1 x: recover x, average z into it, mix again.
        x_old = (variable.value - (1 - beta_1) * momentum_old) / beta_1
        x_new = (1 - weight) * x_old + weight * momentum.value
        self.assign(variable, (1 - beta_1) * momentum.value + beta_1 * x_new)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "warmup_steps": self.warmup_steps}
