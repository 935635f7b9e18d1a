"""``lm.optimizers.Optimizer``: optax does the math, lamina keeps the state in Variables.

An optimizer is an optax ``GradientTransformation`` plus what Keras users expect around it:

- a *learning rate* kept in a non-trainable ``Variable`` (``optimizer.learning_rate = 0.01``
  takes effect at the next step without recompiling), or a schedule evaluated at
  ``iterations``;
- ``iterations``, an int32 ``Variable`` counting the steps applied;
- gradient clipping (``clipnorm``, ``clipvalue``, ``global_clipnorm``), decoupled weight
  decay (``weight_decay``) and, after each update, each variable's ``constraint``;
- the optax state: created by ``transform.init`` on the first ``apply`` (or ``build``), each
  leaf stored in its own non-trainable ``Variable`` named after the weight it belongs to
  (``"adam/mu/dense/kernel"``).

``apply`` is ordinary stateful code — it reads ``v.value`` and writes with ``v.assign`` — so
it works eagerly and inside ``lm.jit`` / ``fit`` unchanged. Slots created by a first ``apply``
inside compiled code are concrete arrays (created under ``jax.ensure_compile_time_eval``) and
join the compiled state like any other variable.

A subclass only chooses the optax transformation: ``make_transform()`` returns it *without*
the learning rate (``optax.scale_by_adam(...)``); the base appends the scaling by ``-lr``.
Where Keras applies the learning rate before a momentum accumulator (SGD, RMSprop), the
subclass overrides ``make_update_transform(learning_rate)`` to put
``optax.scale_by_learning_rate(learning_rate)`` where Keras has it.
"""

from __future__ import annotations

import inspect
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lamina.core import state
from lamina.core.naming import to_snake_case, unique_name
from lamina.core.variable import Variable
from lamina.optimizers import schedules as schedules_module

_PARAM_KEY = "__lm_param_"


