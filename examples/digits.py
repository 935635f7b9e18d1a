"""``make demo``: handwritten digits, a small lamina model trained with ``fit``.

scikit-learn's ``load_digits`` (1797 8x8 images shipped with the package, no download) is
scaled and split; an ``lm.Sequential`` MLP is compiled with Adam and sparse cross-entropy and
trained with ``fit`` — progress bar, validation each epoch, early stopping — then evaluated
on the held-out images, saved to one ``.lamina`` file and loaded back (the loaded model
scores the same). The training curves (loss and accuracy per epoch, training against
validation) are drawn with ``lm.utils.plot_history`` to a PNG, ``digits_curves.png`` in the
current directory unless ``--curves`` says otherwise.

    python examples/digits.py [--epochs N] [--seed N] [--curves PATH]
"""

import argparse
import os
import tempfile

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import lamina as lm


def load_data(seed: int):
    images, labels = load_digits(return_X_y=True)
    images = (images / 16.0).astype("float32")  # pixel intensities are 0..16
    return train_test_split(images, labels, test_size=0.2, random_state=seed, stratify=labels)


def build_model() -> lm.Sequential:
    return lm.Sequential([
        lm.layers.Dense(128, activation="relu", input_shape=(64,)),
        lm.layers.Dropout(0.2),
        lm.layers.Dense(64, activation="relu"),
        lm.layers.Dense(10),
    ])


def main(epochs: int = 40, seed: int = 0, verbose: int = 1, curves: str | None = None) -> float:
    """Train and return the held-out accuracy; with ``curves``, draw the training curves there."""
    lm.random.set_seed(seed)
    x_train, x_test, y_train, y_test = load_data(seed)
    model = build_model()
    model.compile(
        optimizer=lm.optimizers.Adam(learning_rate=2e-3),
        loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.1, verbose=verbose,
        callbacks=[lm.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)],
    )
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    if verbose:
        print(f"held-out accuracy: {accuracy:.2%} (loss {loss:.4f}) on {len(x_test)} images")
    if curves is not None:
        lm.utils.plot_history(history, to_file=curves)
        if verbose:
            print(f"training curves drawn to {curves}")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "digits.lamina")
        model.save(path)  # architecture, weights, optimizer state and compile() arguments
        _, reloaded_accuracy = lm.load_model(path).evaluate(x_test, y_test, verbose=0)
        if verbose:
            print(f"saved to a {os.path.getsize(path) / 1024:.0f} KiB .lamina file; reloaded, "
                  f"it scores {reloaded_accuracy:.2%}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--curves", default="digits_curves.png", help="PNG for the training curves")
    arguments = parser.parse_args()
    main(epochs=arguments.epochs, seed=arguments.seed, curves=arguments.curves)
