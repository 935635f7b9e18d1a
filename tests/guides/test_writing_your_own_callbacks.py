"""Port of the Keras 3 guide "Writing your own callbacks"
(keras-team/keras-io, guides/keras_core/writing_your_own_callbacks.py).

Translation: ``keras`` -> ``lm``; MNIST -> scikit-learn's digits (64 features instead of 784;
the first 1000 samples train, the other 797 test); ``np.Inf`` -> ``np.inf`` (NumPy 2 removed
the alias; the guide's code fails there on Keras too). The callbacks print, as in the guide;
the tests capture what they print and compare it with what the same code prints on Keras 3
(the hooks called, in order, and the log keys each one gets; the losses where the weights
and batches are the same).

No section is left out ("Usage of self.model" and "Built-in Keras callbacks" hold no code).
"""

import re

import numpy as np
import pytest
from sklearn.datasets import load_digits

import lamina as lm


@pytest.fixture(scope="module")
def K():
    import keras

    return keras


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x = x.astype("float32") / 16.0
    # Limit the data to 1000 samples
    return x[:1000], y[:1000], x[1000:], y[1000:]


# Define the model to add callbacks to
def get_model(k):
    model = k.Sequential()
    model.add(k.layers.Dense(1))
    model.compile(
        optimizer=k.optimizers.RMSprop(learning_rate=0.1),
        loss="mean_squared_error",
        metrics=["mean_absolute_error"],
    )
    return model


def custom_callback_class(k):
    """The guide's ``CustomCallback`` (every hook prints the keys of its logs)."""

    class CustomCallback(k.callbacks.Callback):
        def on_train_begin(self, logs=None):
            keys = list(logs.keys())
            print(f"Starting training; got log keys: {keys}")

        def on_train_end(self, logs=None):
            keys = list(logs.keys())
            print(f"Stop training; got log keys: {keys}")

        def on_epoch_begin(self, epoch, logs=None):
            keys = list(logs.keys())
            print(f"Start epoch {epoch} of training; got log keys: {keys}")

        def on_epoch_end(self, epoch, logs=None):
            keys = list(logs.keys())
            print(f"End epoch {epoch} of training; got log keys: {keys}")

        def on_test_begin(self, logs=None):
            keys = list(logs.keys())
            print(f"Start testing; got log keys: {keys}")

        def on_test_end(self, logs=None):
            keys = list(logs.keys())
            print(f"Stop testing; got log keys: {keys}")

        def on_predict_begin(self, logs=None):
            keys = list(logs.keys())
            print(f"Start predicting; got log keys: {keys}")

        def on_predict_end(self, logs=None):
            keys = list(logs.keys())
            print(f"Stop predicting; got log keys: {keys}")

        def on_train_batch_begin(self, batch, logs=None):
            keys = list(logs.keys())
            print(f"...Training: start of batch {batch}; got log keys: {keys}")

        def on_train_batch_end(self, batch, logs=None):
            keys = list(logs.keys())
            print(f"...Training: end of batch {batch}; got log keys: {keys}")

        def on_test_batch_begin(self, batch, logs=None):
            keys = list(logs.keys())
            print(f"...Evaluating: start of batch {batch}; got log keys: {keys}")

        def on_test_batch_end(self, batch, logs=None):
            keys = list(logs.keys())
            print(f"...Evaluating: end of batch {batch}; got log keys: {keys}")

        def on_predict_batch_begin(self, batch, logs=None):
            keys = list(logs.keys())
            print(f"...Predicting: start of batch {batch}; got log keys: {keys}")

        def on_predict_batch_end(self, batch, logs=None):
            keys = list(logs.keys())
            print(f"...Predicting: end of batch {batch}; got log keys: {keys}")

    return CustomCallback


def run_basic_example(k, digits):
    x_train, y_train, x_test, y_test = digits
    CustomCallback = custom_callback_class(k)
    model = get_model(k)
    model.fit(
        x_train,
        y_train,
        batch_size=128,
        epochs=1,
        verbose=0,
        validation_split=0.5,
        callbacks=[CustomCallback()],
    )
    res = model.evaluate(
        x_test, y_test, batch_size=128, verbose=0, callbacks=[CustomCallback()]
    )
    res = model.predict(x_test, batch_size=128, callbacks=[CustomCallback()], verbose=0)
    return res


