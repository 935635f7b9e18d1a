"""``lm.optimizers.LossScaleOptimizer``: dynamic loss scaling around another optimizer.

float16 has a narrow range: small gradients of activations underflow to zero. The loss is
multiplied by a large scale before differentiating (``scale_loss``), so the gradients are
too, and ``apply`` divides them back before the inner optimizer uses them. A step whose
gradients are not all finite (the scale was too large) is skipped: weights and the inner
optimizer's state keep their exact values, and the scale is halved. After
``dynamic_growth_steps`` finite steps in a row the scale doubles. Keras 3's rule and
arguments.

The decision is a ``jnp.where`` per variable, as the base optimizer does for gradient
accumulation: a compiled step has one program whatever the gradients hold, and the skipped
values are the old arrays, bit for bit.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax

from lamina.core import state
from lamina.core.variable import Variable
from lamina.optimizers import lookup
from lamina.optimizers.base import Optimizer
from lamina.saving.serialization import serialize_object

_UNSUPPORTED = ("weight_decay", "clipnorm", "global_clipnorm", "clipvalue", "use_ema", "ema_momentum",
                "ema_overwrite_frequency", "loss_scale_factor", "gradient_accumulation_steps")


class LossScaleOptimizer(Optimizer):
    """Wraps ``inner_optimizer`` with dynamic loss scaling (for ``"mixed_float16"``).

    Arguments:
        inner_optimizer: the ``lm.optimizers.Optimizer`` that updates the weights (its
            ``loss_scale_factor`` is cleared: this optimizer does the scaling).
        initial_scale: the first loss scale (default ``2**15``).
        dynamic_growth_steps: the scale doubles after this many finite steps in a row
            (default 2000).

    ``compile`` wraps the optimizer in one automatically when the model's dtype policy is
    ``"mixed_float16"``. In a custom ``lm.jit`` loop, differentiate ``scale_loss(loss)`` and
    pass the (scaled) gradients to ``apply``. ``variables`` are ``step_counter``,
    ``dynamic_scale`` and then the inner optimizer's; ``iterations`` and ``learning_rate``
    are the inner optimizer's.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.array([1.0]))
        >>> opt = lm.optimizers.LossScaleOptimizer(lm.optimizers.SGD(0.5), initial_scale=8.0)
        >>> float(opt.scale_loss(1.0))
        8.0
        >>> opt.apply([jnp.array([16.0])], [w])   # the gradient of the scaled loss
        >>> w.value.tolist(), float(opt.dynamic_scale)
        ([0.0], 8.0)
        >>> opt.apply([jnp.array([jnp.inf])], [w])   # skipped: w kept, the scale halved
        >>> w.value.tolist(), float(opt.dynamic_scale), int(opt.iterations)
        ([0.0], 4.0, 1)
    """

    def __init__(self, inner_optimizer, initial_scale=2.0**15, dynamic_growth_steps=2000, name=None,
                 **kwargs):
        if not kwargs.pop("dynamic", True):
            raise ValueError(
                "LossScaleOptimizer supports only dynamic scaling (dynamic=False was given); for a "
                "fixed scale set `loss_scale_factor` on the inner optimizer instead."
            )
        for arg in _UNSUPPORTED:
            if arg in kwargs:
                value = kwargs.pop(arg)
                if value not in (None, False, 0.99):
                    raise ValueError(f"LossScaleOptimizer does not support `{arg}`: set it on the inner optimizer.")
        if kwargs:
            raise ValueError(f"LossScaleOptimizer does not support arguments {sorted(kwargs)}.")
        if not isinstance(inner_optimizer, Optimizer):
            raise TypeError(
                "LossScaleOptimizer wraps an lm.optimizers.Optimizer (e.g. lm.optimizers.Adam()); "
                f"received {inner_optimizer!r}."
            )
        if isinstance(inner_optimizer, LossScaleOptimizer):
            raise ValueError("LossScaleOptimizer cannot wrap another LossScaleOptimizer.")
        try:
            scale_ok = bool(np.isfinite(initial_scale) and initial_scale > 0)
        except TypeError:
            scale_ok = False
        if not scale_ok:
            raise ValueError(f"LossScaleOptimizer: initial_scale must be a positive finite number, got {initial_scale!r}.")
        if isinstance(dynamic_growth_steps, bool) or not isinstance(dynamic_growth_steps, (int, np.integer)) \
                or dynamic_growth_steps < 1:
            raise ValueError(
                f"LossScaleOptimizer: dynamic_growth_steps must be an integer >= 1, got {dynamic_growth_steps!r}."
            )
        # The base keeps the name and an iterations counter of its own that stays unused:
        # ``iterations`` is the inner optimizer's (the steps really applied).
        super().__init__(optax.identity(), name=name)
        self.inner_optimizer = inner_optimizer
        self.initial_scale = float(initial_scale)
        self.dynamic_growth_steps = int(dynamic_growth_steps)
        inner_optimizer.loss_scale_factor = None
        self._step_counter = None
        self._dynamic_scale = None

    # -- state --------------------------------------------------------------------------------
    def build(self, variables) -> None:
        """Create ``step_counter`` and ``dynamic_scale`` and build the inner optimizer."""
        if self._built:
            return
        variables = list(variables)
        self._step_counter = Variable(np.int32(0), trainable=False, dtype="int32", name=f"{self.name}/step_counter")
        self._dynamic_scale = Variable(np.float32(self.initial_scale), trainable=False, dtype="float32",
                                       name=f"{self.name}/dynamic_scale")
        self.inner_optimizer.build(variables)
        self._mark_built(variables)

    @property
    def variables(self) -> list:
        """``step_counter``, ``dynamic_scale``, then the inner optimizer's variables."""
        state.note_consulted(self)
        own = [self._step_counter, self._dynamic_scale] if self._built else []
        return own + self.inner_optimizer.variables

    def state_items(self) -> list:
        """The inner optimizer's items after ``("step_counter", ...)`` and ``("dynamic_scale", ...)``."""
        own = [("step_counter", self._step_counter, None), ("dynamic_scale", self._dynamic_scale, None)]
        return (own if self._built else []) + self.inner_optimizer.state_items()

    @property
    def dynamic_scale(self) -> Variable:
        """The current loss scale (a float32 ``Variable``; created by ``build``)."""
        self._require_built("dynamic_scale")
        return self._dynamic_scale

    @property
    def step_counter(self) -> Variable:
        """Finite steps since the scale last changed (an int32 ``Variable``)."""
        self._require_built("step_counter")
        return self._step_counter

    def _require_built(self, what) -> None:
        if not self._built:
            raise ValueError(f"LossScaleOptimizer '{self.name}' has no {what} before it is built "
                             "(by its first apply, or build(model.trainable_variables)).")

    @property
    def iterations(self) -> Variable:
        """The inner optimizer's step counter (skipped steps do not count)."""
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self):
        """The inner optimizer's learning rate (settable)."""
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    # -- scaling and applying ---------------------------------------------------------------------
    def scale_loss(self, loss):
        """``loss * dynamic_scale`` (``initial_scale`` before the first ``apply``): what a training
        step differentiates."""
        state.note_consulted(self)  # the scale's source changes when the optimizer is built
        scale = self._dynamic_scale.value if self._built else jnp.float32(self.initial_scale)
        return loss * scale

    def apply(self, grads, trainable_variables=None) -> None:
        """Unscale ``grads`` (gradients of ``scale_loss(loss)``) and apply them with the inner
        optimizer if all are finite; otherwise keep every value and halve the scale."""
        state.note_consulted(self)
        grads = list(grads)
        trainable_variables = self._variables_to_update(trainable_variables)
        self._build_before_apply(trainable_variables)
        present = [jnp.asarray(g) for g in grads if g is not None]
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in present])) if present else jnp.bool_(True)

        inner = self.inner_optimizer
        watched = [*self._built_variables, *inner.variables]
        before = [v._uncast_value() for v in watched]
        scale = self._dynamic_scale.value
        unscaled = [None if g is None else jnp.asarray(g).astype(jnp.float32) / scale for g in grads]
        inner.apply(unscaled, trainable_variables)
        # Slots a first apply created have no old value: they are new either way.
        for v, old in zip(watched, before):
            v.assign(jnp.where(finite, v._uncast_value(), old))

        counter = self._step_counter.value
        grow = finite & (counter == self.dynamic_growth_steps - 1)
        self._dynamic_scale.assign(jnp.where(finite, jnp.where(grow, scale * 2.0, scale), scale * 0.5))
        self._step_counter.assign(jnp.where(finite & ~grow, counter + 1, 0).astype(jnp.int32))

    def finalize_variable_values(self, var_list) -> None:
        """The inner optimizer's (moving averages into the weights, with ``use_ema``)."""
        self.inner_optimizer.finalize_variable_values(var_list)

    def exclude_from_weight_decay(self, var_list=None, var_names=None) -> None:
        """The inner optimizer's."""
        self.inner_optimizer.exclude_from_weight_decay(var_list, var_names)

    # -- configuration ------------------------------------------------------------------------------
    def get_config(self) -> dict:
        """Keras's form: the inner optimizer serialized, the scale arguments, the name."""
        return {"name": self.name, "inner_optimizer": serialize_object(self.inner_optimizer),
                "initial_scale": self.initial_scale, "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """A ``LossScaleOptimizer`` from ``get_config()`` output (the inner optimizer rebuilt)."""
        config = dict(config)
        if "inner_optimizer" not in config:
            raise ValueError(f"A LossScaleOptimizer config needs 'inner_optimizer'; received keys {sorted(config)}.")
        inner = lookup.deserialize(config.pop("inner_optimizer"), custom_objects)
        return cls(inner, **config)


__all__ = ["LossScaleOptimizer"]
