"""One of the two processes of test_sharded_checkpoints.py's two-process test: joins a run of 2
processes with 4 CPU devices each, builds an FSDP model over the 8 devices, gives every weight
and optimizer slot known values, and saves them with ``model.save_weights`` (several
processes: a sharded checkpoint folder). Prints what it wrote as JSON."""

import json
import os
import sys


def known_values(variables):
    """The values each variable gets, the same in every process (and in the test)."""
    import numpy as np

    rng = np.random.default_rng(42)
    return [rng.normal(size=tuple(v.shape)).astype(v.dtype) if v.ndim else np.asarray(7, v.dtype)
            for v in variables]


def make_model(lm):
    model = lm.Sequential([lm.Input((16,)), lm.layers.Dense(32, name="dense_a"), lm.layers.Dense(8, name="dense_b")],
                          name="mlp")
    model.compile(optimizer=lm.optimizers.Adam(1e-2), loss="mse")
    model.optimizer.build(model.trainable_weights)
    return model


def main(process_id: int, port: str, path: str) -> None:
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    import lamina as lm

    lm.distribution.initialize(f"localhost:{port}", num_processes=2, process_id=process_id)
    import jax
    import numpy as np

    with lm.distribution.FSDP(axis="batch", min_size=256).scope():
        model = make_model(lm)
    variables = [*model.weights, *model.optimizer.variables]
    for variable, value in zip(variables, known_values(variables)):
        sharding = variable.value.sharding
        variable.assign(jax.make_array_from_callback(value.shape, sharding, lambda index, v=value: v[index]))
    kernel = model.get_layer("dense_a").kernel.value
    model.save_weights(path)
    files = sorted(os.listdir(path))
    # Loaded back by both processes into a fresh model: each reads only its own devices' parts.
    with lm.distribution.FSDP(axis="batch", min_size=256).scope():
        fresh = make_model(lm)
    fresh.load_weights(path)
    reloaded = [*fresh.weights, *fresh.optimizer.variables]
    equal = all(np.array_equal(np.asarray(shard.data), value[shard.index])
                for variable, value in zip(reloaded, known_values(reloaded))
                for shard in variable.value.addressable_shards)
    print(json.dumps({"processes": jax.process_count(), "devices": len(jax.devices()),
                      "kernel_devices": len(kernel.sharding.device_set),
                      "kernel_local_shards": len(kernel.addressable_shards), "files": files,
                      "reloaded_equal": equal,
                      "reloaded_kernel_devices": len(fresh.get_layer("dense_a").kernel.value.sharding.device_set)}))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
