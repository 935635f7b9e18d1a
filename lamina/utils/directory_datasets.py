"""``image_dataset_from_directory`` and ``text_dataset_from_directory``: Keras 3's folder
readers, returning ``lm.data.PyDataset``s of NumPy batches (``sample_dataset.py``).

Files are listed, labelled, shuffled and split exactly as Keras does (``dataset_utils`` in
Keras: sorted class folders, ``os.walk`` order, ``np.random.RandomState(seed)``, the last
``validation_split`` of the shuffled list for validation), so the ``file_paths``, the labels
and the training / validation membership are Keras's. Files are read when a batch is asked
for. Images are decoded with Pillow (the ``image`` extra) and resized on the host with
TensorFlow's resize arithmetic (``image_resampling.py``).
"""

from __future__ import annotations

import codecs
import os

import numpy as np

from lamina.utils.image_resampling import INTERPOLATIONS, resize_image, resize_with_pad
from lamina.utils.logging_control import print_msg
from lamina.utils.sample_dataset import SampleDataset

__all__ = ["image_dataset_from_directory", "text_dataset_from_directory"]

IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_CHANNELS = {"rgb": 3, "rgba": 4, "grayscale": 1}


def image_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None,
                                 color_mode="rgb", batch_size=32, image_size=(256, 256), shuffle=True,
                                 seed=None, validation_split=None, subset=None, interpolation="bilinear",
                                 follow_links=False, crop_to_aspect_ratio=False, pad_to_aspect_ratio=False,
                                 data_format=None, verbose=True):
    """Batches of images (and labels) from the image files under ``directory``, as Keras 3.

    With ``labels="inferred"`` each subfolder of ``directory`` is a class (sorted names, or
    the order of ``class_names``); ``labels`` may also be a list of integer labels in the
    sorted order of the files, or ``None``. ``label_mode``: ``"int"`` (int32), ``"binary"``
    (float32, shape ``(batch, 1)``, two classes), ``"categorical"`` (float32 one-hot) or
    ``None``. Images (``.bmp .gif .jpeg .jpg .png``) are read as ``color_mode`` (``"rgb"``,
    ``"rgba"``, ``"grayscale"``) and resized to ``image_size`` with ``interpolation``
    (TensorFlow's methods and values), after a centred crop (``crop_to_aspect_ratio``) or
    before zero padding (``pad_to_aspect_ratio``) to the target aspect ratio.
    ``validation_split`` with ``subset="training"`` / ``"validation"`` keeps one part of the
    shuffled file list (give the same ``seed`` to both calls), ``subset="both"`` returns
    ``[training, validation]``.

    Returns:
        an ``lm.data.PyDataset`` (``SampleDataset``) yielding float32 ``(images, labels)``
        batches (``images`` alone without labels), with ``class_names`` and ``file_paths``.
        Keras yields uint8 images for ``interpolation="nearest"``; lamina float32 always.

    Example:
        >>> import os, tempfile, numpy as np, lamina as lm
        >>> root = tempfile.mkdtemp()
        >>> for label in ("cat", "dog"):
        ...     os.makedirs(os.path.join(root, label))
        ...     lm.utils.save_img(os.path.join(root, label, "a.png"), np.ones((8, 8, 3)))
        >>> ds = lm.utils.image_dataset_from_directory(root, image_size=(4, 4), seed=1)
        Found 2 files belonging to 2 classes.
        >>> images, labels = ds[0]
        >>> ds.class_names, images.shape, sorted(labels.tolist())
        (['cat', 'dog'], (2, 4, 4, 3), [0, 1])
    """
    _check_labels(labels, label_mode, class_names, "image")
    if labels is None or label_mode is None:
        labels = label_mode = None
    if color_mode not in _CHANNELS:
        raise ValueError(f'`color_mode` must be one of {{"rgb", "rgba", "grayscale"}}. Received: color_mode={color_mode}')
    channels = _CHANNELS[color_mode]
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    elif not isinstance(image_size, (list, tuple)) or len(image_size) != 2:
        raise ValueError(f"Invalid `image_size` value. Expected a tuple of 2 integers. Received: image_size={image_size}")
    image_size = (int(image_size[0]), int(image_size[1]))
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"Argument `interpolation` should be one of {INTERPOLATIONS}. "
                         f"Received: interpolation={interpolation}")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError("Only one of `pad_to_aspect_ratio`, `crop_to_aspect_ratio` can be set to `True`.")
    from lamina.layers.convolutional._arguments import normalize_data_format
    from lamina.utils.image_utils import pil_image

    data_format = normalize_data_format(data_format, "image_dataset_from_directory")
    pil_image()  # fail now, naming the extra, rather than at the first batch

    load = _ImageLoader(image_size, channels, interpolation, data_format, crop_to_aspect_ratio, pad_to_aspect_ratio)
    return _directory_dataset(
        directory, labels, label_mode, class_names, batch_size, shuffle, seed, validation_split, subset,
        follow_links, verbose, formats=IMAGE_FORMATS, load=load, what="images")


