"""What the built-in recurrent cells share: Keras's weight layout, arguments and dropout masks.

A built-in cell splits one step into two parts: ``project_inputs`` (the input-to-gates matmul)
and ``step`` (the recurrent part). ``RNN`` runs both inside its ``jax.lax.scan`` body, from
static methods of the weights, so that the loop compiles once per configuration; ``call``
chains the two for a single step, with the same ``call(inputs, states, training=False)``
signature as Keras cells.

Dropout masks are drawn from the cell's ``SeedGenerator`` once per sequence (before the loop)
and reused at every timestep, as Keras does; the RNN layer asks ``dropout_masks`` for them.
"""

from __future__ import annotations

import jax.numpy as jnp

from lamina import activations, constraints, initializers, random, regularizers
from lamina.layers.layer import Layer
from lamina.saving.serialization import serialize_object


def masked_matmul(x, kernel, mask, gates):
    """``x @ kernel`` where ``x`` is first multiplied by a dropout ``mask``.

    ``mask`` is ``None``, or has a leading axis of 1 (one mask for every gate) or of ``gates``
    (one mask per gate, which then only meets that gate's columns of ``kernel``); its other
    axes broadcast against ``x``.
    """
    if mask is None:
        return jnp.matmul(x, kernel)
    if mask.shape[0] == 1:
        return jnp.matmul(x * mask[0], kernel)
    per_gate = kernel.reshape(kernel.shape[0], gates, -1)
    y = jnp.einsum("g...f,fgu->...gu", x[None] * mask, per_gate)
    return y.reshape(*y.shape[:-2], -1)


