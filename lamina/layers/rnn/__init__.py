"""Recurrent layers: ``SimpleRNN``, ``LSTM``, ``GRU``, their cells, the generic ``RNN``, and the
``Bidirectional`` and ``TimeDistributed`` wrappers, ``StackedRNNCells``."""

from lamina.layers.rnn.cells import GRUCell, LSTMCell, SimpleRNNCell
from lamina.layers.rnn.layers import GRU, LSTM, SimpleRNN
from lamina.layers.rnn.rnn import RNN
from lamina.layers.rnn.stacked_cells import StackedRNNCells
from lamina.layers.rnn.wrappers import Bidirectional, TimeDistributed

__all__ = ["GRU", "LSTM", "RNN", "Bidirectional", "GRUCell", "LSTMCell", "SimpleRNN", "SimpleRNNCell",
           "StackedRNNCells", "TimeDistributed"]
