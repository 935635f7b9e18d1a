"""``StackedRNNCells``: several recurrent cells behaving as one, as ``keras.layers.StackedRNNCells``.

Each timestep runs the cells in order, the output of one being the input of the next; the
states are one entry per cell, each that cell's states (Keras's nested structure:
``state_size`` ``[[3, 3], 4]`` for an ``LSTMCell(3)`` under a ``GRUCell(4)``).
``RNN(StackedRNNCells([...]))`` (or ``RNN([...])``) runs the stack in one ``lax.scan``; the
built-in cells' dropout masks are drawn once per sequence, before the loop, as Keras does.
"""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers.layer import Layer
from lamina.layers.rnn.base_cell import RecurrentCell
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import deserialize_object, serialize_object


def _output_dim(cell):
    size = getattr(cell, "output_size", None)
    if size is not None:
        return size
    state_size = cell.state_size
    return state_size[0] if isinstance(state_size, (list, tuple)) else state_size


def _as_states(states):
    """``(list of states, whether they came as a list)``: a single array is one state."""
    nested = isinstance(states, (list, tuple))
    return (list(states) if nested else [states]), nested


@register_builtin
class StackedRNNCells(Layer):
    """A stack of RNN cells used as a single cell (``RNN(StackedRNNCells(cells))``).

    ``state_size`` lists each cell's ``state_size``; ``output_size`` is the last cell's.
    ``call(inputs, states, training=False)`` runs one timestep through every cell (``states``
    one entry per cell) and returns ``(last cell's output, new states)`` in the same
    structure. Weights are the cells' weights, in order. ``get_initial_state(batch_size)``
    gives each cell's own initial states (zeros for a cell without ``get_initial_state``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> cells = lm.layers.StackedRNNCells([lm.layers.LSTMCell(4), lm.layers.GRUCell(2)])
        >>> cells.state_size, cells.output_size
        ([[4, 4], 2], 2)
        >>> output, *states = lm.layers.RNN(cells, return_state=True)(jnp.ones((3, 5, 6)))
        >>> output.shape, [[s.shape for s in cell_states] for cell_states in states]
        ((3, 2), [[(3, 4), (3, 4)], [(3, 2)]])
    """

    def __init__(self, cells, **kwargs):
        if not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(f"StackedRNNCells: `cells` must be a non-empty list of RNN cells; got {cells!r}.")
        for cell in cells:
            if not callable(getattr(cell, "call", None)):
                raise ValueError(f"StackedRNNCells: every cell must have a `call(inputs, states)` method; got {cell!r}.")
            if getattr(cell, "state_size", None) is None:
                raise ValueError(f"StackedRNNCells: every cell must have a `state_size`; got {cell!r}.")
        super().__init__(**kwargs)
        self.cells = list(cells)

    @property
    def state_size(self):
        # A cell's top-level tuple lists its states (as RNN reads it); a list says so here,
        # where a tuple would read as one state's shape.
        return [list(cell.state_size) if isinstance(cell.state_size, tuple) else cell.state_size
                for cell in self.cells]

    @property
    def output_size(self):
        return _output_dim(self.cells[-1])

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell.build_from_shape(input_shape)
            input_shape = (input_shape[0], _output_dim(cell))

    def get_initial_state(self, batch_size=None):
        states = []
        for cell in self.cells:
            make = getattr(cell, "get_initial_state", None)
            if make is not None:
                states.append(make(batch_size=batch_size))
            elif isinstance(cell.state_size, (list, tuple)):
                states.append([jnp.zeros((batch_size, size), self.compute_dtype) for size in cell.state_size])
            else:
                states.append(jnp.zeros((batch_size, cell.state_size), self.compute_dtype))
        return states

    def _check_states(self, states):
        if not isinstance(states, (list, tuple)) or len(states) != len(self.cells):
            raise ValueError(
                f"StackedRNNCells '{self.name}': states must be a list with one entry per cell "
                f"({len(self.cells)}); got {states!r}."
            )

    def call(self, inputs, states, training=False):
        self._check_states(states)
        new_states = []
        for cell, cell_states in zip(self.cells, states):
            cell_states, nested = _as_states(cell_states)
            call = cell if callable(cell) else cell.call
            inputs, cell_new = call(inputs, cell_states, training=training)
            cell_new, _ = _as_states(cell_new)
            new_states.append(cell_new if nested or len(cell_new) > 1 else cell_new[0])
        # (Keras returns a single cell's states unwrapped.)
        return inputs, new_states[0] if len(new_states) == 1 else new_states

    def _lm_sequence_plan(self, inputs, training):
        """For a stack of built-in cells: ``(spec, params)``, ``spec`` hashable (what the step's
        math depends on besides arrays) and ``params`` the weights and the dropout masks of the
        sequence ``inputs`` ``(batch, time, features)``, drawn here, once; ``plan_step(spec,
        params)`` is then the step, which ``RNN`` compiles once per configuration and shape.
        ``None`` when a cell is not built in."""
        if not all(isinstance(cell, RecurrentCell) for cell in self.cells):
            return None
        batch, dim, dtype = inputs.shape[0], inputs.shape[-1], inputs.dtype
        specs, params = [], []
        for cell in self.cells:
            input_mask, recurrent_mask = cell.dropout_masks(batch, dim, dtype, training)
            specs.append(cell.spec())
            params.append((cell.params(), input_mask, recurrent_mask))
            dim = _output_dim(cell)
        return tuple(specs), tuple(params)

    @staticmethod
    def plan_step(spec, params):
        """The step ``(x_t, states) -> (output, new_states)`` of a ``_lm_sequence_plan``."""

        def step(x, states):
            new_states = []
            for cell_spec, (cell_params, input_mask, recurrent_mask), cell_states in zip(spec, params, states):
                cell_class = cell_spec[0]
                cell_states, nested = _as_states(cell_states)
                projected = cell_class.project_inputs(cell_spec, cell_params, x, input_mask)
                x, cell_new = cell_class.step(cell_spec, cell_params, projected, cell_states, recurrent_mask)
                cell_new, _ = _as_states(cell_new)
                new_states.append(cell_new if nested else cell_new[0])
            return x, new_states

        return step

    def _lm_sequence_step(self, inputs, training):
        """The step ``RNN`` runs inside its loop when some cell is not built in: ``(x_t, states)
        -> (output, new_states)``, ``states`` keeping their structure. The built-in cells'
        dropout masks are drawn here, once for the sequence, and their weights read once; the
        other cells are called at each step."""
        plan = self._lm_sequence_plan(inputs, training)
        if plan is not None:
            return self.plan_step(*plan)
        batch, dim, dtype = inputs.shape[0], inputs.shape[-1], inputs.dtype
        plan = []
        for cell in self.cells:
            if isinstance(cell, RecurrentCell):
                input_mask, recurrent_mask = cell.dropout_masks(batch, dim, dtype, training)
                plan.append((cell, cell.spec(), cell.params(), input_mask, recurrent_mask))
            else:
                plan.append((cell, None, None, None, None))
            dim = _output_dim(cell)

        def step(x, states):
            new_states = []
            for (cell, spec, params, input_mask, recurrent_mask), cell_states in zip(plan, states):
                cell_states, nested = _as_states(cell_states)
                if spec is not None:
                    projected = type(cell).project_inputs(spec, params, x, input_mask)
                    x, cell_new = type(cell).step(spec, params, projected, cell_states, recurrent_mask)
                else:
                    x, cell_new = (cell if callable(cell) else cell.call)(x, cell_states, training=training)
                cell_new, _ = _as_states(cell_new)
                new_states.append(cell_new if nested else cell_new[0])
            return x, new_states

        return step

    def get_config(self):
        return {**super().get_config(), "cells": [serialize_object(cell) for cell in self.cells]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        cells = [deserialize_object(cell, kind="layer", aliases={}, custom_objects=custom_objects)
                 for cell in config.pop("cells")]
        return cls(cells, **config)


__all__ = ["StackedRNNCells"]