def text_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None,
                                batch_size=32, max_length=None, shuffle=True, seed=None,
                                validation_split=None, subset=None, follow_links=False, verbose=True):
    """Batches of texts (and labels) from the ``.txt`` files under ``directory``, as Keras 3.

    Labels, shuffling and splits as ``image_dataset_from_directory``. Each text is the file's
    content decoded as UTF-8 (invalid bytes replaced), cut to its first ``max_length`` bytes
    as Keras does (a character split by the cut is dropped).

    Returns:
        an ``lm.data.PyDataset`` (``SampleDataset``) yielding ``(texts, labels)`` batches;
        ``texts`` is a NumPy object array of Python ``str`` (Keras yields ``tf.string``
        tensors, i.e. bytes). It has ``class_names`` and ``file_paths``.

    Example:
        >>> import os, tempfile, lamina as lm
        >>> root = tempfile.mkdtemp()
        >>> for label in ("neg", "pos"):
        ...     os.makedirs(os.path.join(root, label))
        ...     _ = open(os.path.join(root, label, "a.txt"), "w").write(f"{label} review")
        >>> ds = lm.utils.text_dataset_from_directory(root, shuffle=False, max_length=3)
        Found 2 files belonging to 2 classes.
        >>> texts, labels = ds[0]
        >>> texts.tolist(), labels.tolist()
        (['neg', 'pos'], [0, 1])
    """
    _check_labels(labels, label_mode, class_names, "text")
    if labels is None or label_mode is None:
        labels = label_mode = None
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer))
                                   or max_length < 0):
        raise ValueError(f"`max_length` must be None or a non-negative int. Received: max_length={max_length!r}")

    return _directory_dataset(
        directory, labels, label_mode, class_names, batch_size, shuffle, seed, validation_split, subset,
        follow_links, verbose, formats=(".txt",), load=_TextLoader(max_length), what="text files")


# -- shared by both ---------------------------------------------------------------------------


def _check_labels(labels, label_mode, class_names, kind):
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError(
                "`labels` argument should be a list/tuple of integer labels, of the same size as the "
                f"number of {kind} files in the target directory. If you wish to infer the labels from "
                'the subdirectory names in the target directory, pass `labels="inferred"`. If you wish '
                f"to get a dataset that only contains {kind}s (no labels), pass `labels=None`. "
                f"Received: labels={labels}")
        if class_names:
            raise ValueError('You can only pass `class_names` if `labels="inferred"`. '
                             f"Received: labels={labels}, and class_names={class_names}")
    if label_mode not in {"int", "categorical", "binary", None}:
        raise ValueError('`label_mode` argument must be one of "int", "categorical", "binary", '
                         f"or None. Received: label_mode={label_mode}")


def _check_split(validation_split, subset, shuffle, seed):
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be between 0 and 1, received: {validation_split}")
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'`subset` must be either "training", "validation" or "both", received: {subset}')
    if validation_split and shuffle and seed is None:
        raise ValueError("If using `validation_split` and shuffling the data, you must provide a `seed` "
                         "argument, to make sure that there is no overlap between the training and "
                         "validation subset.")


