"""``SimpleRNN``, ``LSTM``, ``GRU``: an ``RNN`` around the matching built-in cell.

Their config is flat (the cell's arguments next to the RNN's), as in Keras, and every cell
argument reads through (``layer.units``, ``layer.dropout``...). Weights are the cell's:
``kernel``, ``recurrent_kernel``, ``bias`` in Keras's layout.
"""

from __future__ import annotations

from lamina.layers.input_spec import InputSpec
from lamina.layers.rnn.cells import GRUCell, LSTMCell, SimpleRNNCell
from lamina.layers.rnn.rnn import RNN
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object

_BASE_KEYS = ("name", "trainable", "dtype")


class _CellRNN(RNN):
    """An RNN whose cell is built from the layer's own arguments (Keras's SimpleRNN/LSTM/GRU)."""

    _cell_class = None
    _cell_name = None

    def __init__(self, cell_kwargs, rnn_kwargs, kwargs):
        cell = self._cell_class(
            **cell_kwargs, name=self._cell_name, dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
        )
        super().__init__(cell, **rnn_kwargs, **kwargs)
        self.input_spec = InputSpec(ndim=3)

    def get_config(self):
        cell_config = {k: v for k, v in self.cell.get_config().items() if k not in _BASE_KEYS}
        base = {k: v for k, v in super().get_config().items() if k != "cell"}
        return {**base, **cell_config, "activity_regularizer": serialize_object(self.activity_regularizer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


def _read_through(cls, names):
    """Expose each cell argument as a read-only property of the layer."""
    for name in names:
        setattr(cls, name, property(lambda self, _n=name: getattr(self.cell, _n),
                                    doc=f"The cell's ``{name}``."))
    return cls


_COMMON = ("units", "activation", "use_bias", "kernel_initializer", "recurrent_initializer",
           "bias_initializer", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
           "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
           "recurrent_dropout", "seed")


@register_builtin
class SimpleRNN(_CellRNN):
    """Fully connected RNN whose output is fed back as its state, as ``keras.layers.SimpleRNN``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> from lamina.layers.rnn import SimpleRNN
        >>> layer = SimpleRNN(4)
        >>> layer(jnp.ones((2, 5, 3))).shape
        (2, 4)
        >>> out, state = SimpleRNN(4, return_sequences=True, return_state=True)(jnp.ones((2, 5, 3)))
        >>> out.shape, state.shape
        ((2, 5, 4), (2, 4))
    """

    _cell_class = SimpleRNNCell
    _cell_name = "simple_rnn_cell"

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, seed=None, **kwargs):
        super().__init__(
            dict(units=units, activation=activation, use_bias=use_bias,
                 kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                 bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                 recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
                 kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                 bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout,
                 seed=seed),
            dict(return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards,
                 stateful=stateful, unroll=unroll, zero_output_for_mask=zero_output_for_mask),
            dict(kwargs, activity_regularizer=activity_regularizer),
        )


@register_builtin
class LSTM(_CellRNN):
    """Long short-term memory layer (Hochreiter 1997), as ``keras.layers.LSTM``.

    ``return_state=True`` returns ``(output, h, c)``; ``initial_state=[h0, c0]``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> from lamina.layers.rnn import LSTM
        >>> out, h, c = LSTM(4, return_state=True)(jnp.ones((2, 5, 3)))
        >>> out.shape, h.shape, c.shape
        ((2, 4), (2, 4), (2, 4))
    """

    _cell_class = LSTMCell
    _cell_name = "lstm_cell"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):
        kwargs.pop("use_cudnn", None)  # Keras's cuDNN switch: XLA compiles the scan on every device
        super().__init__(
            dict(units=units, activation=activation, recurrent_activation=recurrent_activation,
                 use_bias=use_bias, kernel_initializer=kernel_initializer,
                 recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                 unit_forget_bias=unit_forget_bias, kernel_regularizer=kernel_regularizer,
                 recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
                 kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                 bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout,
                 seed=seed),
            dict(return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards,
                 stateful=stateful, unroll=unroll, zero_output_for_mask=zero_output_for_mask),
            dict(kwargs, activity_regularizer=activity_regularizer),
        )


@register_builtin
class GRU(_CellRNN):
    """Gated recurrent unit (Cho 2014), as ``keras.layers.GRU`` (``reset_after=True`` default).

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> from lamina.layers.rnn import GRU
        >>> layer = GRU(4, return_sequences=True, go_backwards=True)
        >>> layer(jnp.ones((2, 5, 3))).shape
        (2, 5, 4)
        >>> [w.shape for w in layer.weights]
        [(3, 12), (4, 12), (2, 12)]
    """

    _cell_class = GRUCell
    _cell_name = "gru_cell"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0,
                 seed=None, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, reset_after=True, zero_output_for_mask=False, **kwargs):
        kwargs.pop("use_cudnn", None)
        super().__init__(
            dict(units=units, activation=activation, recurrent_activation=recurrent_activation,
                 use_bias=use_bias, kernel_initializer=kernel_initializer,
                 recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                 kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                 bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                 recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
                 dropout=dropout, recurrent_dropout=recurrent_dropout, reset_after=reset_after, seed=seed),
            dict(return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards,
                 stateful=stateful, unroll=unroll, zero_output_for_mask=zero_output_for_mask),
            dict(kwargs, activity_regularizer=activity_regularizer),
        )


_read_through(SimpleRNN, _COMMON)
_read_through(LSTM, _COMMON + ("recurrent_activation", "unit_forget_bias"))
_read_through(GRU, _COMMON + ("recurrent_activation", "reset_after"))
