"""One process of test_two_processes.py: two processes (4 CPU devices each) train one data
parallel model, each feeding its half of every global batch; or, with ``reference``, the same
training in one process on 8 devices. Prints one JSON line."""

import json
import os
import sys

import numpy as np

BATCH = 64
# "0" / "1": a process of the pair; "reference": one process, 8 devices. Set when run as a
# script (pytest also imports this file, to collect doctests: nothing may run then).
MODE = None


def configure(mode: str) -> None:
    """The devices, before JAX starts (lamina is imported after this)."""
    global MODE
    MODE = mode
    os.environ["JAX_PLATFORMS"] = "cpu"
    # Intra-op threads off: see training_script.py (a device waiting for pool threads that the
    # others hold at a collective).
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + (f" --xla_force_host_platform_device_count={8 if MODE == 'reference' else 4} "
                               "--xla_cpu_multi_thread_eigen=false")


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(1280, 16)).astype("float32"), rng.integers(0, 4, size=1280)


def halves(a, process, processes=2):
    """This process's rows of every global batch: rows [32p, 32p + 32) of each 64."""
    per = BATCH // processes
    batches = a.reshape(-1, BATCH, *a.shape[1:])
    return batches[:, process * per:(process + 1) * per].reshape(-1, *a.shape[1:])


def main():
    import jax

    import lamina as lm

    if MODE != "reference":
        lm.distribution.initialize(f"localhost:{sys.argv[2]}", num_processes=2, process_id=int(MODE))
    lm.distribution.set_distribution(lm.distribution.DataParallel())
    lm.utils.set_random_seed(0)
    model = lm.Sequential([lm.Input((16,)), lm.layers.Dense(32, activation="relu"),
                           lm.layers.BatchNormalization(), lm.layers.Dense(4)])
    model.compile(lm.optimizers.Adam(1e-2), lm.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    x, y = data()
    if MODE != "reference":
        x, y = halves(x, int(MODE)), halves(y, int(MODE))
    found = {"processes": jax.process_count(), "devices": len(jax.devices()),
             "local_devices": len(jax.local_devices()), "rows": int(x.shape[0])}
    history = model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    found["loss"] = history.history["loss"]
    if MODE == "reference":
        # The global batches the pair's evaluate makes from 518 rows each: 16 whole batches,
        # then 6 rows of each process (12 rows, which 8 devices do not divide: replicated).
        index = np.concatenate([np.arange(1024), 1024 + np.arange(6), 1024 + 32 + np.arange(6)])
        found["evaluate"] = model.evaluate(x[index], y[index], batch_size=BATCH, verbose=0, return_dict=True)
        found["predict"] = model.predict(x, batch_size=BATCH, verbose=0).tolist()
    else:
        found["evaluate"] = model.evaluate(x[:518], y[:518], batch_size=BATCH, verbose=0, return_dict=True)
        found["predict"] = model.predict(x[:100], batch_size=BATCH, verbose=0).tolist()
    # Replicated weights: every device holds the whole array, so a local shard is the value.
    found["weights"] = [np.asarray(w.value.addressable_shards[0].data).tolist() for w in model.weights]
    try:
        model.fit(x, y, batch_size=BATCH - 1, epochs=1, verbose=0)
        found["odd_batch_error"] = None
    except ValueError as error:
        found["odd_batch_error"] = str(error)
    # Process 1 passes fewer samples: it would run fewer steps and leave process 0 waiting.
    fewer = x[:-BATCH // 2] if MODE == "1" else x
    try:
        model.fit(fewer, y[:len(fewer)], batch_size=BATCH, epochs=1, verbose=0)
        found["uneven_processes_error"] = None
    except ValueError as error:
        found["uneven_processes_error"] = str(error)
    print(json.dumps(found))


if __name__ == "__main__":
    configure(sys.argv[1])
    main()
