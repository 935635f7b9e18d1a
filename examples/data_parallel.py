"""Data parallel training with ``lm.distribution``: scikit-learn's digits on 8 devices.

Without 8 accelerators, XLA can simulate them on the CPU: the flag below must be set before
JAX starts, so this script sets it first (it adds to ``XLA_FLAGS`` if you set other flags).
On a machine with several GPUs, drop it: ``DataParallel()`` takes every device it finds.

``set_distribution(DataParallel())`` is the one line that changes: the model is created with
its weights copied on every device, each batch of 64 is split into 8 slices of 8 rows, and XLA
compiles each step for the 8 devices, averaging the gradients, the BatchNorm statistics, the
loss and the metrics over the whole batch — so the numbers are those of one device. The last
batch of an epoch (which 8 does not divide) is computed whole on every device: nothing dropped.

    python examples/data_parallel.py [--epochs N] [--seed N]
"""

import argparse
import os

DEVICES = 8
_FLAG = f"--xla_force_host_platform_device_count={DEVICES}"
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):  # before JAX starts
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

import jax  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import lamina as lm  # noqa: E402


def load_data(seed: int):
    images, labels = load_digits(return_X_y=True)
    images = (images / 16.0).astype("float32")  # pixel intensities are 0..16
    return train_test_split(images, labels, test_size=0.2, random_state=seed, stratify=labels)


def main(epochs: int = 8, seed: int = 0, verbose: int = 1) -> float:
    """Train on every device and return the held-out accuracy."""
    lm.random.set_seed(seed)
    lm.distribution.set_distribution(lm.distribution.DataParallel())  # before the model is made
    x_train, x_test, y_train, y_test = load_data(seed)
    model = lm.Sequential([
        lm.Input((64,)),
        lm.layers.Dense(128, activation="relu"),
        lm.layers.BatchNormalization(momentum=0.9),  # statistics over the whole batch of 64
        lm.layers.Dense(10),
    ])
    model.compile(optimizer=lm.optimizers.Adam(learning_rate=2e-3),
                  loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    # batch_size is the global batch: 64 rows, 8 on each device.
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=verbose)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=64, verbose=0)
    predictions = model.predict(x_test, batch_size=64, verbose=0)  # every row, in order
    kernel = model.layers[0].kernel.value
    if verbose:
        print(f"devices: {len(jax.devices())}; a kernel is on {len(kernel.sharding.device_set)} of them, "
              f"whole on each: {kernel.sharding.is_fully_replicated}")
        print(f"predictions: {predictions.shape[0]} rows for {len(x_test)} images")
        print(f"held-out accuracy: {accuracy:.2%} (loss {loss:.4f}) on {len(x_test)} images")
    lm.distribution.set_distribution(None)
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(epochs=args.epochs, seed=args.seed)
