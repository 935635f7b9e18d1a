"""PyDatasets used by tests/data/test_pydataset.py, in a module of their own so that worker
processes (use_multiprocessing=True) can import them without importing the tests."""

import os

import numpy as np

import lamina as lm


class Ranges(lm.data.PyDataset):
    """Batch ``i`` is ``(x, y)`` with ``x = [[4i], ..., [4i + 3]]``; records the loading process."""

    def __init__(self, batches=6, **kwargs):
        super().__init__(**kwargs)
        self.batches = batches
        self.epoch = 0

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        x = np.arange(4 * index, 4 * index + 4, dtype="float32")[:, None] + 100 * self.epoch
        pid = np.full((4, 1), os.getpid(), dtype="int32")
        return x, pid

    def on_epoch_end(self):
        self.epoch += 1  # the workers of the next epoch must see it
