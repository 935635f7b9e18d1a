"""Bad input gets a clear error naming the layer (or argument), what was expected and what came,
instead of JAX's anonymous error or a silently wrong result (issue 10, item 10)."""

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm
from lamina.data import checks


def _classifier(classes=3, **compile_kwargs):
    model = lm.Sequential([lm.Input((2,)), lm.layers.Dense(classes, name="scores")], name="clf")
    compile_kwargs.setdefault("loss", "sparse_categorical_crossentropy")
    model.compile("sgd", **compile_kwargs)
    return model


X = np.linspace(-1, 1, 16, dtype="float32").reshape(8, 2)
LABELS = np.array([0, 1, 2, 1, 0, 2, 1, 0])


# --- strings, objects, complex numbers into a layer ---------------------------------------------

@pytest.mark.parametrize("bad", [
    np.array([["a", "b"]]),
    np.array([[1.0, 2.0]], dtype=object),
    [["a", "b"]],
], ids=["str-array", "object-array", "str-list"])
def test_non_numeric_input_names_the_layer_and_the_dtype(bad):
    outer = lm.Sequential([lm.layers.Dense(2, name="proj")], name="outer")
    with pytest.raises(ValueError, match=r"Layer 'outer' \(Sequential\) expects numeric input.*dtype (<U1|object)"):
        outer(bad)


def test_complex_input_is_refused_by_a_float_layer():
    dense = lm.layers.Dense(2, name="proj")
    with pytest.raises(ValueError, match=r"Layer 'proj' \(Dense\) computes in float32 .*complex input \(got dtype complex64\)"):
        dense(jnp.array([[1 + 2j, 3]], jnp.complex64))


def test_complex_input_to_predict_and_fit_is_refused_not_truncated():
    model = lm.Sequential([lm.Input((2,)), lm.layers.Dense(1)], name="reg")
    model.compile("sgd", "mse")
    x = X.astype(np.complex64) * (1 + 1j)
    with pytest.raises(ValueError, match=r"Layer 'reg'.*complex input"):
        model.predict(x, verbose=0)  # returned complex numbers before
    with pytest.raises(ValueError, match=r"Layer 'reg'.*complex input"):
        model.fit(x, np.zeros((8, 1)), verbose=0)  # trained on the real part before


def test_a_layer_without_autocast_still_takes_complex_input():
    magnitude = lm.layers.Lambda(jnp.abs, autocast=False)
    np.testing.assert_allclose(np.asarray(magnitude(jnp.array([3 + 4j]))), [5.0])


# --- batch sizes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0, -4, 2.5, True])
def test_fit_refuses_a_batch_size_that_is_not_a_positive_integer(bad):
    model = _classifier()
    with pytest.raises(ValueError, match=rf"fit\(batch_size={bad!r}\): `batch_size` must be a positive integer"):
        model.fit(X, LABELS, batch_size=bad, verbose=0)


def test_evaluate_predict_and_validation_refuse_batch_size_zero():
    model = _classifier()
    with pytest.raises(ValueError, match=r"evaluate\(batch_size=0\)"):
        model.evaluate(X, LABELS, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match=r"predict\(batch_size=0\)"):
        model.predict(X, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match=r"fit\(validation_batch_size=0\)"):
        model.fit(X, LABELS, validation_data=(X, LABELS), validation_batch_size=0, verbose=0)


def test_batch_size_none_still_means_32():
    model, sizes = _classifier(), []
    record = lm.callbacks.LambdaCallback(on_train_batch_begin=lambda batch, logs: sizes.append(batch))
    model.fit(np.zeros((40, 2), "float32"), np.zeros(40, int), batch_size=None, callbacks=[record], verbose=0)
    assert sizes == [0, 1]  # 40 samples in batches of 32


# --- sparse labels out of range ------------------------------------------------------------------

def test_fit_refuses_a_sparse_label_out_of_range_naming_loss_label_and_class_count():
    model = _classifier()
    labels = LABELS.copy()
    labels[5] = 7
    before = [w.numpy() for w in model.weights]
    with pytest.raises(ValueError, match=r"Label 7 at y\[5\] .*loss 'sparse_categorical_crossentropy'.*has 3 classes"):
        model.fit(X, labels, verbose=0)  # loss 0.0 on that sample before
    for old, w in zip(before, model.weights):
        np.testing.assert_array_equal(old, w.numpy())  # refused before any step
    with pytest.raises(ValueError, match=r"Label -1 at y\[0\]"):
        model.evaluate(X, LABELS - 1, verbose=0)
    with pytest.raises(ValueError, match=r"Label 3 at validation_data\[1\]\[2\]"):
        model.fit(X, LABELS, validation_data=(X, np.array([0, 1, 3, 0, 0, 0, 0, 0])), verbose=0)


def test_sparse_accuracy_metrics_check_labels_too():
    model = _classifier(loss="mse", metrics=[lm.metrics.SparseTopKCategoricalAccuracy(k=2)])
    with pytest.raises(ValueError, match=r"Label 4 at y\[1\] .*metric 'sparse_top_k_categorical_accuracy'.*3 classes"):
        model.evaluate(X, jnp.asarray([0, 4, 1, 1, 0, 2, 1, 0]), verbose=0)  # a JAX array is checked on its device


def test_the_label_check_names_the_output_of_a_multi_output_model():
    inputs = lm.Input((2,))
    model = lm.Model(inputs, {"kind": lm.layers.Dense(4)(inputs), "size": lm.layers.Dense(1)(inputs)})
    model.compile("sgd", loss={"kind": "sparse_categorical_crossentropy", "size": "mse"})
    y = {"kind": np.array([0, 1, 2, 3, 4, 0, 1, 2]), "size": np.zeros((8, 1))}
    with pytest.raises(ValueError, match=r"Label 4 at y\[4\] .*of output 'kind'.*4 classes"):
        model.fit(X, y, verbose=0)


