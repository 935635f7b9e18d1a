"""Registered functions and a registered Flax module for the ``JaxLayer`` / ``FlaxLayer`` tests
(a saved layer names them, so they live at module level, registered once)."""

import flax.linen as nn
import jax
import jax.numpy as jnp

import lamina as lm

PACKAGE = "lamina_jax_layer_test"
register = lm.saving.register_serializable(PACKAGE)


@register
def mlp_init(rng, inputs):
    k1, k2 = jax.random.split(rng)
    return [[jax.random.normal(k1, (inputs.shape[-1], 4)), jnp.zeros(4)], [jax.random.normal(k2, (4, 2)), jnp.ones(2)]]


@register
def mlp_apply(params, inputs):
    (w1, b1), (w2, b2) = params
    return jnp.tanh(inputs @ w1 + b1) @ w2 + b2


@register
def tracked_init(rng, inputs, training):
    return {"w": jax.random.normal(rng, (inputs.shape[-1], 3))}, {"mean": jnp.zeros(3), "steps": jnp.zeros((), "int32")}


@register
def tracked_apply(params, state, rng, inputs, training):
    """A running mean of the projections and a step count in training (state), dropout from ``rng``."""
    projected = inputs @ params["w"]
    y = projected - state["mean"]
    if training:
        state = {"mean": 0.9 * state["mean"] + 0.1 * projected.mean(axis=0), "steps": state["steps"] + 1}
        y = jnp.where(jax.random.bernoulli(rng, 0.5, y.shape), y * 2.0, 0.0)
    return y, state


@register
class BatchNormMLP(nn.Module):
    features: int = 3

    @nn.compact
    def __call__(self, inputs, training=False):
        x = nn.Dense(self.features)(inputs)
        x = nn.BatchNorm(use_running_average=not training, momentum=0.5)(x)
        x = nn.Dropout(0.5, deterministic=not training)(nn.relu(x))
        return nn.Dense(2)(x)

    def get_config(self):
        return {"features": self.features}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