def test_a_basic_example(digits, K, capsys):
    """## A basic example: every hook is called, in Keras's order, with Keras's log keys."""
    res = run_basic_example(lm, digits)
    ours = capsys.readouterr().out.splitlines()
    run_basic_example(K, digits)
    theirs = capsys.readouterr().out.splitlines()
    assert res.shape == (797, 1)
    assert ours == theirs


def loss_and_error_printing_class(k):
    class LossAndErrorPrintingCallback(k.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            print(
                "Up to batch {}, the average loss is {:7.2f}.".format(batch, logs["loss"])
            )

        def on_test_batch_end(self, batch, logs=None):
            print(
                "Up to batch {}, the average loss is {:7.2f}.".format(batch, logs["loss"])
            )

        def on_epoch_end(self, epoch, logs=None):
            print(
                "The average loss for epoch {} is {:7.2f} "
                "and mean absolute error is {:7.2f}.".format(
                    epoch, logs["loss"], logs["mean_absolute_error"]
                )
            )

    return LossAndErrorPrintingCallback


def test_usage_of_logs_dict(digits, K, capsys):
    """### Usage of logs dict (running averages per batch, epoch averages)."""
    x_train, y_train, x_test, y_test = digits
    LossAndErrorPrintingCallback = loss_and_error_printing_class(lm)
    model = get_model(lm)
    history = model.fit(
        x_train,
        y_train,
        batch_size=128,
        epochs=2,
        verbose=0,
        callbacks=[LossAndErrorPrintingCallback()],
    )
    lines = capsys.readouterr().out.splitlines()
    # 8 batches per epoch, then the epoch line; the last running average is the epoch's loss.
    assert len(lines) == 18
    for epoch in range(2):
        batch_lines, epoch_line = lines[9 * epoch:9 * epoch + 8], lines[9 * epoch + 8]
        assert [int(re.search(r"batch (\d+)", line)[1]) for line in batch_lines] == list(range(8))
        assert epoch_line == "The average loss for epoch {} is {:7.2f} and mean absolute error is {:7.2f}.".format(
            epoch, history.history["loss"][epoch], history.history["mean_absolute_error"][epoch])
        assert batch_lines[-1].endswith("{:7.2f}.".format(history.history["loss"][epoch]))

    res = model.evaluate(
        x_test,
        y_test,
        batch_size=128,
        verbose=0,
        callbacks=[LossAndErrorPrintingCallback()],
    )
    ours = capsys.readouterr().out.splitlines()
    # Same weights in Keras: the same running averages, printed the same way.
    twin = get_model(K)
    twin(x_test[:1])
    twin.set_weights(model.get_weights())
    expected = twin.evaluate(x_test, y_test, batch_size=128, verbose=0,
                             callbacks=[loss_and_error_printing_class(K)()])
    theirs = capsys.readouterr().out.splitlines()
    assert ours == theirs
    assert res == pytest.approx(expected, rel=1e-5)


class EarlyStoppingAtMinLoss(lm.callbacks.Callback):
    """Stop training when the loss is at its min, i.e. the loss stops decreasing.

    Arguments:
        patience: Number of epochs to wait after min has been hit. After this
        number of no improvement, training stops.
    """

    def __init__(self, patience=0):
        super().__init__()
        self.patience = patience
        # best_weights to store the weights at which the minimum loss occurs.
        self.best_weights = None

    def on_train_begin(self, logs=None):
        # The number of epoch it has waited when loss is no longer minimum.
        self.wait = 0
        # The epoch the training stops at.
        self.stopped_epoch = 0
        # Initialize the best as infinity.
        self.best = np.inf

    def on_epoch_end(self, epoch, logs=None):
        current = logs.get("loss")
        if np.less(current, self.best):
            self.best = current
            self.wait = 0
            # Record the best weights if current results is better (less).
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                self.model.stop_training = True
                print("Restoring model weights from the end of the best epoch.")
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")


def test_early_stopping_at_minimum_loss(digits, capsys):
    """### Early stopping at minimum loss (``self.model.stop_training``, get/set_weights)."""
    x_train, y_train, _, _ = digits
    LossAndErrorPrintingCallback = loss_and_error_printing_class(lm)
    stopper = EarlyStoppingAtMinLoss()
    model = get_model(lm)
    history = model.fit(
        x_train,
        y_train,
        batch_size=64,
        epochs=30,
        verbose=0,
        callbacks=[LossAndErrorPrintingCallback(), stopper],
    )
    printed = capsys.readouterr().out
    losses = history.history["loss"]
    # RMSprop(0.1) on this regression plateaus within 30 epochs: training stopped at the
    # first epoch whose loss was not a new minimum, and the best weights are back.
    assert stopper.stopped_epoch > 0
    assert len(losses) == stopper.stopped_epoch + 1
    assert losses[-1] >= min(losses[:-1]) and all(b < a for a, b in zip(losses[:-2], losses[1:-1]))
    assert f"Epoch {stopper.stopped_epoch + 1}: early stopping" in printed
    for now, best in zip(model.get_weights(), stopper.best_weights):
        np.testing.assert_array_equal(now, best)
    # The restored weights are the ones the model uses.
    kernel, bias = stopper.best_weights
    np.testing.assert_allclose(model.predict(x_train[:5], verbose=0), x_train[:5] @ kernel + bias, rtol=1e-5)


class CustomLearningRateScheduler(lm.callbacks.Callback):
    """Learning rate scheduler which sets the learning rate according to schedule.

    Arguments:
        schedule: a function that takes an epoch index
            (integer, indexed from 0) and current learning rate
            as inputs and returns a new learning rate as output (float).
    """

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        if not hasattr(self.model.optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        # Get the current learning rate from model's optimizer.
        lr = self.model.optimizer.learning_rate
        # Call schedule function to get the scheduled learning rate.
        scheduled_lr = self.schedule(epoch, lr)
        # Set the value back to the optimizer before this epoch starts
        self.model.optimizer.learning_rate = scheduled_lr
        print(f"\nEpoch {epoch}: Learning rate is {float(np.array(scheduled_lr))}.")


LR_SCHEDULE = [
    # (epoch to start, learning rate) tuples
    (3, 0.05),
    (6, 0.01),
    (9, 0.005),
    (12, 0.001),
]


def lr_schedule(epoch, lr):
    """Helper function to retrieve the scheduled learning rate based on epoch."""
    if epoch < LR_SCHEDULE[0][0] or epoch > LR_SCHEDULE[-1][0]:
        return lr
    for i in range(len(LR_SCHEDULE)):
        if epoch == LR_SCHEDULE[i][0]:
            return LR_SCHEDULE[i][1]
    return lr


def test_learning_rate_scheduling(digits, capsys):
    """### Learning rate scheduling (a callback assigning ``optimizer.learning_rate``)."""
    x_train, y_train, _, _ = digits
    LossAndErrorPrintingCallback = loss_and_error_printing_class(lm)
    model = get_model(lm)
    model.fit(
        x_train,
        y_train,
        batch_size=64,
        epochs=15,
        verbose=0,
        callbacks=[
            LossAndErrorPrintingCallback(),
            CustomLearningRateScheduler(lr_schedule),
        ],
    )
    printed = capsys.readouterr().out
    rates = [float(m) for m in re.findall(r"Learning rate is ([0-9.e-]+)\.\n", printed)]
    expected = [0.1] * 3 + [0.05] * 3 + [0.01] * 3 + [0.005] * 3 + [0.001] * 3
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001, rel=1e-6)

    # The rate a callback sets is the one the next steps use: at 0 the weights stay put.
    model = get_model(lm)
    snapshots = []
    keep = lm.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(model.get_weights()))
    model.fit(x_train, y_train, batch_size=64, epochs=3, verbose=0,
              callbacks=[CustomLearningRateScheduler(lambda epoch, lr: 0.1 if epoch == 0 else 0.0), keep])
    for before, after in zip(snapshots[0], snapshots[2]):
        np.testing.assert_array_equal(before, after)
