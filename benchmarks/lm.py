"""How fast does lamina train a decoder-only language model under mixed bfloat16?

The model (GPT-2's shape): token embedding + learned positional embedding, ``depth``
Transformer blocks (pre-LayerNorm; causal ``MultiHeadAttention``; MLP width 4x with exact
GELU; residual connections), a final LayerNorm and a head tied to the token embedding (or a
separate ``Dense`` with ``--untied``). Policy ``"mixed_bfloat16"``: float32 weights and
optimizer state, bfloat16 matmuls and attention, float32 LayerNorm statistics, softmax and
loss (``--policy float32`` for the float32 baseline, the hand loops following suit).
AdamW(3e-4, weight decay 0.01), sparse cross-entropy on the logits of every position, random
token ids (seed 0).

Contenders, all from the same initial weights on the same batches, interleaved (ABC, BCA,
CAB, ...) in the same process:

- **lamina fit**: ``model.fit(x, y, batch_size, epochs=1, shuffle=False, verbose=0)`` over
  ``--steps`` batches per repeat, default ``steps_per_execution="auto"``;
- **hand step**: the same network written as a pure JAX function of a parameter pytree,
  ``jax.jit`` with parameters and optax state donated, one call per step;
- **hand scan**: the same step under ``lax.scan`` over ``--scan`` steps per call (the limit
  of dispatch overhead).

A repeat of a contender ends when its last loss is a Python float. ms/step is the median over
the repeats; the ratios are medians of per-repeat ratios (time of lamina / time of the hand
loop: below 1 is faster). MFU is model FLOPs per step over time and the device's peak
bfloat16 FLOP/s: FLOPs per token = 6 x (block parameters + head parameters) + 12 x depth x
width x seq (attention scores and their use, forward and backward; embeddings' lookups are
not FLOPs). The peak is ``--peak-tflops`` or a table (H100/H200 SXM: 989 TFLOP/s dense
bfloat16); on other devices (the CPU) MFU is n/a.

Sizes: ``--size tiny`` (2 blocks, width 64, seq 32, batch 8, vocabulary 256: seconds on a
CPU, what the test runs), ``--size 20m`` (6 blocks, width 512, 8 heads, seq 256, batch 32,
vocabulary 8192: 21M parameters) and ``--size 124m`` (GPT-2 small: 12 blocks, width 768, 12
heads, seq 1024, batch 16, vocabulary 50257: 124M parameters).

    python benchmarks/lm.py --size tiny            # seconds, on the CPU
    python benchmarks/lm.py --size 20m             # on a GPU
    python benchmarks/lm.py --size 124m --markdown
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time
from dataclasses import dataclass

import compile_counter  # benchmarks/compile_counter.py, beside this script
import jax
import jax.numpy as jnp
import numpy as np
import optax
import report  # benchmarks/report.py, beside this script

import lamina as lm

SIZES = {
    "tiny": dict(vocab=256, seq=32, width=64, depth=2, heads=4, batch=8),
    "20m": dict(vocab=8192, seq=256, width=512, depth=6, heads=8, batch=32),
    "124m": dict(vocab=50257, seq=1024, width=768, depth=12, heads=12, batch=16),
}
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0}  # dense, SXM
LEARNING_RATE, WEIGHT_DECAY, EPSILON = 3e-4, 0.01, 1e-3


# -- the lamina model ------------------------------------------------------------------------


class Block(lm.Layer):
    """Pre-LayerNorm Transformer block: causal self-attention, then a GELU MLP."""

    def __init__(self, width, heads, **kwargs):
        super().__init__(**kwargs)
        self.ln1 = lm.layers.LayerNormalization(epsilon=EPSILON)
        self.attention = lm.layers.MultiHeadAttention(heads, width // heads)
        self.ln2 = lm.layers.LayerNormalization(epsilon=EPSILON)
        self.fc1 = lm.layers.Dense(4 * width, activation="gelu")
        self.fc2 = lm.layers.Dense(width)

    def call(self, x):
        a = self.ln1(x)
        x = x + self.attention(a, a, use_causal_mask=True)
        return x + self.fc2(self.fc1(self.ln2(x)))


class DecoderLM(lm.Model):
    """Token and positional embeddings, ``depth`` blocks, final LayerNorm, tied or untied head."""

    def __init__(self, vocab, seq, width, depth, heads, tied=True, **kwargs):
        super().__init__(**kwargs)
        init = lm.initializers.RandomNormal(stddev=0.02, seed=0)
        self.tokens = lm.layers.Embedding(vocab, width, embeddings_initializer=init)
        self.positions = lm.layers.Embedding(seq, width, embeddings_initializer=init)
        self.blocks = [Block(width, heads) for _ in range(depth)]
        self.norm = lm.layers.LayerNormalization(epsilon=EPSILON)
        self.head = None if tied else lm.layers.Dense(vocab, use_bias=False)

    def call(self, ids):
        h = self.tokens(ids) + self.positions(jnp.arange(ids.shape[1])[None])
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        if self.head is None:  # tied: the token embedding (read in bfloat16 here) is the head
            return jnp.einsum("btd,vd->btv", h, self.tokens.embeddings)
        return self.head(h)


def lamina_model(size, tied, policy="mixed_bfloat16"):
    lm.mixed_precision.set_dtype_policy(policy)
    try:
        model = DecoderLM(size["vocab"], size["seq"], size["width"], size["depth"], size["heads"], tied=tied)
        model.build((None, size["seq"]))  # traced, not run: no eager op to compile
    finally:
        lm.mixed_precision.set_dtype_policy("float32")
    model.compile(lm.optimizers.AdamW(LEARNING_RATE, weight_decay=WEIGHT_DECAY),
                  lm.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


# -- the same network by hand ------------------------------------------------------------------


def params_of(model):
    """The lamina model's weights as a pytree of float32 arrays (copies)."""
    def dense(layer):
        return {"kernel": jnp.array(layer.kernel.value), "bias": jnp.array(layer.bias.value)}

    def norm(layer):
        return {"gamma": jnp.array(layer.gamma.value), "beta": jnp.array(layer.beta.value)}

    blocks = []
    for block in model.blocks:
        mha = block.attention
        blocks.append({"ln1": norm(block.ln1), "ln2": norm(block.ln2), "fc1": dense(block.fc1),
                       "fc2": dense(block.fc2), "q": dense(mha.query_dense), "k": dense(mha.key_dense),
                       "v": dense(mha.value_dense), "o": dense(mha.output_dense)})
    params = {"tokens": jnp.array(model.tokens.embeddings.value),
              "positions": jnp.array(model.positions.embeddings.value),
              "blocks": blocks, "norm": norm(model.norm)}
    if model.head is not None:
        params["head"] = jnp.array(model.head.kernel.value)
    return params