class Optimizer:
    """Base class of lamina's optimizers, and the wrapper of any optax transformation.

    ``Optimizer(transform)`` wraps a complete optax optimizer (one whose updates are *added*
    to the weights, learning rate included): ``Optimizer(optax.adabelief(1e-3))``. Given a
    ``learning_rate`` too, ``transform`` is taken to be the learning-rate-free part
    (``Optimizer(optax.scale_by_adam(), learning_rate=1e-3)``) and lamina scales its output
    by ``-learning_rate``, so the rate is settable and may be a schedule. (Hence the default
    ``learning_rate=None`` here, where Keras's base class has none; the built-in subclasses
    have Keras's defaults.)

    Arguments shared by all optimizers (Keras semantics; at most one kind of clipping):
        learning_rate: a float, a ``lm.optimizers.schedules.LearningRateSchedule`` or a
            function of one argument (an optax schedule: both are called with
            ``iterations``), or a function of no arguments (as Keras allows).
        weight_decay: if set, each weight ``w`` becomes ``w - w * weight_decay * lr`` before
            the update (decoupled decay, as Keras applies it for every optimizer).
        clipnorm: clip each gradient to this L2 norm, variable by variable.
        clipvalue: clip each gradient element to ``[-clipvalue, clipvalue]``.
        global_clipnorm: clip all gradients together to this global L2 norm.
        name: prefix of the optimizer's variable names (default: snake-case class name).

    Example:
        >>> import jax.numpy as jnp, optax, lamina as lm
        >>> w = lm.Variable(jnp.array([1.0, -2.0]), name="w")
        >>> opt = lm.optimizers.Optimizer(optax.sgd(0.5))
        >>> opt.apply([jnp.array([1.0, 1.0])], [w])
        >>> w.value.tolist(), int(opt.iterations)
        ([0.5, -2.5], 1)
    """

    def __init__(self, transform=None, learning_rate=None, *, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, name=None):
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        if sum(v is not None for v in clips.values()) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                + ", ".join(f"{k}={v}" for k, v in clips.items())
            )
        if transform is not None and not isinstance(transform, optax.GradientTransformation):
            raise TypeError(
                "Optimizer(transform=...) takes an optax GradientTransformation (for example "
                f"optax.adabelief(1e-3)); received {transform!r}."
            )
        if transform is None and type(self).make_transform is Optimizer.make_transform \
                and type(self).make_update_transform is Optimizer.make_update_transform:
            raise ValueError(
                "Optimizer() needs an optax transformation: Optimizer(optax.adamw(1e-3)), or "
                "subclass it and implement make_transform()."
            )
        self._transform = transform
        self.name = name or unique_name(to_snake_case(type(self).__name__))
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self._exclude_ids: set = set()
        self._exclude_pattern = None

        self._iterations = Variable(np.int32(0), trainable=False, dtype="int32",
                                    name=f"{self.name}/iterations")
        self._learning_rate = None
        if learning_rate is None:
            if transform is None:
                raise ValueError(f"{type(self).__name__} needs a learning_rate.")
            if weight_decay is not None:
                raise ValueError(
                    "weight_decay needs a learning_rate: a wrapped complete optax optimizer "
                    "decays weights itself (optax.adamw, optax.add_decayed_weights)."
                )
        else:
            self._learning_rate = self._make_learning_rate(learning_rate)

        self._built = False
        self._built_variables: list = []
        self._index: dict[int, int] = {}
        self._slots: list = []
        self._slot_params: list = []  # per slot: index of the weight it belongs to, or None
        self._slot_fields: list = []
        self._treedef = None

    # -- learning rate and iterations -------------------------------------------------------
    def _make_learning_rate(self, learning_rate):
        if isinstance(learning_rate, (schedules_module.LearningRateSchedule, Variable)):
            return learning_rate
        if callable(learning_rate):
            return learning_rate
        try:
            value = np.float32(learning_rate)
        except (TypeError, ValueError):
            raise ValueError(
                "Argument `learning_rate` should be a float, a LearningRateSchedule or a "
                f"function of no arguments. Received: learning_rate={learning_rate!r}"
            ) from None
        if value.shape != ():
            raise ValueError(f"`learning_rate` must be a scalar; received shape {value.shape}.")
        return Variable(value, trainable=False, dtype="float32", name=f"{self.name}/learning_rate")

    @property
    def iterations(self) -> Variable:
        """The number of steps applied so far (an int32 ``Variable``)."""
        return self._iterations

    @property
    def learning_rate(self):
        """The current learning rate: the ``Variable`` holding it, or the schedule's value at
        ``iterations``. Set it with a float (no recompilation) or a new schedule."""
        lr = self._learning_rate
        if isinstance(lr, Variable):
            return lr
        if isinstance(lr, schedules_module.LearningRateSchedule) or _takes_step(lr):
            return jnp.asarray(lr(self._iterations.value), jnp.float32)
        if callable(lr):
            return jnp.asarray(lr(), jnp.float32)
        return lr

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        current = self._learning_rate
        is_number = not isinstance(learning_rate, Variable) and not callable(learning_rate)
        if is_number and isinstance(current, Variable):
            current.assign(jnp.asarray(learning_rate, jnp.float32))  # no recompilation needed
            return
        if is_number and isinstance(current, schedules_module.LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a LearningRateSchedule as its learning rate, "
                "hence its learning rate is not settable. If you need the learning rate to be "
                "settable, create the optimizer with a float learning_rate."
            )
        if current is None:
            raise TypeError(
                "This optimizer wraps a complete optax optimizer, whose learning rate lives "
                "inside the optax transformation; it cannot be set here."
            )
        self._learning_rate = self._make_learning_rate(learning_rate)
        # Compiled steps captured the old rate (another variable, or Python code): retrace.
        state.bump_structure_version()

    def _current_learning_rate(self):
        lr = self.learning_rate
        return None if lr is None else jnp.asarray(lr.value if isinstance(lr, Variable) else lr, jnp.float32)

    # -- the optax transformation --------------------------------------------------------------
    def make_transform(self) -> optax.GradientTransformation:
        """The optax transformation without the learning rate (subclasses override this)."""
        return self._transform

    def make_update_transform(self, learning_rate) -> optax.GradientTransformation:
        """The transformation whose updates are added to the weights, for ``learning_rate``
        (a scalar array, or ``None`` for a wrapped complete optax optimizer)."""
        transform = self.make_transform()
        if learning_rate is None:
            return transform
        return optax.chain(transform, optax.scale_by_learning_rate(learning_rate))

    # -- state ---------------------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self._built

    @property
    def variables(self) -> list:
        """``iterations``, the learning-rate variable (if any) and every optax state leaf."""
        lr = [self._learning_rate] if isinstance(self._learning_rate, Variable) else []
        return [self._iterations, *lr, *self._slots]

    def _lm_state_variables(self) -> list:
        return self.variables

    def build(self, variables) -> None:
        """Create the optax state for ``variables`` (done by the first ``apply`` otherwise).

        The state is computed from concrete arrays even inside a trace, so the slots are real
        values; each leaf becomes a non-trainable ``Variable``.
        """
        if self._built:
            return
        variables = list(variables)
        for v in variables:
            if not isinstance(v, Variable):
                raise TypeError(f"{type(self).__name__}.build() takes lm.Variables; received {v!r}.")
        keys = _param_keys(len(variables))
        with jax.ensure_compile_time_eval():
            params = {k: _concrete_value(v) for k, v in zip(keys, variables)}
            lr = jnp.ones((), jnp.float32) if self._learning_rate is not None else None
            opt_state = self.make_update_transform(lr).init(params)
            leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(opt_state)
        key_index = {k: i for i, k in enumerate(keys)}
        names, fields, owners = _slot_names(self.name, leaves_with_paths, key_index, variables)
        slots = []
        for name, (_, leaf) in zip(names, leaves_with_paths):
            with jax.ensure_compile_time_eval():
                leaf = jnp.asarray(leaf)
            slots.append(Variable(leaf, trainable=False, name=name))
        self._built_variables = variables
        self._index = {id(v): i for i, v in enumerate(variables)}
        self._slots = slots
        self._slot_params = owners
        self._slot_fields = fields  # "mu", "nu", "count": with the owner, a slot's saving key
        self._treedef = treedef
        self._built = True
        state.bump_structure_version()

    # -- weight decay ----------------------------------------------------------------------------
    def exclude_from_weight_decay(self, var_list=None, var_names=None) -> None:
        """Exclude variables from weight decay: those in ``var_list``, and those whose name
        contains (regular-expression search) any string of ``var_names``. Call before the
        optimizer is built."""
        if self._built:
            raise ValueError("exclude_from_weight_decay() can only be configured before the optimizer is built.")
        self._exclude_ids = {id(v) for v in var_list or ()}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def _decays(self, variable) -> bool:
        if id(variable) in self._exclude_ids:
            return False
        return self._exclude_pattern is None or self._exclude_pattern.search(variable.name) is None

    # -- applying gradients ----------------------------------------------------------------------
    def apply_gradients(self, grads_and_vars):
        """``apply`` for a list of ``(gradient, variable)`` pairs; returns ``iterations``."""
        pairs = list(grads_and_vars)
        if pairs:
            grads, variables = zip(*pairs)
            self.apply(list(grads), list(variables))
        return self._iterations

    def apply(self, grads, trainable_variables=None) -> None:
        """Update ``trainable_variables`` with ``grads`` (aligned one to one).

        The first call builds the optimizer on ``trainable_variables``; later calls may pass
        any subset of those variables, or ``None`` to mean all of them. ``None`` gradients
        are skipped: that variable and its slots stay as they are.
        """
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            if not self._built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already be "
                    "built on a list of variables. Call `optimizer.build(trainable_variables)` "
                    "first, or pass the variables."
                )
            trainable_variables = self._built_variables
        trainable_variables = list(trainable_variables)
        _check_aligned(grads, trainable_variables)
        if not self._built:
            self.build(trainable_variables)

        n = len(self._built_variables)
        full_grads: list = [None] * n
        for g, v in zip(grads, trainable_variables):
            index = self._index.get(id(v))
            if index is None:
                raise ValueError(
                    f"Unknown variable '{v.path}': this optimizer can only be called for the "
                    f"variables it was built with ({n} variables, e.g. "
                    f"'{self._built_variables[0].path}'). For a new set of variables, create a "
                    "new optimizer."
                )
            full_grads[index] = g
        if all(g is None for g in full_grads):
            raise ValueError("No gradients provided for any variable.")
        missing = [v.path for v, g in zip(trainable_variables, grads) if g is None]
        if missing:
            warnings.warn(f"Gradients do not exist for variables {missing} when minimizing the loss.",
                          stacklevel=2)

        variables = self._built_variables
        present = [g is not None for g in full_grads]
        keys = _param_keys(n)
        values = [v.value for v in variables]
        grad_values = [
            jnp.zeros(v.shape, v.dtype) if g is None else jnp.asarray(g).astype(v.dtype)
            for g, v in zip(full_grads, variables)
        ]
        grad_values = self._clip(grad_values, present)

        lr = self._current_learning_rate()
        if self.weight_decay is not None:
            decayed = []
            for value, v, has_grad in zip(values, variables, present):
                if has_grad and self._decays(v):
                    wd = jnp.asarray(self.weight_decay, value.dtype)
                    value = value - value * wd * lr.astype(value.dtype)
                decayed.append(value)
        else:
            decayed = values

        old_leaves = [s.value for s in self._slots]
        opt_state = jax.tree_util.tree_unflatten(self._treedef, old_leaves)
        transform = self.make_update_transform(lr)
        updates, new_state = transform.update(
            dict(zip(keys, grad_values)), opt_state, dict(zip(keys, values))
        )
        new_leaves, new_treedef = jax.tree_util.tree_flatten(new_state)
        if new_treedef != self._treedef:
            raise ValueError(
                f"Optimizer '{self.name}': the optax state changed structure during an update "
                f"(from {self._treedef} to {new_treedef}); lamina stores it in fixed variables."
            )
        for slot, old, new, owner in zip(self._slots, old_leaves, new_leaves, self._slot_params):
            slot.assign(old if owner is not None and not present[owner] else new)
        for key, v, value, has_grad in zip(keys, variables, decayed, present):
            if has_grad:
                v.assign(optax.apply_updates(value, updates[key]))
        for v, has_grad in zip(variables, present):
            if has_grad and v.constraint is not None:
                v.assign(v.constraint(v.value))
        self._iterations.assign_add(1)

    def _clip(self, grads, present):
        # Keras's semantics (a zero or negative threshold means no clipping), optax's math.
        if self.clipnorm is not None and self.clipnorm > 0:
            per_variable = optax.clip_by_global_norm(self.clipnorm)
            return [per_variable.update(g, optax.EmptyState())[0] for g in grads]
        if self.global_clipnorm is not None and self.global_clipnorm > 0:
            return optax.clip_by_global_norm(self.global_clipnorm).update(grads, optax.EmptyState())[0]
        if self.clipvalue is not None and self.clipvalue > 0:
            return optax.clip(self.clipvalue).update(grads, optax.EmptyState())[0]
        return grads

    # -- configuration -----------------------------------------------------------------------------
    def get_config(self) -> dict:
        """The constructor arguments (learning rate as a float or a serialized schedule)."""
        if self._transform is not None:
            raise NotImplementedError(
                "An Optimizer wrapping an optax transformation cannot be serialized: optax "
                "transformations are functions. Subclass lm.optimizers.Optimizer (implement "
                "make_transform() and get_config()) to make it serializable."
            )
        return {"name": self.name, "learning_rate": self._learning_rate_config(),
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue}

    def _learning_rate_config(self):
        lr = self._learning_rate
        if isinstance(lr, Variable):
            # The shortest decimal of the float32 value: 0.001, not 0.0010000000474974513.
            return float(str(np.float32(lr.numpy())))
        if isinstance(lr, schedules_module.LearningRateSchedule):
            return schedules_module.serialize(lr)
        from lamina.saving.serialization import serialize_object

        return serialize_object(lr)

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """An optimizer from ``get_config()`` output (or Keras's: its EMA, loss-scaling and
        gradient-accumulation keys are accepted while they are off)."""
        config = dict(config)
        for key, off in _KERAS_ONLY_KEYS.items():
            if key in config and config.pop(key) not in off:
                raise ValueError(
                    f"{cls.__name__}: this config sets `{key}`, a Keras optimizer feature lamina "
                    "does not have."
                )
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules_module.deserialize(config["learning_rate"], custom_objects)
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self._built}>"


