"""Sharded checkpoints on 8 simulated CPU devices, run as one subprocess by
test_sharded_checkpoints.py (the device count must be set before JAX starts). Prints one JSON
object of findings on its last line."""

import json
import os
import sys
import tempfile


def main():
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax
    import jax.numpy as jnp
    import numpy as np

    import lamina as lm
    from lamina.saving import shard_index
    from lamina.saving.model_file import save_model
    from lamina.saving.sharded import save_weights_sharded

    D = lm.distribution
    devices = jax.devices()
    out = {"devices": len(devices)}
    folder = tempfile.mkdtemp()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 16)).astype("float32")
    y = rng.normal(size=(16, 8)).astype("float32")

    def make(distribution):
        """An MLP built under ``distribution`` (None: one device) with its Adam state built."""
        def build():
            lm.random.set_seed(3)
            model = lm.Sequential([lm.Input((16,)), lm.layers.Dense(32, name="dense_a"),
                                   lm.layers.Dense(32, name="dense_b"), lm.layers.Dense(8, name="dense_c")],
                                  name="mlp")
            model.compile(optimizer=lm.optimizers.Adam(1e-2), loss="mse")
            model.optimizer.build(model.trainable_weights)
            return model
        if distribution is None:
            return build()
        with distribution.scope():
            return build()

    def train(model, steps):
        opt = model.optimizer

        @lm.jit
        def step(xb, yb):
            loss, grads = lm.value_and_grad(lambda: jnp.mean((model(xb) - yb) ** 2), model.trainable_weights)()
            opt.apply(grads, model.trainable_weights)
            return loss

        return [float(step(x, y)) for _ in range(steps)]

    def state(model):
        return [np.asarray(v.value) for v in [*model.weights, *model.optimizer.variables]]

    def equal(a, b):
        return len(a) == len(b) and all(u.dtype == v.dtype and np.array_equal(u, v) for u, v in zip(a, b))

    def shard_shapes(v):
        return sorted({tuple(s.data.shape) for s in v.value.addressable_shards})

    def describe(model):
        """Per variable: devices it spans and its shard shapes (kernels and their Adam slots)."""
        kernel = model.get_layer("dense_b").kernel
        mu = next(v for v in model.optimizer.variables if v.path.endswith("mu/mlp/dense_b/kernel")
                  or (v.shape == kernel.shape and "/mu/" in v.path and "dense_b" in v.path))
        return {"kernel_devices": len(kernel.value.sharding.device_set), "kernel_shards": shard_shapes(kernel),
                "mu_devices": len(mu.value.sharding.device_set), "mu_shards": shard_shapes(mu)}

    fsdp8 = D.FSDP(axis="batch", min_size=256)
    source = make(fsdp8)
    train(source, 3)  # distinct Adam slots, iterations 3
    out["source"] = describe(source)
    saved = state(source)
    weights_file = os.path.join(folder, "w.safetensors")
    weights_folder = os.path.join(folder, "w_sharded.safetensors")
    model_file = os.path.join(folder, "m.lamina")
    model_folder = os.path.join(folder, "m_sharded.lamina")
    source.save_weights(weights_file)  # one process: the single file, gathered per tensor
    save_weights_sharded(source, weights_folder)
    save_model(source, model_file)
    save_model(source, model_folder, sharded=True)
    out["folder_files"] = sorted(n.split("-")[0] for n in os.listdir(weights_folder))
    with open(os.path.join(weights_folder, "index.json")) as f:
        index = json.load(f)
    out["index_kernel_slices"] = len(index["tensors"]["dense_b/kernel"]["slices"])  # 8 shards, one each
    out["index_bias_slices"] = len(index["tensors"]["dense_b/bias"]["slices"])  # replicated: written once

    # Every read the loader makes, by region: a sharded target reads only its own part.
    reads = []
    original_read = shard_index.ShardedView.read

    def recording_read(self, key, index_):
        reads.append((key, shard_index.region(index_, self.entries[key].shape)))
        return original_read(self, key, index_)

    shard_index.ShardedView.read = recording_read

    mesh4 = D.DeviceMesh((4,), ("batch",), devices=devices[:4])
    tp_mesh = D.DeviceMesh((2, 4), ("batch", "model"))
    tp = D.ModelParallel(layout_map=D.LayoutMap(tp_mesh, {r".*kernel": (None, "model")}), batch_dim_name="batch")
    targets = {"fsdp4": lambda: D.FSDP(axis="batch", min_size=256, device_mesh=mesh4), "one": lambda: None,
               "tp": lambda: tp}
    restored = {}
    for name, distribution in targets.items():
        for path in (weights_file, weights_folder):
            reads.clear()
            model = make(distribution())
            model.load_weights(path)
            kind = "folder" if path == weights_folder else "file"
            out[f"{name}_{kind}_equal"] = equal(state(model), saved)
            out[f"{name}_{kind}_layout"] = describe(model)
            if kind == "folder":
                kernel_reads = [r for k, r in reads if k == "dense_b/kernel"]
                out[f"{name}_kernel_reads"] = sorted([list(a), list(b)] for a, b in kernel_reads)
            restored[name] = model
        for path in (model_file, model_folder):
            d = distribution()
            if d is None:
                model = lm.load_model(path)
            else:
                with d.scope():
                    model = lm.load_model(path)
            kind = "folder" if path == model_folder else "file"
            out[f"{name}_model_{kind}_equal"] = equal(state(model), saved)
            out[f"{name}_model_{kind}_layout"] = describe(model)
    shard_index.ShardedView.read = original_read

    # 5 more steps after restoring on 4 devices match 5 more steps of the uninterrupted run.
    out["continued_source"] = train(source, 5)
    out["continued_fsdp4"] = train(restored["fsdp4"], 5)
    out["continued_tp"] = train(restored["tp"], 5)
    out["continued_one"] = train(restored["one"], 5)
    final = state(source)
    out["final_max_diff"] = {name: max(float(np.max(np.abs(a - b))) for a, b in zip(final, state(restored[name])))
                             for name in ("fsdp4", "tp", "one")}
    fit_checks(out, lm, np, D, mesh4, folder)
    print(json.dumps(out))


