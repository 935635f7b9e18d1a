"""RNN with a custom cell whose states have several axes (``state_size=[3, (2, 4)]``), as the
RNN guide's NestedCell, against Keras 3 with the same weights: return_state /
return_sequences / go_backwards, initial_state, masks, get_initial_state, stateful; and the
guide's structured inputs and outputs (which Keras 3's RNN refuses) against a NumPy loop."""

import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer

import lamina as lm

U1, U2, U3 = 3, 2, 4


@lm.saving.register_serializable(package="test_rnn_nested")
class NestedCell(lm.Layer):
    """A (batch, U1) and a (batch, U2, U3) state; the output is the first state (what Keras's
    masking takes as the previous output)."""

    def __init__(self, unit_1=U1, unit_2=U2, unit_3=U3, own_initial_state=False, **kwargs):
        super().__init__(**kwargs)
        self.unit_1, self.unit_2, self.unit_3 = unit_1, unit_2, unit_3
        self.own_initial_state = own_initial_state
        self.state_size = [unit_1, (unit_2, unit_3)]
        self.output_size = unit_1

    def build(self, input_shape):
        features = input_shape[-1]
        self.kernel_1 = self.add_weight(shape=(features, self.unit_1), initializer="uniform", name="kernel_1")
        self.kernel_2_3 = self.add_weight(shape=(features, self.unit_2, self.unit_3), initializer="uniform",
                                          name="kernel_2_3")

    def call(self, inputs, states):
        s1, s2 = states
        output_1 = jnp.matmul(inputs, self.kernel_1)
        output_2_3 = jnp.einsum("bi,ikl->bkl", inputs, self.kernel_2_3)
        output = jnp.tanh(s1 + output_1 + jnp.sum(s2, axis=(1, 2))[:, None])
        return output, [output, jnp.tanh(s2 + output_2_3)]

    def get_config(self):
        return {**super().get_config(), "unit_1": self.unit_1, "unit_2": self.unit_2, "unit_3": self.unit_3}


class NestedCellWithInitialState(NestedCell):
    def get_initial_state(self, batch_size=None):
        return [jnp.full((batch_size, self.unit_1), 0.5), jnp.full((batch_size, self.unit_2, self.unit_3), -0.25)]


def keras_nested_cell(keras, initial_value=(0.0, 0.0)):
    ops = keras.ops

    class KerasNestedCell(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.state_size = [U1, (U2, U3)]
            self.output_size = U1

        def build(self, input_shape):
            features = input_shape[-1]
            self.kernel_1 = self.add_weight(shape=(features, U1), initializer="uniform", name="kernel_1")
            self.kernel_2_3 = self.add_weight(shape=(features, U2, U3), initializer="uniform", name="kernel_2_3")

        def get_initial_state(self, batch_size=None):  # Keras 3 cannot make zeros of a (U2, U3) state
            return [ops.full((batch_size, U1), initial_value[0]), ops.full((batch_size, U2, U3), initial_value[1])]

        def call(self, inputs, states):
            s1, s2 = states
            output_1 = ops.matmul(inputs, self.kernel_1)
            output_2_3 = ops.einsum("bi,ikl->bkl", inputs, self.kernel_2_3)
            output = ops.tanh(s1 + output_1 + ops.sum(s2, axis=(1, 2))[:, None])
            return output, [output, ops.tanh(s2 + output_2_3)]

    return KerasNestedCell()


rng = np.random.default_rng(0)
X = rng.normal(size=(3, 5, 6)).astype("float32")
# No first step is masked: there Keras's two loops disagree (the unrolled one outputs zeros, the
# scanned one the initial state; lamina follows the scanned one).
MASK = np.array([[1, 1, 0, 1, 0], [1, 1, 1, 1, 1], [1, 0, 1, 0, 0]], bool)
INITIAL = [rng.normal(size=(3, U1)).astype("float32"), rng.normal(size=(3, U2, U3)).astype("float32")]


def _pair(keras, ours_kwargs=None, cell=NestedCell, initial_value=(0.0, 0.0), **kwargs):
    theirs = keras.layers.RNN(keras_nested_cell(keras, initial_value), **kwargs)
    theirs(X)
    ours = lm.layers.RNN(cell(), **kwargs, **(ours_kwargs or {}))
    ours(X)
    ours.set_weights(theirs.get_weights())
    return ours, theirs


def _assert_same(ours, theirs):
    ours = ours if isinstance(ours, (list, tuple)) else [ours]
    theirs = theirs if isinstance(theirs, (list, tuple)) else [theirs]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", [
    {}, {"return_state": True}, {"return_sequences": True, "return_state": True},
    {"return_sequences": True, "go_backwards": True, "return_state": True},
], ids=["last", "state", "sequences", "backwards"])
def test_multi_dimensional_states_match_keras(keras, kwargs):
    ours, theirs = _pair(keras, **kwargs)
    _assert_same(ours(X), theirs(X))
    if kwargs.get("return_state"):
        assert ours(X)[2].shape == (3, U2, U3)


