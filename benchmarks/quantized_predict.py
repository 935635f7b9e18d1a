"""What does ``model.quantize("int8")`` buy at inference? ``predict`` time and file size of an
MLP in float32 and int8: lamina against Keras 3 (on JAX) and a hand-written ``jax.jit`` loop.

The model: MLP 784-1024-1024-10 (ReLU; ``--quick``: 256-512-512-10), built in lamina, the same
float weights copied into Keras 3; each library then quantizes its copy with
``model.quantize("int8")`` (the two hold the same integers and scales, so the outputs agree:
checked before timing). Inputs: 4,096 rows of NumPy float32 (``--quick``: 1,024), batch 256.

Contenders, interleaved (every repeat runs each once, the order rotating; a warm-up repeat
first, dropped), each timed until its outputs are a NumPy array:

- ``model.predict(x, batch_size=256)``, lamina float32 / lamina int8 / Keras float32 / Keras int8;
- a hand-written loop (one ``jax.jit`` of the forward pass over slices, one ``device_get`` at
  the end), float32 and int8 (Keras's int8 arithmetic written out: inputs quantized per row,
  int8 x int8 accumulated in int32, rescaled).

Printed: median seconds per contender, the medians of per-repeat ratios (int8 / float32 per
library; Keras / lamina and hand / lamina per mode, above 1: lamina faster), the compilations
counted during the timed repeats (must be 0), and the sizes of the ``.lamina`` and ``.keras``
files each library writes, float32 and int8, with the load average.

    python benchmarks/quantized_predict.py            # about a minute on 2 busy cores
    python benchmarks/quantized_predict.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from compile_counter import compilations  # noqa: E402  (benchmarks/compile_counter.py)

import lamina as lm  # noqa: E402


def build(lib, sizes):
    layers = [lib.layers.Dense(width, activation="relu") for width in sizes[1:-1]]
    return lib.Sequential([lib.Input((sizes[0],)), *layers, lib.layers.Dense(sizes[-1])])


def hand_float(weights):
    params = [jnp.asarray(w) for w in weights]

    @jax.jit
    def forward(p, x):
        for index in range(0, len(p), 2):
            x = x @ p[index] + p[index + 1]
            if index + 2 < len(p):
                x = jax.nn.relu(x)
        return x

    return lambda x, batch: np.concatenate(jax.device_get([forward(params, x[i:i + batch])
                                                           for i in range(0, len(x), batch)]))


def hand_int8(model):
    """Keras's int8 Dense written by hand, on the quantized model's integers and scales."""
    params = [(layer.kernel.value, layer.kernel_scale.value, layer.bias.value) for layer in model.layers]

    @jax.jit
    def forward(p, x):
        for index, (kernel, kernel_scale, bias) in enumerate(p):
            scale = 127.0 / (jnp.max(jnp.abs(x), axis=-1, keepdims=True) + 1e-7)
            q = jnp.clip(jnp.round(x * scale), -127, 127).astype(jnp.int8)
            y = jnp.matmul(q, kernel, preferred_element_type=jnp.int32).astype(jnp.float32)
            x = y / (kernel_scale * scale) + bias
            if index + 1 < len(p):
                x = jax.nn.relu(x)
        return x

    return lambda x, batch: np.concatenate(jax.device_get([forward(params, x[i:i + batch])
                                                           for i in range(0, len(x), batch)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    import keras

    warnings.filterwarnings("ignore")  # the InputLayer cannot be quantized (Keras and lamina warn)
    sizes = (256, 512, 512, 10) if args.quick else (784, 1024, 1024, 10)
    rows, batch = (1024, 256) if args.quick else (4096, 256)
    repeats = args.repeats or (5 if args.quick else 15)
    x = np.random.default_rng(0).random((rows, sizes[0]), dtype=np.float32)
    folder = tempfile.mkdtemp(prefix="lamina-quantized-bench-")

    lm.utils.set_random_seed(0)
    ours = {"float32": build(lm, sizes), "int8": build(lm, sizes)}
    theirs = {"float32": build(keras, sizes), "int8": build(keras, sizes)}
    weights = [np.asarray(w) for w in ours["float32"].get_weights()]
    for model in (ours["int8"], theirs["float32"], theirs["int8"]):
        model.set_weights(weights)
    sizes_on_disk = {}
    for name, model in (("lamina", ours["float32"]), ("Keras", theirs["float32"])):
        for suffix in (".keras", ".lamina") if name == "lamina" else (".keras",):
            path = os.path.join(folder, f"{name}_float32{suffix}")
            model.save(path)
            sizes_on_disk[(name, suffix, "float32")] = os.path.getsize(path)
    ours["int8"].quantize("int8")
    theirs["int8"].quantize("int8")
    for name, model in (("lamina", ours["int8"]), ("Keras", theirs["int8"])):
        for suffix in (".keras", ".lamina") if name == "lamina" else (".keras",):
            path = os.path.join(folder, f"{name}_int8{suffix}")
            model.save(path)
            sizes_on_disk[(name, suffix, "int8")] = os.path.getsize(path)

    contenders = {
        ("lamina", "float32"): lambda: ours["float32"].predict(x, batch_size=batch, verbose=0),
        ("lamina", "int8"): lambda: ours["int8"].predict(x, batch_size=batch, verbose=0),
        ("Keras", "float32"): lambda: theirs["float32"].predict(x, batch_size=batch, verbose=0),
        ("Keras", "int8"): lambda: theirs["int8"].predict(x, batch_size=batch, verbose=0),
        ("hand", "float32"): lambda f=hand_float(weights): f(x, batch),
        ("hand", "int8"): lambda f=hand_int8(ours["int8"]): f(x, batch),
    }
    outputs = {key: np.asarray(run()) for key, run in contenders.items()}  # warm-up, and the check
    np.testing.assert_allclose(outputs[("lamina", "int8")], outputs[("Keras", "int8")], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(outputs[("lamina", "int8")], outputs[("hand", "int8")], rtol=1e-4, atol=1e-4)
    error = float(np.mean((outputs[("lamina", "int8")] - outputs[("lamina", "float32")]) ** 2))

    names = list(contenders)
    times = {name: [] for name in names}
    before = compilations()
    for repeat in range(repeats):
        order = names[repeat % len(names):] + names[:repeat % len(names)]
        for name in order:
            start = time.perf_counter()
            np.asarray(contenders[name]())
            times[name].append(time.perf_counter() - start)
    compiled = compilations() - before

    def ratio(top, bottom):
        return statistics.median(t / b for t, b in zip(times[top], times[bottom]))

    print(f"predict, MLP {'-'.join(map(str, sizes))}, {rows} rows, batch {batch}, {repeats} repeats, "
          f"load average {os.getloadavg()[0]:.1f}; int8 vs float32 MSE {error:.2e}; "
          f"compilations while timed: {compiled}")
    print(f"{'contender':<18} {'median s':>10}")
    for name in names:
        print(f"{name[0] + ' ' + name[1]:<18} {statistics.median(times[name]):>10.4f}")
    print(f"{'ratio':<40} {'float32':>8} {'int8':>8}")
    for other in ("Keras", "hand"):
        print(f"{other + ' time / lamina time':<40} {ratio((other, 'float32'), ('lamina', 'float32')):>8.2f} "
              f"{ratio((other, 'int8'), ('lamina', 'int8')):>8.2f}")
    for name in ("lamina", "Keras", "hand"):
        print(f"{name + ' int8 time / float32 time':<40} {ratio((name, 'int8'), (name, 'float32')):>8.2f}")
    print(f"{'file':<18} {'float32 bytes':>14} {'int8 bytes':>12} {'int8 / float32':>15}")
    for name, suffix in (("lamina", ".lamina"), ("lamina", ".keras"), ("Keras", ".keras")):
        full, small = sizes_on_disk[(name, suffix, "float32")], sizes_on_disk[(name, suffix, "int8")]
        print(f"{name + ' ' + suffix:<18} {full:>14,} {small:>12,} {small / full:>15.3f}")


if __name__ == "__main__":
    main()
