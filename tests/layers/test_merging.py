"""Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate and Dot against Keras 3
through the layer checker, plus masks (as Keras merges them) and shape errors that name the
layer's path."""

import jax.numpy as jnp
import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm
from lamina.layers.core.embedding import Embedding
from lamina.layers.masking import get_mask, set_mask
from lamina.layers.merging import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract


def _inputs(*shapes):
    return [random_input(shape, seed=i) for i, shape in enumerate(shapes)]


ELEMENTWISE_CASES = [
    # (lamina class, Keras name, input shapes)
    (Add, "Add", [(2, 3, 4), (2, 3, 4), (2, 3, 4)]),
    (Add, "Add", [(2, 4), (2, 3, 4)]),  # lower rank: axes inserted after the batch axis
    (Subtract, "Subtract", [(2, 3, 4), (2, 3, 4)]),
    (Multiply, "Multiply", [(2, 3, 4), (2, 1, 4)]),  # broadcasting a size-1 axis
    (Average, "Average", [(2, 3, 4), (2, 3, 4), (2, 3, 4)]),
    (Maximum, "Maximum", [(2, 3, 4), (2, 3, 4)]),
    (Minimum, "Minimum", [(2, 3, 4), (2, 3, 4), (2, 3, 4)]),
]


@pytest.mark.parametrize("cls, keras_name, shapes", ELEMENTWISE_CASES)
def test_elementwise_merges_pass_the_checker(keras, cls, keras_name, shapes):
    check_layer(cls, lambda k: getattr(k.layers, keras_name)(), inputs=_inputs(*shapes), keras=keras)


@pytest.mark.parametrize("axis, shapes", [(-1, [(2, 3, 4), (2, 3, 2)]), (1, [(2, 3, 4), (2, 1, 4), (2, 2, 4)])])
def test_concatenate_passes_the_checker(keras, axis, shapes):
    check_layer(lambda: Concatenate(axis=axis), lambda k: k.layers.Concatenate(axis=axis),
                inputs=_inputs(*shapes), keras=keras)


@pytest.mark.parametrize("axes, normalize, shapes", [
    (-1, False, [(2, 4), (2, 4)]),  # rank-1 result becomes (batch, 1)
    ((2, 2), True, [(2, 3, 4), (2, 2, 4)]),
    (1, False, [(2, 3), (2, 3, 4)]),
])
def test_dot_passes_the_checker(keras, axes, normalize, shapes):
    check_layer(lambda: Dot(axes=axes, normalize=normalize), lambda k: k.layers.Dot(axes=axes, normalize=normalize),
                inputs=_inputs(*shapes), keras=keras)


def test_compute_output_shapes():
    assert Add().compute_output_shape([(None, 3, 4), (None, 1, 4)]) == (None, 3, 4)
    assert Concatenate(axis=1).compute_output_shape([(None, 3, 4), (None, 2, 4)]) == (None, 5, 4)
    assert Concatenate().compute_output_shape([(None, None, 4), (None, 2, 4)]) == (None, 2, 8)
    assert Dot(axes=(1, 2)).compute_output_shape([(None, 3, 4), (None, 2, 3)]) == (None, 4, 2)
    assert Dot(axes=1).compute_output_shape([(None, 3), (None, 3)]) == (None, 1)


# --- shape errors name the layer's path --------------------------------------------------------

class Block(lm.Layer):
    def __init__(self, merge):
        super().__init__(name="block")
        self.merge = merge

    def call(self, inputs):
        return self.merge(inputs)


@pytest.mark.parametrize("merge, shapes", [
    (Add(), [(2, 3), (2, 4)]),
    (Multiply(), [(2, 3), (3, 3)]),  # batch sizes differ
    (Subtract(), [(2, 3), (2, 3), (2, 3)]),
    (Concatenate(axis=-1), [(2, 3, 4), (2, 2, 4)]),
    (Dot(axes=1), [(2, 3), (2, 4)]),
])
def test_mismatched_shapes_raise_a_value_error_naming_the_layer_path(merge, shapes):
    block = Block(merge)
    with pytest.raises(ValueError, match="'block/merge'") as info:
        block([jnp.ones(s) for s in shapes])
    assert str(shapes[1]) in str(info.value) or str(shapes[-1]) in str(info.value)


