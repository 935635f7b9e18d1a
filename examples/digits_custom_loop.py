"""Handwritten digits with a small lamina MLP and a hand-written training loop.

scikit-learn's ``load_digits`` (1797 8x8 images, shipped with the package: no download) is
standardized and split; a subclassed ``lm.Layer`` holding two ``Dense`` layers and a
``Dropout`` is trained with SGD + momentum written by hand from ``lm.value_and_grad``,
``lm.Variable`` and ``assign``, compiled with ``lm.jit`` — the custom-loop counterpart of
``examples/digits.py``, which uses ``fit``.

Run it with ``python examples/digits_custom_loop.py`` (add ``--epochs N`` or ``--seed N`` to vary it).
"""

import argparse
import time

import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import lamina as lm

BATCH_SIZE = 32
LEARNING_RATE = 0.02
MOMENTUM = 0.9


class MLP(lm.Layer):
    """64 pixels -> 64 ReLU units -> dropout -> 10 logits."""

    def __init__(self, hidden=64, classes=10, dropout=0.1):
        super().__init__()
        self.hidden = lm.layers.Dense(hidden, activation="relu")
        self.dropout = lm.layers.Dropout(dropout)
        self.classifier = lm.layers.Dense(classes)

    def call(self, inputs, training=False):
        # `training` reaches Dropout through lamina's call context: no need to pass it on.
        x = self.hidden(inputs)
        x = self.dropout(x)
        return self.classifier(x)


def load_data(seed):
    """Standardized train/test arrays; the scaler sees only the training images."""
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.2, stratify=digits.target, random_state=seed
    )
    scaler = StandardScaler().fit(x_train)
    x_train = scaler.transform(x_train).astype(np.float32)
    x_test = scaler.transform(x_test).astype(np.float32)
    return x_train, x_test, y_train.astype(np.int32), y_test.astype(np.int32)


def make_train_step(model, learning_rate=LEARNING_RATE, momentum=MOMENTUM):
    """A compiled step: forward, backward, and an SGD-with-momentum update of every weight."""
    weights = model.trainable_weights
    # One velocity per weight. They are variables, so lm.jit threads them through XLA
    # and writes them back after each step, like the weights themselves.
    velocities = [lm.Variable(jnp.zeros(w.shape, w.dtype), trainable=False, name=f"velocity_{i}")
                  for i, w in enumerate(weights)]

    def loss_fn(x, y):
        logits = model(x, training=True)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    loss_and_grads = lm.value_and_grad(loss_fn, weights)

    @lm.jit
    def train_step(x, y):
        loss, grads = loss_and_grads(x, y)
        for w, v, g in zip(weights, velocities, grads):
            v.assign(momentum * v - learning_rate * g)
            w.assign_add(v)
        return loss

    return train_step


def accuracy(model, x, y):
    """Fraction of correct predictions (inference mode: dropout off)."""
    logits = model(x, training=False)
    return float(jnp.mean(jnp.argmax(logits, axis=-1) == y))


def main(epochs=30, verbose=True, seed=0) -> float:
    """Train for ``epochs`` epochs and return the held-out accuracy."""
    lm.random.set_seed(seed)
    rng = np.random.default_rng(seed)
    x_train, x_test, y_train, y_test = load_data(seed)

    model = MLP()
    model(x_train[:1])  # build now, so that trainable_weights exist for the step
    train_step = make_train_step(model)

    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))  # a new shuffle each epoch
        batch_losses = []
        for i in range(0, len(order), BATCH_SIZE):
            batch = order[i:i + BATCH_SIZE]
            batch_losses.append(train_step(x_train[batch], y_train[batch]))
        if verbose:
            # Losses stay on the device during the epoch; one sync per epoch to print.
            mean_loss = float(jnp.mean(jnp.stack(batch_losses)))
            print(f"epoch {epoch:3d}/{epochs}  loss {mean_loss:.4f}")

    test_accuracy = accuracy(model, x_test, y_test)
    if verbose:
        print(f"test accuracy {test_accuracy:.2%} ({len(x_test)} held-out images, "
              f"{time.perf_counter() - start:.1f} s of training)")
    return test_accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(epochs=args.epochs, seed=args.seed)
