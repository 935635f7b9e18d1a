"""Learning-rate schedules (``lm.optimizers.schedules``): Keras 3's names, arguments and numbers.

A schedule is called with the optimizer's ``iterations`` (the number of steps applied before
the current one) and returns a float32 scalar; it works on Python numbers and on traced
values, so a compiled training step evaluates it on device. The formulas are Keras's, written
with ``jax.numpy`` (optax has no equivalent of ``PiecewiseConstantDecay``'s boundary rule,
``InverseTimeDecay``, ``PolynomialDecay(cycle=True)`` or Keras's ``CosineDecayRestarts``).
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import object_family

_FLOAT = jnp.float32


def _step(step, dtype=_FLOAT):
    value = getattr(step, "value", step)  # an lm.Variable (``optimizer.iterations``)
    return jnp.asarray(value).astype(dtype)


def _whole_quotient(step, divisor, rounding):
    """``floor`` or ``ceil`` of ``step / divisor`` as float32, exact at the boundaries.

    Keras divides in float32 and rounds. Compiled, XLA turns a division by a constant into a
    multiplication by its (inexact) reciprocal, so ``floor(90 / 30)`` can become 2 and a
    staircase would step one iteration late. For an integer step (``iterations``) and a whole
    divisor we divide integers instead: the numbers Keras computes eagerly, also compiled.
    """
    raw = jnp.asarray(getattr(step, "value", step))
    if jnp.issubdtype(raw.dtype, jnp.integer) and float(divisor) == int(divisor):
        d = int(divisor)
        q = raw // d if rounding == "floor" else -((-raw) // d)
        return q.astype(_FLOAT)
    fn = jnp.floor if rounding == "floor" else jnp.ceil
    return fn(_step(raw) / jnp.asarray(divisor, _FLOAT))


class LearningRateSchedule:
    """Base class: ``__call__(step)`` returns the learning rate; ``get_config()`` its arguments.

    Example:
        >>> class Halving(LearningRateSchedule):
        ...     def __init__(self, initial_learning_rate):
        ...         self.initial_learning_rate = initial_learning_rate
        ...     def __call__(self, step):
        ...         return self.initial_learning_rate * 0.5 ** _step(step)
        ...     def get_config(self):
        ...         return {"initial_learning_rate": self.initial_learning_rate}
        >>> float(Halving(1.0)(3))
        0.125
    """

    def __call__(self, step):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must override `__call__(self, step)`.")

    def get_config(self) -> dict:
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `get_config()` in "
            "order to be serializable."
        )

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


def _check_positive(name, value):
    if value <= 0:
        raise ValueError(f"Argument `{name}` must be > 0. Received: {name}={value}")


class _RateDecay(LearningRateSchedule):
    """Shared by the schedules driven by ``decay_rate`` over ``decay_steps``: the arguments,
    the config and the decay progress ``step / decay_steps`` (floored if ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase, name):
        _check_positive("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name

    def _progress(self, step):
        if self.staircase:
            return _whole_quotient(step, self.decay_steps, "floor")
        return _step(step) / jnp.asarray(self.decay_steps, _FLOAT)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_RateDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (floored if ``staircase``).

    Example:
        >>> sched = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
        >>> round(float(sched(20)), 6)
        0.025
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        p = self._progress(step)
        return jnp.asarray(self.initial_learning_rate, _FLOAT) * jnp.power(jnp.asarray(self.decay_rate, _FLOAT), p)


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last boundary.

    Example:
        >>> sched = PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
        >>> [round(float(sched(s)), 6) for s in (10, 11, 21)]
        [1.0, 0.5, 0.1]
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. Received: "
                f"boundaries={boundaries} of length {len(boundaries)}, and values={values} of "
                f"length {len(values)}."
            )
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step):
        step = jnp.asarray(getattr(step, "value", step))
        # As Keras: boundaries are cast to the step's dtype, the result has values[0]'s dtype.
        bounds = [jnp.asarray(b).astype(step.dtype) for b in self.boundaries]
        values = [jnp.asarray(v) for v in self.values]
        dtype = values[0].dtype
        result = (step <= bounds[0]).astype(dtype) * values[0]
        result = result + (step > bounds[-1]).astype(dtype) * values[-1]
        for low, high, value in zip(bounds[:-1], bounds[1:], values[1:-1]):
            result = result + ((step > low) & (step <= high)).astype(dtype) * value
        return result

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """Polynomial decay from ``initial_learning_rate`` to ``end_learning_rate`` over
    ``decay_steps`` (then constant, or restarting with longer periods if ``cycle``).

    Example:
        >>> sched = PolynomialDecay(1.0, decay_steps=10, end_learning_rate=0.0)
        >>> [round(float(sched(s)), 6) for s in (0, 5, 20)]
        [1.0, 0.5, 0.0]
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        _check_positive("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle
        self.name = name

    def __call__(self, step):
        initial = jnp.asarray(self.initial_learning_rate, _FLOAT)
        end = jnp.asarray(self.end_learning_rate, _FLOAT)
        raw, step = step, _step(step)
        decay_steps = jnp.asarray(self.decay_steps, _FLOAT)
        if self.cycle:
            multiplier = jnp.where(step == 0, 1.0, _whole_quotient(raw, self.decay_steps, "ceil"))
            decay_steps = decay_steps * multiplier
        else:
            step = jnp.minimum(step, decay_steps)
        p = step / decay_steps
        return (initial - end) * jnp.power(1 - p, jnp.asarray(self.power, _FLOAT)) + end

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power,
                "cycle": self.cycle, "name": self.name}


class InverseTimeDecay(_RateDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (floored if ``staircase``).

    Example:
        >>> sched = InverseTimeDecay(1.0, decay_steps=1, decay_rate=0.5)
        >>> float(sched(2))
        0.5
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        p = self._progress(step)
        return jnp.asarray(self.initial_learning_rate, _FLOAT) / (1 + jnp.asarray(self.decay_rate, _FLOAT) * p)


class CosineDecay(LearningRateSchedule):
    """Cosine decay over ``decay_steps`` down to ``alpha * initial_learning_rate``; with
    ``warmup_target``, first a linear warmup from ``initial_learning_rate`` to
    ``warmup_target`` over ``warmup_steps``, then the cosine decay from ``warmup_target``.

    Example:
        >>> sched = CosineDecay(0.0, decay_steps=10, warmup_target=1.0, warmup_steps=10)
        >>> [round(float(sched(s)), 6) for s in (5, 10, 15, 20)]
        [0.5, 1.0, 0.5, 0.0]
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        _check_positive("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps

    def _decay(self, step, decay_steps, decay_from):
        cosine = 0.5 * (1.0 + jnp.cos(jnp.asarray(math.pi, _FLOAT) * (step / decay_steps)))
        return decay_from * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        initial = jnp.asarray(self.initial_learning_rate, _FLOAT)
        decay_steps = jnp.asarray(self.decay_steps, _FLOAT)
        step = _step(step)
        if self.warmup_target is None:
            return self._decay(jnp.minimum(step, decay_steps), decay_steps, initial)
        target = jnp.asarray(self.warmup_target, _FLOAT)
        warmup_steps = jnp.asarray(self.warmup_steps, _FLOAT)
        step = jnp.minimum(step, decay_steps + warmup_steps)
        warmup = (target - initial) * (step / warmup_steps) + initial
        decay = self._decay(step - warmup_steps, decay_steps, target)
        return jnp.where(step < warmup_steps, warmup, decay)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): periods of ``first_decay_steps * t_mul**i``
    steps, each starting from ``initial_learning_rate * m_mul**i``.

    Example:
        >>> sched = CosineDecayRestarts(1.0, first_decay_steps=10)
        >>> [round(float(sched(s)), 6) for s in (0, 5, 10)]
        [1.0, 0.5, 1.0]
    """

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0,
                 name="SGDRDecay"):
        _check_positive("first_decay_steps", first_decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self._t_mul = t_mul
        self._m_mul = m_mul
        self.alpha = alpha
        self.name = name

    def __call__(self, step):
        initial = jnp.asarray(self.initial_learning_rate, _FLOAT)
        alpha = jnp.asarray(self.alpha, _FLOAT)
        t_mul = jnp.asarray(self._t_mul, _FLOAT)
        m_mul = jnp.asarray(self._m_mul, _FLOAT)
        fraction = _step(step) / jnp.asarray(self.first_decay_steps, _FLOAT)
        if self._t_mul == 1.0:
            i_restart = _whole_quotient(step, self.first_decay_steps, "floor")
            fraction = fraction - i_restart
        else:
            i_restart = jnp.floor(jnp.log(1.0 - fraction * (1.0 - t_mul)) / jnp.log(t_mul))
            sum_r = (1.0 - jnp.power(t_mul, i_restart)) / (1.0 - t_mul)
            fraction = (fraction - sum_r) / jnp.power(t_mul, i_restart)
        cosine = 0.5 * jnp.power(m_mul, i_restart) * (1.0 + jnp.cos(jnp.asarray(math.pi, _FLOAT) * fraction))
        return initial * ((1 - alpha) * cosine + alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self._t_mul,
                "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


_CLASSES = (LearningRateSchedule, ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay,
            InverseTimeDecay, CosineDecay, CosineDecayRestarts)
_ALIASES = {cls.__name__: cls for cls in _CLASSES}
for _cls in _CLASSES:
    register_builtin(_cls)

serialize, _deserialize, _get = object_family("learning rate schedule", _ALIASES, base=LearningRateSchedule,
                                            module="lamina.optimizers.schedules")


def deserialize(config, custom_objects=None):
    """A schedule from ``{"class_name": ..., "config": {...}}`` (or a registered name)."""
    return _deserialize(config, custom_objects)


__all__ = ["CosineDecay", "CosineDecayRestarts", "ExponentialDecay", "InverseTimeDecay",
           "LearningRateSchedule", "PiecewiseConstantDecay", "PolynomialDecay", "deserialize",
           "serialize"]
