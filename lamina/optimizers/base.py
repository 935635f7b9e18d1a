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
  (``"adam/mu/dense/kernel"``);
- Keras 3's loss scaling (``loss_scale_factor``), gradient accumulation
  (``gradient_accumulation_steps``) and moving average of the weights (``use_ema``): their
  state (accumulators, averages) is more variables next to the optax leaves, and their
  decisions are ``jnp.where`` selections, so a compiled step has one shape whatever the step
  number (as Keras on JAX does, the update is computed every step and kept when it is due).

``apply`` is ordinary stateful code — it reads ``v.value`` and writes with ``v.assign`` — so
it works eagerly and inside ``lm.jit`` / ``fit`` unchanged. Slots created by a first ``apply``
inside compiled code are concrete arrays (created under ``jax.ensure_compile_time_eval``) and
join the compiled state like any other variable.

A subclass only chooses the optax transformation: ``make_transform()`` returns it *without*
the learning rate (``optax.scale_by_adam(...)``); the base appends the scaling by ``-lr``.
Where Keras applies the learning rate before a momentum accumulator (SGD, RMSprop), the
subclass overrides ``make_update_transform(learning_rate)`` to put
``optax.scale_by_learning_rate(learning_rate)`` where Keras has it.

Or a subclass is written the Keras 3 way: ``build`` creates slots
(``add_optimizer_variables``, ``keras_methods.py``) and ``update_step(gradient, variable,
learning_rate)`` assigns them and the weight. ``apply`` then runs Keras's sequence around it
(unscale, accumulate, clip, decay, one ``update_step`` per variable with a gradient, EMA,
constraints); the slots are variables like optax's, so compiled steps, saving and
``stateless_apply`` treat them alike. A first ``build`` inside a trace runs on the stored
values (``outside_trace``), so slots initialised from the weights hold real numbers.
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
from lamina.distribution import placement
from lamina.optimizers import schedules as schedules_module
from lamina.optimizers.keras_methods import KerasOptimizerMethods, outside_trace
from lamina.saving.serialization import serialize_object

_PARAM_KEY = "__lm_param_"


