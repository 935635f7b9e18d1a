"""How fast do lamina's dataset utilities read an epoch, against Keras 3 (tf.data)?

``lm.utils.image_dataset_from_directory`` decodes files with Pillow and resizes them on the
host in NumPy (TensorFlow's resize arithmetic), batch by batch when a batch is asked for;
Keras 3 builds a ``tf.data`` pipeline (TensorFlow's decoders and resize kernels, parallel
map, prefetch). ``text_dataset_from_directory`` and ``timeseries_dataset_from_array`` are
compared the same way.

The data, written to a temporary folder: ``--images`` PNG files (default 512) in 4 class
folders, of random sizes between 96 and 256 pixels a side, read at ``image_size=(128, 128)``
with bilinear interpolation, batch 32; 2,000 ``.txt`` files of 50 to 300 words; a
``(100000, 8)`` float32 series cut into windows of 64, batch 256.

Contenders, interleaved (every repeat reads one full epoch of each side, the order
alternating; the first repeat is a warm-up and is dropped); an epoch is converted to NumPy
(``np.asarray`` for lamina's batches, ``.numpy()`` for Keras's):

- lamina's dataset iterated in the main thread (``for x, y in ds``), and through ``workers=4``
  threads (what ``fit`` does with ``ds.workers = 4``: ``lm.data`` loads batches ahead);
- Keras's ``tf.data`` dataset iterated.

Printed: median seconds per epoch and the median of the per-repeat ratios lamina / Keras
(above 1: lamina is slower), with the machine's load average.

    python benchmarks/directory_datasets.py            # about a minute
    python benchmarks/directory_datasets.py --quick    # well under one
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import lamina as lm  # noqa: E402
from lamina.data.loading import load_batches  # noqa: E402


def write_images(root: str, count: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = os.path.join(root, f"class_{i % 4}")
        os.makedirs(folder, exist_ok=True)
        h, w = rng.integers(96, 257, size=2)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(os.path.join(folder, f"{i}.png"))


def write_texts(root: str, count: int) -> None:
    rng = np.random.default_rng(1)
    words = np.array([f"word{i}" for i in range(3000)])
    for i in range(count):
        folder = os.path.join(root, ("neg", "pos")[i % 2])
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{i}.txt"), "w") as f:
            f.write(" ".join(rng.choice(words, size=rng.integers(50, 301))))


def epoch_lamina(ds):
    return lambda: sum(np.asarray(x).size for x, _ in ds)


def epoch_lamina_threads(ds, workers):
    threaded = ds.take(-1)  # a copy whose loading settings we may change
    threaded.workers = workers

    def run():
        total = 0
        for x, _ in load_batches(threaded, np.arange(len(threaded))):
            total += np.asarray(x).size
        threaded.on_epoch_end()
        return total
    return run


def epoch_keras(ds):
    return lambda: sum(x.numpy().size for x, _ in ds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    import keras

    warnings.filterwarnings("ignore")
    images = args.images or (128 if args.quick else 512)
    repeats = args.repeats or (3 if args.quick else 7)
    with tempfile.TemporaryDirectory() as tmp:
        image_root, text_root = os.path.join(tmp, "images"), os.path.join(tmp, "texts")
        write_images(image_root, images)
        write_texts(text_root, 500 if args.quick else 2000)
        series = np.random.default_rng(2).normal(size=(100_000, 8)).astype("float32")
        targets = series[:, 0].copy()
        image_kwargs = dict(image_size=(128, 128), batch_size=32, seed=0, verbose=False)
        text_kwargs = dict(batch_size=32, seed=0, verbose=False)
        series_kwargs = dict(sequence_length=64, batch_size=256)
        lm_images = lm.utils.image_dataset_from_directory(image_root, **image_kwargs)
        lm_texts = lm.utils.text_dataset_from_directory(text_root, **text_kwargs)
        lm_series = lm.utils.timeseries_dataset_from_array(series, targets, **series_kwargs)
        cases = {
            f"images ({images} PNG, 128x128)": (
                {"lamina": epoch_lamina(lm_images), "lamina, 4 threads": epoch_lamina_threads(lm_images, 4)},
                epoch_keras(keras.utils.image_dataset_from_directory(image_root, **image_kwargs))),
            "texts (.txt files)": (
                {"lamina": epoch_lamina(lm_texts)},
                lambda: sum(len(x.numpy()) for x, _ in keras.utils.text_dataset_from_directory(
                    text_root, **text_kwargs))),
            "timeseries (100000 x 8, windows of 64)": (
                {"lamina": epoch_lamina(lm_series), "lamina, 4 threads": epoch_lamina_threads(lm_series, 4)},
                epoch_keras(keras.utils.timeseries_dataset_from_array(series, targets, **series_kwargs))),
        }
        print(f"{repeats} repeats (first dropped), load average {os.getloadavg()[0]:.2f}")
        print(f"{'case':42s} {'contender':18s} {'lamina s':>9s} {'Keras s':>9s} {'lamina/Keras':>13s}")
        for name, (mine, theirs) in cases.items():
            for label, fn in mine.items():
                mine_times, their_times = [], []
                for repeat in range(repeats):
                    order = [(fn, mine_times), (theirs, their_times)]
                    for run, times in (order if repeat % 2 == 0 else order[::-1]):
                        start = time.perf_counter()
                        run()
                        times.append(time.perf_counter() - start)
                mine_times, their_times = mine_times[1:], their_times[1:]
                ratio = statistics.median(a / b for a, b in zip(mine_times, their_times))
                print(f"{name:42s} {label:18s} {statistics.median(mine_times):9.3f} "
                      f"{statistics.median(their_times):9.3f} {ratio:13.2f}")


if __name__ == "__main__":
    main()
