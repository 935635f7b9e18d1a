"""``RNN``: runs a cell over the time axis with ``jax.lax.scan``.

The loop is one ``lax.scan`` (``unroll=True`` asks XLA to unroll it), never a Python loop over
timesteps. For the built-in cells the input-to-gates matmul is done for every timestep at once
before the loop, and only the recurrent part runs inside it.

Masks follow Keras: a masked timestep keeps the previous states, and its output is the
previous output (``states[0]``), or zeros with ``zero_output_for_mask=True``. With
``go_backwards=True`` the sequence is processed from the end and ``return_sequences`` gives
the outputs in processing order (reversed), as Keras does.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from lamina.core.variable import Variable
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.rnn.base_cell import RecurrentCell
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import deserialize_object, serialize_object


class RecurrentState:
    """The states a ``stateful=True`` RNN carries from one batch to the next.

    Held as non-trainable variables outside ``weights`` (like a seed generator's state), so
    ``set_weights(keras_layer.get_weights())`` still lines up and compiled steps update them.
    """

    def __init__(self, values):
        self.variables = [Variable(v, trainable=False, name=f"rnn_state_{i}") for i, v in enumerate(values)]

    def _lm_state_variables(self) -> list:
        return self.variables


def _keep(where, new, old):
    """``new`` where ``where`` (shape ``(batch,)``) is true, else ``old``."""
    where = where.reshape(where.shape + (1,) * (new.ndim - 1))
    return jnp.where(where, new, old)


def run_rnn(step, inputs, initial_states, mask=None, go_backwards=False, unroll=False,
            zero_output_for_mask=False):
    """Keras's ``backend.rnn`` on ``lax.scan``: ``(last_output, outputs, final_states)``.

    ``step(x_t, states) -> (output, new_states)``; ``inputs`` is batch-major ``(batch, time,
    ...)`` (a pytree of such arrays is fine), ``mask`` is ``(batch, time)`` or ``None``.
    """
    xs = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), inputs)
    states = list(initial_states)

    def cast_like(new_states, old_states):
        return [jnp.asarray(n).astype(o.dtype) for n, o in zip(new_states, old_states)]

    if mask is None:
        def body(carry, x):
            output, new_states = step(x, carry)
            return cast_like(new_states, carry), output

        scan_xs = xs
    else:
        mask = jnp.asarray(mask)
        if mask.ndim > 2:  # (batch, time, ...): a step counts if any of its entries is unmasked
            mask = mask.reshape(mask.shape[0], mask.shape[1], -1).any(axis=-1)
        mask = jnp.swapaxes(mask.astype(bool), 0, 1)

        def body(carry, x_and_mask):
            x, keep = x_and_mask
            output, new_states = step(x, carry)
            previous = jnp.zeros_like(output) if zero_output_for_mask else carry[0]
            output = _keep(keep, output, previous)
            new_states = [_keep(keep, n, o) for n, o in zip(cast_like(new_states, carry), carry)]
            return new_states, output

        scan_xs = (xs, mask)
    final_states, outputs = jax.lax.scan(body, states, scan_xs, reverse=go_backwards, unroll=bool(unroll))
    if go_backwards:
        outputs = jnp.flip(outputs, axis=0)
    return outputs[-1], jnp.swapaxes(outputs, 0, 1), final_states


@functools.partial(jax.jit, static_argnames=("spec", "go_backwards", "unroll", "zero_output_for_mask",
                                             "return_sequences"))
def _run_cell_compiled(spec, params, inputs, states, mask, input_mask, recurrent_mask, *, go_backwards,
                       unroll, zero_output_for_mask, return_sequences):
    return run_cell(spec, params, inputs, states, mask, input_mask, recurrent_mask, go_backwards=go_backwards,
                    unroll=unroll, zero_output_for_mask=zero_output_for_mask, return_sequences=return_sequences)


def run_cell(spec, params, inputs, states, mask, input_mask, recurrent_mask, *, go_backwards, unroll,
             zero_output_for_mask, return_sequences):
    """A built-in cell over a sequence: the input projection for all timesteps, then the loop."""
    cell_class = spec[0]
    if input_mask is not None:
        input_mask = input_mask[:, :, None, :]  # the same mask at every timestep
    sequence = cell_class.project_inputs(spec, params, inputs, input_mask)

    def step(x, carry):
        return cell_class.step(spec, params, x, carry, recurrent_mask)

    last, outputs, final_states = run_rnn(step, sequence, states, mask=mask, go_backwards=go_backwards,
                                          unroll=unroll, zero_output_for_mask=zero_output_for_mask)
    return last, (outputs if return_sequences else None), final_states


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _as_list(state_size):
    return list(state_size) if isinstance(state_size, (list, tuple)) else [state_size]


@register_builtin
class RNN(Layer):
    """Runs a recurrent ``cell`` over a sequence ``(batch, time, features)``, as ``keras.layers.RNN``.

    ``cell`` is a built-in cell (``SimpleRNNCell``, ``LSTMCell``, ``GRUCell``) or any layer
    with ``call(inputs, states)`` returning ``(output, new_states)`` and a ``state_size``
    (int or list of ints). A custom cell runs inside ``lax.scan``: it may read its weights
    but must not write variables or draw random numbers per step (the built-in cells draw
    their dropout masks once per sequence, before the loop). Stacked cells (a list) are not
    supported: stack RNN layers with ``return_sequences=True`` instead.

    Call: ``layer(inputs, initial_state=None, mask=None, training=None)``; the mask of the
    input (from ``Embedding(mask_zero=True)``) is used when ``mask`` is not given. Returns the
    last output ``(batch, units)``, or every output ``(batch, time, units)`` with
    ``return_sequences=True``; with ``return_state=True`` a tuple ``(output, *final_states)``.
    ``stateful=True`` keeps the final states of a batch (fixed batch size) as the initial
    states of the next; ``reset_state()`` zeroes them.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> from lamina.layers.rnn import RNN, GRUCell
        >>> layer = RNN(GRUCell(4), return_sequences=True)
        >>> layer(jnp.ones((2, 5, 3))).shape
        (2, 5, 4)
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):
        if isinstance(cell, (list, tuple)):
            raise NotImplementedError(
                "RNN: stacked cells (a list of cells) are not supported; stack RNN layers with "
                "return_sequences=True instead."
            )
        if not callable(getattr(cell, "call", None)):
            raise ValueError(f"RNN: `cell` must have a `call(inputs, states)` method; got {cell!r}.")
        state_size = getattr(cell, "state_size", None)
        if state_size is None or not all(isinstance(s, int) for s in _as_list(state_size)):
            raise ValueError(
                "RNN: the cell must have a `state_size` attribute, an integer or a list of integers "
                f"(one per state); got {state_size!r}."
            )
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        self.input_spec = InputSpec(min_ndim=3)
        self.recurrent_state = None

    # -- shapes -------------------------------------------------------------------------------
    @property
    def state_size(self) -> list:
        return _as_list(self.cell.state_size)

    def _output_size(self) -> int:
        size = getattr(self.cell, "output_size", None)
        return self.state_size[0] if size is None else size

    def compute_output_shape(self, input_shape, initial_state_shape=None):
        batch, steps = input_shape[0], input_shape[1]
        output = (batch, steps, self._output_size()) if self.return_sequences else (batch, self._output_size())
        if self.return_state:
            return (output, *[(batch, size) for size in self.state_size])
        return output

    def compute_mask(self, inputs, mask=None):
        """As Keras: the input's mask for a sequence output, else none; with ``return_state`` a
        list with ``None`` for each state."""
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(self.state_size)
        return output_mask

    # -- state --------------------------------------------------------------------------------
    def build(self, input_shape):
        step_shape = (input_shape[0], *input_shape[2:])
        if isinstance(self.cell, Layer) and not self.cell.built:
            self.cell.build_from_shape(step_shape)
        if self.stateful and self.recurrent_state is None:
            if input_shape[0] is None:
                raise ValueError(
                    f"RNN '{self.name}': stateful=True needs a fixed batch size, got input shape "
                    f"{tuple(input_shape)}."
                )
            self.recurrent_state = RecurrentState(self.get_initial_state(input_shape[0]))

    @property
    def states(self):
        """The carried state variables of a stateful layer (``None`` otherwise)."""
        return None if self.recurrent_state is None else list(self.recurrent_state.variables)

    def get_initial_state(self, batch_size):
        make = getattr(self.cell, "get_initial_state", None)
        if make is not None:
            states = make(batch_size=batch_size)
            return list(states) if isinstance(states, (list, tuple)) else [states]
        return [jnp.zeros((batch_size, size), self.dtype) for size in self.state_size]

    def reset_state(self):
        """Zero the carried states of a stateful layer."""
        if self.recurrent_state is not None:
            for variable in self.recurrent_state.variables:
                variable.assign(jnp.zeros(variable.shape, variable.dtype))

    reset_states = reset_state

    def _initial_states(self, inputs, initial_state):
        if initial_state is None:
            if self.recurrent_state is not None:
                return [v.value for v in self.recurrent_state.variables]
            return [jnp.asarray(s, self.dtype) for s in self.get_initial_state(inputs.shape[0])]
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != len(self.state_size):
            raise ValueError(
                f"RNN '{self.name}': initial_state must hold {len(self.state_size)} array(s) (state sizes "
                f"{self.state_size}), got {len(states)}."
            )
        states = [jnp.asarray(s.value if isinstance(s, Variable) else s, self.dtype) for s in states]
        for state, size in zip(states, self.state_size):
            if state.shape != (inputs.shape[0], size):
                raise ValueError(
                    f"RNN '{self.name}': an initial state has shape {state.shape}; expected "
                    f"{(inputs.shape[0], size)} (batch, state size)."
                )
        return states

    # -- the computation ----------------------------------------------------------------------
    def call(self, inputs, initial_state=None, mask=None, training=None):
        states = self._initial_states(inputs, initial_state)
        cell = self.cell
        options = dict(go_backwards=self.go_backwards, unroll=self.unroll,
                       zero_output_for_mask=self.zero_output_for_mask)
        if isinstance(cell, RecurrentCell):
            input_mask, recurrent_mask = cell.dropout_masks(inputs.shape[0], inputs.shape[-1], inputs.dtype, training)
            spec = cell.spec()
            # Compiled once per configuration and shape, so eager calls do not retrace the loop
            # (inside lm.jit or a gradient it is simply inlined).
            run = _run_cell_compiled if _hashable(spec) else run_cell
            if mask is not None:
                mask = jnp.asarray(mask)
            last, outputs, final_states = run(spec, cell.params(), inputs, states, mask, input_mask, recurrent_mask,
                                              return_sequences=self.return_sequences, **options)
        else:
            def step(x, carry):
                output, new_states = cell(x, list(carry), training=training)
                return output, list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]

            last, outputs, final_states = run_rnn(step, inputs, states, mask=mask, **options)
        final_states = list(final_states)
        if self.recurrent_state is not None:
            for variable, value in zip(self.recurrent_state.variables, final_states):
                variable.assign(value)
        output = outputs if self.return_sequences else last
        if self.return_state:
            return (output, *final_states)
        return output

    # -- configuration ------------------------------------------------------------------------
    def _rnn_config(self):
        return {
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }

    def get_config(self):
        return {**super().get_config(), "cell": serialize_object(self.cell), **self._rnn_config()}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        cell = deserialize_object(config.pop("cell"), kind="layer", aliases={}, custom_objects=custom_objects)
        return cls(cell, **config)
