"""``audio_dataset_from_directory``: Keras 3's reader of ``.wav`` folders, returning an
``lm.data.PyDataset`` of NumPy batches like ``image_dataset_from_directory``
(``directory_datasets.py``: the same listing, labels, shuffling and splits as Keras).

WAV files are decoded with the standard library's ``wave`` module (integer PCM, 8 to 32
bits) as ``tf.audio.decode_wav`` decodes them: float32 samples in ``[-1, 1)`` (16-bit values
divided by 32768), shape ``(samples, channels)``. Float WAV files need SciPy. Resampling
(``sampling_rate``, Keras needs tensorflow-io for it) uses SciPy's polyphase filter.
"""

from __future__ import annotations

import math
import wave

import numpy as np

from lamina.utils.directory_datasets import _check_labels, _directory_dataset

__all__ = ["audio_dataset_from_directory", "read_wav"]

AUDIO_FORMATS = (".wav",)


def audio_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, batch_size=32,
                                 sampling_rate=None, output_sequence_length=None, ragged=False, shuffle=True,
                                 seed=None, validation_split=None, subset=None, follow_links=False, verbose=True):
    """Batches of audio clips (and labels) from the ``.wav`` files under ``directory``, as Keras 3.

    Labels, ``class_names``, shuffling and ``validation_split`` / ``subset`` as
    ``image_dataset_from_directory`` (Keras's rules). Each clip is a float32 array of shape
    ``(samples, channels)``; ``output_sequence_length`` cuts longer clips and pads shorter
    ones with zeros to that length; without it each batch is zero-padded to its longest clip
    (Keras's ``padded_batch``). ``ragged=True`` keeps every clip's own length. With
    ``sampling_rate`` every clip is resampled to that rate (SciPy; Keras uses tensorflow-io, so
    resampled values differ slightly from Keras's).

    Returns:
        an ``lm.data.PyDataset`` (``SampleDataset``) yielding ``(audio, labels)`` batches
        (``audio`` alone without labels) of shape ``(batch, samples, channels)``, with
        ``class_names`` and ``file_paths``. With ``ragged=True``, ``audio`` is a NumPy object
        array of per-clip arrays (Keras yields a ``tf.RaggedTensor``).

    Example:
        >>> import os, tempfile, wave, numpy as np, lamina as lm
        >>> root = tempfile.mkdtemp()
        >>> for label, frames in (("no", 3), ("yes", 5)):
        ...     os.makedirs(os.path.join(root, label))
        ...     with wave.open(os.path.join(root, label, "a.wav"), "wb") as f:
        ...         f.setnchannels(1); f.setsampwidth(2); f.setframerate(8000)
        ...         f.writeframes(np.full(frames, 16384, "<i2").tobytes())
        >>> ds = lm.utils.audio_dataset_from_directory(root, shuffle=False)
        Found 2 files belonging to 2 classes.
        >>> audio, labels = ds[0]
        >>> audio.shape, audio[0, :, 0].tolist(), labels.tolist()
        ((2, 5, 1), [0.5, 0.5, 0.5, 0.0, 0.0], [0, 1])
    """
    _check_labels(labels, label_mode, class_names, "audio")
    if ragged and output_sequence_length is not None:
        raise ValueError("Cannot set both `ragged` and `output_sequence_length`")
    if output_sequence_length is not None and (
            isinstance(output_sequence_length, bool) or not isinstance(output_sequence_length, (int, np.integer))
            or output_sequence_length <= 0):
        raise ValueError("`output_sequence_length` must be None or a positive int. "
                         f"Received: output_sequence_length={output_sequence_length!r}")
    if sampling_rate is not None:
        if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer)):
            raise ValueError(f"`sampling_rate` should have an integer value. Received: sampling_rate={sampling_rate}")
        if sampling_rate <= 0:
            raise ValueError(f"`sampling_rate` should be higher than 0. Received: sampling_rate={sampling_rate}")
        _scipy_signal()  # fail now, naming the package, rather than at the first batch
    if labels is None or label_mode is None:
        labels = label_mode = None
    load = _AudioLoader(sampling_rate, output_sequence_length, ragged)
    return _directory_dataset(
        directory, labels, label_mode, class_names, batch_size, shuffle, seed, validation_split, subset,
        follow_links, verbose, formats=AUDIO_FORMATS, load=load, what="audio files")


