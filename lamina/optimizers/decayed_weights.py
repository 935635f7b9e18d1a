"""The weights as Keras's update rule sees them: after the decoupled weight decay.

Keras decays each weight (``w -= w * weight_decay * lr``) *before* its optimizer's
``update_step``, so an update that reads the weight (Lamb's trust ratio, Adafactor's relative
step size, FTRL's closed-form solution) reads the decayed one. lamina's base ``Optimizer``
decays the weights too and adds the transformation's updates to the decayed values, but hands
the transformation the weights as they were; ``with_decayed_params`` wraps a transformation so
that its ``params`` are the decayed weights, computed by the very formula the base uses.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax


def decayed_params(optimizer, params: dict, learning_rate) -> dict:
    """``params`` (keyed as the base ``Optimizer`` keys its weights) after ``optimizer``'s
    weight decay at ``learning_rate``; ``params`` itself without weight decay."""
    if optimizer.weight_decay is None or params is None:
        return params
    # The base keys weight i as a zero-padded "...{i}": sorted keys are in weight order.
    decayed = {}
    for key, variable in zip(sorted(params), optimizer._built_variables):
        value = params[key]
        if optimizer._decays(variable):
            wd = jnp.asarray(optimizer.weight_decay, value.dtype)
            value = value - value * wd * jnp.asarray(learning_rate).astype(value.dtype)
        decayed[key] = value
    return decayed


def with_decayed_params(optimizer, transform: optax.GradientTransformation,
                        learning_rate) -> optax.GradientTransformation:
    """``transform`` whose ``update`` gets the weights after ``optimizer``'s weight decay."""

    def update(updates, state, params=None):
        return transform.update(updates, state, decayed_params(optimizer, params, learning_rate))

    return optax.GradientTransformation(transform.init, update)