COMPUTE = {"dtype": jnp.bfloat16}  # the hand loops' compute dtype (--policy)


def layer_norm(x, p):
    x32 = x.astype(jnp.float32)
    mean = jnp.mean(x32, -1, keepdims=True)
    var = jnp.var(x32, -1, keepdims=True)
    return ((x32 - mean) * jax.lax.rsqrt(var + EPSILON) * p["gamma"] + p["beta"]).astype(COMPUTE["dtype"])


def hand_logits(params, ids):
    bf = jax.tree_util.tree_map(lambda a: a.astype(COMPUTE["dtype"]), params)
    h = bf["tokens"][ids] + bf["positions"][jnp.arange(ids.shape[1])][None]
    for block, p32 in zip(bf["blocks"], params["blocks"]):
        a = layer_norm(h, p32["ln1"])
        q, k, v = (jnp.einsum("btd,dnh->btnh", a, block[n]["kernel"]) + block[n]["bias"] for n in "qkv")
        o = jax.nn.dot_product_attention(q, k, v, scale=1.0 / math.sqrt(q.shape[-1]), is_causal=True)
        h = h + jnp.einsum("btnh,nhd->btd", o, block["o"]["kernel"]) + block["o"]["bias"]
        m = layer_norm(h, p32["ln2"])
        m = jax.nn.gelu(m @ block["fc1"]["kernel"] + block["fc1"]["bias"], approximate=False)
        h = h + m @ block["fc2"]["kernel"] + block["fc2"]["bias"]
    h = layer_norm(h, params["norm"])
    head = bf["head"] if "head" in bf else bf["tokens"].T
    return h @ head


def hand_loss(params, ids, targets):
    logits = hand_logits(params, ids).astype(jnp.float32)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, targets))


def hand_optimizer():
    # Keras's AdamW epsilon (1e-7); optax decays through the update, Keras before it: the same
    # work per step, numbers a hair apart.
    return optax.adamw(LEARNING_RATE, b1=0.9, b2=0.999, eps=1e-7, weight_decay=WEIGHT_DECAY)


def hand_step_fn(tx):
    def step(params, opt_state, ids, targets):
        loss, grads = jax.value_and_grad(hand_loss)(params, ids, targets)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


# -- timing --------------------------------------------------------------------------------------


@dataclass
class Row:
    contender: str
    ms: float
    mfu: str
    vs_lamina: str


def model_flops_per_step(size, n_block_params, n_head_params):
    per_token = 6 * (n_block_params + n_head_params) + 12 * size["depth"] * size["width"] * size["seq"]
    return per_token * size["batch"] * size["seq"]


def peak_flops(args):
    if args.peak_tflops:
        return args.peak_tflops * 1e12
    kind = jax.devices()[0].device_kind
    for name, tflops in PEAK_BF16_TFLOPS.items():
        if name in kind:
            return tflops * 1e12
    return None