def index_directory(directory, labels, formats, class_names=None, shuffle=True, seed=None,
                    follow_links=False, verbose=True):
    """``(file_paths, labels, class_names)`` of the files under ``directory`` with one of
    ``formats``, in Keras's order (shuffled with ``np.random.RandomState(seed)``)."""
    if not os.path.isdir(directory):
        raise ValueError(f"`directory` must be an existing folder; {directory!r} is not one.")
    if labels == "inferred":
        subdirs = [d for d in sorted(os.listdir(directory))
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
        if class_names is not None:
            if not set(class_names).issubset(set(subdirs)):
                raise ValueError(
                    "The `class_names` passed did not match the names of the subdirectories of the "
                    f"target directory. Expected: {subdirs} (or a subset of it), but received: "
                    f"class_names={class_names}")
            subdirs = list(class_names)
    else:
        subdirs = [""]
        if class_names is not None:
            raise ValueError("When `labels=None` (no labels), argument `class_names` cannot be specified."
                             if labels is None else
                             "When argument `labels` is specified, argument `class_names` cannot be "
                             "specified (the `class_names` will be the sorted list of labels).")
    file_paths, found = [], []
    for index, subdir in enumerate(subdirs):
        folder = os.path.join(directory, subdir)
        walk = sorted(os.walk(folder, followlinks=bool(follow_links)), key=lambda entry: entry[0])
        for root, _, files in walk:
            for name in sorted(files):
                if name.lower().endswith(formats):
                    file_paths.append(os.path.join(root, name))
                    found.append(index)
    if labels == "inferred":
        labels = np.asarray(found, dtype="int32")
        class_names = subdirs
    elif labels is None:
        class_names = None
    else:
        if len(labels) != len(file_paths):
            raise ValueError(
                "Expected the lengths of `labels` to match the number of files in the target directory. "
                f"len(labels) is {len(labels)} while we found {len(file_paths)} files in directory "
                f"{directory}.")
        class_names = [str(label) for label in sorted(set(labels))]
        labels = np.asarray(labels)
    if verbose:
        print_msg(f"Found {len(file_paths)} files." if labels is None else
                  f"Found {len(file_paths)} files belonging to {len(class_names)} classes.")
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(file_paths)
        if labels is not None:
            np.random.RandomState(seed).shuffle(labels)
    return file_paths, labels, class_names


def _split(paths, labels, validation_split, subset):
    if not validation_split:
        return paths, labels
    count = int(validation_split * len(paths))
    if subset == "training":
        print_msg(f"Using {len(paths) - count} files for training.")
        part = slice(None, -count) if count else slice(None)
    else:
        print_msg(f"Using {count} files for validation.")
        part = slice(-count, None) if count else slice(0, 0)
    return paths[part], None if labels is None else labels[part]


def _directory_dataset(directory, labels, label_mode, class_names, batch_size, shuffle, seed,
                       validation_split, subset, follow_links, verbose, *, formats, load, what):
    _check_split(validation_split, subset, shuffle, seed)
    if seed is None:
        seed = np.random.randint(1e6)
    paths, labels, class_names = index_directory(directory, labels, formats, class_names, shuffle, seed,
                                                 follow_links, verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError('When passing `label_mode="binary"`, there must be exactly 2 class_names. '
                         f"Received: class_names={class_names}")
    num_classes = len(class_names) if class_names else 0
    allowed = ", ".join(formats)

    def make(part, part_shuffle, message):
        part_paths, part_labels = _split(paths, labels, validation_split, part)
        if not part_paths:
            raise ValueError(f"No {message}found in directory {directory}. Allowed formats: {allowed}")
        encoded = None if label_mode is None else _encode_labels(part_labels, label_mode, num_classes)
        fetch = _FileFetch(list(part_paths), encoded, load)
        dataset = SampleDataset(fetch, len(part_paths), batch_size=batch_size, shuffle=part_shuffle, seed=seed)
        dataset.class_names = class_names
        dataset.file_paths = list(part_paths)
        return dataset

    if subset == "both":
        return [make("training", shuffle, f"training {what} "), make("validation", False, f"validation {what} ")]
    return make(subset, shuffle, f"{what} ")


def _encode_labels(labels, label_mode, num_classes):
    labels = np.asarray(labels)
    if label_mode == "binary":
        return labels.astype("float32")[:, None]
    if label_mode == "categorical":
        return np.eye(num_classes, dtype="float32")[labels]
    return labels.astype("int32")


# Loaders are module-level classes, not closures, so that a dataset with
# `use_multiprocessing=True` can be pickled into its worker processes.


class _FileFetch:
    """The samples at some indices: the files loaded and stacked, with their labels."""

    def __init__(self, paths, labels, load):
        self.paths, self.labels, self.load = paths, labels, load

    def __call__(self, indices):
        items = self.load.stack([self.load(self.paths[i]) for i in indices])
        return items if self.labels is None else (items, self.labels[indices])


class _TextLoader:
    def __init__(self, max_length):
        self.max_length = max_length

    def __call__(self, path):
        with open(path, "rb") as f:
            content = f.read() if self.max_length is None else f.read(int(self.max_length))
        # A character cut by max_length is held back by the incremental decoder, not replaced.
        return codecs.getincrementaldecoder("utf-8")("replace").decode(content, final=self.max_length is None)

    @staticmethod
    def stack(items):
        texts = np.empty(len(items), dtype=object)
        texts[:] = items
        return texts


class _ImageLoader:
    def __init__(self, image_size, channels, interpolation, data_format, crop, pad):
        self.args = (image_size, channels, interpolation, data_format, crop, pad)

    def __call__(self, path):
        return _load_image(path, *self.args)

    @staticmethod
    def stack(items):
        return np.stack(items).astype(np.float32, copy=False)


def _load_image(path, image_size, channels, interpolation, data_format, crop, pad):
    from lamina.layers.preprocessing.image_resize import aspect_crop_box
    from lamina.utils.image_utils import pil_image

    with pil_image().open(path) as img:
        img.seek(0)  # an animated GIF gives its first frame, as Keras's decoder does
        if channels == 1:
            img = img if img.mode in ("L", "I;16", "I") else img.convert("L")
        else:
            mode = "RGB" if channels == 3 else "RGBA"
            img = img if img.mode == mode else img.convert(mode)
        pixels = np.asarray(img, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if crop:
        top, left, height, width = aspect_crop_box(pixels.shape[0], pixels.shape[1], *image_size)
        pixels = resize_image(pixels[top:top + height, left:left + width], image_size, interpolation)
    elif pad:
        pixels = resize_with_pad(pixels, image_size, interpolation)
    else:
        pixels = resize_image(pixels, image_size, interpolation)
    return pixels.transpose(2, 0, 1) if data_format == "channels_first" else pixels