def test_shapes_are_checked_again_on_later_calls():
    block = Block(Maximum())
    block([jnp.ones((2, 3)), jnp.ones((2, 3))])
    with pytest.raises(ValueError, match=r"'block/merge'.*incompatible"):
        block([jnp.ones((2, 3)), jnp.ones((2, 5))])
    with pytest.raises(ValueError, match="list of inputs"):
        Add()(jnp.ones((2, 3)))


# --- masks -------------------------------------------------------------------------------------

MASK_A = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], bool)
MASK_B = np.array([[1, 0, 0, 1], [0, 0, 0, 1]], bool)
IDS_A, IDS_B = MASK_A.astype(np.int32) * 2, MASK_B.astype(np.int32) * 3  # 0 where masked


BOTH_MASKED, ONE_MASKED = (MASK_A, MASK_B), (MASK_A, None)
MASK_CASES = [
    ("Add", {}, BOTH_MASKED), ("Subtract", {}, BOTH_MASKED), ("Multiply", {}, BOTH_MASKED),
    ("Average", {}, BOTH_MASKED), ("Maximum", {}, BOTH_MASKED), ("Minimum", {}, BOTH_MASKED),
    ("Concatenate", {"axis": 1}, BOTH_MASKED), ("Concatenate", {"axis": -1}, BOTH_MASKED),
    ("Dot", {"axes": 2}, BOTH_MASKED),
    # one input without a mask: no output mask (Concatenate: unmasked elements count as kept)
    ("Add", {}, ONE_MASKED), ("Multiply", {}, ONE_MASKED), ("Maximum", {}, ONE_MASKED),
    ("Concatenate", {"axis": -1}, ONE_MASKED),
]


@pytest.mark.parametrize("name, kwargs, masks", MASK_CASES)
def test_masks_merge_as_in_keras(keras, name, kwargs, masks):
    """Masks attached to the inputs (as Embedding(mask_zero=True) leaves them): the checker
    compares outputs, gradients and the output mask with Keras's (OR of the masks when every
    input has one, else none; Concatenate: per position, whether any element is unmasked)."""
    import lamina.layers.merging as merging

    check_layer(lambda: getattr(merging, name)(**kwargs), lambda k: getattr(k.layers, name)(**kwargs),
                inputs=_inputs((2, 4, 3), (2, 4, 3)), input_masks={0: list(masks)}, keras=keras)


def test_no_mask_when_one_input_has_none():
    masked = jnp.ones((2, 4, 3))
    set_mask(masked, jnp.asarray(MASK_A))
    assert get_mask(Add()([masked, jnp.ones((2, 4, 3))])) is None
    concatenated = Concatenate(axis=1)([masked, jnp.ones((2, 1, 3))])
    np.testing.assert_array_equal(np.asarray(get_mask(concatenated)),
                                  np.concatenate([MASK_A, np.ones((2, 1), bool)], axis=1))


def test_masks_flow_inside_jit():
    embed_a, embed_b = Embedding(4, 3, mask_zero=True), Embedding(4, 3, mask_zero=True)
    add = Add()
    seen = []

    class Recorder(lm.Layer):
        def call(self, inputs, mask=None):
            seen.append(mask)
            return inputs

    recorder = Recorder()
    step = lm.jit(lambda a, b: recorder(add([embed_a(a), embed_b(b)])))
    step(jnp.asarray(IDS_A), jnp.asarray(IDS_B))
    assert seen[-1] is not None and seen[-1].shape == IDS_A.shape


def test_configs_round_trip():
    for layer in (Add(), Concatenate(axis=1), Dot(axes=(1, 2), normalize=True)):
        config = layer.get_config()
        assert type(layer).from_config(config).get_config() == config
    assert Dot(axes=(1, 2)).get_config()["axes"] == [1, 2]