def test_initial_state_with_a_multi_dimensional_state_matches_keras(keras):
    ours, theirs = _pair(keras, return_state=True, return_sequences=True)
    _assert_same(ours(X, initial_state=INITIAL), theirs(X, initial_state=INITIAL))


@pytest.mark.parametrize("unroll", [False, True])
def test_masked_steps_keep_whole_multi_dimensional_states_as_keras(keras, unroll):
    # Keras's unrolled loop is the reference: its lax.scan loop broadcasts the (batch, 1) step mask
    # against the trailing axes of a (batch, U2, U3) state (an error, or wrong numbers when the
    # batch size equals U2).
    theirs = keras.layers.RNN(keras_nested_cell(keras), return_state=True, return_sequences=True, unroll=True)
    theirs(X)
    ours = lm.layers.RNN(NestedCell(), return_state=True, return_sequences=True, unroll=unroll)
    ours(X)
    ours.set_weights(theirs.get_weights())
    _assert_same(ours(X, mask=MASK, initial_state=INITIAL), theirs(X, mask=MASK, initial_state=INITIAL))


def test_zero_output_for_mask_zeroes_masked_outputs_and_keeps_states():
    # Keras's unrolled loop ignores zero_output_for_mask and its scanned one fails on these states,
    # so the reference is the run without it.
    plain = lm.layers.RNN(NestedCell(), return_state=True, return_sequences=True)
    zeroed = lm.layers.RNN(NestedCell(), return_state=True, return_sequences=True, zero_output_for_mask=True)
    plain(X)
    zeroed(X)
    zeroed.set_weights(plain.get_weights())
    expected, got = plain(X, mask=MASK), zeroed(X, mask=MASK)
    np.testing.assert_allclose(np.asarray(got[0]), np.where(MASK[..., None], np.asarray(expected[0]), 0.0), rtol=1e-6)
    for a, b in zip(got[1:], expected[1:]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


def test_get_initial_state_makes_zeros_of_each_state_shape():
    layer = lm.layers.RNN(NestedCell())
    states = layer.get_initial_state(4)
    assert [s.shape for s in states] == [(4, U1), (4, U2, U3)]
    assert all(not np.asarray(s).any() for s in states)


def test_a_cell_get_initial_state_is_used_as_keras_uses_it(keras):
    ours, theirs = _pair(keras, cell=NestedCellWithInitialState, initial_value=(0.5, -0.25), return_state=True)
    assert [np.asarray(s).tolist() for s in ours.get_initial_state(2)] == [
        np.asarray(s).tolist() for s in theirs.get_initial_state(2)]
    _assert_same(ours(X), theirs(X))


def test_compute_output_shape_has_each_state_shape():
    layer = lm.layers.RNN(NestedCell(), return_state=True, return_sequences=True)
    assert layer.compute_output_shape((None, 5, 6)) == ((None, 5, U1), (None, U1), (None, U2, U3))


def test_rnn_with_a_multi_dimensional_state_passes_the_checker(keras):
    check_layer(lambda: lm.layers.RNN(NestedCell(), return_state=True, return_sequences=True),
                lambda k: k.layers.RNN(keras_nested_cell(k), return_state=True, return_sequences=True),
                inputs=X, call_kwargs={"initial_state": INITIAL}, keras=keras)


def test_stateful_rnn_carries_multi_dimensional_states_like_keras(keras):
    ours, theirs = _pair(keras, stateful=True, return_state=True)
    ours.reset_state()  # building ran a batch through each, with different weights
    theirs.reset_state()
    for _ in range(2):
        _assert_same(ours(X), theirs(X))
    assert [tuple(v.shape) for v in ours.states] == [(3, U1), (3, U2, U3)]
    ours.reset_state()
    theirs.reset_state()
    _assert_same(ours(X), theirs(X))


def test_bad_state_sizes_and_initial_states_are_refused_with_the_layer_name():
    class BadCell(NestedCell):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.state_size = [3, (2, "4")]

    with pytest.raises(ValueError, match=r"must have a `state_size`.*\[4, \(2, 3\)\].*got state_size=\[3, \(2, '4'\)\]"):
        lm.layers.RNN(BadCell())

    class StackedSizes(NestedCell):  # Keras's nested list: the states of stacked cells, taken
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.state_size = [[3, 3], [2, (2, "4")]]

    with pytest.raises(ValueError, match=r"or a list of those: a stacked cell's states"):
        lm.layers.RNN(StackedSizes())
    layer = lm.layers.RNN(NestedCell(), name="nested_rnn")
    with pytest.raises(ValueError, match=r"RNN 'nested_rnn': initial state 1 has shape \(3, 4, 2\); expected "
                                         r"\(3, 2, 4\)"):
        layer(X, initial_state=[INITIAL[0], INITIAL[1].transpose(0, 2, 1)])


# --- the guide's structured inputs and outputs (Keras 3's RNN refuses them) ----------------------

@lm.saving.register_serializable(package="test_rnn_nested")
class GuideNestedCell(lm.Layer):
    """guides/working_with_rnns.py's NestedCell: two input sequences, two outputs, two states."""

    def __init__(self, unit_1, unit_2, unit_3, **kwargs):
        super().__init__(**kwargs)
        self.unit_1, self.unit_2, self.unit_3 = unit_1, unit_2, unit_3
        self.state_size = [(unit_1,), (unit_2, unit_3)]
        self.output_size = [(unit_1,), (unit_2, unit_3)]

    def build(self, input_shapes):
        i1, (i2, i3) = input_shapes[0][1], input_shapes[1][1:]
        self.kernel_1 = self.add_weight(shape=(i1, self.unit_1), initializer="uniform", name="kernel_1")
        self.kernel_2_3 = self.add_weight(shape=(i2, i3, self.unit_2, self.unit_3), initializer="uniform",
                                          name="kernel_2_3")

    def call(self, inputs, states):
        input_1, input_2 = inputs
        s1, s2 = states
        output_1 = jnp.matmul(input_1, self.kernel_1)
        output_2_3 = jnp.einsum("bij,ijkl->bkl", input_2, self.kernel_2_3)
        return (output_1, output_2_3), (s1 + output_1, s2 + output_2_3)

    def get_config(self):
        return {**super().get_config(), "unit_1": self.unit_1, "unit_2": self.unit_2, "unit_3": self.unit_3}


def _guide_data(batch=4, steps=3):
    data = np.random.default_rng(1)
    return data.random((batch, steps, 5)).astype("float32"), data.random((batch, steps, 2, 3)).astype("float32")


def _numpy_guide_loop(cell, x1, x2, mask=None):
    k1, k23 = np.asarray(cell.kernel_1), np.asarray(cell.kernel_2_3)
    s1, s2 = np.zeros((x1.shape[0], cell.unit_1)), np.zeros((x1.shape[0], cell.unit_2, cell.unit_3))
    out1, out2 = np.zeros_like(s1), np.zeros_like(s2)
    for t in range(x1.shape[1]):
        o1, o2 = x1[:, t] @ k1, np.einsum("bij,ijkl->bkl", x2[:, t], k23)
        keep = np.ones(x1.shape[0], bool) if mask is None else mask[:, t]
        out1 = np.where(keep[:, None], o1, out1)
        out2 = np.where(keep[:, None, None], o2, out2)
        s1 = np.where(keep[:, None], s1 + o1, s1)
        s2 = np.where(keep[:, None, None], s2 + o2, s2)
    return out1, out2, s1, s2


@pytest.mark.parametrize("masked", [False, True])
def test_guide_nested_inputs_and_outputs_match_a_numpy_loop(masked):
    x1, x2 = _guide_data()
    mask = np.array([[1, 0, 1], [1, 1, 1], [0, 1, 0], [1, 1, 0]], bool) if masked else None
    cell = GuideNestedCell(2, 3, 4)
    layer = lm.layers.RNN(cell, return_state=True)
    output, s1, s2 = layer((x1, x2), mask=mask)
    expected = _numpy_guide_loop(cell, x1, x2, mask)
    for got, want in zip((*output, s1, s2), expected):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)