class KernelCell(Layer):
    """Base of the recurrent cells with Keras's ``kernel``, ``recurrent_kernel`` and ``bias``
    (``RecurrentCell`` and ``ConvLSTMCell``; not a public class): the arguments they share,
    resolved as Keras does (dropout rates clipped to [0, 1]), the ``SeedGenerator`` their
    dropout masks come from, the weights' current values and those arguments' config."""

    def __init__(self, *, use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
                 kernel_regularizer, recurrent_regularizer, bias_regularizer, kernel_constraint,
                 recurrent_constraint, bias_constraint, dropout, recurrent_dropout, seed, **kwargs):
        super().__init__(**kwargs)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.seed = seed
        self.seed_generator = random.SeedGenerator(seed)

    def params(self) -> tuple:
        """The current weight values ``(kernel, recurrent_kernel, bias or None)``."""
        return (self.kernel.value, self.recurrent_kernel.value, None if self.bias is None else self.bias.value)

    def _kernel_arguments_config(self, **after_initializers) -> dict:
        """The arguments set by ``KernelCell.__init__``, in Keras's config order, with
        ``after_initializers`` where Keras lists a cell's own arguments among them (ConvLSTM's
        ``unit_forget_bias``)."""
        return {
            "use_bias": self.use_bias,
            "kernel_initializer": serialize_object(self.kernel_initializer),
            "recurrent_initializer": serialize_object(self.recurrent_initializer),
            "bias_initializer": serialize_object(self.bias_initializer),
            **after_initializers,
            "kernel_regularizer": serialize_object(self.kernel_regularizer),
            "recurrent_regularizer": serialize_object(self.recurrent_regularizer),
            "bias_regularizer": serialize_object(self.bias_regularizer),
            "kernel_constraint": serialize_object(self.kernel_constraint),
            "recurrent_constraint": serialize_object(self.recurrent_constraint),
            "bias_constraint": serialize_object(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }


class RecurrentCell(KernelCell):
    """Base of ``SimpleRNNCell``, ``LSTMCell`` and ``GRUCell`` (not a public class).

    Subclasses set ``gates`` and implement ``build``, ``project_inputs(x, mask)`` and
    ``step(projected, states, recurrent_mask)``.
    """

    gates = 1
    # Keras applies LSTM/GRU dropout only for rates strictly below 1, SimpleRNN's for any rate > 0.
    _dropout_below_one = True

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0,
                 seed=None, **kwargs):
        super().__init__(
            use_bias=use_bias, kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed,
            **kwargs,
        )
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"{type(self).__name__} '{self.name}': units must be a positive integer, got {units!r}.")
        self.units = units
        self.activation = activations.get(activation)
        self.state_size = units
        self.output_size = units

    # -- weights ------------------------------------------------------------------------------
    def _add_kernels(self, input_dim, bias_shape, bias_initializer=None):
        width = self.units * self.gates
        self.kernel = self.add_weight(
            shape=(input_dim, width), initializer=self.kernel_initializer, name="kernel",
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width), initializer=self.recurrent_initializer, name="recurrent_kernel",
            regularizer=self.recurrent_regularizer, constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=bias_shape, initializer=bias_initializer or self.bias_initializer, name="bias",
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )

    # -- dropout ------------------------------------------------------------------------------
    def _applies(self, rate) -> bool:
        return rate > 0 and (rate < 1 or not self._dropout_below_one)

    def _mask_counts(self):
        """How many input and recurrent masks: Keras's "implementation 1" (one per gate) when
        recurrent dropout is on, else one input mask shared by all gates."""
        per_gate = self.gates if self.recurrent_dropout > 0 else 1
        return per_gate, self.gates

    def dropout_masks(self, batch_size, input_dim, dtype, training):
        """``(input_mask, recurrent_mask)`` for one sequence; ``None`` where nothing is dropped.

        Shapes ``(n, batch, input_dim)`` and ``(n, batch, units)``, ``n`` as in ``_mask_counts``.
        """
        if not training:
            return None, None
        n_in, n_rec = self._mask_counts()
        input_mask = recurrent_mask = None
        if self._applies(self.dropout):
            input_mask = random.dropout(jnp.ones((n_in, batch_size, input_dim), dtype), self.dropout,
                                        seed=self.seed_generator)
        if self._applies(self.recurrent_dropout):
            recurrent_mask = random.dropout(jnp.ones((n_rec, batch_size, self.units), dtype),
                                            self.recurrent_dropout, seed=self.seed_generator)
        return input_mask, recurrent_mask

    # -- one step ---------------------------------------------------------------------------
    # The math lives in static methods of (spec, params, ...) so that ``RNN`` can compile the
    # whole loop once per configuration (see ``rnn.run_cell``) without holding the layer.
    def spec(self) -> tuple:
        """What the step's math depends on besides the weights: hashable, no arrays."""
        return (type(self), self.units, self.activation, getattr(self, "recurrent_activation", None),
                getattr(self, "reset_after", None))

    @staticmethod
    def project_inputs(spec, params, inputs, mask=None):
        """The input-to-gates part of one timestep (any leading axes are kept)."""
        raise NotImplementedError

    @staticmethod
    def step(spec, params, projected, states, recurrent_mask=None):
        """The recurrent part of one timestep: ``(output, new_states)``."""
        raise NotImplementedError

    def call(self, inputs, states, training=False):
        """One timestep: ``(output, new_states)``; ``states`` is a list (or a single array for a
        one-state cell, which then gets a single array back), as with Keras cells."""
        single = not isinstance(states, (list, tuple))
        states = [states] if single else [jnp.asarray(s) for s in states]
        input_mask, recurrent_mask = self.dropout_masks(inputs.shape[0], inputs.shape[-1], inputs.dtype, training)
        spec, params = self.spec(), self.params()
        projected = self.project_inputs(spec, params, inputs, input_mask)
        output, new_states = self.step(spec, params, projected, states, recurrent_mask)
        return output, (new_states[0] if single else new_states)

    def get_initial_state(self, batch_size=None):
        sizes = self.state_size if isinstance(self.state_size, (list, tuple)) else [self.state_size]
        return [jnp.zeros((batch_size, size), self.dtype) for size in sizes]

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": serialize_object(self.activation),
            **self._kernel_arguments_config(),
        }