class Optimizer(KerasOptimizerMethods):
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
        use_ema: keep an exponential moving average of the trainable weights (optimizer
            variables ``<name>/average/<weight path>``), updated after every step:
            ``average = ema_momentum * average + (1 - ema_momentum) * w`` (the first
            update copies ``w``). ``finalize_variable_values`` copies it into the weights;
            ``fit`` does that at the end of training.
        ema_momentum: the momentum of that average (default 0.99).
        ema_overwrite_frequency: if set, the weights are overwritten by their average every
            this many ``iterations``, during training.
        loss_scale_factor: if set, ``scale_loss(loss)`` multiplies the loss by it (the
            training step does so before differentiating) and ``apply`` divides the
            gradients by it first.
        gradient_accumulation_steps: if set (an integer >= 2), gradients are summed over
            this many calls of ``apply`` and the weights change only at the last of them,
            with the *average* of the summed gradients; ``iterations`` then counts those
            updates, while learning-rate schedules still see every call.
        name: prefix of the optimizer's variable names (default: snake-case class name).

    Clipping, weight decay and the update see the averaged gradients of an accumulation;
    the moving average is updated at every call (also between updates); constraints run
    last. This is Keras 3's order, for its numbers.

    Example:
        >>> import jax.numpy as jnp, optax, lamina as lm
        >>> w = lm.Variable(jnp.array([1.0, -2.0]), name="w")
        >>> opt = lm.optimizers.Optimizer(optax.sgd(0.5))
        >>> opt.apply([jnp.array([1.0, 1.0])], [w])
        >>> w.value.tolist(), int(opt.iterations)
        ([0.5, -2.5], 1)

        Accumulating two gradients: the first call only stores it, the second updates with
        the mean of both.

        >>> w = lm.Variable(jnp.array([1.0]))
        >>> opt = lm.optimizers.SGD(learning_rate=1.0, gradient_accumulation_steps=2)
        >>> opt.apply([jnp.array([2.0])], [w])
        >>> w.value.tolist(), int(opt.iterations)
        ([1.0], 0)
        >>> opt.apply([jnp.array([4.0])], [w])
        >>> w.value.tolist(), int(opt.iterations)
        ([-2.0], 1)
    """

    # Held by a model (``model.optimizer``), its state stays out of ``model.variables`` and
    # keeps its own paths, as in Keras.
    _lm_state_role = "optimizer"

    def __init__(self, transform=None, learning_rate=None, *, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        _check_options(type(self).__name__, use_ema, ema_momentum, ema_overwrite_frequency,
                       loss_scale_factor, gradient_accumulation_steps)
        # A Keras-style subclass (its own update_step) has no optax transformation; Keras's
        # base takes the learning rate first, so a positional one arrives as ``transform``.
        self._keras_style = type(self).update_step is not Optimizer.update_step
        if self._keras_style and learning_rate is None and transform is not None \
                and not isinstance(transform, optax.GradientTransformation):
            transform, learning_rate = None, transform
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
        if transform is None and not self._keras_style and type(self).make_transform is Optimizer.make_transform \
                and type(self).make_update_transform is Optimizer.make_update_transform:
            if type(self) is Optimizer:
                raise ValueError(
                    "Optimizer() needs an optax transformation: Optimizer(optax.adamw(1e-3)), or "
                    "subclass it and implement update_step() (the Keras way) or make_transform()."
                )
            raise NotImplementedError(
                f"{type(self).__name__} subclasses lm.optimizers.Optimizer but defines neither "
                "update_step(self, gradient, variable, learning_rate) (Keras's way: create slots in "
                "build() with add_optimizer_variables and assign them in update_step) nor "
                "make_transform() (an optax transformation without the learning rate)."
            )
        self._transform = transform
        self.name = name or unique_name(to_snake_case(type(self).__name__))
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.use_ema = bool(use_ema)
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = int(gradient_accumulation_steps) if gradient_accumulation_steps else None
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
        # Per slot: the weight it belongs to (its index for optax's and the options' slots, the
        # Variable itself for add_variable_from_reference's), or None.
        self._slot_params: list = []
        self._step_slots: list = []  # the slots update_step may change (add_variable's)
        self._slot_fields: list = []
        self._treedef = None
        # After build: the first ``_optax_size`` slots are optax's state leaves; then the
        # accumulation counter, the gradient accumulators and the moving averages, when on.
        self._optax_size = 0
        self._accumulated_steps = None  # int32: gradients summed since the last update
        self._accumulators: list = []
        self._averages: list = []

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
            return jnp.asarray(lr(self._calls()), jnp.float32)
        if callable(lr):
            return jnp.asarray(lr(), jnp.float32)
        return lr

    def _calls(self):
        """The number of ``apply`` calls so far: ``iterations``, or with gradient accumulation
        ``iterations * steps + accumulated_steps`` (schedules follow calls, as in Keras)."""
        if self._accumulated_steps is None:
            return self._iterations.value
        return self._iterations.value * self.gradient_accumulation_steps + self._accumulated_steps.value

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
        state.bump_structure_version(self)

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
        state.note_consulted(self)
        return self._built

    @built.setter
    def built(self, value) -> None:
        # Keras code may set it at the end of its build().
        if bool(value) != self._built:
            self._built = bool(value)
            state.bump_structure_version(self)

    @property
    def variables(self) -> list:
        """``iterations``, the learning-rate variable (if any), every optax state leaf, then
        the gradient-accumulation counter and accumulators and the moving averages (if on).
        An optimizer written the Keras way (``update_step``) has Keras's order: the moving
        averages first, then the accumulation state, then the slots ``build`` made."""
        state.note_consulted(self)
        lr = [self._learning_rate] if isinstance(self._learning_rate, Variable) else []
        return [self._iterations, *lr, *self._slots]

    def state_items(self) -> list:
        """``[(field, variable, weight)]`` for every variable of ``variables``, in that order:
        ``field`` names the state (``"iterations"``, ``"learning_rate"``, optax's ``"mu"``,
        ``"count"``..., ``"gradient_accumulator"``, ``"average"``) and ``weight`` is the model
        variable a slot belongs to (``None`` for the optimizer's own counters). Saving keys
        the state by these, so a file does not depend on the optimizer's or model's name.

        Example:
            >>> import jax.numpy as jnp, lamina as lm
            >>> w = lm.Variable(jnp.zeros((2,)), name="w")
            >>> opt = lm.optimizers.Adam(0.1)
            >>> opt.build([w])
            >>> [(field, weight is w) for field, _, weight in opt.state_items()]
            [('iterations', False), ('learning_rate', False), ('count', False), ('mu', True), ('nu', True)]
        """
        items = [("iterations", self._iterations, None)]
        if isinstance(self._learning_rate, Variable):
            items.append(("learning_rate", self._learning_rate, None))
        for slot, field, owner in zip(self._slots, self._slot_fields, self._slot_params):
            weight = self._built_variables[owner] if isinstance(owner, int) else owner
            items.append((field, slot, weight))
        return items

    def keras_file_variables(self):
        """``variables`` when they are in the order of a Keras file's ``optimizer/vars``, else
        ``None``: so for an optimizer written the Keras way (``update_step``: iterations, the
        learning rate, the moving averages, then its slots in creation order), unless it
        accumulates gradients (lamina keeps one more counter there). Built-in optax-based
        optimizers are mapped slot by slot by the ``.keras`` writer instead."""
        if self._keras_style and not self.gradient_accumulation_steps:
            return self.variables
        return None

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
        if self._keras_style:
            # Keras's base build: the options' slots; the subclass's build adds its own after.
            self._build_option_slots(variables)
            self._mark_built(variables)
            return
        keys = _param_keys(len(variables))
        with jax.ensure_compile_time_eval():
            params = {k: _concrete_value(v) for k, v in zip(keys, variables)}
            # Only the state's structure depends on the rate: a host scalar, so that building
            # optax's learning-rate step compiles no program for it.
            lr = np.ones((), np.float32) if self._learning_rate is not None else None
            # Placed like the weights: a slot never sits whole on one device (placement.py).
            opt_state = placement.init_state_like(self.make_update_transform(lr).init, params)
            leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(opt_state)
        key_index = {k: i for i, k in enumerate(keys)}
        names, fields, owners = _slot_names(self.name, leaves_with_paths, key_index, variables)
        slots = []
        for name, (_, leaf) in zip(names, leaves_with_paths):
            with jax.ensure_compile_time_eval():
                # A fill made on the host goes to the device as it is (jnp.asarray would
                # compile a copy program per shape).
                leaf = jax.device_put(leaf) if isinstance(leaf, np.ndarray) else jnp.asarray(leaf)
            slots.append(Variable(leaf, trainable=False, name=name, layout=placement.sharding_of(leaf)))
        self._optax_size = len(slots)
        # optax's leaves come first; slots add_variable made before the build follow.
        self._slots = [*slots, *self._slots]
        self._slot_params = [*owners, *self._slot_params]
        # "mu", "nu", "count": with the owner, a slot's saving key.
        self._slot_fields = [*fields, *self._slot_fields]
        self._treedef = treedef
        self._build_option_slots(variables)
        self._mark_built(variables)

    def _mark_built(self, variables: list) -> None:
        """Record the variables ``build`` was given (by position and by identity) and mark the
        optimizer built: the last step of every optimizer's ``build``, wrappers included."""
        self._built_variables = variables
        self._index = {id(v): i for i, v in enumerate(variables)}
        self._built = True
        state.bump_structure_version(self)  # compiled steps made before the build are stale

    def _build_option_slots(self, variables) -> None:
        # Appended to the slots (with a field and an owner), so that they are saved, loaded
        # and compiled like optax's leaves: optimizer/gradient_accumulator/dense/kernel.
        def add(field, owner, value):
            tail = [variables[owner].path] if owner is not None else []
            slot = Variable(value, trainable=False, name="/".join([self.name, field, *tail]),
                            layout=placement.sharding_of(value))
            self._slots.append(slot)
            self._slot_fields.append(field)
            self._slot_params.append(owner)
            return slot

        def zeros_like(v):
            with jax.ensure_compile_time_eval():
                return placement.zeros_like(_concrete_value(v))

        def averages():
            # Zeros, as Keras: the first update of the average (momentum 0) copies the weight.
            if self.use_ema:
                self._averages = [add("average", i, zeros_like(v)) for i, v in enumerate(variables)]

        if self._keras_style:
            averages()  # Keras's base build makes the averages first: its variables' order
        if self.gradient_accumulation_steps:
            self._accumulated_steps = add("accumulated_steps", None, np.int32(0))
            self._accumulators = [add("gradient_accumulator", i, zeros_like(v)) for i, v in enumerate(variables)]
        if not self._keras_style:
            averages()

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

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        """``apply`` on given values instead of the stored ones; changes nothing (Keras on JAX).

        ``optimizer_variables`` lines up with ``variables``, ``trainable_variables`` with the
        variables the optimizer was built with (``build(model.trainable_variables)``).
        Returns ``(trainable_variables, optimizer_variables)``, the new values as lists, so it
        works inside raw ``jax.jit``.

        Example:
            >>> import jax, jax.numpy as jnp, lamina as lm
            >>> w = lm.Variable(jnp.array([1.0]))
            >>> opt = lm.optimizers.SGD(learning_rate=0.5)
            >>> opt.build([w])
            >>> step = jax.jit(opt.stateless_apply)
            >>> (new_w,), opt_values = step([v.value for v in opt.variables], [jnp.array([2.0])], [w.value])
            >>> new_w.tolist(), int(opt_values[0]), w.value.tolist()
            ([0.0], 1, [1.0])
        """
        if not self._built:
            raise ValueError(
                f"Optimizer '{self.name}' must be built before stateless_apply(): call "
                "optimizer.build(model.trainable_variables) first."
            )
        mine, targets = self.variables, self._built_variables
        for given, expected, what in ((optimizer_variables, mine, "optimizer.variables"),
                                      (trainable_variables, targets, "the variables it was built with")):
            if len(given) != len(expected):
                raise ValueError(
                    f"Optimizer '{self.name}'.stateless_apply(): expected {len(expected)} values "
                    f"(one per entry of {what}, in that order), received {len(given)}."
                )
        pure = state.functionalize(lambda: self.apply(list(grads)), [*targets, *mine])
        # A Variable among the values stands for its current value (Keras converts one too).
        given = [v.value if isinstance(v, Variable) else v for v in [*trainable_variables, *optimizer_variables]]
        _, new_values, _ = pure(given)
        return new_values[:len(targets)], new_values[len(targets):]

    def _variables_to_update(self, trainable_variables) -> list:
        """What ``apply`` updates: the variables given, or (``None``) those it was built on."""
        if trainable_variables is None:
            if not self._built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already be "
                    "built on a list of variables. Call `optimizer.build(trainable_variables)` "
                    "first, or pass the variables."
                )
            trainable_variables = self._built_variables
        return list(trainable_variables)

    def _build_before_apply(self, variables: list) -> None:
        """The build a first ``apply`` does, on the host even inside a trace."""
        if not self._built:
            with outside_trace():  # a Keras build may write initial values into its slots
                self.build(variables)

    def apply(self, grads, trainable_variables=None) -> None:
        """Update ``trainable_variables`` with ``grads`` (aligned one to one).

        The first call builds the optimizer on ``trainable_variables``; later calls may pass
        any subset of those variables, or ``None`` to mean all of them. ``None`` gradients
        are skipped: that variable and its slots stay as they are.
        """
        state.note_consulted(self)  # a compiled step depends on whether it is built, its rate
        grads = list(grads)
        if not grads:
            return
        trainable_variables = self._variables_to_update(trainable_variables)
        _check_aligned(grads, trainable_variables)
        self._build_before_apply(trainable_variables)

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
        values = [v.value for v in variables]
        grad_values = [
            jnp.zeros(v.shape, v.dtype) if g is None else jnp.asarray(g).astype(v.dtype)
            for g, v in zip(full_grads, variables)
        ]
        if self.loss_scale_factor is not None:
            # The step differentiated scale_loss(loss): back to the gradients of the loss.
            grad_values = [g / self.loss_scale_factor for g in grad_values]
        due = None
        if self.gradient_accumulation_steps:
            steps = self.gradient_accumulation_steps
            due = self._accumulated_steps.value == steps - 1
            summed = [g + acc.value for g, acc in zip(grad_values, self._accumulators)]
            grad_values = [total / steps for total in summed]

        if self._keras_style:
            step_slots = self._step_slots
            old_leaves = [slot.value for slot in step_slots]
            new_values, new_leaves = self._run_update_steps(grad_values, present)
        else:
            step_slots = self._slots[:self._optax_size]
            old_leaves = [slot.value for slot in step_slots]
            new_values, new_leaves = self._update(values, grad_values, present)
        if due is not None:
            # As Keras on JAX: the update is computed at every call and kept only when due
            # (one compiled step for every call; no branch on a traced counter).
            new_values = [jnp.where(due, new, old) for new, old in zip(new_values, values)]
            new_leaves = [jnp.where(due, new, old) for new, old in zip(new_leaves, old_leaves)]
            for acc, total, has_grad in zip(self._accumulators, summed, present):
                if has_grad:
                    acc.assign(jnp.where(due, jnp.zeros_like(total), total))
        for slot, new in zip(step_slots, new_leaves):
            slot.assign(new)
        for v, value, has_grad in zip(variables, new_values, present):
            if has_grad:
                v.assign(value)
        if self.use_ema:
            self._update_averages()
        for v, has_grad in zip(variables, present):
            if has_grad and v.constraint is not None:
                v.assign(v.constraint(v.value))
        if due is None:
            self._iterations.assign_add(1)
        else:
            self._iterations.assign_add(due.astype(jnp.int32))
            self._accumulated_steps.assign(jnp.where(due, 0, self._accumulated_steps.value + 1).astype(jnp.int32))

    def _update(self, values, grad_values, present):
        """Clipping, weight decay and the optax step: the new weight values (unchanged without
        a gradient) and the new optax state leaves (a weight's own unchanged without one)."""
        variables = self._built_variables
        keys = _param_keys(len(variables))
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

        old_leaves = [s.value for s in self._slots[:self._optax_size]]
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
        new_leaves = [old if owner is not None and not present[owner] else new
                      for old, new, owner in zip(old_leaves, new_leaves, self._slot_params)]
        new_values = [optax.apply_updates(value, updates[key]) if has_grad else old
                      for key, value, old, has_grad in zip(keys, decayed, values, present)]
        return new_values, new_leaves

    def update_step(self, gradient, variable, learning_rate):
        """Update one ``variable`` from its ``gradient`` (Keras's way of writing an optimizer).

        A subclass that implements it (instead of ``make_transform``) is run as Keras runs
        it: ``apply`` divides the gradients by ``loss_scale_factor``, accumulates them, clips
        them, decays the weights, then calls ``update_step`` once per variable that has a
        gradient, with ``learning_rate`` (the current rate or the schedule's value) cast to the
        variable's dtype; the moving average and the constraints follow. Slots come from
        ``add_optimizer_variables`` / ``add_variable_from_reference`` / ``add_variable`` in
        ``build``; assign them with ``self.assign``, ``self.assign_add``, ``self.assign_sub``.

        Example:
            >>> import jax.numpy as jnp, lamina as lm
            >>> class HalfStep(lm.optimizers.Optimizer):
            ...     def update_step(self, gradient, variable, learning_rate):
            ...         self.assign_sub(variable, 0.5 * learning_rate * gradient)
            >>> w = lm.Variable(jnp.array([1.0]))
            >>> HalfStep(learning_rate=1.0).apply([jnp.array([2.0])], [w])
            >>> w.value.tolist()
            [0.0]
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no update_step(): built-in optimizers update through their "
            "optax transformation (apply), not variable by variable."
        )

    def _run_update_steps(self, grad_values, present):
        """Keras's update around ``update_step``: clip, decay the weights with a gradient, then
        one ``update_step`` each. Returns the new weight values and the new ``_step_slots``."""
        variables = self._built_variables
        grad_values = self._clip(grad_values, present)
        lr = self._current_learning_rate()
        if self.weight_decay is not None:
            for v, has_grad in zip(variables, present):
                if has_grad and self._decays(v):
                    value = v.value
                    v.assign(value - value * jnp.asarray(self.weight_decay, value.dtype) * lr.astype(value.dtype))
        for g, v, has_grad in zip(grad_values, variables, present):
            if has_grad:
                self.update_step(g, v, lr.astype(v.dtype))
        return [v.value for v in variables], [slot.value for slot in self._step_slots]

    # -- moving average of the weights -------------------------------------------------------------
    def _update_averages(self) -> None:
        # Keras's formula and order: every built weight (with a gradient or not), after the
        # update; the momentum is 0 while iterations is 0, so the first average is the weight.
        not_first = self._iterations.value != 0
        for v, average in zip(self._built_variables, self._averages):
            value = v.value
            momentum = not_first.astype(value.dtype) * self.ema_momentum
            average.assign(momentum * average.value + (1 - momentum) * value)
        if self.ema_overwrite_frequency is not None:
            overwrite = (self._iterations.value + 1) % self.ema_overwrite_frequency == 0
            for v, average in zip(self._built_variables, self._averages):
                v.assign(jnp.where(overwrite, average.value, v.value))

    def finalize_variable_values(self, var_list) -> None:
        """Put the moving averages into the weights of ``var_list`` (with ``use_ema``; else
        nothing happens). ``fit`` calls it with ``model.trainable_weights`` when training ends.

        Example:
            >>> import jax.numpy as jnp, lamina as lm
            >>> w = lm.Variable(jnp.array([0.0]))
            >>> opt = lm.optimizers.SGD(learning_rate=1.0, use_ema=True, ema_momentum=0.5)
            >>> for _ in range(2):
            ...     opt.apply([jnp.array([-2.0])], [w])
            >>> w.value.tolist()
            [4.0]
            >>> opt.finalize_variable_values([w])
            >>> w.value.tolist()
            [3.0]
        """
        if not self.use_ema or not self._built:
            return
        for v in var_list:
            index = self._index.get(id(v))
            if index is None:
                raise ValueError(
                    f"finalize_variable_values: variable '{v.path}' is not one this optimizer "
                    f"was built with ({len(self._built_variables)} variables, e.g. "
                    f"'{self._built_variables[0].path}'), so it has no moving average."
                )
            v.assign(self._averages[index].value)

    def scale_loss(self, loss):
        """``loss * loss_scale_factor`` (``loss`` itself without one): what a training step
        differentiates, as Keras's do; ``apply`` divides the gradients back.

        Example:
            >>> import lamina as lm
            >>> float(lm.optimizers.SGD(loss_scale_factor=128.0).scale_loss(0.5))
            64.0
        """
        if self.loss_scale_factor is None:
            return loss
        return loss * self.loss_scale_factor

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
                "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue,
                "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    def _learning_rate_config(self):
        lr = self._learning_rate
        if isinstance(lr, Variable):
            # The shortest decimal of the float32 value: 0.001, not 0.0010000000474974513.
            return float(str(np.float32(lr.numpy())))
        if isinstance(lr, schedules_module.LearningRateSchedule):
            return schedules_module.serialize(lr)
        return serialize_object(lr)

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """An optimizer from ``get_config()`` output (or from a Keras optimizer's config)."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules_module.deserialize(config["learning_rate"], custom_objects)
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self._built}>"


