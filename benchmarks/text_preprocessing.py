"""How fast are lamina's host-side text and categorical layers, against Keras 3 (TensorFlow ops)?

lamina computes these layers with NumPy and plain Python on the host (JAX arrays cannot hold
strings; FarmHash and SipHash are written in Python), Keras 3 with TensorFlow's C++ string
ops whatever its backend. The data: ``--rows`` synthetic sentences (default 20,000; 4 to 20
words drawn from a Zipf-like vocabulary of 5,000 words with punctuation and capitals).

Contenders, interleaved (every repeat runs each pair once, the order alternating; the first
repeat is a warm-up and is dropped), each on the same NumPy input, the result converted to a
NumPy array:

- ``TextVectorization(max_tokens=2000, output_sequence_length=32)``: ``adapt`` and the call;
- ``TextVectorization(output_mode="tf_idf", max_tokens=2000)``: the call (adapted once);
- ``StringLookup`` (vocabulary of the 2,000 first words, 3 OOV indices: unknown words hashed)
  on the words of the sentences (a ``(rows, 4)`` array);
- ``Hashing(num_bins=1024)`` and ``Hashing(num_bins=1024, salt=7)`` on the same words.

Printed: each contender's median seconds, and the median of the per-repeat ratios lamina time
/ Keras time (above 1: lamina is slower), with the machine's load average.

    python benchmarks/text_preprocessing.py            # about a minute
    python benchmarks/text_preprocessing.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import lamina as lm  # noqa: E402


def sentences(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list]:
    """``rows`` sentences, a ``(rows, 4)`` array of their first words, and the vocabulary."""
    rng = np.random.default_rng(seed)
    vocabulary = [f"w{i}" + "abcdefgh"[i % 8] * (1 + i % 5) for i in range(5000)]
    weights = 1.0 / np.arange(1, 5001)
    weights /= weights.sum()
    texts, words = [], []
    for _ in range(rows):
        picked = [vocabulary[i] for i in rng.choice(5000, size=rng.integers(4, 21), p=weights)]
        words.append(picked[:4])
        picked[0] = picked[0].capitalize()
        texts.append(" ".join(picked) + rng.choice([".", "!", "?", ", ok."]))
    return np.array(texts), np.array(words), vocabulary


def timed(fn) -> float:
    start = time.perf_counter()
    np.asarray(fn())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    import keras

    warnings.filterwarnings("ignore")
    rows = args.rows or (2000 if args.quick else 20000)
    repeats = args.repeats or (3 if args.quick else 7)
    texts, words, vocabulary = sentences(rows)

    def adapt(module, **config):
        def run():
            layer = module.layers.TextVectorization(max_tokens=2000, output_sequence_length=32, **config)
            layer.adapt(texts)
            return layer.get_vocabulary()
        return run

    def called(module, make, data):
        layer = make(module)
        return lambda: layer(data) if module is lm else np.asarray(layer(data))

    def vectorizer(module, **config):
        layer = module.layers.TextVectorization(max_tokens=2000, **config)
        layer.adapt(texts[:2000])
        return layer

    cases = {
        "TextVectorization.adapt": (adapt(lm), adapt(keras)),
        "TextVectorization call (int, length 32)": (
            called(lm, lambda m: vectorizer(m, output_sequence_length=32), texts),
            called(keras, lambda m: vectorizer(m, output_sequence_length=32), texts)),
        "TextVectorization call (tf_idf)": (called(lm, lambda m: vectorizer(m, output_mode="tf_idf"), texts),
                                            called(keras, lambda m: vectorizer(m, output_mode="tf_idf"), texts)),
        "StringLookup (3 OOV indices)": tuple(
            called(m, lambda m: m.layers.StringLookup(vocabulary=vocabulary[:2000], num_oov_indices=3), words)
            for m in (lm, keras)),
        "Hashing (FarmHash)": tuple(called(m, lambda m: m.layers.Hashing(1024), words) for m in (lm, keras)),
        "Hashing (SipHash, salt)": tuple(called(m, lambda m: m.layers.Hashing(1024, salt=7), words)
                                         for m in (lm, keras)),
    }
    print(f"{rows} sentences, {repeats} repeats (first dropped), load average {os.getloadavg()[0]:.2f}")
    print(f"{'case':42s} {'lamina s':>10s} {'Keras s':>10s} {'lamina/Keras':>13s}")
    for name, (mine, theirs) in cases.items():
        mine_times, their_times = [], []
        for repeat in range(repeats):
            order = [(mine, mine_times), (theirs, their_times)]
            for fn, times in (order if repeat % 2 == 0 else order[::-1]):
                times.append(timed(fn))
        mine_times, their_times = mine_times[1:], their_times[1:]
        ratio = statistics.median(a / b for a, b in zip(mine_times, their_times))
        print(f"{name:42s} {statistics.median(mine_times):10.4f} {statistics.median(their_times):10.4f} "
              f"{ratio:13.2f}")


if __name__ == "__main__":
    main()