def run(args):
    size = dict(SIZES[args.size])
    for key in ("batch", "depth"):
        if getattr(args, key):
            size[key] = getattr(args, key)
    steps, scan = args.steps, args.scan
    if scan and steps % scan:
        raise SystemExit(f"--steps ({steps}) must be a multiple of --scan ({scan}).")
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, size["vocab"], size=(steps * size["batch"], size["seq"] + 1), dtype=np.int32)
    x, y = tokens[:, :-1], tokens[:, 1:]

    COMPUTE["dtype"] = jnp.dtype(lm.mixed_precision.DTypePolicy(args.policy).compute_dtype)
    model = lamina_model(size, tied=not args.untied, policy=args.policy)
    n_params = model.count_params()
    n_blocks = sum(w.size for block in model.blocks for w in block.weights)
    n_head = size["vocab"] * size["width"]
    flops = model_flops_per_step(size, n_blocks, n_head)
    peak = peak_flops(args)

    params = params_of(model)
    tx = hand_optimizer()
    step = hand_step_fn(tx)
    per_step = jax.jit(step, donate_argnums=(0, 1))

    def scanned(params, opt_state, xs, ys):
        def body(carry, batch):
            return step(carry[0], carry[1], *batch), None

        initial = (params, opt_state, jnp.zeros((), jnp.float32))
        (params, opt_state, loss), _ = jax.lax.scan(body, initial, (xs, ys))
        return params, opt_state, loss

    scan_step = jax.jit(scanned, donate_argnums=(0, 1))
    batches_x = jnp.asarray(x.reshape(steps, size["batch"], size["seq"]))
    batches_y = jnp.asarray(y.reshape(steps, size["batch"], size["seq"]))
    blocks = max(scan, 1)
    blocks_x = batches_x.reshape(steps // blocks, blocks, size["batch"], size["seq"])
    blocks_y = batches_y.reshape(steps // blocks, blocks, size["batch"], size["seq"])
    hand = {"step": [params, tx.init(params)], "scan": [jax.tree_util.tree_map(jnp.copy, params), None]}
    hand["scan"][1] = tx.init(hand["scan"][0])

    def lamina_unit():
        history = model.fit(x, y, batch_size=size["batch"], epochs=1, shuffle=False, verbose=0)
        return history.history["loss"][-1]

    def step_unit():
        state = hand["step"]
        loss = None
        for i in range(steps):
            state[0], state[1], loss = per_step(state[0], state[1], batches_x[i], batches_y[i])
        return float(loss)

    def scan_unit():
        state = hand["scan"]
        loss = None
        for i in range(steps // scan):
            state[0], state[1], loss = scan_step(state[0], state[1], blocks_x[i], blocks_y[i])
        return float(loss)

    units = {"lamina fit": lamina_unit, "hand step": step_unit}
    if scan:
        units[f"hand scan ({scan})"] = scan_unit
    first = {name: fn() for name, fn in units.items()}  # compiles (and "auto" measures blocks)
    for _ in range(args.warmup):
        for fn in units.values():
            fn()
    times = {name: [] for name in units}
    names = list(units)
    compiles_before = compile_counter.compilations()
    gc.disable()
    try:
        for i in range(args.repeats):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                start = time.perf_counter()
                units[name]()
                times[name].append((time.perf_counter() - start) / steps)
    finally:
        gc.enable()
    compiles = compile_counter.compilations() - compiles_before

    rows = []
    for name, ts in times.items():
        ms = statistics.median(ts) * 1e3
        mfu = "n/a" if peak is None else f"{flops / (statistics.median(ts) * peak):.1%}"
        ratio = "-" if name == "lamina fit" else \
            f"{statistics.median(lt / t for lt, t in zip(times['lamina fit'], ts)):.3f}"
        rows.append(Row(name, ms, mfu, ratio))
    device = jax.devices()[0].device_kind
    print(f"size {args.size} (depth {size['depth']}): {n_params:,} parameters, batch {size['batch']}, seq {size['seq']}, "
          f"{steps} steps per repeat, {args.repeats} repeats, device {device}, "
          f"{flops / 1e9:.2f} GFLOP per step")
    print("loss of the first (compiling) round, lamina's epoch mean and the hand loops' last step: "
          + ", ".join(f"{n} {v:.4f}" for n, v in first.items()))
    print(f"compilations during the timed repeats: {compiles}")
    header = ("contender", "ms/step", "MFU", "lamina time / its time")
    cells = [(r.contender, f"{r.ms:.2f}", r.mfu, r.vs_lamina) for r in rows]
    report.print_table(f"Decoder LM ({args.size}), {args.policy}", header, cells,
                       right_aligned=header[1:])
    if args.markdown:
        report.print_markdown(header, cells)
    return {"rows": rows, "first_losses": first, "compilations": compiles, "params": n_params}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--untied", action="store_true", help="a separate Dense head")
    parser.add_argument("--policy", choices=("mixed_bfloat16", "float32"), default="mixed_bfloat16")
    parser.add_argument("--steps", type=int, default=None, help="steps per repeat (default: 32 tiny, 20 else)")
    parser.add_argument("--scan", type=int, default=None, help="steps per hand scan call (default 4; 0: no scan contender)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds after the first")
    parser.add_argument("--batch", type=int, default=None, help="override the size's batch")
    parser.add_argument("--depth", type=int, default=None, help="override the size's number of blocks")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak bfloat16 TFLOP/s")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    args.steps = args.steps or (32 if args.size == "tiny" else 20)
    args.scan = 4 if args.scan is None else args.scan
    return run(args)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
