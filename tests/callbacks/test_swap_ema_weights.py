"""``SwapEMAWeights``: validation, evaluate and predict compute with the optimizer's moving
average of the weights and training goes on from the weights themselves; with
``swap_on_epoch`` later callbacks see the averages. The reference is a NumPy simulation of SGD
with Keras's moving average (``average = m * average + (1 - m) * w``, a copy at the first step)
on a linear model with the mean squared error."""

import numpy as np
import pytest

import lamina as lm

LR, MOMENTUM, BATCH = 0.1, 0.5, 8
_RNG = np.random.default_rng(11)
X = _RNG.normal(size=(16, 3)).astype("float32")
Y = _RNG.normal(size=(16, 2)).astype("float32")


def _model(optimizer=None):
    lm.random.set_seed(1)
    model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
    model.compile(optimizer or lm.optimizers.SGD(LR, use_ema=True, ema_momentum=MOMENTUM), "mse")
    return model


def _mse(w, b):
    return float(np.mean((X @ w + b - Y) ** 2))


def _reference(kernel, bias, epochs):
    """Per epoch: (mean training loss, weights, averages) after it, by NumPy."""
    w, b = kernel.astype("float64"), bias.astype("float64")
    aw, ab, step, out = np.zeros_like(w), np.zeros_like(b), 0, []
    for _ in range(epochs):
        losses = []
        for start in range(0, len(X), BATCH):
            x, y = X[start:start + BATCH], Y[start:start + BATCH]
            error = x @ w + b - y
            losses.append(np.mean(error ** 2))
            w = w - LR * 2 * x.T @ error / error.size
            b = b - LR * 2 * error.sum(0) / error.size
            m = MOMENTUM if step else 0.0
            aw, ab, step = m * aw + (1 - m) * w, m * ab + (1 - m) * b, step + 1
        out.append((np.mean(losses), (w, b), (aw, ab)))
    return out


def test_validation_uses_the_averages_and_training_the_weights():
    model = _model()
    kernel, bias = (np.asarray(v) for v in model.get_weights())
    history = model.fit(X, Y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, validation_data=(X, Y),
                        callbacks=[lm.callbacks.SwapEMAWeights()]).history
    reference = _reference(kernel, bias, 2)
    np.testing.assert_allclose(history["loss"], [r[0] for r in reference], rtol=1e-5)
    np.testing.assert_allclose(history["val_loss"], [_mse(*r[2]) for r in reference], rtol=1e-5)
    assert history["val_loss"][-1] != pytest.approx(_mse(*reference[-1][1]), rel=1e-3)  # not the weights'
    # fit ends by putting the averages into the weights (use_ema), with or without the callback
    np.testing.assert_allclose(model.get_weights()[0], reference[-1][2][0], rtol=1e-5)


def test_swap_on_epoch_shows_the_averages_to_later_callbacks():
    model = _model()
    kernel, bias = (np.asarray(v) for v in model.get_weights())
    seen = {"end": [], "begin": []}
    record = lm.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen["end"].append(np.asarray(model.get_weights()[0])),
        on_epoch_begin=lambda epoch, logs: seen["begin"].append(np.asarray(model.get_weights()[0])))
    stop = lm.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", epoch == 1))
    history = model.fit(X, Y, batch_size=BATCH, epochs=4, shuffle=False, verbose=0,
                        callbacks=[lm.callbacks.SwapEMAWeights(swap_on_epoch=True), record, stop]).history
    reference = _reference(kernel, bias, 2)
    np.testing.assert_allclose(history["loss"], [r[0] for r in reference], rtol=1e-5)  # trained from the weights
    for got, ref in zip(seen["end"], reference):
        np.testing.assert_allclose(got, ref[2][0], rtol=1e-5)  # the averages, at each epoch's end
    np.testing.assert_allclose(seen["begin"][1], reference[0][1][0], rtol=1e-5)  # the weights are back
    # stopped early after a swap: the model still ends with the averages
    np.testing.assert_allclose(model.get_weights()[0], reference[-1][2][0], rtol=1e-5)


def test_evaluate_and_predict_swap_in_and_back_through_a_loss_scale_optimizer():
    inner = lm.optimizers.SGD(LR, use_ema=True, ema_momentum=MOMENTUM)
    model = _model(lm.optimizers.LossScaleOptimizer(inner, initial_scale=1.0))
    callback = lm.callbacks.SwapEMAWeights()
    # Before any training step there is no average: the weights are used as they are.
    assert model.evaluate(X, Y, verbose=0, callbacks=[callback]) == pytest.approx(model.evaluate(X, Y, verbose=0))
    model.optimizer.apply([np.full((3, 2), 0.5, "float32"), np.ones(2, "float32")], model.trainable_weights)
    model.optimizer.apply([np.full((3, 2), -1.0, "float32"), np.ones(2, "float32")], model.trainable_weights)
    weights = [np.asarray(w) for w in model.get_weights()]
    averages = [np.asarray(a.value) for a in model.optimizer.inner_optimizer._averages]
    assert not np.allclose(weights[0], averages[0])
    loss = model.evaluate(X, Y, verbose=0, callbacks=[callback])
    assert loss == pytest.approx(_mse(*averages), rel=1e-5)
    predictions = model.predict(X, verbose=0, callbacks=[callback])
    np.testing.assert_allclose(predictions, X @ averages[0] + averages[1], rtol=1e-5, atol=1e-6)
    for got, want in zip(model.get_weights(), weights):  # back after each (Keras keeps them after predict)
        np.testing.assert_array_equal(got, want)


def test_an_optimizer_without_averages_is_refused():
    model = _model(lm.optimizers.SGD(LR))
    with pytest.raises(ValueError, match=r"SwapEMAWeights must be used when `use_ema=True` is set on the optimizer. "
                                         r"Received: use_ema=False \(SGD\)"):
        model.evaluate(X, Y, verbose=0, callbacks=[lm.callbacks.SwapEMAWeights()])
