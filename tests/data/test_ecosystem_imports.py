"""No other library is imported unless the user's data comes from it; PyDataset with workers
gives the numbers of arrays."""

import subprocess
import sys

import numpy as np

import lamina as lm
from tests.data.ecosystem_cases import BATCH, assert_same, run

_PROBE = """
import sys, numpy as np, lamina as lm
model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(1)])
model.compile("sgd", "mse")
x, y = np.zeros((8, 3), "float32"), np.zeros((8, 1), "float32")
model.fit(x, y, batch_size=4, verbose=0, validation_data=(x, y))
model.fit(((x, y) for _ in range(2)), verbose=0)
model.evaluate(x, y, verbose=0); model.predict(x, verbose=0)
print(sorted(m for m in ("tensorflow", "torch", "grain", "pandas") if m in sys.modules))
"""


def test_fit_on_arrays_imports_no_other_library():
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300,
        env={"JAX_PLATFORMS": "cpu", "PATH": ""},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


class _Batches(lm.data.PyDataset):
    def __init__(self, x, y, sw, **kwargs):
        super().__init__(**kwargs)
        self.parts = [p for p in (x, y, sw) if p is not None]
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.parts[1]) // BATCH)

    def __getitem__(self, i):
        batch = [p[i * BATCH : (i + 1) * BATCH] for p in self.parts]
        return tuple(batch) if len(batch) > 1 else batch[0]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_pydataset_with_workers_numbers_equal_arrays_and_epochs_end():
    made = []

    def source(x, y, sw):
        if y is None:  # predict: x alone, the sample count from x
            return {"x": _Batches(x, x, None, workers=2)}
        made.append(_Batches(x, y, sw, workers=2))
        return {"x": made[-1]}

    assert_same(run("weighted_spe4", source), "weighted_spe4")
    assert made[0].epochs_ended == 2
    np.testing.assert_equal(len(made[0]), 6)
