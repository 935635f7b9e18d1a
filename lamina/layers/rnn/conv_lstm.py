"""``ConvLSTM1D/2D/3D``: an LSTM whose input and recurrent transformations are convolutions.

The sequence runs through lamina's recurrent loop (``rnn.run_rnn``: one ``lax.scan``, Keras's
masking, ``go_backwards`` and ``unroll``); each step is two convolutions
(``lax.conv_general_dilated``, in Keras's kernel layout, as the convolution layers compute
them): the input with ``strides``, ``padding`` and ``dilation_rate``, the hidden state with
stride 1 and ``"same"`` padding so that it keeps its spatial shape. Keras convolves each of the
four gates separately; without dropout all four are one convolution with the whole kernel
(the same sums), and with dropout each gate's masked copy of the input goes through one
grouped convolution (``feature_group_count=4``).

Dropout masks are drawn once per sequence from the cell's ``SeedGenerator``, before the loop,
and reused at every timestep, as Keras does: four masks of the step input's shape for
``dropout``, four of the state's for ``recurrent_dropout``, one per gate, applied in training
for rates strictly between 0 and 1 (Keras's rule).

Weights are Keras's: ``kernel`` ``kernel_size + (channels, 4 * filters)``,
``recurrent_kernel`` ``kernel_size + (filters, 4 * filters)`` and ``bias`` ``(4 * filters,)``,
gates in the order input, forget, cell, output, held by a cell sublayer (``cell``), as in Keras,
so ``set_weights(keras_layer.get_weights())`` and Keras weight files line up.

``ConvLSTM`` is a ``Layer`` driving the loop itself rather than an ``lm.layers.RNN``: ``RNN``
takes a cell whose ``state_size`` is known when the layer is made, and a convolutional state's
shape depends on the input's spatial size, known only at ``build``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from lamina import activations, initializers, random
from lamina.core.variable import Variable
from lamina.layers.convolutional import _arguments as args
from lamina.layers.convolutional.base_conv import as_kernel_dtype, conv_output_shape, dimension_numbers
from lamina.layers.input_spec import InputSpec
from lamina.layers.rnn.base_cell import KernelCell
from lamina.layers.rnn.rnn import RecurrentLayer, RecurrentState, _hashable, run_rnn
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object


def _gate_conv(x, kernel, masks, strides, padding, dilation, dn, channel_axis):
    """``x`` convolved with the four gates' kernels (concatenated on the output axis); with
    ``masks`` (four masks shaped like ``x``), gate ``g`` sees ``x * masks[g]``."""
    groups = 1
    if masks is not None:
        x = jnp.concatenate([x * m for m in masks], axis=channel_axis)
        groups = 4
    return lax.conv_general_dilated(x, kernel, strides, padding, rhs_dilation=dilation, dimension_numbers=dn,
                                    feature_group_count=groups)


def _step(spec, params, x, states, input_masks, recurrent_masks):
    """One ConvLSTM step: ``(h, [h, c])``. ``spec`` holds what the math depends on besides the
    weights (hashable, so a whole sequence compiles once per configuration)."""
    rank, strides, padding, dilation, data_format, activation, recurrent_activation = spec
    kernel, recurrent_kernel, bias = params
    h, c = states
    dn = dimension_numbers(rank, data_format)
    channel_axis = args.channel_axis(data_format)
    z = _gate_conv(as_kernel_dtype(x, kernel), kernel, input_masks, strides, padding, dilation, dn, channel_axis)
    if bias is not None:
        shape = [1] * z.ndim
        shape[channel_axis] = bias.shape[0]
        z = z + bias.reshape(shape)
    z = z + _gate_conv(h, recurrent_kernel, recurrent_masks, (1,) * rank, "SAME", (1,) * rank, dn, channel_axis)
    z_i, z_f, z_c, z_o = jnp.split(z, 4, axis=channel_axis)
    i = recurrent_activation(z_i)
    f = recurrent_activation(z_f)
    c = f * c + i * activation(z_c)
    h = recurrent_activation(z_o) * activation(c)
    return h, [h, c]


def _run_sequence(spec, params, inputs, states, mask, input_masks, recurrent_masks, *, go_backwards, unroll,
                  zero_output_for_mask, return_sequences):
    def step(x, carry):
        return _step(spec, params, x, carry, input_masks, recurrent_masks)

    return run_rnn(step, inputs, states, mask=mask, go_backwards=go_backwards, unroll=unroll,
                   zero_output_for_mask=zero_output_for_mask, output_is_first_state=True,
                   return_sequences=return_sequences)


# Eager calls reuse one compiled loop per configuration and shape (inside lm.jit or a gradient
# it is inlined), as the built-in RNN layers do.
_run_sequence_compiled = functools.partial(jax.jit, static_argnames=(
    "spec", "go_backwards", "unroll", "zero_output_for_mask", "return_sequences"))(_run_sequence)


class ConvLSTMCell(KernelCell):
    """One step of a convolutional LSTM (the cell inside ``ConvLSTM1D/2D/3D``; as Keras's
    ``ConvLSTMCell``, not exported by Keras either).

    ``call(inputs, states, training=False)`` takes one step's input ``(batch, *spatial,
    channels)`` (channels first with ``data_format="channels_first"``) and ``[h, c]``, and
    returns ``(h, [h, c])``.
    """

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, **kwargs):
        super().__init__(
            use_bias=use_bias, kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed,
            **kwargs,
        )
        self.rank = rank
        args.set_geometry(self, f"{type(self).__name__} '{self.name}'", rank, filters, kernel_size, strides, padding,
                          data_format, dilation_rate)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_shape = None  # (*spatial, filters) or (filters, *spatial): set by build

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        expected = "(batch, *spatial, channels)" if self.data_format == "channels_last" else "(batch, channels, *spatial)"
        args.check_rank(self, input_shape, self.rank + 2, expected)
        channel_axis = args.channel_axis(self.data_format)
        spatial = [input_shape[a] for a in args.spatial_axes(self.rank, self.data_format)]
        if None in spatial or input_shape[channel_axis] is None:
            raise ValueError(
                f"{type(self).__name__} '{self.path}': the spatial and channel axes of each step must be known "
                f"(the state has the convolution's output shape), got step shape {input_shape}."
            )
        self.state_shape = conv_output_shape(self, input_shape, self.filters)[1:]
        kernel_shape = self.kernel_size + (input_shape[channel_axis], 4 * self.filters)
        self.kernel = self.add_weight(shape=kernel_shape, initializer=self.kernel_initializer, name="kernel",
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(
            shape=self.kernel_size + (self.filters, 4 * self.filters), initializer=self.recurrent_initializer,
            name="recurrent_kernel", regularizer=self.recurrent_regularizer, constraint=self.recurrent_constraint)
        self.bias = None
        if self.use_bias:
            bias_initializer = self.bias_initializer
            if self.unit_forget_bias:
                filters, base, ones = self.filters, self.bias_initializer, initializers.get("ones")

                def bias_initializer(shape, dtype="float32"):
                    return jnp.concatenate([base((filters,), dtype), ones((filters,), dtype),
                                            base((2 * filters,), dtype)])

            self.bias = self.add_weight(shape=(4 * self.filters,), initializer=bias_initializer, name="bias",
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    # -- the pieces the layer's loop needs ---------------------------------------------------
    def spec(self) -> tuple:
        """What a step's math depends on besides the weights: hashable, no arrays."""
        return (self.rank, self.strides, self.padding.upper(), self.dilation_rate, self.data_format,
                self.activation, self.recurrent_activation)

    def get_initial_state(self, batch_size):
        """Zero ``h`` and ``c``, each ``(batch_size, *state_shape)`` in the compute dtype."""
        return [jnp.zeros((batch_size, *self.state_shape), self.compute_dtype) for _ in range(2)]

    def dropout_masks(self, step_shape, dtype, training):
        """``(input_masks, recurrent_masks)`` for one sequence: four masks (one per gate) of the
        step input's and of the state's shape, or ``None`` where nothing is dropped."""
        if not training:
            return None, None
        input_masks = recurrent_masks = None
        if 0.0 < self.dropout < 1.0:
            input_masks = random.dropout(jnp.ones((4, *step_shape), dtype), self.dropout, seed=self.seed_generator)
        if 0.0 < self.recurrent_dropout < 1.0:
            recurrent_masks = random.dropout(jnp.ones((4, step_shape[0], *self.state_shape), dtype),
                                             self.recurrent_dropout, seed=self.seed_generator)
        return input_masks, recurrent_masks

    def call(self, inputs, states, training=False):
        input_masks, recurrent_masks = self.dropout_masks(inputs.shape, self.compute_dtype, training)
        h, c = states
        return _step(self.spec(), self.params(), inputs, [jnp.asarray(h), jnp.asarray(c)], input_masks,
                     recurrent_masks)

    def compute_output_shape(self, input_shape, states_shape=None):
        shape = conv_output_shape(self, tuple(input_shape), self.filters)
        return shape, [shape, shape]

    def get_config(self):
        return {
            **super().get_config(), "rank": self.rank, **self._arguments_config(),
        }

    def _arguments_config(self) -> dict:
        """The cell's arguments in Keras's config order (the layer's config holds them too)."""
        return {
            **args.geometry_config(self),
            "activation": serialize_object(self.activation),
            "recurrent_activation": serialize_object(self.recurrent_activation),
            **self._kernel_arguments_config(unit_forget_bias=self.unit_forget_bias),
        }


