"""``Muon``: Keras's update written with optax's building blocks.

``optax.contrib.muon`` differs from Keras's (its Newton-Schulz normalization, its shape-based
learning-rate scaling, its Adam with epsilon after the bias correction), so lamina writes
Keras's rule as an ``optax.GradientTransformation``: the Muon step for the 2-D weights and
Keras's AdamW step for the others.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from lamina.optimizers.base import Optimizer


class KerasMuonState(NamedTuple):
    """Keras's Muon slots: a ``momentum`` per weight, a ``velocity`` for the weights taking the
    AdamW step only, and a step counter."""

    count: jax.Array
    momentum: optax.Updates
    velocity: optax.Updates


def _swap_last_axes(x):
    return jnp.swapaxes(x, -1, -2)


def newton_schulz(x, steps=5, a=3.4445, b=-4.7750, c=2.0315):
    """Keras's quintic Newton-Schulz iteration: approximately ``U V^T`` of the SVD of ``x``
    (a matrix, or a stack of them in the last two axes).

    Example:
        >>> import jax.numpy as jnp
        >>> x = newton_schulz(jnp.array([[3.0, 0.0], [0.0, 0.5]]))
        >>> bool(jnp.all(jnp.abs(jnp.diag(x) - 1) < 0.35))  # both singular values near 1
        True
    """
    if x.ndim < 2:
        raise ValueError(f"newton_schulz expects at least 2 dimensions; received shape={x.shape}")
    wide = x.shape[-2] > x.shape[-1]
    if wide:
        x = _swap_last_axes(x)
    x = x / (jnp.linalg.norm(x, axis=(-2, -1), keepdims=True) + 1e-7)
    for _ in range(steps):
        gram = x @ _swap_last_axes(x)
        x = a * x + (b * gram + c * gram @ gram) @ x
    return _swap_last_axes(x) if wide else x


def keras_muon(learning_rate, adamw_mask, *, adam_beta_1=0.9, adam_beta_2=0.999, epsilon=1e-7,
               adam_lr_ratio=1.0, momentum=0.95, nesterov=True, ns_steps=5, muon_a=3.4445,
               muon_b=-4.7750, muon_c=2.0315, rms_rate=0.2, weight_decay=None,
               adam_weight_decay=None, decay_mask=None) -> optax.GradientTransformation:
    """Keras 3's Muon update at ``learning_rate``, weight decay included.

    ``adamw_mask`` (a tree of booleans like the weights, or a function of the weights giving
    one) picks the weights that take Keras's AdamW step (``lr * adam_lr_ratio``, epsilon added
    to ``sqrt(v)`` before the bias correction); the others take the Muon step: ``m = momentum *
    m + g``, ``u = newton_schulz(g + momentum * m)`` (Nesterov, else ``newton_schulz(m)``),
    ``w -= lr * u * sqrt(max(n, m)) * rms_rate``. Before either, a weight of ``decay_mask``
    (default all) decays by ``w * wd * lr``, ``wd`` being ``adam_weight_decay`` for the AdamW
    weights and ``weight_decay`` for the others (``None``: no decay).

    Example:
        >>> import jax.numpy as jnp
        >>> t = keras_muon(0.1, adamw_mask={"b": True, "k": False}, rms_rate=None)
        >>> params = {"b": jnp.zeros(2), "k": jnp.zeros((2, 2))}
        >>> update, state = t.update({"b": jnp.ones(2), "k": jnp.eye(2)}, t.init(params), params)
        >>> [round(x, 3) for x in update["b"].tolist()], sorted(state.velocity)
        ([-0.1, -0.1], ['b'])
    """

    def masks(params):
        adamw = adamw_mask(params) if callable(adamw_mask) else adamw_mask
        decays = decay_mask(params) if callable(decay_mask) else decay_mask
        return adamw, decays

    def init(params):
        adamw, _ = masks(params)
        return KerasMuonState(count=jnp.zeros([], jnp.int32), momentum=optax.tree.zeros_like(params),
                              velocity={k: jnp.zeros_like(p) for k, p in params.items() if adamw[k]})

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("keras_muon's update needs the weights (params), for the weight decay.")
        adamw, decays = masks(params)
        count = optax.safe_increment(state.count)
        new_momentum, new_velocity, steps = {}, {}, {}
        for key, g in updates.items():
            w, m = params[key], state.momentum[key]
            dtype = w.dtype
            lr = jnp.asarray(learning_rate).astype(dtype)
            wd = adam_weight_decay if adamw[key] else weight_decay
            decay = (w * jnp.asarray(wd, dtype) * lr if wd is not None and (decays is None or decays[key])
                     else jnp.zeros_like(w))
            if adamw[key]:
                t = count.astype(dtype)
                adam_lr = lr * adam_lr_ratio
                alpha = adam_lr * jnp.sqrt(1 - jnp.power(jnp.asarray(adam_beta_2, dtype), t)) / (
                    1 - jnp.power(jnp.asarray(adam_beta_1, dtype), t))
                m = m + (g - m) * (1 - adam_beta_1)
                v = state.velocity[key]
                v = v + (jnp.square(g) - v) * (1 - adam_beta_2)
                new_velocity[key] = v
                step = m * alpha / (jnp.sqrt(v) + epsilon)
            else:
                m = m + (g + m * (momentum - 1))
                direction = newton_schulz(g + momentum * m if nesterov else m, ns_steps, muon_a, muon_b, muon_c)
                step = lr * direction
                if rms_rate is not None:
                    step = step * jnp.sqrt(jnp.asarray(max(w.shape[0], w.shape[1]), dtype)) * rms_rate
            new_momentum[key] = m
            steps[key] = -decay - step
        return steps, KerasMuonState(count, new_momentum, new_velocity)

    return optax.GradientTransformation(init, update)


class Muon(Optimizer):
    """Muon (Keras 3's ``Muon``): momentum orthogonalized by Newton-Schulz iterations for the
    2-D weights, Keras's AdamW for the rest.

    A weight takes the AdamW step when it is not 2-D, when ``exclude_embeddings`` and its path
    contains "embedding", or when its path matches (``re.search``) one of ``exclude_layers``
    (typically the output layer: ``exclude_layers=["output_dense"]``); the others the Muon
    step (see ``keras_muon``). As in Keras, ``weight_decay`` decays the Muon weights and
    ``adam_weight_decay`` the AdamW ones, both at the learning rate. The slots are ``momentum``
    for every weight and ``velocity`` for the AdamW ones, as in Keras.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> kernel = lm.Variable(jnp.zeros((2, 3)), name="kernel")
        >>> bias = lm.Variable(jnp.zeros((3,)), name="bias")
        >>> opt = lm.optimizers.Muon(learning_rate=0.1, name="muon")
        >>> opt.apply([jnp.ones((2, 3)), jnp.ones((3,))], [kernel, bias])
        >>> [v.name for v in opt.variables][2:]
        ['muon/count', 'muon/momentum/kernel', 'muon/momentum/bias', 'muon/velocity/bias']
        >>> [round(x, 4) for x in bias.value.tolist()]
        [-0.1, -0.1, -0.1]
    """

    def __init__(self, learning_rate=0.001, adam_beta_1=0.9, adam_beta_2=0.999, adam_weight_decay=0.004,
                 epsilon=1e-7, weight_decay=0.004, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, exclude_layers=None, exclude_embeddings=True,
                 muon_a=3.4445, muon_b=-4.7750, muon_c=2.0315, adam_lr_ratio=1, momentum=0.95, ns_steps=5,
                 nesterov=True, rms_rate=0.2):
        self.adam_beta_1 = adam_beta_1
        self.adam_beta_2 = adam_beta_2
        self.adam_weight_decay = adam_weight_decay
        self.epsilon = epsilon
        self.exclude_layers = list(exclude_layers or [])
        self.exclude_embeddings = exclude_embeddings
        self.muon_a, self.muon_b, self.muon_c = muon_a, muon_b, muon_c
        self.adam_lr_ratio = adam_lr_ratio
        self.momentum = momentum
        self.ns_steps = ns_steps
        self.nesterov = nesterov
        self.rms_rate = rms_rate
        self._uses_adamw: list = []
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)

    def should_use_adamw(self, variable) -> bool:
        """Whether ``variable`` takes the AdamW step (Keras's rule, on its path)."""
        if len(variable.shape) != 2:
            return True
        if self.exclude_embeddings and "embedding" in variable.path.lower():
            return True
        return any(re.search(pattern, variable.path) for pattern in self.exclude_layers)

    def build(self, variables) -> None:
        if not self.built:
            # Known before the base builds the state, whose shape depends on it.
            self._uses_adamw = [self.should_use_adamw(v) for v in variables]
            self._weight_decays = [Optimizer._decays(self, v) for v in variables]
        super().build(variables)

    def _decays(self, variable) -> bool:
        # Each weight's decay rate depends on its step: keras_muon applies it, not the base.
        return False

    def make_update_transform(self, learning_rate):
        def by_key(flags):
            return lambda params: dict(zip(sorted(params), flags))

        return keras_muon(
            learning_rate, by_key(self._uses_adamw), adam_beta_1=self.adam_beta_1,
            adam_beta_2=self.adam_beta_2, epsilon=self.epsilon, adam_lr_ratio=self.adam_lr_ratio,
            momentum=self.momentum, nesterov=self.nesterov, ns_steps=self.ns_steps, muon_a=self.muon_a,
            muon_b=self.muon_b, muon_c=self.muon_c, rms_rate=self.rms_rate, weight_decay=self.weight_decay,
            adam_weight_decay=self.adam_weight_decay, decay_mask=by_key(self._weight_decays))

    def get_config(self):
        return {**super().get_config(), "adam_beta_1": self.adam_beta_1, "adam_beta_2": self.adam_beta_2,
                "epsilon": self.epsilon, "exclude_layers": self.exclude_layers, "muon_a": self.muon_a,
                "muon_b": self.muon_b, "muon_c": self.muon_c, "adam_lr_ratio": self.adam_lr_ratio,
                "momentum": self.momentum, "ns_steps": self.ns_steps, "nesterov": self.nesterov,
                "exclude_embeddings": self.exclude_embeddings, "adam_weight_decay": self.adam_weight_decay,
                "rms_rate": self.rms_rate}
