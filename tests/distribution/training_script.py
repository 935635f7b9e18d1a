"""fit / evaluate / predict on 8 simulated CPU devices against the same runs on one device;
run by test_training.py, prints one JSON line with what it measured.

The one-device runs happen in this process too: without a distribution everything stays on
the default device, exactly as in a single-device run.
"""

import gc
import json
import math
import os
import sys

# 8 simulated devices. XLA:CPU's intra-op thread pool is off: with it, a device's matmul could
# wait for pool threads that the other devices hold while they wait for it at a collective
# (seen as a hang, "only 7 of 8 arrived"). A collective stuck anyway aborts after 120 s.
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + (" --xla_force_host_platform_device_count=8 --xla_cpu_multi_thread_eigen=false "
                           "--xla_cpu_collective_call_terminate_timeout_seconds=120")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import lamina as lm  # noqa: E402
from lamina.distribution import DataParallel, DeviceMesh, LayoutMap, ModelParallel, set_distribution  # noqa: E402

rng = np.random.default_rng(0)
X = rng.normal(size=(1280, 16)).astype("float32")
Y = rng.integers(0, 4, size=1280)
XU = rng.normal(size=(1001, 16)).astype("float32")  # uneven: 15 batches of 64 and one of 41
YU = rng.integers(0, 4, size=1001)


class StepLogs(lm.callbacks.Callback):
    """Every step's logs, also inside a scanned block (as TensorBoard reads them)."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        progress = self.model._lm_fit_progress
        if progress.block_logs is None:
            self.steps.append({k: float(v) for k, v in logs.items()})
        else:
            block = jax.device_get(progress.block_logs)
            for i in range(progress.call_steps):
                self.steps.append({k: float(v[i]) for k, v in block.items()})

    on_train_batch_end._lm_runs_per_block = True


class Batches(lm.data.Dataset):
    """Arrays served as an ``lm.data.Dataset`` of batches of 64."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return -(-len(self.x) // 64)

    def __getitem__(self, i):
        return self.x[64 * i:64 * (i + 1)], self.y[64 * i:64 * (i + 1)]


def mlp(batchnorm=True):
    layers = [lm.Input((16,)), lm.layers.Dense(32, activation="relu", name="dense_1")]
    if batchnorm:
        layers.append(lm.layers.BatchNormalization(name="bn"))
    layers.append(lm.layers.Dense(8, name="dense_2"))
    return lm.Sequential(layers, name="mlp")


def trained(distribution, x, y, spe=1, batchnorm=True, build_first=False):
    """A fresh MLP (seed 0) trained one epoch with Adam; the distribution is set globally
    before the model is made (after, with build_first: state made on one device is moved)."""
    lm.utils.set_random_seed(0)
    if not build_first:
        set_distribution(distribution)
    model = mlp(batchnorm)
    model.compile(lm.optimizers.Adam(1e-2), lm.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], steps_per_execution=spe)
    if build_first:
        model.fit(x[:64], y[:64], batch_size=64, epochs=1, shuffle=False, verbose=0)
        lm.utils.set_random_seed(0)
        model = mlp(batchnorm)  # made on one device, trained under the distribution below
        model.compile(lm.optimizers.Adam(1e-2), lm.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], steps_per_execution=spe)
        model(x[:2])
        set_distribution(distribution)
    logs = StepLogs()
    model.fit(x, y, batch_size=None if y is None else 64, epochs=1, shuffle=False, verbose=0, callbacks=[logs])
    return model, logs.steps


def diff(a, b) -> float:
    return float(max(np.max(np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64))) for p, q in zip(a, b)))


def step_diff(a, b) -> float:
    assert len(a) == len(b) and a[0].keys() == b[0].keys(), (len(a), len(b))
    return diff([[s[k] for k in sorted(s)] for s in a], [[s[k] for k in sorted(s)] for s in b])


def weights(model):
    return [np.asarray(w.value) for w in model.weights]


def compiled_step(model, kind="train", stacked=False):
    """The ``lm.jit`` function behind the model's compiled step (inside its lock wrapper)."""
    locked = model._lm_step_functions[(kind, stacked)]
    return next(c.cell_contents for c in locked.__closure__ if isinstance(c.cell_contents, lm.core.transforms.CompiledFunction))


