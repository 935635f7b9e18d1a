"""``Lamb``, on ``optax.scale_by_adam`` and ``optax.scale_by_trust_ratio``."""

from __future__ import annotations

import optax

from lamina.optimizers.adam_like import AdamLike
from lamina.optimizers.decayed_weights import with_decayed_params


class Lamb(AdamLike):
    """LAMB (Keras 3's ``Lamb``): the Adam step rescaled per weight by the trust ratio
    ``||w|| / ||step||`` (1 where either norm is zero).

    Keras's Lamb adds epsilon after the bias correction (``m_hat / (sqrt(v_hat) + eps)``),
    which is ``optax.scale_by_adam`` exactly, and its ratio is ``optax.scale_by_trust_ratio``'s;
    unlike ``optax.lamb`` the weight decay is decoupled (applied to the weights before the step,
    as for every Keras optimizer), and the ratio reads the decayed weights, as Keras's does.
    The slots are optax's ``mu`` and ``nu`` (Keras's ``momentum`` and ``velocity``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.array([3.0, 4.0]), name="w")
        >>> opt = lm.optimizers.Lamb(learning_rate=0.1, name="lamb")
        >>> opt.apply([jnp.array([1.0, -1.0])], [w])  # step (1, -1) scaled to ||w|| = 5
        >>> [round(x, 4) for x in w.value.tolist()]
        [2.6464, 4.3536]
    """

    def make_transform(self):
        return optax.chain(optax.scale_by_adam(b1=self.beta_1, b2=self.beta_2, eps=self.epsilon),
                           optax.scale_by_trust_ratio())

    def make_update_transform(self, learning_rate):
        return with_decayed_params(self, super().make_update_transform(learning_rate), learning_rate)
