"""The merging layers' functional forms (lm.layers.add, concatenate, dot, ...) against Keras 3:
on arrays, inside a functional model built from lm.Input (the functional-API guide's
pattern), with the layer keyword arguments passed through."""

import numpy as np
import pytest

import lamina as lm

rng = np.random.default_rng(0)
A, B, C = (rng.normal(size=(2, 3, 4)).astype("float32") for _ in range(3))

CASES = {
    "add": ([A, B, C], {}), "subtract": ([A, B], {}), "multiply": ([A, B, C], {}), "average": ([A, B], {}),
    "maximum": ([A, B, C], {}), "minimum": ([A, B], {}), "concatenate": ([A, B], {"axis": 1}),
    "dot": ([A, B], {"axes": 2}), "dot_normalized": ([A, B], {"axes": (1, 1), "normalize": True}),
}


def _fn(module, case):
    return getattr(module.layers, case.split("_")[0])


@pytest.mark.parametrize("case", sorted(CASES))
def test_merge_function_on_arrays_matches_keras(keras, case):
    inputs, kwargs = CASES[case]
    ours = _fn(lm, case)(inputs, **kwargs)
    theirs = _fn(keras, case)(inputs, **kwargs)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_merge_function_builds_a_functional_model_like_keras(keras, case):
    inputs, kwargs = CASES[case]

    def model(module):
        symbols = [module.Input(shape=x.shape[1:]) for x in inputs]
        return module.Model(symbols, _fn(module, case)(symbols, name="merged", **kwargs))

    ours, theirs = model(lm), model(keras)
    assert ours.get_layer("merged").__class__.__name__ == theirs.get_layer("merged").__class__.__name__
    assert tuple(ours.output.shape) == tuple(theirs.output.shape)
    np.testing.assert_allclose(ours.predict(inputs, verbose=0), theirs.predict(inputs, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_dot_axes_default_is_the_last_axis_as_in_keras(keras):
    x, y = A[:, 0], B[:, 0]
    np.testing.assert_allclose(np.asarray(lm.layers.dot([x, y])), np.asarray(keras.layers.dot([x, y])), rtol=1e-5)


def test_merge_functions_pass_layer_arguments_and_make_a_new_layer_each_call():
    x = lm.Input(shape=(4,))
    first = lm.layers.add([x, x], name="sum_a")
    second = lm.layers.add([x, x])
    model = lm.Model(x, [first, second])
    names = [layer.name for layer in model.layers]
    assert "sum_a" in names and len({n for n in names if n.startswith("add") or n == "sum_a"}) == 2


def test_concatenate_of_a_masked_embedding_keeps_the_mask_as_in_keras(keras):
    tokens = np.array([[1, 2, 0], [3, 0, 0]])

    def run(module):
        embedded = module.layers.Embedding(5, 2, mask_zero=True)
        x = embedded(tokens)
        return module.layers.concatenate([x, x])

    ours, theirs = run(lm), run(keras)
    from keras.src.backend import get_keras_mask

    from lamina.layers.masking import get_mask

    np.testing.assert_array_equal(np.asarray(get_mask(ours)), np.asarray(get_keras_mask(theirs)))


def test_merge_function_refuses_a_single_tensor_with_the_layer_path():
    with pytest.raises(ValueError, match="add"):
        lm.layers.add(A)