def read_wav(path):
    """``(samples, rate)``: the WAV file at ``path`` as float32 ``(frames, channels)`` in
    ``[-1, 1)``, decoded as ``tf.audio.decode_wav`` decodes it.

    Example:
        >>> import tempfile, wave, numpy as np
        >>> path = tempfile.mkstemp(suffix=".wav")[1]
        >>> with wave.open(path, "wb") as f:
        ...     f.setnchannels(2); f.setsampwidth(2); f.setframerate(16000)
        ...     f.writeframes(np.array([[-32768, 16384]], "<i2").tobytes())
        >>> samples, rate = read_wav(path)
        >>> samples.tolist(), rate
        ([[-1.0, 0.5]], 16000)
    """
    try:
        with wave.open(str(path), "rb") as f:
            channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
            raw = f.readframes(f.getnframes())
    except (wave.Error, EOFError) as error:
        return _read_wav_scipy(path, error)
    if width == 1:  # 8-bit WAV is unsigned
        values = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:  # 24-bit little-endian: widen to int32 (low byte zero)
        bytes3 = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        wide = np.zeros((bytes3.shape[0], 4), np.uint8)
        wide[:, 1:] = bytes3
        values = wide.view("<i4").reshape(-1).astype(np.float32) / 2.0 ** 31
    elif width in (2, 4):
        values = np.frombuffer(raw, f"<i{width}").astype(np.float32) / 2.0 ** (8 * width - 1)
    else:
        raise ValueError(f"Cannot decode {path}: {8 * width}-bit WAV samples are not supported.")
    return values.reshape(-1, channels), rate


def _read_wav_scipy(path, error):
    try:
        from scipy.io import wavfile
    except ImportError:
        raise ValueError(f"Cannot decode {path} with the `wave` module ({error}); float WAV files need "
                         "SciPy, which is not installed: pip install scipy.") from error
    rate, data = wavfile.read(str(path))
    data = np.asarray(data)
    if data.dtype.kind == "f":
        values = data.astype(np.float32)
    elif data.dtype == np.uint8:
        values = (data.astype(np.float32) - 128.0) / 128.0
    else:
        values = data.astype(np.float32) / 2.0 ** (8 * data.dtype.itemsize - 1)
    return values.reshape(values.shape[0], -1), int(rate)


def _scipy_signal():
    try:
        from scipy import signal
    except ImportError as error:
        raise ImportError("audio_dataset_from_directory(sampling_rate=...) needs SciPy to resample, which is "
                          "not installed: pip install scipy.") from error
    return signal


# A module-level class, not a closure, so that a dataset with `use_multiprocessing=True`
# can be pickled into its worker processes.
class _AudioLoader:
    def __init__(self, sampling_rate, output_sequence_length, ragged):
        self.sampling_rate, self.length, self.ragged = sampling_rate, output_sequence_length, ragged

    def __call__(self, path):
        samples, rate = read_wav(path)
        if self.sampling_rate is not None and rate != self.sampling_rate:
            common = math.gcd(int(rate), int(self.sampling_rate))
            samples = _scipy_signal().resample_poly(
                samples, self.sampling_rate // common, rate // common, axis=0).astype(np.float32)
        if self.length is not None:
            samples = _fit_length(samples, self.length)
        return samples

    def stack(self, items):
        if self.ragged:
            clips = np.empty(len(items), dtype=object)
            for i, item in enumerate(items):  # one by one: equal shapes would broadcast into one array
                clips[i] = item
            return clips
        longest = max(item.shape[0] for item in items)
        channels = {item.shape[1] for item in items}
        if len(channels) != 1:
            raise ValueError(f"Cannot batch audio clips with different numbers of channels {sorted(channels)}; "
                             "give files with one channel count, or batch_size=None.")
        return np.stack([_fit_length(item, longest) for item in items])


def _fit_length(samples, length):
    if samples.shape[0] >= length:
        return samples[:length]
    return np.pad(samples, ((0, length - samples.shape[0]), (0, 0)))
