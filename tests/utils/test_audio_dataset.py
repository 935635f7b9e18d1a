"""``lm.utils.audio_dataset_from_directory`` against Keras 3's (tf.data + tf.audio.decode_wav)
on the same folder: files, labels, splits and decoded, padded clips."""

import wave

import numpy as np
import pytest

import lamina as lm

RATE = 8000


def _write_wav(path, samples, width=2, rate=RATE):
    samples = np.asarray(samples)
    samples = samples.reshape(samples.shape[0], -1)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(samples.shape[1])
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(samples.astype(f"<i{width}" if width > 1 else "u1").tobytes())


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    for label, count in (("down", 4), ("go", 3), ("up", 5)):
        (root / label).mkdir()
        for i in range(count):
            _write_wav(root / label / f"{i}.wav", rng.integers(-32768, 32767, size=(int(rng.integers(3, 12)), 1)))
        (root / label / "notes.txt").write_text("not audio")
    return root


def _keras_batches(dataset):
    return [tuple(np.asarray(part) for part in batch) if isinstance(batch, tuple) else np.asarray(batch)
            for batch in dataset]


def test_matches_keras_files_labels_and_padded_batches(folder):
    import keras

    kwargs = dict(batch_size=4, seed=7, shuffle=False, verbose=False)
    ours = lm.utils.audio_dataset_from_directory(str(folder), **kwargs)
    theirs = keras.utils.audio_dataset_from_directory(str(folder), **kwargs)
    assert ours.class_names == theirs.class_names == ["down", "go", "up"]
    assert len(ours) == 3
    for (audio, labels), (k_audio, k_labels) in zip(ours, _keras_batches(theirs), strict=True):
        assert audio.dtype == np.float32 and labels.dtype == np.int32
        np.testing.assert_array_equal(labels, k_labels)
        np.testing.assert_array_equal(audio, k_audio)  # same decoding and zero padding


def test_split_and_fixed_length_match_keras(folder):
    import keras

    kwargs = dict(batch_size=2, seed=3, validation_split=0.25, subset="both", output_sequence_length=6,
                  label_mode="categorical", verbose=False)
    train, val = lm.utils.audio_dataset_from_directory(str(folder), **kwargs)
    k_train, k_val = keras.utils.audio_dataset_from_directory(str(folder), **kwargs)
    assert (len(train.file_paths), len(val.file_paths)) == (9, 3)
    # Keras's validation part is not reshuffled: batch for batch the same.
    for (audio, labels), (k_audio, k_labels) in zip(val, _keras_batches(k_val), strict=True):
        assert audio.shape[1:] == (6, 1)
        np.testing.assert_array_equal(audio, k_audio)
        np.testing.assert_array_equal(labels, k_labels)
    # Keras's training part goes through a shuffle buffer: compare as sets of clips.
    def clips(batches):
        return sorted(clip.tobytes() + label.tobytes() for audio, labels in batches
                      for clip, label in zip(audio, labels, strict=True))

    assert len(clips(train)) == 9 and clips(train) == clips(_keras_batches(k_train))


def test_ragged_labels_none_and_errors(folder, tmp_path):
    ds = lm.utils.audio_dataset_from_directory(str(folder), ragged=True, labels=None, shuffle=False,
                                                batch_size=5, verbose=False)
    clips = ds[0]
    assert clips.dtype == object and len(clips) == 5
    assert [clip.shape[0] for clip in clips] == [lm.utils.audio_dataset.read_wav(p)[0].shape[0]
                                                 for p in ds.file_paths[:5]]
    with pytest.raises(ValueError, match="Cannot set both `ragged` and `output_sequence_length`"):
        lm.utils.audio_dataset_from_directory(str(folder), ragged=True, output_sequence_length=4)
    with pytest.raises(ValueError, match="`sampling_rate` should be higher than 0"):
        lm.utils.audio_dataset_from_directory(str(folder), sampling_rate=0)
    with pytest.raises(ValueError, match="No audio files found in directory"):
        lm.utils.audio_dataset_from_directory(str(tmp_path), labels=None, verbose=False)


def test_bit_depths_and_resampling(tmp_path):
    values = np.array([-1.0, -0.5, 0.0, 0.5], np.float32)
    _write_wav(tmp_path / "8.wav", (values * 128 + 128).astype(np.uint8), width=1)
    _write_wav(tmp_path / "32.wav", (values * 2.0 ** 31).astype(np.int64).astype("<i4"), width=4)
    bytes24 = b"".join(int(v * 2 ** 23).to_bytes(3, "little", signed=True) for v in values)
    with wave.open(str(tmp_path / "24.wav"), "wb") as f:
        f.setnchannels(1), f.setsampwidth(3), f.setframerate(RATE)
        f.writeframes(bytes24)
    for name in ("8", "24", "32"):
        decoded, rate = lm.utils.audio_dataset.read_wav(tmp_path / f"{name}.wav")
        np.testing.assert_array_equal(decoded[:, 0], values)
        assert rate == RATE
    tone = np.sin(2 * np.pi * 100 * np.arange(800) / RATE)
    (tmp_path / "tone").mkdir()
    _write_wav(tmp_path / "tone" / "a.wav", (tone * 16000).astype("<i2"))
    ds = lm.utils.audio_dataset_from_directory(str(tmp_path / "tone"), labels=None, sampling_rate=4000,
                                                verbose=False)
    (clip,) = ds[0]
    assert clip.shape == (400, 1)
    expected = np.sin(2 * np.pi * 100 * np.arange(400) / 4000) * 16000 / 32768
    np.testing.assert_allclose(clip[20:380, 0], expected[20:380], atol=0.02)  # away from the edges
