"""How fast does lamina read and write Keras 3 files, against Keras 3 itself (on JAX)?

The model: a Keras ``Sequential([Input((1024,)), Dense(1024) x 10])`` (10.5M parameters,
42 MB), compiled with Adam and trained one step (so the file holds optimizer state too);
``--quick``: ``Input((256,))``, ``Dense(256) x 4``. It is saved once by Keras as ``m.keras``
and ``w.weights.h5``.

Contenders, interleaved (every repeat runs each once, the order rotating; the first repeat
is a warm-up and is dropped), each timed until its arrays are ready:

- ``lm.load_model("m.keras")`` against ``keras.saving.load_model("m.keras")``;
- ``model.load_weights("w.weights.h5")`` into a built model, lamina against Keras;
- ``model.save("x.keras")``, lamina against Keras.

Printed: each contender's median seconds and the median of the per-repeat ratios Keras time
/ lamina time (above 1: lamina is faster), with the machine's load average.

    python benchmarks/keras_files.py            # about a minute
    python benchmarks/keras_files.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import lamina as lm  # noqa: E402


def _ready(model) -> None:
    for variable in model.weights:
        jax.block_until_ready(variable.value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    import keras

    warnings.filterwarnings("ignore")
    width, depth = (256, 4) if args.quick else (1024, 10)
    repeats = args.repeats or (4 if args.quick else 8)
    folder = tempfile.mkdtemp(prefix="lamina-keras-bench-")
    keras_model = keras.Sequential([keras.Input((width,))] + [keras.layers.Dense(width) for _ in range(depth)])
    keras_model.compile("adam", "mse")
    x = np.random.default_rng(0).normal(size=(8, width)).astype("float32")
    keras_model.train_on_batch(x, x)
    model_file, weights_file = os.path.join(folder, "m.keras"), os.path.join(folder, "w.weights.h5")
    keras_model.save(model_file)
    keras_model.save_weights(weights_file)
    lamina_model = lm.load_model(model_file)
    keras_target = keras.saving.load_model(model_file)

    def keras_load_weights():
        keras_target.load_weights(weights_file)
        jax.block_until_ready([v.value for v in keras_target.weights])

    contenders = {
        "load_model: lamina": lambda: _ready(lm.load_model(model_file)),
        "load_model: Keras": lambda: jax.block_until_ready([v.value for v in keras.saving.load_model(model_file).weights]),
        "load_weights: lamina": lambda: (lamina_model.load_weights(weights_file), _ready(lamina_model)),
        "load_weights: Keras": keras_load_weights,
        "save: lamina": lambda: lamina_model.save(os.path.join(folder, "lamina.keras")),
        "save: Keras": lambda: keras_target.save(os.path.join(folder, "keras.keras")),
    }
    names = list(contenders)
    times = {name: [] for name in names}
    for repeat in range(repeats + 1):
        order = names[repeat % len(names):] + names[:repeat % len(names)]
        for name in order:
            start = time.perf_counter()
            contenders[name]()
            if repeat:  # the first repeat warms up
                times[name].append(time.perf_counter() - start)
    params = sum(int(np.prod(w.shape)) for w in keras_model.weights)
    print(f"Keras files: {depth} x Dense({width}), {params / 1e6:.1f}M parameters, {repeats} repeats, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'operation':<14} {'lamina s':>10} {'Keras s':>10} {'Keras / lamina':>15}")
    for operation in ("load_model", "load_weights", "save"):
        ours, theirs = times[f"{operation}: lamina"], times[f"{operation}: Keras"]
        ratio = statistics.median(t / o for o, t in zip(ours, theirs))
        print(f"{operation:<14} {statistics.median(ours):>10.4f} {statistics.median(theirs):>10.4f} {ratio:>15.2f}")


if __name__ == "__main__":
    main()
