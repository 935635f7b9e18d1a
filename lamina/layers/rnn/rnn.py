"""``RNN``: runs a cell over the time axis with ``jax.lax.scan``.

The loop is one ``lax.scan`` (``unroll=True`` asks XLA to unroll it), never a Python loop over
timesteps. For the built-in cells each step does its own input-to-gates matmul, as Keras does
(see ``run_cell`` for why not one matmul for all timesteps before the loop).

Masks follow Keras: a masked timestep keeps the previous states, and its output is the
previous output (``states[0]``), or zeros with ``zero_output_for_mask=True``. With
``go_backwards=True`` the sequence is processed from the end and ``return_sequences`` gives
the outputs in processing order (reversed), as Keras does.

Custom cells may have states of any shape (``state_size=[4, (2, 3)]``: a ``(batch, 4)`` and a
``(batch, 2, 3)`` state), take a structure of sequences as input (a tuple or dict, each
``(batch, time, ...)``) and return a structure of outputs; inputs, outputs and states are
pytrees all the way through the loop.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from lamina.core.variable import Variable
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.rnn.base_cell import RecurrentCell
from lamina.layers.rnn.stacked_cells import StackedRNNCells
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
    """``new`` where ``where`` (shape ``(batch,)``) is true, else ``old``: whole samples, whatever
    the rank of ``new`` (a ``(batch, 2, 3)`` state is kept or replaced per sample)."""
    where = where.reshape(where.shape + (1,) * (new.ndim - 1))
    return jnp.where(where, new, old)


def _like(new, old, combine):
    """``combine(new leaf, old leaf)`` over one state, in the structure of ``old``: a state may
    be nested (a stacked cell's entry is that cell's list of states)."""
    old_leaves, treedef = jax.tree_util.tree_flatten(old)
    return jax.tree_util.tree_unflatten(treedef, [combine(n, o) for n, o in
                                                  zip(jax.tree_util.tree_leaves(new), old_leaves)])


def _same_layout(a, b) -> bool:
    """Whether two pytrees of arrays have one structure, shapes and dtypes."""
    a_leaves, a_def = jax.tree_util.tree_flatten(a)
    b_leaves, b_def = jax.tree_util.tree_flatten(b)
    return a_def == b_def and all(x.shape == y.shape for x, y in zip(a_leaves, b_leaves))


def run_rnn(step, inputs, initial_states, mask=None, go_backwards=False, unroll=False,
            zero_output_for_mask=False, output_is_first_state=None, return_sequences=True):
    """Keras's ``backend.rnn`` on ``lax.scan``: ``(last_output, outputs, final_states)``.

    ``step(x_t, states) -> (output, new_states)``; ``inputs`` is batch-major ``(batch, time,
    ...)`` (a pytree of such arrays is fine), ``mask`` is ``(batch, time)`` or ``None``. States
    may have any shape after the batch axis, and outputs may be a pytree.

    At a masked step the output is the previous one: ``states[0]`` as Keras takes it, when it
    has the output's layout; otherwise (a cell whose output is not its first state) the output
    of the last unmasked step, zeros before the first. ``output_is_first_state=True`` skips
    finding out (built-in cells); with it, ``return_sequences=False`` returns ``None`` for the
    outputs and the loop does not stack them (the last output is read off the final states).
    """
    tree_map = jax.tree_util.tree_map
    xs = tree_map(lambda a: jnp.swapaxes(a, 0, 1), inputs)
    states = list(initial_states)

    def cast_like(new_states, old_states):
        return [_like(n, o, lambda a, b: jnp.asarray(a).astype(b.dtype)) for n, o in zip(new_states, old_states)]

    if mask is None:
        def body(carry, x):
            output, new_states = step(x, carry)
            return cast_like(new_states, carry), output

        scan_xs = xs
        carry = states
    else:
        mask = jnp.asarray(mask)
        if mask.ndim > 2:  # (batch, time, ...): a step counts if any of its entries is unmasked
            mask = mask.reshape(mask.shape[0], mask.shape[1], -1).any(axis=-1)
        mask = jnp.swapaxes(mask.astype(bool), 0, 1)
        track_output = False
        if not zero_output_for_mask and not output_is_first_state:
            first_step = tree_map(lambda a: a[-1] if go_backwards else a[0], xs)
            output_layout = jax.eval_shape(lambda x, c: step(x, c)[0], first_step, states)
            track_output = not _same_layout(output_layout, states[0])

        def body(carry, x_and_mask):
            x, keep = x_and_mask
            carry_states, last_output = carry if track_output else (carry, None)
            output, new_states = step(x, carry_states)
            if zero_output_for_mask:
                previous = tree_map(jnp.zeros_like, output)
            else:
                previous = last_output if track_output else carry_states[0]
            output = tree_map(lambda n, o: _keep(keep, n, jnp.asarray(o, n.dtype)), output, previous)
            new_states = [_like(n, o, lambda a, b: _keep(keep, a, b))
                          for n, o in zip(cast_like(new_states, carry_states), carry_states)]
            return ((new_states, output) if track_output else new_states), output

        scan_xs = (xs, mask)
        carry = states
        if track_output:
            carry = (states, tree_map(lambda a: jnp.zeros(a.shape, a.dtype), output_layout))
    if output_is_first_state and not return_sequences:
        return _last_from_states(body, carry, scan_xs, step, mask, go_backwards, unroll, zero_output_for_mask)
    final_carry, outputs = jax.lax.scan(body, carry, scan_xs, reverse=go_backwards, unroll=bool(unroll))
    final_states = final_carry[0] if mask is not None and track_output else final_carry
    if go_backwards:
        outputs = tree_map(lambda a: jnp.flip(a, axis=0), outputs)
    return tree_map(lambda a: a[-1], outputs), tree_map(lambda a: jnp.swapaxes(a, 0, 1), outputs), final_states


def _last_from_states(body, states, scan_xs, step, mask, go_backwards, unroll, zero_output_for_mask):
    """The loop of a cell whose output is its first state, when only the last output is wanted.

    Stacking every step's output costs a write per step and, in the backward pass, a read of
    its (zero) cotangent per step; the last output is the final first state instead: a masked
    step keeps the previous state and repeats the previous output, so they stay equal (with
    ``zero_output_for_mask`` a masked last step gives zeros, as Keras's ``outputs[-1]``).
    """
    xs = scan_xs[0] if mask is not None else scan_xs
    first_step = jax.tree_util.tree_map(lambda a: a[-1] if go_backwards else a[0], xs)
    output_dtype = jax.eval_shape(lambda x, c: step(x, c)[0], first_step, states).dtype

    def no_outputs(carry, x):
        return body(carry, x)[0], None

    final_states, _ = jax.lax.scan(no_outputs, states, scan_xs, reverse=go_backwards, unroll=bool(unroll))
    last = final_states[0]
    if mask is not None and zero_output_for_mask:
        last = _keep(mask[0 if go_backwards else -1], last, jnp.zeros_like(last))
    return last.astype(output_dtype), None, final_states


@functools.partial(jax.jit, static_argnames=("spec", "go_backwards", "unroll", "zero_output_for_mask",
                                             "return_sequences"))
def _run_cell_compiled(spec, params, inputs, states, mask, input_mask, recurrent_mask, *, go_backwards,
                       unroll, zero_output_for_mask, return_sequences):
    return run_cell(spec, params, inputs, states, mask, input_mask, recurrent_mask, go_backwards=go_backwards,
                    unroll=unroll, zero_output_for_mask=zero_output_for_mask, return_sequences=return_sequences)


@functools.partial(jax.jit, static_argnames=("plan_step", "spec", "go_backwards", "unroll", "zero_output_for_mask"))
def _run_planned_compiled(plan_step, spec, params, inputs, states, mask, *, go_backwards, unroll,
                          zero_output_for_mask):
    """A cell's planned step (``StackedRNNCells`` of built-in cells) over a sequence, compiled
    once per configuration and shape, as ``_run_cell_compiled``."""
    return run_rnn(plan_step(spec, params), inputs, states, mask=mask, go_backwards=go_backwards, unroll=unroll,
                   zero_output_for_mask=zero_output_for_mask)


def run_cell(spec, params, inputs, states, mask, input_mask, recurrent_mask, *, go_backwards, unroll,
             zero_output_for_mask, return_sequences):
    """A built-in cell over a sequence: one ``lax.scan`` whose body does the whole step, the
    input-to-gates matmul included."""
    cell_class = spec[0]

    # The input matmul stays inside the loop, as in Keras. Projecting every timestep at once
    # before the loop looks cheaper but measured 2x slower per training step on XLA:CPU: the
    # (time, batch, gates*units) projection is then read by a dynamic slice fused into the
    # gates' elementwise work, which runs far slower than adding two matmul results.
    def step(x, carry):
        projected = cell_class.project_inputs(spec, params, x, input_mask)
        return cell_class.step(spec, params, projected, carry, recurrent_mask)

    return run_rnn(step, inputs, states, mask=mask, go_backwards=go_backwards, unroll=unroll,
                   zero_output_for_mask=zero_output_for_mask, output_is_first_state=True,
                   return_sequences=return_sequences)


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _as_list(state_size):
    return list(state_size) if isinstance(state_size, (list, tuple)) else [state_size]


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_size(value) -> bool:
    """One state's size: an integer, or a shape (a tuple of integers) for a state with several
    axes after the batch axis. Only a tuple: a list inside ``state_size`` is Keras's form for
    the sizes of stacked cells (see ``_is_state_entry``)."""
    return _is_count(value) or (isinstance(value, tuple) and all(_is_count(d) for d in value))


def _is_state_entry(value) -> bool:
    """One entry of ``state_size``: a size, or a list of entries (the states of one of stacked
    cells, ``StackedRNNCells.state_size``: ``[[3, 3], 4]``)."""
    return _is_size(value) or (isinstance(value, list) and bool(value) and all(_is_state_entry(v) for v in value))


def _entry_shapes(entry):
    """The shape of each state of a ``state_size`` entry, nested as the entry."""
    return _shape_of(entry) if _is_size(entry) else [_entry_shapes(e) for e in entry]


def _shape_leaves(shapes) -> list:
    return jax.tree_util.tree_leaves(shapes, is_leaf=lambda x: isinstance(x, tuple))


def _map_entry_shapes(fn, shapes):
    return jax.tree_util.tree_map(fn, shapes, is_leaf=lambda x: isinstance(x, tuple))


def _shape_of(size) -> tuple:
    """A state's (or output's) shape without the batch axis."""
    return (size,) if isinstance(size, int) else tuple(size)


def _is_output_size(value) -> bool:
    """A size, or a list/tuple of output sizes (a cell returning a structure of outputs)."""
    return _is_size(value) or (isinstance(value, (list, tuple)) and bool(value)
                               and all(_is_output_size(v) for v in value))


def _output_shapes(size, prefix):
    """``prefix + shape`` for one output size, or the same structure of them."""
    if _is_size(size):
        return (*prefix, *_shape_of(size))
    return type(size)(_output_shapes(s, prefix) for s in size)


def _is_shape(value) -> bool:
    return isinstance(value, (list, tuple)) and all(d is None or isinstance(d, int) for d in value)


def _map_shapes(fn, shapes):
    """``fn`` on every shape in a structure of shapes (a shape, or lists/tuples/dicts of them)."""
    if _is_shape(shapes):
        return fn(tuple(shapes))
    if isinstance(shapes, dict):
        return {key: _map_shapes(fn, value) for key, value in shapes.items()}
    return type(shapes)(_map_shapes(fn, value) for value in shapes)


def _first_leaf(tree):
    leaves = jax.tree_util.tree_leaves(tree)
    return leaves[0] if leaves else None


class RecurrentLayer(Layer):
    """Base of the layers that run a cell over a sequence (``RNN`` and ``ConvLSTM``; not a
    public class): Keras's loop options, the carried states of a stateful layer, and the
    options' config."""

    def _set_loop_options(self, cell, return_sequences, return_state, go_backwards, stateful, unroll,
                          zero_output_for_mask):
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        self.recurrent_state = None  # a RecurrentState once a stateful layer is built

    @property
    def states(self):
        """The carried state variables of a stateful layer (``None`` otherwise)."""
        return None if self.recurrent_state is None else list(self.recurrent_state.variables)

    def reset_state(self):
        """Zero the carried states of a stateful layer."""
        if self.recurrent_state is not None:
            for variable in self.recurrent_state.variables:
                variable.assign(jnp.zeros(variable.shape, variable.dtype))

    reset_states = reset_state

    def _carry_states(self, final_states):
        """A stateful layer keeps the final states of a batch for the next."""
        if self.recurrent_state is not None:
            for variable, value in zip(self.recurrent_state.variables, jax.tree_util.tree_leaves(final_states)):
                variable.assign(value)

    def _rnn_config(self):
        return {
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }


@register_builtin
class RNN(RecurrentLayer):
    """Runs a recurrent ``cell`` over a sequence ``(batch, time, features)``, as ``keras.layers.RNN``.

    ``cell`` is a built-in cell (``SimpleRNNCell``, ``LSTMCell``, ``GRUCell``) or any layer
    with ``call(inputs, states)`` returning ``(output, new_states)`` and a ``state_size``: an
    integer (one ``(batch, n)`` state) or a list with one entry per state, each an integer or
    a shape given as a tuple (``[4, (2, 3)]``: a ``(batch, 4)`` and a ``(batch, 2, 3)`` state;
    as in Keras, a top-level tuple is a list of states: ``(2, 3)`` is two states, ``[(2, 3)]``
    one). ``output_size`` (an integer or a shape; default: the first state's) sets the output's
    shape; a cell may also return a structure of outputs (``output_size`` then a list of
    sizes), and take a structure of sequences as input (a tuple
    or dict of ``(batch, time, ...)`` arrays; ``build`` then gets the structure of per-step
    shapes). A custom cell runs inside ``lax.scan``: it may read its weights but must not write
    variables or draw random numbers per step (the built-in cells draw their dropout masks
    once per sequence, before the loop). A list of cells is stacked (``StackedRNNCells``, as
    in Keras): the states are then one entry per cell, each that cell's list of states.

    Call: ``layer(inputs, initial_state=None, mask=None, training=None)``; the mask of the
    input (from ``Embedding(mask_zero=True)``) is used when ``mask`` is not given. Returns the
    last output ``(batch, units)``, or every output ``(batch, time, units)`` with
    ``return_sequences=True``; with ``return_state=True`` a tuple ``(output, *final_states)``.
    ``stateful=True`` keeps the final states of a batch (fixed batch size) as the initial
    states of the next; ``reset_state()`` zeroes them. ``get_initial_state(batch_size)`` gives
    the cell's own initial states when it defines ``get_initial_state``, else zeros of each
    state's shape.

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
            cell = StackedRNNCells(cell)  # as Keras
        if not callable(getattr(cell, "call", None)):
            raise ValueError(f"RNN: `cell` must have a `call(inputs, states)` method; got {cell!r}.")
        state_size = getattr(cell, "state_size", None)
        if state_size is None or not all(_is_state_entry(s) for s in _as_list(state_size)):
            raise ValueError(
                f"RNN: the cell {getattr(cell, 'name', type(cell).__name__)!r} must have a `state_size`: an "
                "integer, or a list with one entry per state, each an integer or a shape (a tuple of integers, "
                f"e.g. [4, (2, 3)]; or a list of those: a stacked cell's states, as StackedRNNCells has); "
                f"got state_size={state_size!r}."
            )
        output_size = getattr(cell, "output_size", None)
        if output_size is not None and not _is_output_size(output_size):
            raise ValueError(
                f"RNN: the cell {getattr(cell, 'name', type(cell).__name__)!r} has output_size={output_size!r}; "
                "expected an integer, a shape (a tuple of integers), a list of those for a cell that returns "
                "several outputs, or no output_size."
            )
        super().__init__(**kwargs)
        self._set_loop_options(cell, return_sequences, return_state, go_backwards, stateful, unroll,
                               zero_output_for_mask)
        self.input_spec = InputSpec(min_ndim=3)

    # -- shapes -------------------------------------------------------------------------------
    @property
    def state_size(self) -> list:
        return _as_list(self.cell.state_size)

    def _state_shapes(self) -> list:
        """Each state's shape without the batch axis."""
        return [_entry_shapes(size) for size in self.state_size]

    def _output_size(self):
        size = getattr(self.cell, "output_size", None)
        return self._state_shapes()[0] if size is None else size

    def compute_output_shape(self, input_shape, initial_state_shape=None):
        first = input_shape if _is_shape(input_shape) else jax.tree_util.tree_leaves(
            input_shape, is_leaf=_is_shape)[0]
        batch, steps = first[0], first[1]
        per_step = (batch, steps) if self.return_sequences else (batch,)
        output = _output_shapes(self._output_size(), per_step)
        if self.return_state:
            return (output, *_map_entry_shapes(lambda shape: (batch, *shape), self._state_shapes()))
        return output

    def compute_mask(self, inputs, mask=None):
        """As Keras: the input's mask for a sequence output, else none; with ``return_state`` a
        list with ``None`` for each state."""
        if isinstance(mask, (list, tuple, dict)):
            mask = _first_leaf(mask)  # one mask for all the input sequences (Keras: the first)
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(self.state_size)
        return output_mask

    # -- state --------------------------------------------------------------------------------
    def build(self, input_shape):
        nested = not _is_shape(input_shape)
        if nested:
            # A structure of sequences: the cell is built from the structure of per-step
            # shapes, and the (batch, time, ...) check is made on each sequence in ``call``.
            self.input_spec = None
        if nested and isinstance(self.cell, RecurrentCell):
            raise ValueError(
                f"RNN '{self.name}': the built-in cell {type(self.cell).__name__} takes one sequence (batch, "
                f"time, features); got a structure of sequences of shapes {input_shape}. Concatenate them first."
            )
        step_shape = _map_shapes(lambda shape: (shape[0], *shape[2:]), input_shape)
        if isinstance(self.cell, Layer) and not self.cell.built:
            self.cell.build_from_shape(step_shape)
        batch_size = (jax.tree_util.tree_leaves(input_shape, is_leaf=_is_shape)[0] if nested else input_shape)[0]
        if self.stateful and self.recurrent_state is None:
            if batch_size is None:
                raise ValueError(
                    f"RNN '{self.name}': stateful=True needs a fixed batch size, got input shape "
                    f"{tuple(input_shape)}."
                )
            initial, self._state_treedef = jax.tree_util.tree_flatten(self.get_initial_state(batch_size))
            self.recurrent_state = RecurrentState(initial)

    def get_initial_state(self, batch_size):
        """The states a sequence starts from: the cell's ``get_initial_state(batch_size=...)``
        when it has one, else zeros of shape ``(batch_size, *state_shape)`` for each state."""
        make = getattr(self.cell, "get_initial_state", None)
        if make is not None:
            states = make(batch_size=batch_size)
            return list(states) if isinstance(states, (list, tuple)) else [states]
        return _map_entry_shapes(lambda shape: jnp.zeros((batch_size, *shape), self.dtype), self._state_shapes())

    def _initial_states(self, batch_size, initial_state):
        if initial_state is None:
            if self.recurrent_state is not None:
                return jax.tree_util.tree_unflatten(self._state_treedef,
                                                    [v.value for v in self.recurrent_state.variables])
            return jax.tree_util.tree_map(lambda s: jnp.asarray(s, self.dtype), self.get_initial_state(batch_size))
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != len(self.state_size):
            raise ValueError(
                f"RNN '{self.name}': initial_state must hold {len(self.state_size)} array(s) (state sizes "
                f"{self.state_size}), got {len(states)}."
            )
        # (A stacked cell's entry is a list of its states; a Variable is a pytree of its value.)
        states = [jax.tree_util.tree_map(lambda s: jnp.asarray(s, self.dtype), state) for state in states]
        for index, (state, shapes) in enumerate(zip(states, self._state_shapes())):
            given = [tuple(leaf.shape) for leaf in jax.tree_util.tree_leaves(state)]
            expected = [(batch_size, *shape) for shape in _shape_leaves(shapes)]
            if given != expected:
                got = given[0] if len(given) == 1 else given
                raise ValueError(
                    f"RNN '{self.name}': initial state {index} has shape {got}; expected "
                    f"{expected[0] if len(expected) == 1 else expected} (batch, *state size)."
                )
        return states

    def _check_sequences(self, inputs):
        """Each sequence of a structured input is ``(batch, time, ...)``, with one batch size and
        one number of steps; returns the batch size."""
        leaves = jax.tree_util.tree_leaves(inputs)
        if not leaves:
            raise ValueError(f"RNN '{self.name}': the input holds no arrays.")
        for leaf in leaves:
            if leaf.ndim < 2 or leaf.shape[:2] != leaves[0].shape[:2]:
                raise ValueError(
                    f"RNN '{self.name}': every input sequence must be (batch, time, ...) with one batch size and "
                    f"number of steps; got shapes {[tuple(a.shape) for a in leaves]}."
                )
        return leaves[0].shape[0]

    # -- the computation ----------------------------------------------------------------------
    def call(self, inputs, initial_state=None, mask=None, training=None):
        nested = not isinstance(inputs, jax.Array)
        batch_size = self._check_sequences(inputs) if nested else inputs.shape[0]
        states = self._initial_states(batch_size, initial_state)
        if isinstance(mask, (list, tuple, dict)):
            mask = _first_leaf(mask)  # one mask for all the input sequences (Keras: the first)
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
        elif (plan := self._planned(inputs, training)) is not None:
            if mask is not None:
                mask = jnp.asarray(mask)
            last, outputs, final_states = _run_planned_compiled(type(cell).plan_step, *plan, inputs, states, mask,
                                                                **options)
        else:
            # A cell may prepare the whole sequence's step itself (StackedRNNCells: the built-in
            # cells' dropout masks, drawn once before the loop).
            prepare = getattr(cell, "_lm_sequence_step", None)
            cell_step = cell if prepare is None else prepare(inputs, training)

            def step(x, carry):
                if prepare is None:
                    output, new_states = cell_step(x, list(carry), training=training)
                else:
                    output, new_states = cell_step(x, list(carry))
                return output, list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]

            last, outputs, final_states = run_rnn(step, inputs, states, mask=mask, **options)
        final_states = list(final_states)
        self._carry_states(final_states)
        output = outputs if self.return_sequences else last
        if self.return_state:
            return (output, *final_states)
        return output

    def _planned(self, inputs, training):
        """``(spec, params)`` when the cell plans its whole step with a hashable ``spec``
        (``StackedRNNCells._lm_sequence_plan``), else ``None``."""
        plan = getattr(self.cell, "_lm_sequence_plan", None)
        if plan is None or not isinstance(inputs, jax.Array):
            return None
        plan = plan(inputs, training)
        return plan if plan is not None and _hashable(plan[0]) else None

    # -- configuration ------------------------------------------------------------------------
    def get_config(self):
        return {**super().get_config(), "cell": serialize_object(self.cell), **self._rnn_config()}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        cell = deserialize_object(config.pop("cell"), kind="layer", aliases={}, custom_objects=custom_objects)
        return cls(cell, **config)