# -- helpers ------------------------------------------------------------------------------------

def _check_options(owner, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                   gradient_accumulation_steps) -> None:
    """Keras's checks of the EMA and accumulation arguments, plus a positive loss scale."""
    steps = gradient_accumulation_steps
    if steps and (not _is_int(steps) or steps < 2):
        raise ValueError(
            f"{owner}: `gradient_accumulation_steps` must be an integer >= 2 (or None). "
            f"Received: gradient_accumulation_steps={steps!r}"
        )
    if use_ema:
        if not 0 <= ema_momentum <= 1:
            raise ValueError(f"{owner}: `ema_momentum` must be in the range [0, 1]. "
                             f"Received: ema_momentum={ema_momentum!r}")
        frequency = ema_overwrite_frequency
        if frequency is not None and (not _is_int(frequency) or frequency < 1):
            raise ValueError(f"{owner}: `ema_overwrite_frequency` must be an integer >= 1 or None. "
                             f"Received: ema_overwrite_frequency={frequency!r}")
    if loss_scale_factor is not None:
        try:
            ok = bool(np.isfinite(loss_scale_factor) and loss_scale_factor > 0)
        except TypeError:
            ok = False
        if not ok:
            # A zero or infinite factor would turn every gradient into inf or nan.
            raise ValueError(f"{owner}: `loss_scale_factor` must be a positive finite number or "
                             f"None. Received: loss_scale_factor={loss_scale_factor!r}")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


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
