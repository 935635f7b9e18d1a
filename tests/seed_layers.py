"""The seed guide's layers (examples/seed_guide.py), for the tests and the benchmark.

The example is the one translation of the guide; importing its classes from here keeps the
tests and the benchmark running exactly the code a reader sees there.
"""

import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parent.parent / "examples" / "seed_guide.py"
_spec = importlib.util.spec_from_file_location("lamina_examples_seed_guide", _path)
_guide = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guide)

LinearWithVariables = _guide.LinearWithVariables
LinearAddWeight = _guide.LinearAddWeight
ComputeSum = _guide.ComputeSum
Linear = _guide.Linear
MLPBlock = _guide.MLPBlock
ActivityRegularizationLayer = _guide.ActivityRegularizationLayer
OuterLayer = _guide.OuterLayer
