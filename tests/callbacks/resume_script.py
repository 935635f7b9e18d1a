"""A training run for the kill test in test_checkpoint_callbacks.py (run as a subprocess).

    python resume_script.py BACKUP_DIR OUT.safetensors [--hang-at EPOCH BATCH MARKER]

Trains a small model with Dropout, Adam and shuffled batches under
``BackupAndRestore(BACKUP_DIR, save_freq=SAVE_FREQ)`` and writes every variable (weights,
Dropout's seed state, optimizer state) to OUT with ``save_weights``. With ``--hang-at``, after
training batch BATCH of epoch EPOCH (0-based) it touches MARKER and sleeps, so that the test
can kill it there; the same callback runs (without sleeping) in every run, so all runs execute
the same steps.
"""

import os
import sys
import time

import numpy as np

import lamina as lm

EPOCHS = 3
BATCH_SIZE = 8
SAMPLES = 64  # 8 batches per epoch (all full: one compiled step program)
SAVE_FREQ = 3  # batches (counted across epochs)


class HangAt(lm.callbacks.Callback):
    """Touches ``marker`` and sleeps after batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch=-1, batch=-1, marker=None):
        super().__init__()
        self.at, self.marker, self.epoch = (epoch, batch), marker, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            with open(self.marker, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(120)  # the test kills the process during this sleep


def main(argv):
    backup_dir, out = argv[1], argv[2]
    hang = HangAt(int(argv[4]), int(argv[5]), argv[6]) if argv[3:4] == ["--hang-at"] else HangAt()

    lm.random.set_seed(1234)
    rng = np.random.RandomState(0)
    x = rng.normal(size=(SAMPLES, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1)) + 0.1 * rng.normal(size=(SAMPLES, 1))).astype("float32")
    model = lm.Sequential([
        lm.Input((6,)),
        lm.layers.Dense(16, activation="relu"),
        lm.layers.Dropout(0.25),
        lm.layers.Dense(1),
    ])
    model.compile(optimizer=lm.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    backup = lm.callbacks.BackupAndRestore(backup_dir, save_freq=SAVE_FREQ)
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=True, verbose=0,
              callbacks=[backup, hang])
    model.save_weights(out)


if __name__ == "__main__":
    main(sys.argv)
