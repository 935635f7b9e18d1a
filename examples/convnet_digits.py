"""Handwritten digits with a small convolutional network trained with ``fit``.

scikit-learn's ``load_digits`` (1797 8x8 images shipped with the package, no download) is
scaled to [0, 1], reshaped to 8x8 single-channel images and split; an ``lm.Sequential`` convnet
(two ``Conv2D`` layers with a ``MaxPooling2D`` between them, flattening, dropout and
a ``Dense`` classifier) is compiled with Adam and sparse cross-entropy on logits, trained with
``fit`` (validation each epoch) and evaluated on the held-out images.

    python examples/convnet_digits.py [--epochs N] [--seed N]
"""

import argparse

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import lamina as lm


def load_data(seed: int):
    """Train/test splits of (N, 8, 8, 1) float32 images in [0, 1] and integer labels."""
    images, labels = load_digits(return_X_y=True)
    images = (images / 16.0).astype("float32").reshape(-1, 8, 8, 1)  # pixel intensities are 0..16
    return train_test_split(images, labels, test_size=0.2, random_state=seed, stratify=labels)


def build_model() -> lm.Sequential:
    return lm.Sequential([
        lm.Input(shape=(8, 8, 1)),
        lm.layers.Conv2D(16, 3, activation="relu", padding="same"),   # (8, 8, 16)
        lm.layers.MaxPooling2D(2),                                    # (4, 4, 16)
        lm.layers.Conv2D(32, 3, activation="relu", padding="same"),   # (4, 4, 32)
        lm.layers.Flatten(),                                          # (512,)
        lm.layers.Dropout(0.2),
        lm.layers.Dense(10),                                          # logits
    ])


def main(epochs: int = 30, seed: int = 0, verbose: int = 1) -> float:
    """Train and return the held-out accuracy."""
    lm.random.set_seed(seed)
    x_train, x_test, y_train, y_test = load_data(seed)
    model = build_model()
    if verbose:
        model.summary()
    model.compile(
        optimizer=lm.optimizers.Adam(learning_rate=3e-3),
        loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.1,
              verbose=2 if verbose else 0)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    if verbose:
        print(f"held-out accuracy: {accuracy:.2%} (loss {loss:.4f}) on {len(x_test)} images")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    main(epochs=arguments.epochs, seed=arguments.seed)