def data_parallel_against_one_device(found):
    out = found["data_parallel"] = {}
    # One device, one step per call: the reference of every 8-device run (a scanned block
    # computes the same steps).
    one, one_steps = trained(None, X, Y, 1)
    for spe in (1, 4, "auto"):
        eight, eight_steps = trained(DataParallel(), X, Y, spe)
        batch = lm.data.ArrayDataAdapter(X, Y, batch_size=64, shuffle=False)
        _, data = next(iter(batch.epoch(0)))
        if spe == 1:
            fn = compiled_step(eight)._compiled
            lowered = fn.jitted.lower(fn.values, fn.read_values, (data,), None).compile()
            out["data_input_spec"] = [list(s.spec) for s in jax.tree_util.tree_leaves(lowered.input_shardings[0][2])]
            out["batch_shards"] = sorted({tuple(s.data.shape) for s in data[0].addressable_shards})
            out["batch_devices"] = len(data[0].sharding.device_set)
            state = [v.value for v in eight.weights + eight.optimizer.variables + eight.metrics_variables]
            out["state_on_mesh"] = all(len(a.sharding.device_set) == 8 for a in state)
            out["state_shardings_kept"] = all(
                a.sharding == s for a, s in zip([fn.values[i] for i in range(len(fn.written))], fn.shardings))
        if spe == 4:  # a scanned block: the step axis whole, each step's batch axis split
            _, block = next(iter(batch.epoch(0, block=4)))
            out["block_spec"] = list(block[0].sharding.spec)
            out["block_shards"] = sorted({tuple(s.data.shape) for s in block[0].addressable_shards})
        set_distribution(None)
        out[f"spe_{spe}"] = {"steps": [len(one_steps), len(eight_steps)],
                             "logs": step_diff(one_steps, eight_steps),
                             "weights": diff(weights(one), weights(eight))}
        if spe == 1:  # one more step: the sharded state it was given is donated (deleted)
            step = compiled_step(eight)
            held = step._compiled
            step(data)  # the arrays read above (weights, slots) are copied before being donated
            exported, given = set(held.exported), list(held.values)
            step(data)
            donated = [a.is_deleted() for i, a in enumerate(given) if i not in exported]
            out["donated"] = [sum(donated), len(donated)]
    # State made on one device before set_distribution is moved when fit starts.
    moved, moved_steps = trained(DataParallel(), X, Y, build_first=True)
    set_distribution(None)
    out["moved"] = {"logs": step_diff(one_steps, moved_steps), "weights": diff(weights(one), weights(moved)),
                    "replicated": all(len(w.value.sharding.device_set) == 8 for w in moved.weights)}


def uneven(found):
    one, one_steps = trained(None, XU, YU)
    one_eval = one.evaluate(XU, YU, batch_size=64, verbose=0, return_dict=True)
    one_pred = one.predict(XU, batch_size=64, verbose=0)
    set_distribution(None)
    eight, eight_steps = trained(DataParallel(), XU, YU)
    eight_eval = eight.evaluate(XU, YU, batch_size=64, verbose=0, return_dict=True)
    eight_pred = eight.predict(XU, batch_size=64, verbose=0)
    # A generator and a Dataset give the same batches, sharded the same way.
    gen_eval = eight.evaluate(((XU[i:i + 64], YU[i:i + 64]) for i in range(0, 1001, 64)), verbose=0,
                              return_dict=True)
    set_distribution(None)
    # An lm.data.Dataset in blocks of 4 steps (stacked, each step split), its last batch of 41.
    dataset, _ = trained(DataParallel(), Batches(XU, YU), None, spe=4)
    set_distribution(None)
    found["uneven"] = {
        "dataset_weights": diff(weights(one), weights(dataset)),
        "steps": [len(one_steps), len(eight_steps)],
        "fit_logs": step_diff(one_steps, eight_steps),
        "fit_weights": diff(weights(one), weights(eight)),
        "evaluate": diff([one_eval[k] for k in sorted(one_eval)], [eight_eval[k] for k in sorted(eight_eval)]),
        "evaluate_generator": diff([one_eval[k] for k in sorted(one_eval)], [gen_eval[k] for k in sorted(gen_eval)]),
        "predict_rows": int(eight_pred.shape[0]),
        "predict": diff([one_pred], [eight_pred]),
    }


def tensor_parallel(found):
    one, one_steps = trained(None, X, Y, batchnorm=False)
    set_distribution(None)
    mesh = DeviceMesh((2, 4), ("batch", "model"))
    layout_map = LayoutMap(mesh, {r".*dense.*/kernel": (None, "model"), r".*dense.*/bias": ("model",)})
    tp, tp_steps = trained(ModelParallel(layout_map=layout_map, batch_dim_name="batch"), X, Y, batchnorm=False)
    set_distribution(None)
    kernel = tp.get_layer("dense_1").kernel.value
    by_path = {w.path: w.value for w in tp.weights}
    slots_follow = {}
    for v in tp.optimizer.variables:
        owner = next((p for p, a in by_path.items() if v.path.endswith("/" + p) and a.shape == v.shape), None)
        if owner is not None:
            slots_follow[v.path] = v.value.sharding == by_path[owner].sharding
    found["tensor_parallel"] = {
        "logs": step_diff(one_steps, tp_steps),
        "weights": diff(weights(one), weights(tp)),
        "kernel_shards": sorted({tuple(s.data.shape) for s in kernel.addressable_shards}),
        "kernel_spec": list(kernel.sharding.spec),
        "slots_follow": slots_follow,
    }


