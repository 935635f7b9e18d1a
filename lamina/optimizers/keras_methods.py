"""The Keras 3 optimizer methods a custom optimizer calls: slots, indices, assignments, weights.

A Keras user writes an optimizer by subclassing and implementing ``build`` (creating slots
with ``add_variable_from_reference`` / ``add_optimizer_variables``) and
``update_step(gradient, variable, learning_rate)`` (reading and assigning them). These are the
methods that code calls; ``Optimizer`` inherits them, so built-in optimizers have them too
(``get_weights``, ``set_weights``, ``save_own_variables``...). The update itself (clipping,
weight decay, accumulation, EMA, constraints around ``update_step``) is ``Optimizer.apply``'s.
"""

from __future__ import annotations

import contextlib
import warnings

import jax
import numpy as np

from lamina.core import state
from lamina.core.variable import Variable, fresh_copy
from lamina.distribution import placement

_AGGREGATIONS = (None, "none", "mean", "sum", "only_first_replica")


class KerasOptimizerMethods:
    """Keras 3's optimizer-variable API, mixed into ``lm.optimizers.Optimizer``.

    Slots made here are optimizer variables like optax's: listed by ``variables`` in creation
    order, threaded through ``lm.jit`` and ``fit``, saved by ``model.save``.
    """

    # -- creating slots ------------------------------------------------------------------------
    def add_variable(self, shape, initializer="zeros", dtype=None, aggregation="none", layout=None,
                     name=None) -> Variable:
        """A new optimizer variable (non-trainable) of ``shape``, as Keras's ``add_variable``.

        ``initializer`` is an initializer or its name, ``dtype`` defaults to float32, ``layout``
        places it over a distribution's devices. ``aggregation`` is accepted for Keras code
        (lamina's compiled steps are single programs: there is nothing to aggregate).

        Example:
            >>> import lamina as lm
            >>> opt = lm.optimizers.SGD(name="sgd")
            >>> step_sizes = opt.add_variable((2,), initializer="ones", name="step_sizes")
            >>> [v.name for v in opt.variables], step_sizes.value.tolist()
            (['sgd/iterations', 'sgd/learning_rate', 'sgd/step_sizes'], [1.0, 1.0])
        """
        if aggregation not in _AGGREGATIONS:
            raise ValueError(
                f"Optimizer '{self.name}'.add_variable(name={name!r}): `aggregation` must be one of "
                f"{list(_AGGREGATIONS)}. Received: aggregation={aggregation!r}"
            )
        try:
            shape = tuple(int(d) for d in shape)
        except TypeError:
            raise ValueError(
                f"Optimizer '{self.name}'.add_variable(name={name!r}): `shape` must be a fully "
                f"defined tuple of integers. Received: shape={shape!r}"
            ) from None
        field = name or "variable"
        variable = Variable(initializer, shape=shape, dtype=dtype or "float32", trainable=False,
                            name=f"{self.name}/{field}", layout=layout)
        self._add_slot(variable, field, None)
        return variable

    def add_variable_from_reference(self, reference_variable, name=None, initializer="zeros") -> Variable:
        """A slot shaped, typed and placed like ``reference_variable`` (a model weight), as Keras's
        ``add_variable_from_reference``: named ``<optimizer>/<weight path with _>_<name>``
        (``name`` defaults to ``"var"``) and saved next to that weight's other slots.

        Example:
            >>> import jax.numpy as jnp, lamina as lm
            >>> w = lm.Variable(jnp.ones((2, 3)), name="kernel")
            >>> opt = lm.optimizers.SGD(name="sgd")
            >>> m = opt.add_variable_from_reference(w, "momentum")
            >>> m.name, m.shape, float(m.value.sum())
            ('sgd/kernel_momentum', (2, 3), 0.0)
        """
        if not isinstance(reference_variable, Variable):
            raise TypeError(
                f"Optimizer '{self.name}'.add_variable_from_reference() takes an lm.Variable (a model "
                f"weight); received {type(reference_variable).__name__} {reference_variable!r}."
            )
        field = name or "var"
        # Read for its shape, dtype and layout only: never a traced value, never a recorded read.
        reference = placement.peek(reference_variable)
        full_name = f"{self.name}/{reference_variable.path.replace('/', '_')}_{field}"
        if isinstance(initializer, str) and initializer == "zeros":
            with jax.ensure_compile_time_eval():
                value = placement.zeros_like(reference)
            variable = Variable(value, trainable=False, name=full_name, layout=placement.sharding_of(value))
        else:
            variable = Variable(initializer, shape=reference_variable.shape, dtype=reference_variable.dtype,
                                trainable=False, name=full_name, layout=placement.sharding_of(reference))
        self._add_slot(variable, field, reference_variable)
        return variable

    def add_optimizer_variables(self, trainable_variables, name, initializer="zeros"):
        """One slot per variable of ``trainable_variables`` (``add_variable_from_reference``): a
        list; with a list or tuple of names, a tuple of lists, created variable by variable
        (``m0, v0, m1, v1...``) as Keras 3.10+ does. ``initializer`` is one for all names or one
        per name.

        Example:
            >>> import jax.numpy as jnp, lamina as lm
            >>> ws = [lm.Variable(jnp.zeros(2), name="a"), lm.Variable(jnp.zeros(3), name="b")]
            >>> opt = lm.optimizers.SGD(name="sgd")
            >>> ms, vs = opt.add_optimizer_variables(ws, ["m", "v"])
            >>> [v.name for v in opt.variables[2:]]
            ['sgd/a_m', 'sgd/a_v', 'sgd/b_m', 'sgd/b_v']
        """
        single = isinstance(name, str)
        names = [name] if single else list(name)
        if single or not isinstance(initializer, (list, tuple)):
            initializers = [initializer] * len(names)
        else:
            initializers = list(initializer)
        if len(names) != len(initializers):
            raise ValueError(
                f"Optimizer '{self.name}'.add_optimizer_variables(): the number of names must match the "
                f"number of initializers. Received name={name!r}, initializer={initializer!r}"
            )
        created = tuple([] for _ in names)
        for variable in trainable_variables:
            for slots, slot_name, slot_init in zip(created, names, initializers):
                slots.append(self.add_variable_from_reference(variable, name=slot_name, initializer=slot_init))
        return created[0] if single else created

    def _add_slot(self, variable, field, reference) -> None:
        self._slots.append(variable)
        self._slot_fields.append(field)
        self._slot_params.append(reference)  # the weight itself (saving keys the slot by it)
        self._step_slots.append(variable)
        state.bump_structure_version(self)

    # -- reading and writing in update_step ----------------------------------------------------------
    def _get_variable_index(self, variable) -> int:
        """The position of ``variable`` in the list the optimizer was built with (Keras's name)."""
        index = self._index.get(id(variable))
        if index is None:
            built = len(self._built_variables)
            raise KeyError(
                f"Optimizer '{self.name}': variable '{getattr(variable, 'path', variable)}' is not one it "
                f"was built with ({built} variables"
                + (f", e.g. '{self._built_variables[0].path}'" if built else "; it is not built yet") + ")."
            )
        return index

    def assign(self, variable, value) -> None:
        """``variable.assign(value)`` (Keras's spelling inside ``update_step``)."""
        if isinstance(value, Variable):
            value = value.value
            if not state.is_tracer(value):
                # ``self.assign(slot, weight)`` in build would make two variables share one
                # buffer, and a compiled step donating both would fail.
                value = fresh_copy(value)
        variable.assign(value)

    def assign_add(self, variable, value) -> None:
        """``variable.assign_add(value)``."""
        variable.assign_add(value)

    def assign_sub(self, variable, value) -> None:
        """``variable.assign_sub(value)``."""
        variable.assign_sub(value)

    # -- weights ---------------------------------------------------------------------------------------
    def get_weights(self) -> list:
        """The values of ``variables`` as NumPy arrays, in that order (Keras's order)."""
        return [v.numpy() for v in self.variables]

    def set_weights(self, weights) -> None:
        """Assign ``weights`` (NumPy arrays lined up with ``variables``) to the optimizer state.

        Example:
            >>> import jax.numpy as jnp, lamina as lm
            >>> w = lm.Variable(jnp.zeros(2))
            >>> opt = lm.optimizers.SGD(0.1, momentum=0.9)
            >>> opt.build([w])
            >>> opt.set_weights([7, 0.5, jnp.ones(2)])
            >>> [x.tolist() for x in opt.get_weights()]
            [7, 0.5, [1.0, 1.0]]
        """
        if not self.built:
            raise ValueError(
                f"Optimizer '{self.name}': set_weights() needs the optimizer built; call "
                "optimizer.build(trainable_variables) first to create its variables."
            )
        variables = self.variables
        weights = list(weights)
        if len(weights) != len(variables):
            raise ValueError(
                f"Optimizer '{self.name}'.set_weights(): expected {len(variables)} arrays (one per entry "
                f"of optimizer.variables), received {len(weights)}."
            )
        for variable, weight in zip(variables, weights):
            if tuple(np.shape(weight)) != variable.shape:
                raise ValueError(
                    f"Optimizer variable '{variable.path}' has shape {variable.shape}, not compatible "
                    f"with the provided weight's shape {tuple(np.shape(weight))}."
                )
        for variable, weight in zip(variables, weights):
            variable.assign(weight)

    def save_own_variables(self, store) -> None:
        """Write the state to ``store`` (a dict-like) under Keras's keys ``"0"``, ``"1"``..."""
        for i, variable in enumerate(self.variables):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store) -> None:
        """Read the state ``save_own_variables`` wrote; as Keras, a different number of
        variables skips loading with a warning."""
        variables = self.variables
        if len(store.keys()) != len(variables):
            message = (f"Skipping variable loading for optimizer '{self.name}', because it has "
                       f"{len(variables)} variables whereas the saved optimizer has {len(store.keys())} "
                       "variables.")
            if not self.built:
                message += " This is likely because the optimizer has not been called/built yet."
            warnings.warn(message, stacklevel=2)
            return
        for i, variable in enumerate(variables):
            value = np.asarray(store[str(i)])
            if value.shape != variable.shape:
                raise ValueError(f"Optimizer variable '{variable.path}' has shape {variable.shape}; the "
                                 f"stored value '{i}' has shape {value.shape}.")
            variable.assign(value)


@contextlib.contextmanager
def outside_trace():
    """Run a build with real values: reads give stored arrays, writes go to the variables.

    A Keras ``build`` may initialise its slots from the weights (``self.assign(z, variable)``);
    inside ``lm.jit``'s discovery those writes would land in the trace's scope and be lost.
    """
    previous = state._thread.scope
    state._thread.scope = None
    try:
        with jax.ensure_compile_time_eval():
            yield
    finally:
        state._thread.scope = previous