# -- helpers ------------------------------------------------------------------------------------

# Keys of Keras's optimizer configs for features lamina has not, and their "off" values.
_KERAS_ONLY_KEYS = {
    "use_ema": (False, None), "ema_momentum": (0.99,), "ema_overwrite_frequency": (None,),
    "loss_scale_factor": (None,), "gradient_accumulation_steps": (None,),
}


def _takes_step(fn) -> bool:
    """Whether ``fn`` is a one-argument schedule (optax's ``count -> lr``)."""
    if not callable(fn) or isinstance(fn, Variable):
        return False
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return any(p.kind == p.VAR_POSITIONAL for p in params) or (
        len(positional) >= 1 and all(p.default is not p.empty for p in positional[1:]))


def _param_keys(n: int) -> list[str]:
    # Dict keys sort like the indices (JAX flattens dicts in key order), and no optax state
    # field is named like them, so a state leaf's path tells which weight it belongs to.
    width = len(str(max(n - 1, 0)))
    return [f"{_PARAM_KEY}{i:0{width}d}" for i in range(n)]


def _concrete_value(variable):
    """The variable's value as a concrete array: inside a trace, its stored (pre-step) value."""
    value = variable.value
    if isinstance(value, jax.core.Tracer):
        value = variable._stored_value()
    return value