_CELL_ARGUMENTS = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "activation",
                   "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer",
                   "bias_initializer", "unit_forget_bias", "kernel_regularizer", "recurrent_regularizer",
                   "bias_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
                   "recurrent_dropout")


class ConvLSTM(RecurrentLayer):
    """Runs a ``ConvLSTMCell`` over a sequence of images (or 1-D/3-D grids); subclasses set
    ``rank``. Arguments, call, outputs, masks and config as Keras's ``ConvLSTM1D/2D/3D``."""

    rank: int = None

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, **kwargs):
        # Keras's ConvLSTM takes (and saves) its RNN base's other two options through kwargs.
        unroll = kwargs.pop("unroll", False)
        zero_output_for_mask = kwargs.pop("zero_output_for_mask", False)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        try:
            cell = ConvLSTMCell(
                self.rank, filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                dilation_rate=dilation_rate, activation=activation, recurrent_activation=recurrent_activation,
                use_bias=use_bias, kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                bias_initializer=bias_initializer, unit_forget_bias=unit_forget_bias,
                kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint, dropout=dropout,
                recurrent_dropout=recurrent_dropout, seed=seed, name="conv_lstm_cell", dtype=self.dtype_policy,
                trainable=kwargs.get("trainable", True),
            )
        except ValueError as error:  # the cell's argument checks, said of the layer the user made
            raise ValueError(f"{type(self).__name__} '{self.name}': {error}") from None
        self._set_loop_options(cell, return_sequences, return_state, go_backwards, stateful, unroll,
                               zero_output_for_mask)
        self.input_spec = InputSpec(ndim=self.rank + 3)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        expected = ("(batch, time, *spatial, channels)" if self.cell.data_format == "channels_last"
                    else "(batch, time, channels, *spatial)")
        args.check_rank(self, input_shape, self.rank + 3, expected)
        self.cell.build_from_shape((input_shape[0], *input_shape[2:]))
        if self.stateful and self.recurrent_state is None:
            if input_shape[0] is None:
                raise ValueError(f"{type(self).__name__} '{self.path}': stateful=True needs a fixed batch size, got "
                                 f"input shape {input_shape}.")
            self.recurrent_state = RecurrentState(self.cell.get_initial_state(input_shape[0]))

    # -- state ----------------------------------------------------------------------------------
    def get_initial_state(self, batch_size):
        """Zero ``[h, c]`` for ``batch_size`` sequences (the layer must be built)."""
        return self.cell.get_initial_state(batch_size)

    def _initial_states(self, batch_size, initial_state):
        if initial_state is None:
            if self.recurrent_state is not None:
                return [v.value for v in self.recurrent_state.variables]
            return self.cell.get_initial_state(batch_size)
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        expected = (batch_size, *self.cell.state_shape)
        if len(states) != 2:
            raise ValueError(f"{type(self).__name__} '{self.path}': initial_state must be [h, c], two arrays of "
                             f"shape {expected}; got {len(states)} array(s).")
        states = [jnp.asarray(s.value if isinstance(s, Variable) else s, self.compute_dtype) for s in states]
        for name, state in zip("hc", states):
            if state.shape != expected:
                raise ValueError(f"{type(self).__name__} '{self.path}': initial state {name} has shape "
                                 f"{state.shape}; expected {expected} (batch, *the convolution's output shape).")
        return states

    # -- the computation ------------------------------------------------------------------------
    def call(self, inputs, initial_state=None, mask=None, training=False):
        batch_size = inputs.shape[0]
        states = self._initial_states(batch_size, initial_state)
        cell = self.cell
        input_masks, recurrent_masks = cell.dropout_masks((batch_size, *inputs.shape[2:]), cell.compute_dtype,
                                                          training)
        if isinstance(mask, (list, tuple)):
            mask = mask[0]  # Keras: the mask of the first input
        spec = cell.spec()
        run = _run_sequence_compiled if _hashable(spec) else _run_sequence
        last, outputs, final_states = run(
            spec, cell.params(), inputs, states, None if mask is None else jnp.asarray(mask), input_masks,
            recurrent_masks, go_backwards=self.go_backwards, unroll=self.unroll,
            zero_output_for_mask=self.zero_output_for_mask, return_sequences=self.return_sequences)
        final_states = list(final_states)
        self._carry_states(final_states)
        output = outputs if self.return_sequences else last
        return (output, *final_states) if self.return_state else output

    def compute_output_shape(self, input_shape, initial_state_shape=None):
        input_shape = tuple(input_shape)
        args.check_rank(self, input_shape, self.rank + 3)
        batch, steps = input_shape[:2]
        state = conv_output_shape(self.cell, (batch, *input_shape[2:]), self.cell.filters)[1:]
        output = (batch, steps, *state) if self.return_sequences else (batch, *state)
        if self.return_state:
            return output, (batch, *state), (batch, *state)
        return output

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        return [output_mask, None, None] if self.return_state else output_mask

    # -- configuration --------------------------------------------------------------------------
    def get_config(self):
        config = {
            **super().get_config(),
            **self._rnn_config(),
        }
        for key, value in self.cell._arguments_config().items():  # in Keras's order
            config[key] = value
            if key == "bias_regularizer":
                config["activity_regularizer"] = serialize_object(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _read_through(cls):
    """Each cell argument as a read-only property of the layer (``layer.filters``...), as Keras."""
    for name in _CELL_ARGUMENTS:
        setattr(cls, name, property(lambda self, _n=name: getattr(self.cell, _n), doc=f"The cell's ``{name}``."))
    return cls


@register_builtin
@_read_through
class ConvLSTM1D(ConvLSTM):
    """Convolutional LSTM over sequences of 1-D grids ``(batch, time, steps, channels)``, as
    ``keras.layers.ConvLSTM1D``.

    Keras's arguments and defaults (``filters``, ``kernel_size``, ``strides=1``,
    ``padding="valid"``, ``data_format=None``, ``dilation_rate=1``, ``activation="tanh"``,
    ``recurrent_activation="sigmoid"``, ... ``dropout=0.0``, ``recurrent_dropout=0.0``,
    ``seed=None``, ``return_sequences=False``, ``return_state=False``,
    ``go_backwards=False``, ``stateful=False``). ``return_state=True`` returns
    ``(output, h, c)``; ``initial_state=[h0, c0]``.

    Example:
        >>> import lamina as lm
        >>> layer = lm.layers.ConvLSTM1D(4, 3, padding="same", return_sequences=True)
        >>> layer.compute_output_shape((None, 5, 8, 3))  # (batch, time, steps, channels)
        (None, 5, 8, 4)
    """

    rank = 1


@register_builtin
@_read_through
class ConvLSTM2D(ConvLSTM):
    """Convolutional LSTM over sequences of images ``(batch, time, rows, cols, channels)``
    (``(batch, time, channels, rows, cols)`` with ``data_format="channels_first"``), as
    ``keras.layers.ConvLSTM2D``; Keras's arguments and defaults (see ``ConvLSTM1D``).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> out, h, c = lm.layers.ConvLSTM2D(2, 3, return_state=True)(jnp.ones((1, 4, 6, 6, 1)))
        >>> out.shape, h.shape, c.shape
        ((1, 4, 4, 2), (1, 4, 4, 2), (1, 4, 4, 2))
    """

    rank = 2


@register_builtin
@_read_through
class ConvLSTM3D(ConvLSTM):
    """Convolutional LSTM over sequences of volumes ``(batch, time, depth, rows, cols,
    channels)``, as ``keras.layers.ConvLSTM3D``; Keras's arguments and defaults (see
    ``ConvLSTM1D``).

    Example:
        >>> import lamina as lm
        >>> lm.layers.ConvLSTM3D(2, 2, strides=2).compute_output_shape((None, 3, 4, 4, 4, 1))
        (None, 2, 2, 2, 2)
    """

    rank = 3