def test_guide_nested_rnn_model_builds_and_trains():
    x1, x2 = _guide_data(batch=8)
    cell = GuideNestedCell(2, 3, 4)
    input_1, input_2 = lm.Input((None, 5)), lm.Input((None, 2, 3))
    outputs = lm.layers.RNN(cell)((input_1, input_2))
    model = lm.Model([input_1, input_2], outputs)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 2), (None, 3, 4)]
    model.compile(optimizer="adam", loss="mse")
    targets = [np.random.default_rng(2).random((8, 2)), np.random.default_rng(3).random((8, 3, 4))]
    history = model.fit([x1, x2], targets, batch_size=4, epochs=2, verbose=0).history["loss"]
    assert len(history) == 2 and np.isfinite(history).all()


def test_builtin_cells_refuse_structured_inputs():
    with pytest.raises(ValueError, match="takes one sequence"):
        lm.layers.RNN(lm.layers.GRUCell(2))(_guide_data())


class ProjectingCell(lm.Layer):
    """A (batch, 2, 3) state and an output of another size: a masked step repeats the last output."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.state_size = [(2, 3)]
        self.output_size = 4

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 4), name="kernel")
        self.state_kernel = self.add_weight(shape=(input_shape[-1], 2, 3), name="state_kernel")

    def call(self, inputs, states):
        (state,) = states
        output = inputs @ self.kernel + jnp.sum(state, axis=(1, 2))[:, None]
        return output, [jnp.tanh(state + jnp.einsum("bi,ijk->bjk", inputs, self.state_kernel))]


def test_masked_trailing_steps_repeat_the_last_output_of_a_cell_whose_output_is_not_a_state():
    x = np.random.default_rng(4).normal(size=(2, 5, 3)).astype("float32")
    x[:, 3:] = 0.0
    layer = lm.layers.RNN(ProjectingCell(), return_state=True)
    short_output, short_state = layer(x[:, :3])
    model_input = lm.Input((5, 3))
    model = lm.Model(model_input, lm.layers.RNN(layer.cell, return_state=True)(lm.layers.Masking()(model_input)))
    for output, state in (model(x), lm.jit(model)(x)):
        np.testing.assert_allclose(np.asarray(output), np.asarray(short_output), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(state), np.asarray(short_state), rtol=1e-5, atol=1e-6)
