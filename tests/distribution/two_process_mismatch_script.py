"""One process of test_program_mismatch.py: two processes (4 CPU devices each, data parallel)
that run *different* programs, one difference at a time: a wider layer, one layer more, another
optimizer or learning rate, other fit arguments, evaluate against fit, a model built by its
first batch, a sharded checkpoint of different models. Each attempt must fail in both
processes with the same message before any step runs, which leaves them in step for the
next; a last, matching fit shows that. Prints one JSON line: {attempt: message or None}.

    python two_process_mismatch_script.py PROCESS_ID PORT CHECKPOINT_FOLDER
"""

import json
import os
import sys

import numpy as np

BATCH = 32


def main(me: int, port: str, folder: str) -> None:
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4 --xla_cpu_multi_thread_eigen=false"
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
    found = {}
    for name, attempt in attempts.items():
        try:
            attempt()
            found[name] = None
        except (ValueError, AssertionError) as error:
            found[name] = f"{type(error).__name__}: {error}"
    # Still in step after all those refusals: the same program trains in both.
    history = fit(model(), epochs=2)
    found["matching_fit_loss"] = history.history["loss"]
    print(json.dumps(found))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
