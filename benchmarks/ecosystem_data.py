"""How fast does ``fit`` read a tf.data pipeline or a PyTorch DataLoader? Against the same data
as NumPy arrays, and against hand-written ``jax.jit`` + optax loops fed by the same pipelines.

One case: MLP 64-64-10 (ReLU), batch 128, Adam(1e-3), sparse cross-entropy on logits, 16,384
synthetic samples (float32 features, integer labels of a random linear "teacher"; seed 0),
128 steps per epoch, no shuffling anywhere (the pipelines' order is the arrays' order).
Contenders, each one whole epoch per repeat:

- ``lamina arrays``: ``fit(x, y, batch_size=128, shuffle=False)`` (the arrays' device copy);
- ``lamina tf.data``: ``fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(128).prefetch(2))``;
- ``lamina torch``: ``fit(DataLoader(TensorDataset(x, y), batch_size=128))``;
- ``hand tf.data`` / ``hand torch``: a per-step ``jax.jit`` + optax loop (parameters and
  optimizer state donated) over ``dataset.as_numpy_iterator()`` / the loader's batches
  (``tensor.numpy()``), what a JAX user writes around these pipelines.

lamina runs with its defaults (``steps_per_execution="auto"``, ``verbose=0``). Method as in
``benchmarks/fit.py``: a warm-up epoch each (compilation), then repeats of one epoch per
contender, the order rotating; an epoch ends when its loss is a Python float. Reported: each
contender's median epoch time and steps/s, and medians of per-repeat ratios: each pipeline fed
to lamina against lamina on arrays, and lamina against the hand loop on the same pipeline.
No timed epoch may compile (``benchmarks/compile_counter.py``).

    python benchmarks/ecosystem_data.py            # about 3 minutes on 2 busy cores
    python benchmarks/ecosystem_data.py --quick    # well under a minute, rougher numbers
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import compile_counter  # noqa: E402  (benchmarks/compile_counter.py, beside this script)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import report  # noqa: E402  (benchmarks/report.py, beside this script)

import lamina as lm  # noqa: E402

N, FEATURES, CLASSES, BATCH = 16_384, 64, 10, 128


def make_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, FEATURES)).astype(np.float32)
    teacher = rng.normal(size=(FEATURES, CLASSES)).astype(np.float32)
    return x, np.argmax(x @ teacher, axis=1).astype(np.int32)


def make_model():
    lm.random.set_seed(0)
    model = lm.Sequential([
        lm.Input((FEATURES,)),
        lm.layers.Dense(64, activation="relu"),
        lm.layers.Dense(CLASSES),
    ])
    model.compile(lm.optimizers.Adam(1e-3), lm.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def hand_loop(initial_weights):
    """A jitted Adam step on one batch; returns ``epoch(batches) -> mean loss``."""
    optimizer = optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-7)

    def loss_fn(params, x, y):
        (w1, b1, w2, b2) = params
        logits = jax.nn.relu(x @ w1 + b1) @ w2 + b2
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(params, state, total, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, total + loss

    step = jax.jit(step.__wrapped__, donate_argnums=(0, 1, 2))
    params = [jnp.asarray(w) for w in initial_weights]
    carry = {"params": params, "state": optimizer.init(params)}

    def epoch(batches):
        total, count = jnp.zeros(()), 0
        for x, y in batches:
            carry["params"], carry["state"], total = step(carry["params"], carry["state"], total, x, y)
            count += 1
        return float(total) / count

    return epoch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 3 if args.quick else 9

    import tensorflow as tf
    import torch

    x, y = make_data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).prefetch(2)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=BATCH
    )
    models = {name: make_model() for name in ("lamina arrays", "lamina tf.data", "lamina torch")}
    initial = [np.asarray(w) for w in models["lamina arrays"].get_weights()]
    hand_tf, hand_torch = hand_loop(initial), hand_loop(initial)

    def fit(model, *data, **kwargs):
        return lambda: float(model.fit(*data, epochs=1, verbose=0, **kwargs).history["loss"][-1])

    contenders = {
        "lamina arrays": fit(models["lamina arrays"], x, y, batch_size=BATCH, shuffle=False),
        "lamina tf.data": fit(models["lamina tf.data"], dataset),
        "lamina torch": fit(models["lamina torch"], loader),
        "hand tf.data": lambda: hand_tf(dataset.as_numpy_iterator()),
        "hand torch": lambda: hand_torch((bx.numpy(), by.numpy()) for bx, by in loader),
    }
    names = list(contenders)
    warm = {name: run() for name, run in contenders.items()}  # compiles; the first epoch's loss
    times = {name: [] for name in names}
    compiled = compile_counter.compilations()
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    recompiles = compile_counter.compilations() - compiled

    steps = N // BATCH

    def ratio(a, b):  # a's steps/s over b's, median of the per-repeat ratios
        return statistics.median(tb / ta for ta, tb in zip(times[a], times[b]))

    print(f"load average {os.getloadavg()[0]:.2f}; {repeats} repeats; compilations in timed epochs: {recompiles}")
    print("loss after the warm-up epoch: " + ", ".join(f"{n} {v:.4f}" for n, v in warm.items()))
    report.print_table(
        "Epoch of 128 steps (MLP 64-64-10, batch 128)",
        ["contender", "epoch s (median)", "steps/s"],
        [[n, f"{statistics.median(times[n]):.4f}", f"{steps / statistics.median(times[n]):.0f}"] for n in names],
        right_aligned=("epoch s (median)", "steps/s"),
    )
    report.print_table(
        "Ratios of steps/s (median of per-repeat ratios)",
        ["ratio", "value"],
        [
            ["lamina tf.data / lamina arrays", f"{ratio('lamina tf.data', 'lamina arrays'):.2f}"],
            ["lamina torch / lamina arrays", f"{ratio('lamina torch', 'lamina arrays'):.2f}"],
            ["lamina tf.data / hand tf.data", f"{ratio('lamina tf.data', 'hand tf.data'):.2f}"],
            ["lamina torch / hand torch", f"{ratio('lamina torch', 'hand torch'):.2f}"],
        ],
        right_aligned=("value",),
    )
    if recompiles:
        raise SystemExit(f"{recompiles} compilations happened in timed epochs")


if __name__ == "__main__":
    main()
