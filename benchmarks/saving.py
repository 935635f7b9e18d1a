"""How fast, and in how much memory, does lamina save and load a ~100M-parameter model?

The model: ``Sequential([Input((4096,)), Dense(4096) x 6])``, float32, 100.7M parameters
(403 MB of weights), uncompiled (no optimizer state); with ``--quick``, ``Input((1024,))`` and
``Dense(1024) x 10`` (10.5M parameters, 42 MB). It is saved once with ``model.save``
(``m.lamina``) and ``model.save_weights`` (``w.safetensors``); the two files hold the same
tensors under the same keys.

Load time. Contenders, each timed until every loaded array is ready
(``block_until_ready``), so asynchronous dispatch hides nothing:

- ``lm.load_model("m.lamina")``: reads the zip, rebuilds the model from its config (which
  creates and initializes its variables), checks and assigns the weights;
- ``model.load_weights("w.safetensors")`` and ``model.load_weights("m.lamina")`` into an
  existing built model of the same architecture;
- baseline: ``safetensors.flax.load_file("w.safetensors")``, the safetensors library loading
  the same tensors into JAX arrays (a dict; no model) — target for ``load_weights``: at least
  0.9x its speed;
- reference: ``safetensors.numpy.load_file`` (NumPy arrays, no device copy).

Method. Contenders are interleaved: every repeat runs each once, the order rotating from
repeat to repeat; the first repeat is a warm-up and is dropped. "median s" is each
contender's median over the other repeats, and "flax / it" the median of the per-repeat ratios
baseline time / its time (above 1: faster than the baseline). The files were just written,
so every read comes from the page cache: this measures parsing, checking and copying, not
the disk. The machine's load average is printed with the table (the host is shared).

Peak memory. Each operation runs once more in a fresh Python process (this script with
``--child``), so that nothing allocated earlier hides in the peak: the process imports
lamina, starts JAX's backend (builds a tiny model), builds the target model where the
operation needs one (``load_weights``), collects
garbage, resets the kernel's peak-RSS counter (``/proc/self/clear_refs``), runs the
operation, and reads ``VmHWM`` (the exact peak resident set) against ``VmRSS`` just before.
"peak +RSS / W" is that increase over the weights' size W (tensor bytes). A thread samples
``RssAnon`` (anonymous memory: heap and device buffers, not file pages) every millisecond
for "peak +anon / W" (sampling: a short spike can be missed). A memory-mapped file's pages
count in RSS while they are mapped and touched (they are page cache, shared and
reclaimable), so "+RSS" includes the file pages the load reads and "+anon" does not.
"memory / W" applies the target (<= 1.3x): the memory the model and the load hold at the
peak, over W — for ``load_model`` the increase itself (the model did not exist before); for
``load_weights`` W (the model's current weights) plus the increase; for the baselines the
increase (the arrays they return are the weights). It is computed from "+RSS" (strict: file
pages included) and, in brackets, from "+anon"; the verdict is given for both.

Save time, for information: ``model.save("m.lamina")`` and ``model.save_weights(...)``
against ``safetensors.numpy.save_file`` of the same arrays (already on the host, as NumPy),
interleaved the same way, written to the same folder.

    python benchmarks/saving.py              # full run: about 2 to 4 minutes, about 2 GB of disk
    python benchmarks/saving.py --quick      # about half a minute
    python benchmarks/saving.py --markdown   # also print the tables as Markdown
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import jax
import numpy as np
import report  # noqa: E402  (benchmarks/report.py, beside this script)
import safetensors.flax
import safetensors.numpy

import lamina as lm
from lamina.saving.safetensors_reader import MappedSafetensorsFile

FULL = {"features": 4096, "layers": 6, "repeats": 8}
QUICK = {"features": 1024, "layers": 10, "repeats": 6}
SPEED_TARGET = 0.9  # load_weights speed over safetensors.flax.load_file, at least
MEMORY_TARGET = 1.3  # peak memory over the weights' size, at most

LOADS = {
    "load_model": "lm.load_model(.lamina)",
    "load_weights_st": "model.load_weights(.safetensors)",
    "load_weights_lamina": "model.load_weights(.lamina)",
    "st_flax": "safetensors.flax.load_file",
    "st_numpy": "safetensors.numpy.load_file",
}
SPEED_TARGETS = {"load_weights_st": SPEED_TARGET, "load_weights_lamina": SPEED_TARGET, "load_model": SPEED_TARGET}
SAVES = {
    "save_model": "model.save(.lamina)",
    "save_weights": "model.save_weights(.safetensors)",
    "st_save": "safetensors.numpy.save_file",
}


def build_model(features: int, layers: int):
    model = lm.Sequential([lm.Input((features,))] + [lm.layers.Dense(features) for _ in range(layers)])
    _ready(model)
    return model


def _ready(model) -> None:
    for variable in model.variables:
        variable.value.block_until_ready()


def _ready_dict(arrays: dict) -> None:
    for array in arrays.values():
        if isinstance(array, jax.Array):
            array.block_until_ready()


def load_operations(paths: dict, target) -> dict:
    """``{name: function}`` for each load contender; each returns what it loaded, ready."""

    def load_model():
        model = lm.load_model(paths["lamina"])
        _ready(model)
        return model

    def load_weights(path):
        target.load_weights(path)
        _ready(target)
        return None

    def st_flax():
        arrays = safetensors.flax.load_file(paths["safetensors"])
        _ready_dict(arrays)
        return arrays

    return {
        "load_model": load_model,
        "load_weights_st": lambda: load_weights(paths["safetensors"]),
        "load_weights_lamina": lambda: load_weights(paths["lamina"]),
        "st_flax": st_flax,
        "st_numpy": lambda: safetensors.numpy.load_file(paths["safetensors"]),
    }


def interleaved(operations: dict, repeats: int) -> dict:
    """``{name: [seconds per repeat]}``, the first (warm-up) repeat dropped."""
    names = list(operations)
    times = {name: [] for name in names}
    for repeat in range(repeats + 1):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            start = time.perf_counter()
            result = operations[name]()
            elapsed = time.perf_counter() - start
            del result
            if repeat:
                times[name].append(elapsed)
    return times


def weights_size(path) -> int:
    with MappedSafetensorsFile(path) as view:
        return sum(e.end - e.start for e in view.entries.values())


# -- peak memory, in a fresh process --------------------------------------------------------


def _status() -> dict:
    with open("/proc/self/status") as f:
        text = f.read()
    return {k: int(v) * 1024 for k, v in re.findall(r"^(VmHWM|VmRSS|RssAnon|RssFile):\s+(\d+) kB", text, re.M)}


class AnonSampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stop = 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, _status()["RssAnon"])
            time.sleep(0.001)


def child(operation: str, paths: dict, features: int, layers: int) -> None:
    """Measure one operation's peak memory in this (fresh) process; print JSON."""
    build_model(8, 1)  # start JAX's backend and compile the initializers' small programs first:
    # one-time costs of the process, not of the load
    target = build_model(features, layers) if operation.startswith("load_weights") else None
    run = load_operations(paths, target)[operation]
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = _status()
    sampler = AnonSampler()
    sampler.start()
    result = run()
    sampler.stop.set()
    sampler.join()
    after = _status()
    del result
    print(json.dumps({"rss_before": before["VmRSS"], "hwm": after["VmHWM"], "anon_before": before["RssAnon"],
                      "anon_peak": max(sampler.peak, after["RssAnon"])}))


