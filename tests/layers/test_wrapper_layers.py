"""``Wrapper`` (Keras's base class of wrappers) and ``StackedRNNCells`` against Keras 3 (JAX
backend): the checker on stacked cells in ``RNN`` (masks, states), initial and stateful
states, dropout masks drawn once per sequence, configs and ``.keras`` files."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm

SHAPE = (2, 5, 3)
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)


# --- Wrapper -------------------------------------------------------------------------------------

class Doubled(lm.layers.Wrapper):
    def call(self, inputs):
        return 2 * self.layer(inputs)


def test_wrapper_builds_tracks_and_saves_the_wrapped_layer():
    layer = Doubled(lm.layers.Dense(3, name="inner"), name="doubled")
    y = layer(jnp.ones((2, 4)))
    dense = layer.layer
    np.testing.assert_allclose(np.asarray(y), 2 * (np.ones((2, 4)) @ np.asarray(dense.kernel.value)), rtol=1e-5)
    assert [w.path for w in layer.weights] == ["doubled/layer/kernel", "doubled/layer/bias"]
    config = layer.get_config()
    assert config["layer"]["class_name"] == "Dense" and config["layer"]["config"]["name"] == "inner"
    rebuilt = Doubled.from_config(config)
    assert type(rebuilt.layer) is lm.layers.Dense and rebuilt.layer.name == "inner"
    assert isinstance(lm.layers.TimeDistributed(lm.layers.Dense(2)), lm.layers.Wrapper)
    assert isinstance(lm.layers.SpectralNormalization(lm.layers.Dense(2)), lm.layers.Wrapper)
    assert not isinstance(lm.layers.Bidirectional(lm.layers.LSTM(2)), lm.layers.Wrapper)  # as in Keras
    with pytest.raises(ValueError, match="Doubled: `layer` must be a lamina Layer"):
        Doubled(lambda x: x)


def test_wrapper_config_matches_keras(keras):
    ours = lm.layers.Wrapper(lm.layers.Dense(2, name="d")).get_config()
    theirs = keras.layers.Wrapper(keras.layers.Dense(2, name="d")).get_config()
    assert set(ours) == set(theirs) and ours["layer"]["class_name"] == theirs["layer"]["class_name"]
    assert type(lm.layers.deserialize(lm.layers.serialize(lm.layers.Wrapper(lm.layers.Dense(2))))) is lm.layers.Wrapper


# --- StackedRNNCells ------------------------------------------------------------------------------

def test_stacked_rnn_cells_pass_the_checker(keras):
    # return_state with a mask: Keras's nested states ([h, c] of the LSTM cell, [h] of the GRU
    # cell) and the previous output kept at masked steps.
    config = dict(return_state=True, return_sequences=True)
    layer, outputs = check_layer(
        lambda: lm.layers.RNN(lm.layers.StackedRNNCells([lm.layers.LSTMCell(3), lm.layers.GRUCell(4)]), **config),
        lambda k: k.layers.RNN(k.layers.StackedRNNCells([k.layers.LSTMCell(3), k.layers.GRUCell(4)]), **config),
        inputs=random_input(SHAPE, seed=1), call_kwargs={"mask": MASK}, keras=keras, grad_rtol=1e-4)
    assert [[s.shape for s in cell_states] for cell_states in outputs[1:]] == [[(2, 3), (2, 3)], [(2, 4)]]
    assert layer.cell.state_size == [[3, 3], 4]
    assert layer.get_config()["cell"]["class_name"] == "StackedRNNCells"


def test_a_list_of_cells_is_stacked_and_takes_initial_states(keras):
    x = random_input(SHAPE, seed=2)
    states = [[random_input((2, 3), seed=3), random_input((2, 3), seed=4)], [random_input((2, 4), seed=5)]]
    ours = lm.layers.RNN([lm.layers.LSTMCell(3), lm.layers.GRUCell(4)], return_state=True)
    theirs = keras.layers.RNN([keras.layers.LSTMCell(3), keras.layers.GRUCell(4)], return_state=True)
    assert isinstance(ours.cell, lm.layers.StackedRNNCells)
    theirs(x)
    ours(jnp.asarray(x))
    ours.set_weights(theirs.get_weights())
    mine = ours(jnp.asarray(x), initial_state=states)
    reference = theirs(x, initial_state=states)
    for a, b in zip(jax.tree_util.tree_leaves(mine), jax.tree_util.tree_leaves(reference)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"initial state 0 has shape \[\(2, 3\), \(2, 4\)\]; expected "
                                         r"\[\(2, 3\), \(2, 3\)\]"):
        ours(jnp.asarray(x), initial_state=[[states[0][0], states[1][0]], states[1]])


def test_stateful_stacked_cells_carry_their_nested_states():
    # (The checker's cells and shapes throughout this file: their programs compile once.)
    layer = lm.layers.RNN(lm.layers.StackedRNNCells([lm.layers.LSTMCell(3), lm.layers.GRUCell(4)]),
                          stateful=True, return_state=True)
    x = jnp.asarray(random_input(SHAPE, seed=6))
    first = layer(x)
    assert [tuple(v.shape) for v in layer.states] == [(2, 3), (2, 3), (2, 4)]
    second = layer(x)
    assert not np.allclose(np.asarray(first[0]), np.asarray(second[0]))  # started from the carried states
    layer.reset_state()
    np.testing.assert_allclose(np.asarray(layer(x)[0]), np.asarray(first[0]), rtol=1e-6)


def test_stacked_dropout_masks_are_drawn_once_per_sequence_and_fresh_each_call():
    # Without recurrence (zero recurrent kernels) and with the same input at every step, each
    # step's output is the same if and only if every step shares the dropout masks.
    cells = [lm.layers.SimpleRNNCell(8, recurrent_initializer="zeros", dropout=0.5, seed=1),
             lm.layers.SimpleRNNCell(8, recurrent_initializer="zeros", dropout=0.5, seed=2)]
    layer = lm.layers.RNN(cells, return_sequences=True)
    x = jnp.ones((4, 6, 5))
    inference = np.asarray(layer(x))
    first = np.asarray(layer(x, training=True))
    np.testing.assert_allclose(first, np.broadcast_to(first[:, :1], first.shape), rtol=1e-6)
    assert not np.allclose(first, inference)
    compiled = lm.jit(lambda inputs: layer(inputs, training=True))
    a, b = np.asarray(compiled(x)), np.asarray(compiled(x))
    np.testing.assert_allclose(a, np.broadcast_to(a[:, :1], a.shape), rtol=1e-6)
    assert not np.allclose(a, b) and not np.allclose(a, first)  # the seed generators advance each call


def test_stacked_cells_single_step_config_and_errors():
    cells = lm.layers.StackedRNNCells([lm.layers.LSTMCell(3), lm.layers.GRUCell(4)], name="stack")
    x = jnp.ones((2, 3))
    output, states = cells(x, cells.get_initial_state(batch_size=2))
    assert output.shape == (2, 4) and [[s.shape for s in cell] for cell in states] == [[(2, 3), (2, 3)], [(2, 4)]]
    config = lm.layers.serialize(cells)
    rebuilt = lm.layers.deserialize(config)
    assert [type(c).__name__ for c in rebuilt.cells] == ["LSTMCell", "GRUCell"] and rebuilt.name == "stack"
    with pytest.raises(ValueError, match="'stack': states must be a list with one entry per cell"):
        cells(x, [jnp.zeros((2, 3))])
    with pytest.raises(ValueError, match="every cell must have a `state_size`"):
        lm.layers.StackedRNNCells([lm.layers.Dense(2)])


def test_stacked_rnn_and_spectral_normalization_keras_files_both_ways(keras, tmp_path):
    # SpectralNormalization's kernel is saved twice by Keras (its own and the Dense's weight).
    inputs = lm.Input((5, 3))
    hidden = lm.layers.RNN([lm.layers.LSTMCell(3), lm.layers.GRUCell(4)])(inputs)
    model = lm.Model(inputs, lm.layers.SpectralNormalization(lm.layers.Dense(5))(hidden))
    model.save(str(tmp_path / "ours.keras"))
    theirs = keras.saving.load_model(str(tmp_path / "ours.keras"))
    x = random_input(SHAPE, seed=7)
    expected = np.asarray(model(jnp.asarray(x)))
    np.testing.assert_allclose(np.asarray(theirs(x)), expected, rtol=1e-5, atol=1e-6)
    theirs.save(str(tmp_path / "theirs.keras"))
    back = lm.load_model(str(tmp_path / "theirs.keras"))
    assert isinstance(back.layers[1].cell, lm.layers.StackedRNNCells)
    np.testing.assert_allclose(np.asarray(back(jnp.asarray(x))), expected, rtol=1e-5, atol=1e-6)


# --- every layer of this part: Keras's constructor arguments and config ----------------------------

ARGUMENTS = {  # class name -> its required arguments, given the module of layers (lm.layers or Keras's)
    "Attention": lambda layers: (), "AdditiveAttention": lambda layers: (),
    "GroupedQueryAttention": lambda layers: (2, 4, 2), "RMSNormalization": lambda layers: (),
    "SpectralNormalization": lambda layers: (layers.Dense(2),), "Wrapper": lambda layers: (layers.Dense(2),),
    "StackedRNNCells": lambda layers: ([layers.LSTMCell(2), layers.GRUCell(3)],),
}


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_constructor_arguments_and_configs_are_keras_s(keras, name):
    import inspect  # noqa: PLC0415

    ours = getattr(lm.layers, name)
    theirs = getattr(keras.layers, "GroupQueryAttention" if name == "GroupedQueryAttention" else name)

    def arguments(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]

    assert arguments(ours) == arguments(theirs)
    mine, reference = ours(*ARGUMENTS[name](lm.layers)).get_config(), theirs(*ARGUMENTS[name](keras.layers)).get_config()
    assert set(mine) == set(reference)
    for key, value in reference.items():
        holds_objects = isinstance(value, dict) or isinstance(value, list) and any(isinstance(v, dict) for v in value)
        if key not in ("name", "dtype") and not holds_objects:  # (objects: compared in their round trips)
            assert mine[key] == value, key