def _key_name(entry) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _slot_names(prefix, leaves_with_paths, key_index, variables):
    """One unique variable name per optax state leaf, and the index of the weight it belongs to.

    ``adam/mu/dense/kernel``: the state's field names (chain positions left out unless two
    leaves would share a name), then the weight's path.
    """
    short, full, owners = [], [], []
    for path, _ in leaves_with_paths:
        parts_short, parts_full, owner = [], [], None
        for entry in path:
            key = getattr(entry, "key", None)
            if isinstance(key, str) and key in key_index:
                owner = key_index[key]
                continue
            parts_full.append(_key_name(entry))
            if not isinstance(entry, jax.tree_util.SequenceKey):
                parts_short.append(_key_name(entry))
        short.append("/".join(parts_short or ["state"]))
        full.append("/".join(parts_full or ["state"]))
        owners.append(owner)
    # Chain positions only where two leaves of one weight would share a name otherwise.
    pairs = list(zip(owners, short))
    names, fields = [], []
    for owner, s_name, f_name in zip(owners, short, full):
        base = s_name if pairs.count((owner, s_name)) == 1 else f_name
        tail = [variables[owner].path] if owner is not None else []
        names.append("/".join([prefix, base, *tail]))
        fields.append(base)
    # Two weights with the same path (unattached variables all named "variable"): number them.
    used: set = set()
    unique = []
    for name in names:
        candidate, count = name, 0
        while candidate in used:
            count += 1
            candidate = f"{name}_{count}"
        used.add(candidate)
        unique.append(candidate)
    return unique, fields, owners


def _check_aligned(grads, variables) -> None:
    if len(grads) != len(variables):
        extra = variables[len(grads)] if len(variables) > len(grads) else None
        detail = (f"variable '{extra.path}' (shape {extra.shape}) has no gradient" if extra is not None
                  else f"gradient {len(variables)} has no variable")
        raise ValueError(
            f"Received {len(grads)} gradients for {len(variables)} variables: they must line up "
            f"one to one ({detail})."
        )
    for g, v in zip(grads, variables):
        if not isinstance(v, Variable):
            raise TypeError(f"Optimizers update lm.Variables; received {type(v).__name__} {v!r}.")
        if g is not None and tuple(np.shape(g)) != v.shape:
            raise ValueError(
                f"The gradient for variable '{v.path}' has shape {tuple(np.shape(g))}, but the "
                f"variable has shape {v.shape}: gradients and variables must line up one to one."
            )