def fit_checks(out, lm, np, D, mesh4, folder):
    """``fit`` under a distribution: ModelCheckpoint of an FSDP model, 5 more fitted steps after
    a restore on another mesh, and BackupAndRestore interrupted and resumed with data parallel."""
    rng = np.random.RandomState(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")

    def mlp(distribution, dropout=False):
        with distribution.scope():
            lm.random.set_seed(1234)
            layers = [lm.Input((6,)), lm.layers.Dense(64, activation="relu", name="hidden")]
            layers += [lm.layers.Dropout(0.25)] if dropout else []
            model = lm.Sequential(layers + [lm.layers.Dense(1, name="out")])
            model.compile(optimizer=lm.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
        return model

    def fit(model, distribution, **kwargs):
        with distribution.scope():
            return model.fit(x, y, verbose=0, **kwargs).history

    # ModelCheckpoint writes the FSDP model during fit; the file loads on one device.
    fsdp = D.FSDP(axis="batch", min_size=256)
    source = mlp(fsdp)
    path = os.path.join(folder, "fit-{epoch}.safetensors")
    fit(source, fsdp, batch_size=16, epochs=1, shuffle=False,
        callbacks=[lm.callbacks.ModelCheckpoint(path, monitor="loss", save_weights_only=True)])
    out["fit_kernel_devices"] = len(source.get_layer("hidden").kernel.value.sharding.device_set)
    single = mlp(D.DataParallel(devices=jax_devices()[:1]))
    single.load_weights(os.path.join(folder, "fit-1.safetensors"))
    out["model_checkpoint_equal"] = all(np.array_equal(a, b) for a, b in zip(source.get_weights(), single.get_weights()))

    # 5 more fitted steps (one batch each) after restoring on 4 devices match the source's.
    restored = mlp(D.FSDP(axis="batch", min_size=256, device_mesh=mesh4))
    restored.optimizer.build(restored.trainable_weights)
    restored.load_weights(os.path.join(folder, "fit-1.safetensors"))
    out["fit_restored_kernel_devices"] = len(restored.get_layer("hidden").kernel.value.sharding.device_set)
    more = {"batch_size": 16, "epochs": 5, "steps_per_epoch": 1, "shuffle": False}
    out["fit_more_source"] = fit(source, fsdp, **more)["loss"]
    out["fit_more_restored"] = fit(restored, D.FSDP(axis="batch", min_size=256, device_mesh=mesh4), **more)["loss"]
    out["fit_more_max_diff"] = max(float(np.max(np.abs(a - b)))
                                   for a, b in zip(source.get_weights(), restored.get_weights()))

    # BackupAndRestore with data parallel: interrupted mid-epoch (a fresh model and callback
    # then resume from the files alone, as after a kill), bit-identical to an uninterrupted run.
    class Interrupt(lm.callbacks.Callback):
        def __init__(self, at):
            super().__init__()
            self.at, self.epoch = at, None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == self.at:
                raise KeyboardInterrupt("killed")

    def run(backup_dir, at=(-1, -1)):
        dp = D.DataParallel()
        np.random.seed(0)
        model = mlp(dp, dropout=True)
        fit(model, dp, batch_size=8, epochs=2, shuffle=True,
            callbacks=[lm.callbacks.BackupAndRestore(backup_dir, save_freq=3), Interrupt(at)])
        return model

    reference = run(os.path.join(folder, "reference"))
    try:
        run(os.path.join(folder, "backup"), at=(1, 2))  # the last backup: after batch 0 of epoch 1
        out["backup_interrupted"] = False
    except KeyboardInterrupt:
        out["backup_interrupted"] = True
    resumed = run(os.path.join(folder, "backup"))
    kernel = resumed.get_layer("hidden").kernel.value
    out["backup_kernel_devices"] = len(kernel.sharding.device_set)
    out["backup_equal"] = all(
        np.array_equal(np.asarray(a.value), np.asarray(b.value))
        for a, b in zip([*reference.weights, *reference.optimizer.variables],
                        [*resumed.weights, *resumed.optimizer.variables]))
    out["backup_trained"] = not np.array_equal(reference.get_layer("hidden").kernel, mlp(D.DataParallel()).get_layer("hidden").kernel)


def jax_devices():
    import jax

    return jax.devices()


if __name__ == "__main__":
    sys.exit(main())
