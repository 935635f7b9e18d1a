"""How fast are lamina's layers in training? Per-step time of lamina vs hand-written JAX and Keras 3.

Two rows, on synthetic data, training on the CPU (seed 0):

- **convnet**: the Keras MNIST convnet (Conv2D 32 3x3 ReLU, MaxPooling2D 2, Conv2D 64 3x3 ReLU,
  MaxPooling2D 2, Flatten, Dropout 0.5, Dense 10 on logits), inputs (28, 28, 1), batch 128,
  Adam(1e-3), sparse cross-entropy from logits. Contenders:
  (1) ``lamina fit``: ``model.fit(x, y, batch_size=128, epochs=1, verbose=0)`` on STEPS x 128
      samples (default ``steps_per_execution``, shuffling on), one call = STEPS steps;
  (2) ``hand, reduce_window``: a hand-written ``jax.jit`` step (``lax.conv_general_dilated``,
      ``lax.reduce_window`` max-pooling, dropout by ``jax.random.bernoulli``, optax adam with
      Keras's defaults), parameters, optimizer state and key donated, called STEPS times on
      batches already on the device;
  (3) ``hand, reshape max``: the same step with max-pooling by reshape-and-max (what lamina's
      ``MaxPooling2D`` does when ``strides == pool_size``);
  (4) ``keras fit``: Keras 3 on JAX, the same model, data, initial weights and ``fit`` call.
  Ratio "it / lamina" = the contender's step time over lamina's (> 1: lamina is faster).
  Target: lamina >= 2x Keras 3 on JAX.
- **transformer block** (only when ``lamina.layers.attention.MultiHeadAttention`` imports):
  pre-LN block, d_model 256, seq 128, batch 8: ``x + MHA(LN(x))`` (4 heads, key_dim 64),
  then ``h + Dense 256(ReLU(Dense 1024(LN(h))))``; a forward + backward + SGD step on the mean
  square of the output, written statefully and compiled with ``lm.jit`` / ``lm.value_and_grad``,
  vs the same pure function (``jax.nn.dot_product_attention``, as lamina's MHA uses) in a
  hand-written ``jax.jit`` with the parameters donated. Target: hand / lamina >= 0.95x.

Method (as in overhead.py and fit.py): after warm-up calls (compilation), each repeat runs one
unit of every contender (STEPS steps, ending on a Python float or ``block_until_ready``), the
order rotating from repeat to repeat. "ms/step" is each contender's median over the repeats;
ratios are medians of the per-repeat ratios (both units of a repeat ran under the same load).
Timed units that compiled anything are counted (``jax.monitoring``) and reported.

    python benchmarks/layers.py              # full run (a few minutes on 2 busy cores)
    python benchmarks/layers.py --quick      # about a minute, rougher numbers
    python benchmarks/layers.py --markdown   # also print the table as Markdown
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import compile_counter  # noqa: E402  (benchmarks/compile_counter.py, beside this script)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import report  # noqa: E402  (benchmarks/report.py, beside this script)
from jax import lax  # noqa: E402

import lamina as lm  # noqa: E402

SEED = 0
BATCH = 128
CLASSES = 10
LEARNING_RATE = 1e-3



# -- timing ---------------------------------------------------------------------------------


def interleave(units: dict[str, Callable[[], object]], steps: int, repeats: int, warmup: int = 2):
    """Seconds per step of every unit for each repeat, the order rotating (ABC, BCA, CAB, ...).
    Returns ({name: [s/step, ...]}, compilations seen during timed units)."""
    for fn in units.values():
        for _ in range(warmup):
            jax.block_until_ready(fn())
    names = list(units)
    times = {n: [] for n in names}
    compiles_before = compile_counter.compilations()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(repeats):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                start = time.perf_counter()
                jax.block_until_ready(units[name]())
                times[name].append((time.perf_counter() - start) / steps)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times, compile_counter.compilations() - compiles_before


@dataclass
class Line:
    row: str
    contender: str
    ms: float
    ratio: float | None  # the contender's time / lamina's (median of per-repeat ratios)
    target: str = "-"
    verdict: str = "-"


def lines_for(row: str, times: dict[str, list[float]], lamina: str, targets: dict[str, float]) -> list[Line]:
    out = []
    for name, ts in times.items():
        ms = statistics.median(ts) * 1e3
        if name == lamina:
            out.append(Line(row, name, ms, None))
            continue
        ratio = statistics.median(t / l for t, l in zip(ts, times[lamina]))
        line = Line(row, name, ms, ratio)
        if name in targets:
            line.target = f">= {targets[name]}x"
            line.verdict = "meets" if ratio >= targets[name] else "misses"
        out.append(line)
    return out


# -- convnet --------------------------------------------------------------------------------


def conv_data(steps: int):
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((steps * BATCH, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, CLASSES, steps * BATCH).astype(np.int32)
    return x, y


def lamina_convnet():
    L = lm.layers
    model = lm.Sequential([
        L.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        L.MaxPooling2D((2, 2)),
        L.Conv2D(64, (3, 3), activation="relu"),
        L.MaxPooling2D((2, 2)),
        L.Flatten(),
        L.Dropout(0.5),
        L.Dense(CLASSES),
    ])
    model.compile(optimizer=lm.optimizers.Adam(LEARNING_RATE),
                  loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def keras_convnet(weights):
    import keras

    keras.utils.set_random_seed(SEED)
    K = keras.layers
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        K.Conv2D(32, (3, 3), activation="relu"),
        K.MaxPooling2D((2, 2)),
        K.Conv2D(64, (3, 3), activation="relu"),
        K.MaxPooling2D((2, 2)),
        K.Flatten(),
        K.Dropout(0.5),
        K.Dense(CLASSES),
    ])
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def pool_reduce_window(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def pool_reshape(x):
    b, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return jnp.max(x.reshape(b, h // 2, 2, w // 2, 2, c), axis=(2, 4))


def conv(x, w, b):
    y = lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jax.nn.relu(y + b)


def convnet_forward(params, x, key, pool):
    w1, b1, w2, b2, w3, b3 = params
    x = pool(conv(x, w1, b1))
    x = pool(conv(x, w2, b2))
    x = x.reshape(x.shape[0], -1)
    keep = jax.random.bernoulli(key, 0.5, x.shape)
    x = jnp.where(keep, x / 0.5, 0.0)
    return x @ w3 + b3


def hand_convnet(weights, x, y, steps, pool):
    optimizer = optax.adam(LEARNING_RATE, b1=0.9, b2=0.999, eps=1e-7)

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def step(params, opt_state, key, xb, yb):
        key, sub = jax.random.split(key)

        def loss_fn(params):
            logits = convnet_forward(params, xb, sub, pool)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, key, loss

    batches = [(jax.device_put(x[i * BATCH:(i + 1) * BATCH]), jax.device_put(y[i * BATCH:(i + 1) * BATCH]))
               for i in range(steps)]
    params = [jnp.array(w) for w in weights]
    state = {"params": params, "opt": optimizer.init(params), "key": jax.random.key(SEED)}

    def unit():
        losses = []
        for xb, yb in batches:
            state["params"], state["opt"], state["key"], loss = step(state["params"], state["opt"], state["key"], xb, yb)
            losses.append(loss)
        return float(sum(losses)) / len(losses)

    return unit


def convnet_row(steps, repeats):
    x, y = conv_data(steps)
    lm.random.set_seed(SEED)
    model = lamina_convnet()
    weights = [np.asarray(w.value) for w in model.weights]
    kmodel = keras_convnet(weights)

    def lamina_unit():
        return float(model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0).history["loss"][-1])

    def keras_unit():
        return float(kmodel.fit(x, y, batch_size=BATCH, epochs=1, verbose=0).history["loss"][-1])

    units = {
        "lamina fit": lamina_unit,
        "hand, reduce_window": hand_convnet(weights, x, y, steps, pool_reduce_window),
        "hand, reshape max": hand_convnet(weights, x, y, steps, pool_reshape),
        "keras fit": keras_unit,
    }
    losses = {name: fn() for name, fn in units.items()}  # first call: compilation, and a sanity check
    print("convnet, mean loss of the first epoch: " + ", ".join(f"{n} {v:.3f}" for n, v in losses.items()), flush=True)
    times, compiles = interleave(units, steps, repeats, warmup=1)
    return lines_for("convnet, batch 128", times, "lamina fit", {"keras fit": 2.0}), compiles


# -- transformer block ----------------------------------------------------------------------

D_MODEL, HEADS, KEY_DIM, HIDDEN, SEQ, TBATCH = 256, 4, 64, 1024, 128, 8
SGD_LR = 0.01


def transformer_row(steps, repeats):
    try:
        from lamina.layers.attention import MultiHeadAttention
    except ImportError:
        return None, 0

    class Block(lm.Layer):
        def __init__(self):
            super().__init__()
            self.ln1 = lm.layers.LayerNormalization()
            self.mha = MultiHeadAttention(HEADS, KEY_DIM)
            self.ln2 = lm.layers.LayerNormalization()
            self.fc1 = lm.layers.Dense(HIDDEN, activation="relu")
            self.fc2 = lm.layers.Dense(D_MODEL)

        def call(self, x):
            h = self.ln1(x)
            x = x + self.mha(h, h)
            return x + self.fc2(self.fc1(self.ln2(x)))

    x = jax.random.normal(jax.random.key(SEED), (TBATCH, SEQ, D_MODEL))
    lm.random.set_seed(SEED)
    block = Block()
    block(x)
    weights = block.trainable_weights
    loss_and_grads = lm.value_and_grad(lambda x: jnp.mean(block(x) ** 2), weights)

    @lm.jit
    def lamina_step(x):
        loss, grads = loss_and_grads(x)
        for w, g in zip(weights, grads):
            w.assign_sub(SGD_LR * g)
        return loss

    names = [(w.name, tuple(w.shape)) for w in weights]
    expected = [("gamma", (256,)), ("beta", (256,))] + [("kernel", (256, 4, 64)), ("bias", (4, 64))] * 3 + [
        ("kernel", (4, 64, 256)), ("bias", (256,)), ("gamma", (256,)), ("beta", (256,)),
        ("kernel", (256, 1024)), ("bias", (1024,)), ("kernel", (1024, 256)), ("bias", (256,))]
    assert names == expected, names

    def layer_norm(x, g, b, eps=1e-3):
        mean = x.mean(-1, keepdims=True)
        var = jnp.square(x - mean).mean(-1, keepdims=True)
        return (x - mean) * lax.rsqrt(var + eps) * g + b

    def block_ref(p, x):
        g1, be1, wq, bq, wk, bk, wv, bv, wo, bo, g2, be2, w1, b1, w2, b2 = p
        h = layer_norm(x, g1, be1)
        q = jnp.einsum("btd,dhk->bthk", h, wq) + bq
        k = jnp.einsum("btd,dhk->bthk", h, wk) + bk
        v = jnp.einsum("btd,dhk->bthk", h, wv) + bv
        a = jax.nn.dot_product_attention(q, k, v, scale=1.0 / KEY_DIM ** 0.5)
        x = x + jnp.einsum("bthk,hkd->btd", a, wo) + bo
        h = jax.nn.relu(layer_norm(x, g2, be2) @ w1 + b1)
        return x + h @ w2 + b2

    @functools.partial(jax.jit, donate_argnums=(0,))
    def hand_step(p, x):
        loss, grads = jax.value_and_grad(lambda p: jnp.mean(block_ref(p, x) ** 2))(p)
        return [w - SGD_LR * g for w, g in zip(p, grads)], loss

    # Same initial weights; the first step of each must give the same loss.
    state = {"p": [jnp.array(w.value, copy=True) for w in weights]}
    ref_loss = float(jax.jit(lambda p, x: jnp.mean(block_ref(p, x) ** 2))(state["p"], x))
    lam_loss = float(jnp.mean(block(x) ** 2))
    print(f"transformer block, initial loss: lamina {lam_loss:.6f}, hand {ref_loss:.6f}", flush=True)

    def lamina_unit():
        for _ in range(steps):
            loss = lamina_step(x)
        return loss

    def hand_unit():
        for _ in range(steps):
            state["p"], loss = hand_step(state["p"], x)
        return loss

    units = {"lamina lm.jit step": lamina_unit, "hand jax.jit+donate": hand_unit}
    times, compiles = interleave(units, steps, repeats, warmup=2)
    return lines_for("transformer block fwd+bwd", times, "lamina lm.jit step", {"hand jax.jit+donate": 0.95}), compiles


# -- report ---------------------------------------------------------------------------------

HEADER = ("row", "contender", "ms/step", "it / lamina", "target", "")


def cells(lines: list[Line]) -> list[tuple[str, ...]]:
    return [(l.row, l.contender, f"{l.ms:.2f}", "-" if l.ratio is None else f"{l.ratio:.2f}x", l.target, l.verdict)
            for l in lines]


def print_table(lines: list[Line], title: str) -> None:
    report.print_table(title, HEADER, cells(lines), right_aligned=("ms/step", "it / lamina"), width=110)


def print_markdown(lines: list[Line]) -> None:
    """The same table as Markdown, for benchmarks/RESULTS.md."""
    report.print_markdown(HEADER, cells(lines))


def main(argv=None) -> list[Line]:
    parser = argparse.ArgumentParser(description="lamina layers' training step time vs hand JAX and Keras.")
    parser.add_argument("--quick", action="store_true", help="few repeats: a rough number fast")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args(argv)
    conv_steps, conv_repeats, t_steps, t_repeats = (8, 3, 2, 5) if args.quick else (16, 11, 4, 21)

    lines, compiles = [], 0
    conv_lines, c = convnet_row(conv_steps, conv_repeats)
    lines += conv_lines
    compiles += c
    t_lines, c = transformer_row(t_steps, t_repeats)
    compiles += c
    if t_lines is None:
        print("transformer block row skipped: lamina.layers.attention.MultiHeadAttention is not importable")
    else:
        lines += t_lines

    title = (f"lamina layers, training step time, median of {conv_repeats} (convnet, {conv_steps} steps each) / "
             f"{t_repeats} (transformer, {t_steps} steps each) interleaved repeats "
             f"(jax {jax.__version__}, {jax.devices()[0].platform}, {os.cpu_count()} cores)")
    print_table(lines, title)
    print(f"compilations during timed units: {compiles}")
    for l in lines:
        if l.verdict != "-":
            print(f"target {l.row}: lamina vs {l.contender} {l.ratio:.2f}x, {l.target}: {l.verdict}")
    if args.markdown:
        print_markdown(lines)
    return lines


if __name__ == "__main__":
    main()
