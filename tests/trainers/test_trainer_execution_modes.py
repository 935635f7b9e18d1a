"""The way steps execute does not change the numbers: eager vs compiled, one step per call
vs blocks of steps (``steps_per_execution``)."""

import numpy as np
import pytest

import lamina as lm


def _data(n, features=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x @ rng.normal(size=(features, 1)) + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def _model(initial_weights=None, **compile_kwargs):
    lm.random.set_seed(0)
    model = lm.Sequential([
        lm.layers.Dense(8, activation="tanh", input_shape=(4,)),
        lm.layers.Dense(1),
    ])
    if initial_weights is not None:
        model.set_weights(initial_weights)
    model.compile(lm.optimizers.Adam(0.01), "mse", metrics=[lm.metrics.MeanAbsoluteError()],
                  **compile_kwargs)
    return model


def _assert_same_weights(a, b, rtol=1e-5):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("eager_kwargs", [{"jit_compile": False}, {"run_eagerly": True}],
                         ids=["jit_compile_false", "run_eagerly"])
def test_eager_and_compiled_fit_give_the_same_weights(eager_kwargs):
    x, y = _data(20)  # 2 full batches of 8 and a partial one
    compiled = _model(steps_per_execution=1)
    eager = _model(compiled.get_weights(), **eager_kwargs)
    h_compiled = compiled.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    h_eager = eager.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    _assert_same_weights(compiled, eager)
    for key in ("loss", "mean_absolute_error"):
        np.testing.assert_allclose(h_compiled.history[key], h_eager.history[key], rtol=1e-5)


def test_eager_and_compiled_evaluate_and_predict_agree():
    x, y = _data(20)
    compiled = _model()
    eager = _model(compiled.get_weights(), run_eagerly=True)
    np.testing.assert_allclose(compiled.evaluate(x, y, batch_size=16, verbose=0),
                               eager.evaluate(x, y, batch_size=16, verbose=0), rtol=1e-5)
    np.testing.assert_allclose(compiled.predict(x, batch_size=16, verbose=0),
                               eager.predict(x, batch_size=16, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("steps_per_execution", [4])
def test_blocks_of_steps_give_the_same_weights_as_single_steps(steps_per_execution):
    # 70 samples in batches of 4: 17 full batches (not a multiple of 4) and a partial
    # batch of 2.
    x, y = _data(70)
    single = _model(steps_per_execution=1)
    blocked = _model(single.get_weights(), steps_per_execution=steps_per_execution)
    h_single = single.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    h_blocked = blocked.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    _assert_same_weights(single, blocked)
    np.testing.assert_allclose(h_single.history["loss"], h_blocked.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(h_single.history["mean_absolute_error"],
                               h_blocked.history["mean_absolute_error"], rtol=1e-5)
    assert int(blocked.optimizer.iterations.numpy()) == 2 * 18


def test_blocks_of_steps_in_evaluate_and_predict_keep_every_sample_in_order():
    x, y = _data(70)
    single = _model(steps_per_execution=1)
    blocked = _model(single.get_weights(), steps_per_execution=4)
    np.testing.assert_allclose(single.evaluate(x, y, batch_size=4, verbose=0),
                               blocked.evaluate(x, y, batch_size=4, verbose=0), rtol=1e-5)
    out_single = single.predict(x, batch_size=4, verbose=0)
    out_blocked = blocked.predict(x, batch_size=4, verbose=0)
    assert out_blocked.shape == (70, 1)
    np.testing.assert_allclose(out_blocked, out_single, rtol=1e-5, atol=1e-6)


def test_blocks_of_steps_with_shuffling_match_single_steps_with_the_same_seed():
    x, y = _data(40)
    single = _model(steps_per_execution=1)
    blocked = _model(single.get_weights(), steps_per_execution=4)
    lm.random.set_seed(7)
    single.fit(x, y, batch_size=4, epochs=2, shuffle=True, verbose=0)
    lm.random.set_seed(7)
    blocked.fit(x, y, batch_size=4, epochs=2, shuffle=True, verbose=0)
    _assert_same_weights(single, blocked)