def measure_memory(operation: str, paths: dict, config: dict) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", operation, "--child-paths", json.dumps(paths),
               "--features", str(config["features"]), "--layers", str(config["layers"])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:  # reported in the table as "failed", with the error here
        print(f"memory child {operation} failed:\n{done.stderr}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the run --------------------------------------------------------------------------------


def _load_average() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _ratio_cells(ratios, target):
    if not ratios:
        return ["-", "-", "-"]
    ratio = statistics.median(ratios)
    if target is None:
        return [f"{ratio:.2f}x", "-", "-"]
    return [f"{ratio:.2f}x", f">= {target}x", "meets" if ratio >= target else "misses"]


def _memory_cells(name: str, m, size: int) -> list:
    mem_target = name != "st_numpy"
    if m is None:
        return ["failed"] * 3 + [f"<= {MEMORY_TARGET}x" if mem_target else "-", "-"]
    rss, anon = (m["hwm"] - m["rss_before"]) / size, (m["anon_peak"] - m["anon_before"]) / size
    held = 1.0 if name.startswith("load_weights") else 0.0  # the model's weights, there before
    mem_ratio, mem_anon = held + rss, held + anon
    return [f"{rss:.2f}x", f"{anon:.2f}x", f"{mem_ratio:.2f}x ({mem_anon:.2f}x)",
            f"<= {MEMORY_TARGET}x" if mem_target else "-",
            (f"{_verdict(mem_ratio)} (anon: {_verdict(mem_anon)})") if mem_target else "-"]


def _verdict(ratio: float) -> str:
    return "meets" if ratio <= MEMORY_TARGET else "misses"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 10M-parameter model, fewer repeats")
    parser.add_argument("--markdown", action="store_true", help="also print the tables as Markdown")
    parser.add_argument("--repeats", type=int, help="timed repeats (after one warm-up)")
    parser.add_argument("--dir", help="folder for the files (default: a temporary folder)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-paths", help=argparse.SUPPRESS)
    parser.add_argument("--features", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--layers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, json.loads(args.child_paths), args.features, args.layers)
        return

    config = dict(QUICK if args.quick else FULL)
    if args.repeats:
        config["repeats"] = args.repeats
    folder = args.dir or tempfile.mkdtemp(prefix="lamina-bench-saving-")
    os.makedirs(folder, exist_ok=True)
    paths = {"lamina": os.path.join(folder, "m.lamina"), "safetensors": os.path.join(folder, "w.safetensors")}
    load_before = _load_average()
    try:
        lm.random.set_seed(0)
        model = build_model(config["features"], config["layers"])
        model.save(paths["lamina"])
        model.save_weights(paths["safetensors"])
        size = weights_size(paths["safetensors"])
        params = model.count_params()
        print(f"Model: Dense {config['features']} x {config['layers']}, {params:,} parameters, "
              f"W = {size / 1e6:,.1f} MB of weights; .lamina {os.path.getsize(paths['lamina']) / 1e6:,.1f} MB; "
              f"{config['repeats']} timed repeats after one warm-up; files in {folder} (page cache)")
        print(f"load average (1/5/15 min) at start: {load_before}")

        # Loads, interleaved, in this process. The target model is a second copy.
        target = build_model(config["features"], config["layers"])
        load_times = interleaved(load_operations(paths, target), config["repeats"])
        del target
        gc.collect()

        # Saves, interleaved.
        arrays = {k: np.asarray(v) for k, v in safetensors.numpy.load_file(paths["safetensors"]).items()}
        out = {name: os.path.join(folder, f"save_{name}") for name in SAVES}
        # The lambdas run inside interleaved(), before the `del` below (ruff reads it as undefining them).
        save_times = interleaved({
            "save_model": lambda: model.save(out["save_model"] + ".lamina"),  # noqa: F821
            "save_weights": lambda: model.save_weights(out["save_weights"] + ".safetensors"),  # noqa: F821
            "st_save": lambda: safetensors.numpy.save_file(arrays, out["st_save"] + ".safetensors"),  # noqa: F821
        }, max(3, config["repeats"] // 2))
        del arrays, model
        gc.collect()

        # Peak memory, one fresh process per operation.
        memory = {name: measure_memory(name, paths, config) for name in LOADS}
        load_after = _load_average()
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)

    baseline = load_times["st_flax"]
    header = ["operation", "median s", "GB/s", "flax / it", "target", "", "peak +RSS / W", "peak +anon / W",
              "memory / W", "target", ""]
    cells = []
    for name, label in LOADS.items():
        seconds = statistics.median(load_times[name])
        ratios = [b / t for b, t in zip(baseline, load_times[name])] if name != "st_flax" else []
        speed = _ratio_cells(ratios, SPEED_TARGETS.get(name)) if name != "st_flax" else ["1 (ref)", "-", "-"]
        cells.append([label, f"{seconds:.3f}", f"{size / seconds / 1e9:.2f}", *speed, *_memory_cells(name, memory[name], size)])
    title = f"Load, {params:,} parameters ({size / 1e6:,.0f} MB), files in the page cache"
    report.print_table(title, header, cells, right_aligned=set(header[1:]) - {"", "operation"}, width=180)

    save_base = save_times["st_save"]
    save_header = ["operation", "median s", "GB/s", "numpy save_file / it"]
    save_cells = []
    for name, label in SAVES.items():
        seconds = statistics.median(save_times[name])
        ratio = "1 (ref)" if name == "st_save" else f"{statistics.median(b / t for b, t in zip(save_base, save_times[name])):.2f}x"
        save_cells.append([label, f"{seconds:.3f}", f"{size / seconds / 1e9:.2f}", ratio])
    report.print_table("Save (for information)", save_header, save_cells, right_aligned=set(save_header[1:]))
    print(f"load average (1/5/15 min) at end: {load_after}")
    if args.markdown:
        report.print_markdown(header, cells)
        print()
        report.print_markdown(save_header, save_cells)


if __name__ == "__main__":
    main()