def device0_bytes() -> int:
    """Bytes of every live buffer on device 0 (CPU devices have no memory_stats). Each buffer
    counts once: a global array's shard, once looked at, is also listed by ``jax.live_arrays``
    as a one-device array of its own."""
    device0 = jax.devices()[0]
    buffers = {}
    for a in jax.live_arrays():
        for s in a.addressable_shards:
            if s.device == device0:
                buffers[s.data.unsafe_buffer_pointer()] = s.data.nbytes
    return sum(buffers.values())


class BuildMemory:
    """The most device 0 holds while variables are created under a distribution (over what
    it held before). Each sharded initializer is lowered and compiled ahead of time: what is
    live on device 0 after lowering (a value computed while tracing stays alive as a constant
    of the lowered program) plus the program's temporaries and its output on that device."""

    def __enter__(self):
        from lamina.distribution import placement

        self.placement, self.made = placement, placement.compiled_initializer
        self.peak, self.initializers, self.worst = 0, 0, 0.0
        gc.collect()
        base = device0_bytes()

        def watched(make, sharding):
            before = device0_bytes()
            lowered = self.made(make, sharding).lower()
            compiled = lowered.compile()
            memory = compiled.memory_analysis()
            held = device0_bytes() - base
            made_now = memory.temp_size_in_bytes + memory.output_size_in_bytes
            self.peak = max(self.peak, held + made_now)
            # What this one initializer puts on device 0 against its whole variable: a value
            # computed whole while tracing (a constant of the program) makes it 1 or more.
            shape = lowered.out_info.shape
            if tuple(sharding.shard_shape(shape)) != tuple(shape):  # a split variable
                whole = math.prod(shape) * lowered.out_info.dtype.itemsize
                self.worst = max(self.worst, (device0_bytes() - before + made_now) / whole)
            self.initializers += 1
            return compiled

        placement.compiled_initializer = watched
        return self

    def __exit__(self, *exc):
        self.placement.compiled_initializer = self.made


def fsdp_memory(found, size=1024):
    lm.utils.set_random_seed(0)
    set_distribution(lm.distribution.FSDP(axis="batch", min_size=2**16))
    with BuildMemory() as building:
        model = lm.Sequential([lm.Input((size,))] + [lm.layers.Dense(size, name=f"d{i}") for i in range(8)])
    device0 = jax.devices()[0]
    weights0 = sum(s.data.nbytes for w in model.weights for s in w.value.addressable_shards if s.device == device0)
    model.compile(lm.optimizers.Adam(1e-3), "mse", steps_per_execution=1)
    x = np.ones((16, size), "float32")
    model.fit(x, x, batch_size=16, epochs=1, verbose=0)
    set_distribution(None)
    state = [v.value for v in model.weights + model.optimizer.variables]
    total = sum(a.nbytes for a in state)
    on0 = sum(s.data.nbytes for a in state for s in a.addressable_shards if s.device == device0)
    found["fsdp_memory"] = {"total": int(total), "device0": int(on0), "size": size, "weights_device0": int(weights0),
                            "build_peak": int(building.peak), "initializers": building.initializers,
                            "worst_initializer_fraction": building.worst}


def unmovable_state(found):
    """A model built on one device whose kernel does not fit a later layout (a 1-entry spec
    for a 2-D kernel): fit refuses to start, naming it."""
    model = mlp(batchnorm=False)
    model.compile("adam", lm.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.build((None, 16))
    mesh = DeviceMesh((2, 4), ("batch", "model"))
    set_distribution(ModelParallel(layout_map=LayoutMap(mesh, {r".*dense_2/kernel": ("model",)}),
                                   batch_dim_name="batch"))
    try:
        model.fit(X[:64], Y[:64], batch_size=64, verbose=0)
        found["unmovable"] = None
    except ValueError as error:
        found["unmovable"] = str(error)
    set_distribution(None)


def same_seed_same_weights(found):
    def initial(distribution):
        lm.utils.set_random_seed(3)
        set_distribution(distribution)
        model = mlp()
        model.build((None, 16))
        set_distribution(None)
        return weights(model)

    first = initial(None)
    found["same_seed"] = {
        "dp4": all(np.array_equal(a, b) for a, b in zip(first, initial(DataParallel(devices=jax.devices()[:4])))),
        "dp8": all(np.array_equal(a, b) for a, b in zip(first, initial(DataParallel()))),
        "fsdp8": all(np.array_equal(a, b) for a, b in zip(first, initial(lm.distribution.FSDP(min_size=64)))),
    }


def example(found):
    """examples/data_parallel.py, run here where the 8 devices exist (a few epochs)."""
    import contextlib
    import importlib.util
    import io

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "examples", "data_parallel.py")
    spec = importlib.util.spec_from_file_location("data_parallel_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        accuracy = module.main(epochs=3, verbose=1)
    found["example"] = {"accuracy": float(accuracy), "printed": printed.getvalue().splitlines()[-3:]}


def main():
    found = {"devices": len(jax.devices())}
    for check in (data_parallel_against_one_device, uneven, tensor_parallel, fsdp_memory, unmovable_state,
                  same_seed_same_weights, example):
        check(found)
    print(json.dumps(found))


if __name__ == "__main__":
    sys.exit(main())
