"""``Adafactor``: Keras's update written with optax's building blocks.

``optax.scale_by_factored_rms`` is the paper's algorithm with other choices than Keras's
(its decay ``1 - t**decay_rate`` is Keras's, but its row/column factors, update clipping and
step-size rule differ, and it factors only dimensions above a size threshold), so lamina
writes Keras's rule as an ``optax.GradientTransformation``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from lamina.optimizers.base import Optimizer
from lamina.optimizers.decayed_weights import with_decayed_params


class KerasAdafactorState(NamedTuple):
    """Keras's Adafactor slots: per weight the row (``r``) and column (``c``) second-moment
    factors, which Keras keeps as int32 zeros for weights of fewer than two dimensions, and the
    second-moment estimate ``velocity``; a step counter."""

    count: jax.Array
    r: optax.Updates
    c: optax.Updates
    velocity: optax.Updates


def _rms(x):
    return jnp.sqrt(jnp.mean(jnp.square(x)))


def keras_adafactor(learning_rate, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3,
                    clip_threshold=1.0) -> optax.GradientTransformation:
    """Keras 3's Adafactor update at ``learning_rate``; its ``update`` needs the weights.

    At step ``t``: ``beta = 1 - t**beta_2_decay``; with ``s = g**2 + epsilon_1``, a weight of
    two or more dimensions keeps ``r = beta * r + (1 - beta) * mean(s, -1)``,
    ``c = beta * c + (1 - beta) * mean(s, -2)`` and ``v = r / mean(r) (outer) c``, a smaller one
    ``v = beta * v + (1 - beta) * s``; ``u = g / sqrt(v)``, clipped to
    ``u / max(1, rms(u) / clip_threshold)``; the update is
    ``-max(epsilon_2, rms(w)) * min(learning_rate, 1 / sqrt(t)) * u``.

    Example:
        >>> import jax.numpy as jnp
        >>> t = keras_adafactor(0.1)
        >>> w = {"w": jnp.array([1.0, -1.0])}
        >>> update, _ = t.update({"w": jnp.array([2.0, -2.0])}, t.init(w), w)
        >>> [round(x, 4) for x in update["w"].tolist()]  # -rms(w) * 0.1 * sign(g)
        [-0.1, 0.1]
    """

    def init(params):
        def factor(p, shape):
            return jnp.zeros(shape, p.dtype) if p.ndim >= 2 else jnp.zeros([], jnp.int32)

        return KerasAdafactorState(
            count=jnp.zeros([], jnp.int32),
            r=jax.tree.map(lambda p: factor(p, p.shape[:-1]), params),
            c=jax.tree.map(lambda p: factor(p, p.shape[:-2] + p.shape[-1:]), params),
            velocity=optax.tree.zeros_like(params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("keras_adafactor's update needs the weights (params): the step "
                             "size is relative to their scale.")
        count = optax.safe_increment(state.count)

        def step(g, r, c, v, w):
            dtype = w.dtype
            t = count.astype(dtype)
            lr = jnp.asarray(learning_rate).astype(dtype)
            rho = jnp.minimum(lr, 1 / jnp.sqrt(t))
            alpha = jnp.maximum(jnp.asarray(epsilon_2, dtype), _rms(w)) * rho
            squared = jnp.square(g) + epsilon_1
            beta = 1 - jnp.power(t, beta_2_decay)
            if w.ndim >= 2:
                r = beta * r + (1 - beta) * jnp.mean(squared, axis=-1)
                c = beta * c + (1 - beta) * jnp.mean(squared, axis=-2)
                v = jnp.expand_dims(r / jnp.mean(r, axis=-1, keepdims=True), -1) * jnp.expand_dims(c, -2)
            else:
                v = beta * v + (1 - beta) * squared
            u = g / jnp.sqrt(v)
            u = u / jnp.maximum(jnp.asarray(1, dtype), _rms(u) / clip_threshold)
            return -(alpha * u), r, c, v

        out = jax.tree.map(step, updates, state.r, state.c, state.velocity, params)
        pick = lambda i: jax.tree.map(lambda _, o: o[i], updates, out)  # noqa: E731
        return pick(0), KerasAdafactorState(count, pick(1), pick(2), pick(3))

    return optax.GradientTransformation(init, update)


class Adafactor(Optimizer):
    """Adafactor (Keras 3's ``Adafactor``): second moments kept as row and column factors for
    weights of two or more dimensions (memory ``O(n + m)`` for an ``n x m`` kernel), update
    clipping, and a step size relative to the weight's scale.

    The step is ``max(epsilon_2, rms(w)) * min(learning_rate, 1 / sqrt(t))`` times the clipped
    normalized gradient (see ``keras_adafactor``). As in Keras the learning rate is always
    capped by ``1 / sqrt(t)``, so ``relative_step`` is kept for the config but changes nothing.
    The slots are ``r``, ``c`` and ``velocity``, as in Keras.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.ones((2, 3)), name="w")
        >>> opt = lm.optimizers.Adafactor(learning_rate=0.1, name="adafactor")
        >>> opt.apply([jnp.full((2, 3), 5.0)], [w])
        >>> round(float(w.value[0, 0]), 4)
        0.9
        >>> [(v.name, v.shape) for v in opt.variables][2:]
        [('adafactor/count', ()), ('adafactor/r/w', (2,)), ('adafactor/c/w', (3,)), ('adafactor/velocity/w', (2, 3))]
    """

    def __init__(self, learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3,
                 clip_threshold=1.0, relative_step=True, *, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        self.beta_2_decay = beta_2_decay
        self.epsilon_1 = epsilon_1
        self.epsilon_2 = epsilon_2
        self.clip_threshold = clip_threshold
        self.relative_step = relative_step
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)

    def make_update_transform(self, learning_rate):
        # The learning rate is capped and scaled by the weight's rms: not a final scaling.
        return with_decayed_params(self, keras_adafactor(
            learning_rate, self.beta_2_decay, self.epsilon_1, self.epsilon_2, self.clip_threshold),
            learning_rate)

    def get_config(self):
        return {**super().get_config(), "beta_2_decay": self.beta_2_decay, "epsilon_1": self.epsilon_1,
                "epsilon_2": self.epsilon_2, "clip_threshold": self.clip_threshold,
                "relative_step": self.relative_step}
