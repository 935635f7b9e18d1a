"""How fast does lamina save and load a sharded (FSDP, 8 devices) model, against one device
and against a hand-written save of the same arrays?

Runs on 8 simulated CPU devices (the flag is set before JAX starts). The model:
``Sequential([Input((F,)), Dense(F) x L])`` float32, built under ``FSDP(min_size=2**16)`` (every
kernel split by rows over 8 devices, biases replicated), and the same model built on one
device. F=2048, L=8 (33.6M parameters, 134 MB); ``--quick``: F=1024, L=4 (4.2M, 17 MB).

Save contenders, each writing to the same folder:

- ``fsdp file``: ``model.save_weights("w.safetensors")`` of the FSDP model: one process, so
  today's single file, each tensor gathered to the host;
- ``fsdp folder``: ``save_weights_sharded`` of the FSDP model: shard files (each device's
  own slice, replicated tensors once) and ``index.json``;
- ``one device``: ``model.save_weights`` of the one-device model;
- baseline ``hand``: ``jax.device_get`` of the FSDP model's arrays and
  ``safetensors.numpy.save_file`` (no checksums, not atomic).

Load contenders: ``model.load_weights`` of the file and of the folder into the FSDP model
(each device reads its own rows), of the file into the one-device model, and the baseline
``safetensors.numpy.load_file`` + ``jax.device_put`` with each variable's sharding.

Method: contenders interleaved, the order rotating every repeat, the first repeat dropped
(warm-up); medians per contender and the median of per-repeat ratios (contender / baseline:
above 1 is slower). Files come from the page cache. The load average is printed.

    python benchmarks/sharded_saving.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import safetensors.numpy  # noqa: E402

import lamina as lm  # noqa: E402
from lamina.saving.sharded import save_weights_sharded  # noqa: E402


def build(features, layers, distribution):
    def make():
        model = lm.Sequential([lm.Input((features,))] + [lm.layers.Dense(features) for _ in range(layers)])
        return model
    if distribution is None:
        return make()
    with distribution.scope():
        return make()


def ready(model):
    for v in model.weights:
        v.value.block_until_ready()


def interleaved(contenders: dict, repeats: int) -> dict:
    names = list(contenders)
    times = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            start = time.perf_counter()
            contenders[name]()
            elapsed = time.perf_counter() - start
            if r:
                times[name].append(elapsed)
    return times


def table(title, times, baseline):
    print(f"\n{title}")
    print(f"{'contender':<14}{'median s':>10}{'/ ' + baseline:>12}")
    for name, values in times.items():
        ratios = [t / b for t, b in zip(values, times[baseline])]
        print(f"{name:<14}{statistics.median(values):>10.4f}{statistics.median(ratios):>12.2f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    features, layers, repeats = (1024, 4, 6) if args.quick else (2048, 8, 8)
    print(f"devices {len(jax.devices())}, model {layers} x Dense({features}), load average "
          f"{os.getloadavg()[0]:.2f}, lamina {lm.__version__}, jax {jax.__version__}")
    fsdp = build(features, layers, lm.distribution.FSDP(axis="batch", min_size=2 ** 16))
    one = build(features, layers, None)
    one.set_weights(fsdp.get_weights())
    folder = tempfile.mkdtemp()
    paths = {name: os.path.join(folder, f"{name}.safetensors") for name in ("fsdp", "folder", "one", "hand")}
    keys = [w.path for w in fsdp.weights]

    def hand_save():
        arrays = jax.device_get([w.value for w in fsdp.weights])
        safetensors.numpy.save_file(dict(zip(keys, arrays)), paths["hand"])

    saves = {"fsdp file": lambda: fsdp.save_weights(paths["fsdp"]),
             "fsdp folder": lambda: save_weights_sharded(fsdp, paths["folder"]),
             "one device": lambda: one.save_weights(paths["one"]),
             "hand": hand_save}
    table("save", interleaved(saves, repeats), "hand")

    shardings = [w.value.sharding for w in fsdp.weights]

    def hand_load():
        loaded = safetensors.numpy.load_file(paths["hand"])
        arrays = [jax.device_put(loaded[k], s) for k, s in zip(keys, shardings)]
        jax.block_until_ready(arrays)

    def load(model, path):
        def run():
            model.load_weights(path)
            ready(model)
        return run

    loads = {"fsdp file": load(fsdp, paths["fsdp"]), "fsdp folder": load(fsdp, paths["folder"]),
             "one device": load(one, paths["one"]), "hand": hand_load}
    table("load", interleaved(loads, repeats), "hand")
    kernel = fsdp.layers[0].kernel.value
    print(f"\nFSDP kernel after loads: {len(kernel.sharding.device_set)} devices, shard "
          f"{kernel.addressable_shards[0].data.shape}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    sys.exit(main())
