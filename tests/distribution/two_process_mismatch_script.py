"""One process of test_program_mismatch.py: two processes (4 CPU devices each, data parallel)
that run *different* programs, one difference at a time: a wider layer, one layer more, another
optimizer or learning rate, other fit arguments, evaluate against fit, a model built by its
first batch, a sharded checkpoint of different models, *_on_batch calls that differ, a
checkpoint loaded into different models or from a missing file, a BackupAndRestore that finds
a backup in one process only. Each attempt must fail in both processes with the same message
before any step runs, which leaves them in step for the next; a last, matching fit shows that.
Prints one JSON line: {attempt: message or None}, plus what the checks of the matching runs saw.

    python two_process_mismatch_script.py PROCESS_ID PORT CHECKPOINT_FOLDER
"""

import json
import os
import sys

import numpy as np

BATCH = 32


def main(me: int, port: str, folder: str) -> None:
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4 --xla_cpu_multi_thread_eigen=false"
    import lamina as lm

    lm.distribution.initialize(f"localhost:{port}", num_processes=2, process_id=me)
    lm.distribution.set_distribution(lm.distribution.DataParallel())
    rng = np.random.default_rng(me)  # each process its own rows
    x, y = rng.normal(size=(64, 8)).astype("float32"), rng.integers(0, 4, size=64)
    other = me == 1  # process 1 is the one that differs

    def model(width=16, extra_layer=False, built=True, optimizer=None, spe=1):
        lm.utils.set_random_seed(0)
        layers = [lm.Input((8,))] if built else []
        layers += [lm.layers.Dense(width, activation="relu", name="hidden")]
        if extra_layer:
            layers.append(lm.layers.Dense(width, name="extra"))
        layers.append(lm.layers.Dense(4, name="out"))
        m = lm.Sequential(layers)
        m.compile(optimizer or lm.optimizers.Adam(1e-2), lm.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=spe)
        return m

    def fit(m, **kwargs):
        return m.fit(x, y, **{"batch_size": BATCH, "epochs": 1, "shuffle": False, "verbose": 0, **kwargs})

    attempts = {
        "width": lambda: fit(model(width=8 if other else 16)),
        "layer_count": lambda: fit(model(extra_layer=other)),
        "optimizer": lambda: fit(model(optimizer=lm.optimizers.SGD(1e-2) if other else None)),
        # A learning rate is a variable made from a host value: JAX compares it across processes.
        "learning_rate": lambda: model(optimizer=lm.optimizers.Adam(1e-3) if other else None),
        "beta_1": lambda: fit(model(optimizer=lm.optimizers.Adam(1e-2, beta_1=0.8) if other else None)),
        "epochs": lambda: fit(model(), epochs=3 if other else 2),
        "batch_size": lambda: fit(model(), batch_size=BATCH // 2 if other else BATCH),
        "steps_per_execution": lambda: fit(model(spe=2 if other else 1)),
        "evaluate_against_fit": lambda: (model().evaluate(x, y, batch_size=BATCH, verbose=0) if other
                                         else fit(model())),
        "built_by_first_batch": lambda: fit(model(width=8 if other else 16, built=False)),
        "checkpoint": lambda: model(width=8 if other else 16).save_weights(os.path.join(folder, "w.safetensors")),
    }
    # Files the loading attempts read: written by both processes together (sharded folders).
    weights_path, model_path = os.path.join(folder, "good.safetensors"), os.path.join(folder, "good.lamina")
    backups = os.path.join(folder, "backup")
    # One model serves the attempts that leave it as it is (building one costs ~0.5 s of CPU).
    # Where a process needs another model, both build one: building places variables on the
    # mesh, which the processes do together.
    saved = model()
    fit(saved, callbacks=[lm.callbacks.BackupAndRestore(backups, delete_checkpoint=False)])
    saved.save_weights(weights_path)  # with the optimizer's state
    saved.save(model_path)
    found = {}

    def load_into_other_width():
        m = model(width=8 if other else 16)
        before = [np.asarray(s.data) for v in m.weights for s in v.value.addressable_shards]
        try:
            m.load_weights(weights_path)
        finally:
            after = [np.asarray(s.data) for v in m.weights for s in v.value.addressable_shards]
            found["unchanged_after_refused_load"] = all(np.array_equal(a, b) for a, b in zip(before, after))

    attempts.update({
        "train_on_batch_width": lambda: model(width=8 if other else 16).train_on_batch(x[:16], y[:16]),
        "on_batch_kind": lambda: (saved.test_on_batch(x[:16], y[:16]) if other
                                  else saved.train_on_batch(x[:16], y[:16])),
        "predict_on_batch_width": lambda: model(width=8 if other else 16).predict_on_batch(x[:16]),
        "load_weights_into_other_model": load_into_other_width,
        "load_weights_missing_file": lambda: saved.load_weights(
            os.path.join(folder, "absent.safetensors") if other else weights_path),
        "load_model_of_weights_only": lambda: lm.load_model(weights_path if other else model_path),
        "restore_backup_in_one_process": lambda: fit(saved, callbacks=[lm.callbacks.BackupAndRestore(
            backups if other else os.path.join(folder, "no_backup"))]),
    })
    for name, attempt in attempts.items():
        try:
            attempt()
            found[name] = None
        except Exception as error:  # noqa: BLE001 - whatever it is, both must raise it
            found[name] = f"{type(error).__name__}: {error}"
    # Still in step after all those refusals: the same program trains in both.
    history = fit(model(), epochs=2)
    found["matching_fit_loss"] = history.history["loss"]
    # Matching loads and *_on_batch calls run, and compare their program only when it may change.
    from lamina.distribution import consistency

    compared, check = [], consistency.check_same_in_every_process

    def counted(what, *args, **kwargs):
        compared.append(what)
        return check(what, *args, **kwargs)

    consistency.check_same_in_every_process = counted
    loaded = lm.load_model(model_path)
    loaded.load_weights(weights_path)
    found["loaded_kernel_sum"] = float(np.sum(loaded.get_layer("hidden").kernel.value.addressable_shards[0].data))
    found["on_batch_losses"] = [loaded.train_on_batch(x[:16], y[:16]) for _ in range(4)]
    found["test_on_batch"] = loaded.test_on_batch(x[:16], y[:16])
    found["predict_on_batch_shape"] = list(loaded.predict_on_batch(x[:16]).shape)
    found["compared"] = compared
    print(json.dumps(found))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