def test_targets_of_the_wrong_shape_name_the_loss_the_output_and_both_shapes():
    inputs = lm.Input((2,))
    model = lm.Model(inputs, {"kind": lm.layers.Dense(3)(inputs), "size": lm.layers.Dense(2)(inputs)})
    model.compile("sgd", loss={"kind": "sparse_categorical_crossentropy", "size": "mse"})
    y = {"kind": LABELS, "size": np.zeros((8, 3))}  # JAX's own error: "sub got incompatible shapes"
    with pytest.raises(ValueError, match=r"loss 'mean_squared_error' of output 'size' got targets of shape "
                                         r"\(8, 3\) for predictions of shape \(8, 2\)"):
        model.evaluate(X, y, batch_size=8, verbose=0)
    y["size"] = np.zeros((8, 1))  # broadcasts against (8, 2), as in Keras: no error
    assert np.isfinite(model.evaluate(X, y, batch_size=8, verbose=0)[0])


def test_complex_targets_for_a_real_output_are_refused_not_truncated():
    model = lm.Sequential([lm.Input((2,)), lm.layers.Dense(1, name="out")])
    model.compile("sgd", loss="mse")
    with pytest.raises(ValueError, match=r"loss 'mean_squared_error' got complex targets \(dtype complex64\) for real predictions \(dtype float32\)"):
        model.fit(X, np.ones((8, 1), "complex64"), verbose=0)


def test_a_subclassed_model_is_checked_from_its_output_shape():
    class Net(lm.Model):
        def __init__(self):
            super().__init__()
            self.head = lm.layers.Dense(3)

        def call(self, x):
            return self.head(x)

    model = Net()
    model.compile("sgd", loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    with pytest.raises(ValueError, match=r"Label 3 at y\[7\] .*loss SparseCategoricalCrossentropy.*3 classes"):
        model.fit(X, np.array([0, 1, 2, 1, 0, 2, 1, 3]), verbose=0)


def test_ignore_class_labels_pass_and_in_range_labels_give_the_cross_entropy():
    model = _classifier(loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1))
    kernel = np.array([[0.5, -1.0, 0.25], [1.5, 0.0, -0.5]], "float32")
    model.set_weights([kernel, np.zeros(3, "float32")])
    labels = LABELS.copy()
    labels[3] = -1
    loss = model.evaluate(X, labels, verbose=0)
    logits = X @ kernel
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    kept = labels != -1
    expected = -log_probs[kept, labels[kept]].mean()
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_labels_are_checked_once_per_fit_not_per_step(monkeypatch):
    calls = []
    real = checks.check_class_labels
    monkeypatch.setattr("lamina.trainers.label_checks.check_class_labels",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    model = _classifier()
    model.fit(X, LABELS, batch_size=2, epochs=3, validation_data=(X, LABELS), verbose=0)
    assert len(calls) == 2  # the training targets and the validation targets


# --- Variable.assign_add / assign_sub ------------------------------------------------------------

@pytest.mark.parametrize("method", ["assign_add", "assign_sub"])
def test_assign_add_and_sub_with_a_wrong_shape_name_the_variable_and_both_shapes(method):
    layer = lm.layers.Dense(3, name="head")
    layer.build((None, 2))
    with pytest.raises(ValueError, match=rf"Cannot {method} a value of shape \(4,\) to variable 'head/kernel' of shape \(2, 3\)"):
        getattr(layer.kernel, method)(jnp.ones((4,)))
    with pytest.raises(ValueError, match=r"shape \(2, 2, 3\) to variable 'head/kernel' of shape \(2, 3\)"):
        getattr(layer.kernel, method)(np.ones((2, 2, 3)))


def test_assign_add_broadcasts_a_smaller_delta_as_keras_does(keras):
    mine = lm.Variable(np.ones((2, 3), "float32"), name="v")
    theirs = keras.Variable(np.ones((2, 3), "float32"))
    for delta in (np.array([1.0, 2.0, 3.0], "float32"), 0.5):
        mine.assign_add(delta)
        theirs.assign_add(delta)
    mine.assign_sub([[1.0], [2.0]])
    theirs.assign_sub(np.array([[1.0], [2.0]], "float32"))
    np.testing.assert_allclose(mine.numpy(), np.asarray(theirs))


def test_assign_add_with_a_wrong_shape_fails_inside_lm_jit_too():
    v = lm.Variable(jnp.zeros((2, 3)), name="acc")

    @lm.jit
    def step(delta):
        v.assign_add(delta)
        return v.value

    with pytest.raises(ValueError, match=r"variable 'acc' of shape \(2, 3\)"):
        step(jnp.ones((3, 2)))
    np.testing.assert_allclose(np.asarray(step(jnp.ones((3,)))), np.ones((2, 3)))


def test_bfloat16_input_is_numeric():
    """bfloat16 (an ml_dtypes float, NumPy kind 'V') is numeric input, not refused."""
    layer = lm.layers.Dense(2, dtype="bfloat16")
    assert layer(np.ones((1, 3), dtype=jnp.bfloat16)).dtype == jnp.bfloat16


def test_a_string_input_says_to_turn_text_into_integers_first():
    for dtype in ("string", str):
        with pytest.raises(TypeError, match=r"Input 'text': dtype .*cannot hold strings.*StringLookup"):
            lm.Input((1,), dtype=dtype, name="text")
