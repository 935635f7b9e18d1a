"""Placement checks on 8 simulated CPU devices, run as a subprocess by test_placement.py
(the device count must be set before JAX starts). Prints one JSON object of findings."""

import json
import os
import sys


def seeded_digest(lm):
    """SHA-256 of a seeded two-layer MLP's initial weights, built under whatever is active."""
    import hashlib

    import numpy as np

    lm.random.set_seed(7)
    layers = [lm.layers.Dense(512, name="wide"), lm.layers.Dense(64, name="narrow")]
    layers[0].build((None, 1024))
    layers[1].build((None, 512))
    return hashlib.sha256(b"".join(np.asarray(w).tobytes() for layer in layers for w in layer.weights)).hexdigest(), layers


def main():
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax
    import jax.numpy as jnp
    import numpy as np

    import lamina as lm
    from lamina.distribution import placement

    D = lm.distribution
    out = {"devices": len(jax.devices())}

    def shard_shapes(v):
        return sorted({tuple(s.data.shape) for s in v.value.addressable_shards})

    def spec(v):
        return list(v.value.sharding.spec) if hasattr(v.value.sharding, "spec") else None

    # Same seed: the same numbers without a distribution, under FSDP and under tensor parallelism.
    out["digest_plain"], before = seeded_digest(lm)

    fsdp = D.FSDP(axis="batch")  # min_size 2**18: the (1024, 512) kernel is split, the rest not
    with fsdp.scope():
        out["digest_fsdp"], layers = seeded_digest(lm)
        kernel, bias = layers[0].kernel, layers[0].bias
        out["fsdp_kernel"] = {"spec": spec(kernel), "shards": shard_shapes(kernel),
                              "n_shards": len(kernel.value.addressable_shards)}
        out["fsdp_bias"] = {"spec": spec(bias), "replicated": bias.value.sharding.is_fully_replicated}
        out["fsdp_small_kernel_replicated"] = layers[1].kernel.value.sharding.is_fully_replicated
        # What the compiled initializer holds per device: its output shard and temporaries.
        init = lm.initializers.get("glorot_uniform")
        stats = placement.compiled_initializer(lambda: init((1024, 512)), kernel.value.sharding).lower().compile().memory_analysis()
        out["init_memory"] = None if stats is None else {
            "output": int(stats.output_size_in_bytes), "temp": int(stats.temp_size_in_bytes),
            "whole": 1024 * 512 * 4}
        # Optimizer slots take their weight's sharding; counters are replicated.
        opt = lm.optimizers.Adam(1e-3)
        opt.build(layers[0].trainable_weights)
        out["adam_slots"] = {v.path: (spec(v), v.value.sharding.is_fully_replicated) for v in opt.variables}
        ema = lm.optimizers.SGD(0.1, use_ema=True)
        ema.build([kernel])
        out["ema_slots"] = {v.path: spec(v) for v in ema.variables if v.shape == kernel.shape}
        # Metric state and seed generators are replicated on the mesh.
        metric = lm.metrics.Mean()
        dropout = lm.layers.Dropout(0.5, seed=1)
        out["replicated_state"] = {v.path: (v.value.sharding.is_fully_replicated, len(v.value.sharding.device_set))
                                   for v in [*metric.variables, *dropout.variables, *opt.variables[:1]]}

    mesh = D.DeviceMesh((2, 4), ("batch", "model"))
    layout_map = D.LayoutMap(mesh, {r".*wide/kernel": ("batch", "model"), r".*kernel": (None, "model")})
    mp = D.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
    with mp.scope():
        out["digest_mp"], layers = seeded_digest(lm)
        out["mp"] = {v.path: {"spec": spec(v), "shards": shard_shapes(v)} for layer in layers for v in layer.weights}
        out["mp_data"] = list(mp.get_data_layout((16, 3)).spec)

    dp = D.DataParallel()
    with dp.scope():
        _, layers = seeded_digest(lm)
        out["dp_replicated"] = all(v.value.sharding.is_fully_replicated and len(v.value.sharding.device_set) == 8
                                   for layer in layers for v in layer.weights)
        x = jax.device_put(np.ones((16, 1024), np.float32), dp.get_data_layout((16, 1024)))
        out["dp_batch_shards"] = sorted({tuple(s.data.shape) for s in x.addressable_shards})

        # A custom compiled step whose first apply builds the optimizer inside the trace.
        model = lm.Sequential([lm.Input((1024,)), lm.layers.Dense(512, name="wide")])
        opt = lm.optimizers.Adam(1e-3)

        @lm.jit
        def step(x):
            loss_fn = lambda: jnp.mean(model(x) ** 2)
            loss, grads = lm.value_and_grad(loss_fn, model.trainable_weights)()
            opt.apply(grads, model.trainable_weights)
            return loss

        step(x)
        step(x)
        out["jit_step_slot_devices"] = sorted({len(v.value.sharding.device_set) for v in opt.variables})

    # FSDP memory: a model and its Adam state hold about 1/8 of their bytes on device 0, and a
    # layer built lazily inside a compiled step is placed too.
    with fsdp.scope():
        model = lm.Sequential([lm.layers.Dense(1024, name=f"d{i}") for i in range(4)])
        opt = lm.optimizers.Adam(1e-3)

        @lm.jit
        def fsdp_step(x):
            loss_fn = lambda: jnp.mean(model(x) ** 2)
            loss, grads = lm.value_and_grad(loss_fn, model.trainable_weights)()
            opt.apply(grads, model.trainable_weights)
            return loss

        fsdp_step(jnp.ones((8, 1024)))  # builds the layers and the optimizer inside the trace
        state = [*model.variables, *opt.variables]
        device0 = jax.devices()[0]
        out["fsdp_memory"] = {
            "total": sum(v.value.nbytes for v in state),
            "device0": sum(s.data.nbytes for v in state for s in v.value.addressable_shards if s.device == device0),
            "kernels_as_laid_out": all(v.value.sharding.is_equivalent_to(fsdp.get_variable_layout(v), 2)
                                       for v in model.variables if v.ndim == 2),
            "kernel_shards": sorted({tuple(s.data.shape) for v in model.variables if v.ndim == 2
                                     for s in v.value.addressable_shards}),
        }

    # Errors and rules that need an axis of more than one device.
    try:
        with mp.scope():
            lm.layers.Dense(6, name="odd").build((None, 4))
    except ValueError as e:
        out["indivisible_error"] = str(e)
    fsdp8 = D.FSDP(min_size=16)
    out["fsdp_dims"] = [fsdp8.sharded_dimension(s) for s in [(12, 64, 8), (6, 10), (8, 8), (2, 4)]]
    # Built before the distribution: explain says it is not placed yet.
    report = D.explain(before[0], fsdp)
    out["explain_before"] = {r["path"]: r["note"] for r in report.rows}

    # Unseeded initializers are programs with the seed as a constant: none goes to the
    # persistent compilation cache (it would grow by one file per variable per run).
    cache_dir = os.environ["LAMINA_COMPILATION_CACHE"]
    if os.path.isdir(cache_dir):
        def files():
            return sum(len(names) for _, _, names in os.walk(cache_dir))

        before_init = files()
        with D.FSDP(min_size=16).scope():
            for i in range(3):
                lm.layers.Dense(64, name=f"cached_{i}").build((None, 32))
        after_init = files()
        jax.jit(lambda a: a * 3)(jnp.ones(5))
        out["cache"] = {"initializers": after_init - before_init, "other": files() - after_init}

    # Set globally instead of scoped, and a variable made directly with lm.Variable.
    D.set_distribution(D.FSDP(min_size=8))
    try:
        v = lm.Variable("ones", shape=(4, 16), name="table")
        frozen = lm.Variable(np.ones((4, 16), np.float32), trainable=False, name="frozen")
        explicit = lm.Variable(np.arange(16.0), layout=D.TensorLayout(("batch",)), name="explicit")
        out["global"] = {"table": spec(v), "frozen_replicated": frozen.value.sharding.is_fully_replicated,
                         "explicit": shard_shapes(explicit), "explicit_values": np.asarray(explicit).tolist()}
    finally:
        D.set_distribution(None)
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
