"""``SimpleRNNCell``, ``LSTMCell``, ``GRUCell``: one timestep each, with Keras's weights.

Weights are ``kernel`` (input to gates), ``recurrent_kernel`` (state to gates) and ``bias``,
in Keras's layout and gate order (LSTM: input, forget, cell, output; GRU: update, reset,
candidate), so ``set_weights(keras_cell.get_weights())`` copies Keras weights in. Run a cell
over a sequence with ``lm.layers.RNN(cell)`` (``SimpleRNN``, ``LSTM`` and ``GRU`` do that).
"""

from __future__ import annotations

import jax.numpy as jnp

from lamina import activations, initializers
from lamina.layers.rnn.base_cell import RecurrentCell, masked_matmul
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object


@register_builtin
class SimpleRNNCell(RecurrentCell):
    """One step of a fully connected RNN: ``h = activation(x @ kernel + bias + h_prev @ recurrent_kernel)``.

    Arguments as ``keras.layers.SimpleRNNCell``; ``call(inputs, states, training=False)``
    returns ``(output, new_states)``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> from lamina.layers.rnn import SimpleRNNCell
        >>> cell = SimpleRNNCell(3)
        >>> out, [h] = cell(jnp.ones((2, 4)), [jnp.zeros((2, 3))])
        >>> out.shape, [w.name for w in cell.weights]
        ((2, 3), ['kernel', 'recurrent_kernel', 'bias'])
    """

    gates = 1
    _dropout_below_one = False

    def _mask_counts(self):
        return 1, 1

    def build(self, input_shape):
        self._add_kernels(input_shape[-1], (self.units,))

    @staticmethod
    def project_inputs(spec, params, inputs, mask=None):
        kernel, _, bias = params
        h = masked_matmul(inputs, kernel, mask, 1)
        return h if bias is None else h + bias

    @staticmethod
    def step(spec, params, projected, states, recurrent_mask=None):
        activation = spec[2]
        previous = states[0]
        if recurrent_mask is not None:
            previous = previous * recurrent_mask[0]
        output = activation(projected + jnp.matmul(previous, params[1]))
        return output, [output]


@register_builtin
class LSTMCell(RecurrentCell):
    """One step of a long short-term memory layer (Hochreiter 1997), as ``keras.layers.LSTMCell``.

    States are ``[h, c]``; with ``unit_forget_bias`` the forget-gate bias starts at one.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> from lamina.layers.rnn import LSTMCell
        >>> cell = LSTMCell(3)
        >>> out, (h, c) = cell(jnp.ones((2, 4)), [jnp.zeros((2, 3)), jnp.zeros((2, 3))])
        >>> [w.shape for w in cell.weights]
        [(4, 12), (3, 12), (12,)]
    """

    gates = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0,
                 seed=None, **kwargs):
        super().__init__(
            units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
            dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, **kwargs,
        )
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [units, units]

    def build(self, input_shape):
        bias_initializer = None
        if self.unit_forget_bias:
            units, base = self.units, self.bias_initializer
            ones = initializers.get("ones")

            def bias_initializer(shape, dtype="float32"):
                return jnp.concatenate([base((units,), dtype), ones((units,), dtype), base((2 * units,), dtype)])

        self._add_kernels(input_shape[-1], (4 * self.units,), bias_initializer)

    @staticmethod
    def project_inputs(spec, params, inputs, mask=None):
        # The bias is added in ``step``, after the recurrent term, in Keras's order of operations.
        return masked_matmul(inputs, params[0], mask, 4)

    @staticmethod
    def step(spec, params, projected, states, recurrent_mask=None):
        _, _, activation, recurrent_activation, _ = spec
        _, recurrent_kernel, bias = params
        h, c = states
        z = projected + masked_matmul(h, recurrent_kernel, recurrent_mask, 4)
        if bias is not None:
            z = z + bias
        z_i, z_f, z_c, z_o = jnp.split(z, 4, axis=-1)
        i = recurrent_activation(z_i)
        f = recurrent_activation(z_f)
        c = f * c + i * activation(z_c)
        o = recurrent_activation(z_o)
        h = o * activation(c)
        return h, [h, c]

    def get_config(self):
        return {
            **super().get_config(),
            "recurrent_activation": serialize_object(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
        }


@register_builtin
class GRUCell(RecurrentCell):
    """One step of a gated recurrent unit (Cho 2014), as ``keras.layers.GRUCell``.

    ``reset_after=True`` (the default, cuDNN-compatible) applies the reset gate after the
    recurrent matmul and keeps two bias rows (input and recurrent): ``bias`` has shape
    ``(2, 3 * units)``; ``reset_after=False`` has one bias row of shape ``(3 * units,)``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> from lamina.layers.rnn import GRUCell
        >>> cell = GRUCell(3)
        >>> out, [h] = cell(jnp.ones((2, 4)), [jnp.zeros((2, 3))])
        >>> [w.shape for w in cell.weights]
        [(4, 9), (3, 9), (2, 9)]
    """

    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, reset_after=True,
                 seed=None, **kwargs):
        super().__init__(
            units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
            dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, **kwargs,
        )
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def build(self, input_shape):
        self._add_kernels(input_shape[-1], (2, 3 * self.units) if self.reset_after else (3 * self.units,))

    @staticmethod
    def _biases(spec, bias):
        if bias is None:
            return None, None
        return (bias[0], bias[1]) if spec[4] else (bias, None)

    @staticmethod
    def project_inputs(spec, params, inputs, mask=None):
        kernel, _, bias = params
        x = masked_matmul(inputs, kernel, mask, 3)
        input_bias, _ = GRUCell._biases(spec, bias)
        return x if input_bias is None else x + input_bias

    @staticmethod
    def step(spec, params, projected, states, recurrent_mask=None):
        _, units, activation, recurrent_activation, reset_after = spec
        _, recurrent_kernel, bias = params
        _, recurrent_bias = GRUCell._biases(spec, bias)
        h = states[0]
        x_z, x_r, x_h = jnp.split(projected, 3, axis=-1)
        if reset_after:
            inner = masked_matmul(h, recurrent_kernel, recurrent_mask, 3)
            if recurrent_bias is not None:
                inner = inner + recurrent_bias
            r_z, r_r, r_h = jnp.split(inner, 3, axis=-1)
            z = recurrent_activation(x_z + r_z)
            r = recurrent_activation(x_r + r_r)
            candidate = activation(x_h + r * r_h)
        else:
            gate_mask = None if recurrent_mask is None else recurrent_mask[:2]
            inner = masked_matmul(h, recurrent_kernel[:, : 2 * units], gate_mask, 2)
            r_z, r_r = jnp.split(inner, 2, axis=-1)
            z = recurrent_activation(x_z + r_z)
            r = recurrent_activation(x_r + r_r)
            h_h = h if recurrent_mask is None else h * recurrent_mask[2]
            candidate = activation(x_h + jnp.matmul(r * h_h, recurrent_kernel[:, 2 * units:]))
        h = z * h + (1 - z) * candidate
        return h, [h]

    def get_config(self):
        return {
            **super().get_config(),
            "recurrent_activation": serialize_object(self.recurrent_activation),
            "reset_after": self.reset_after,
        }
