"""``STFTSpectrogram`` and ``MelSpectrogram`` against Keras 3 and against NumPy's FFT; the
``STFT`` initializer and its windows against Keras and SciPy."""

import numpy as np
import pytest
from layer_checker import check_layer, random_input

import lamina as lm


def test_stft_spectrogram_matches_keras(keras):
    config = dict(frame_length=16, frame_step=6, padding="same", periodic=True)
    check_layer(lambda: lm.layers.STFTSpectrogram(**config), lambda k: k.layers.STFTSpectrogram(**config),
                input_shape=(2, 40, 2), keras=keras)


@pytest.mark.parametrize("mode", ["magnitude", "psd", "stft", "angle"])
def test_modes_equal_numpy_s_fft_of_windowed_frames(mode):
    frame_length, step, fft_length = 12, 5, 16
    x = random_input((2, 3, 47), seed=4)  # channels first
    layer = lm.layers.STFTSpectrogram(mode=mode, frame_length=frame_length, frame_step=step, fft_length=fft_length,
                                      window="hamming", data_format="channels_first", expand_dims=True)
    out = np.asarray(layer(x))
    window = lm.initializers.get_window("hamming", frame_length)
    starts = range(0, 47 - frame_length + 1, step)
    frames = np.stack([x[..., s:s + frame_length] for s in starts], axis=2)  # (batch, channels, frames, length)
    spectrum = np.fft.rfft(frames * window, n=fft_length) / np.sqrt(np.sum(window ** 2))
    expected = {"magnitude": np.abs(spectrum),
                "psd": np.abs(spectrum) ** 2 * np.r_[1, [2] * (fft_length // 2 - 1), 1],
                "stft": np.concatenate([spectrum.real, spectrum.imag], axis=-1),
                "angle": np.angle(spectrum)}[mode]
    assert out.shape == expected.shape and layer.compute_output_shape((None, 3, 47)) == (None, *expected.shape[1:])
    if mode == "angle":  # where a bin is ~0 its angle is noise; compare where it is not
        keep = np.abs(spectrum) > 1e-3
        out, expected = np.exp(1j * out[keep]), np.exp(1j * expected[keep])
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_stft_initializer_and_windows_match_keras_and_scipy(keras):
    import scipy.signal  # noqa: PLC0415 - Keras's dependency, the windows' reference

    for name in ("hann", "hamming", "blackman", "bartlett", "boxcar"):
        for periodic in (False, True):
            np.testing.assert_allclose(lm.initializers.get_window(name, 9, periodic),
                                       scipy.signal.get_window(name, 9, periodic), atol=1e-12)
    for config in (dict(side="real"), dict(side="imag", window="blackman", scaling="spectrum", periodic=True),
                   dict(side="real", window=None, scaling=None)):
        ours, theirs = lm.initializers.STFT(**config), keras.initializers.STFT(**config)
        np.testing.assert_allclose(np.asarray(ours((16, 1, 9))), np.asarray(theirs((16, 1, 9))), atol=1e-5)
        assert ours.get_config() == theirs.get_config()
    assert isinstance(lm.initializers.get("stft"), lm.initializers.STFT)
    assert lm.initializers.deserialize(lm.initializers.serialize(lm.initializers.STFT("imag"))).side == "imag"


def test_mel_spectrogram_matches_keras(keras):
    # float32 FFTs of different libraries; decibels up to ~60, hence the tolerances. No weights,
    # and a preprocessing step (a Keras DataLayer): gradients are not compared (two FFT programs).
    config = dict(fft_length=64, sequence_stride=24, sequence_length=50, num_mel_bins=12, sampling_rate=8000)
    check_layer(lambda: lm.layers.MelSpectrogram(**config), lambda k: k.layers.MelSpectrogram(**config),
                input_shape=(2, 200), keras=keras, rtol=1e-4, atol=1e-3, check_grads=False)


def test_mel_spectrogram_equals_numpy_mel_filters_of_the_power_spectrum():
    x = random_input((2, 300), seed=7)
    layer = lm.layers.MelSpectrogram(fft_length=64, sequence_stride=32, num_mel_bins=10, power_to_db=False)
    padded = np.pad(x, [(0, 0), (32, 32)], mode="reflect")
    frames = np.stack([padded[:, s:s + 64] for s in range(0, padded.shape[1] - 63, 32)], axis=1)
    power = np.abs(np.fft.rfft(frames * lm.initializers.get_window("hann", 64, periodic=True))) ** 2
    hertz = np.linspace(0, 8000, 33)
    mel = 1127.0 * np.log(1 + hertz / 700.0)
    edges = np.linspace(1127.0 * np.log(1 + 20 / 700.0), 1127.0 * np.log(1 + 8000 / 700.0), 12)
    filters = np.stack([np.clip(np.minimum((mel - lo) / (c - lo), (hi - mel) / (hi - c)), 0, None)
                        for lo, c, hi in zip(edges, edges[1:], edges[2:])], axis=1)
    filters[0] = 0  # the DC bin is left out
    expected = np.swapaxes(power @ filters, 1, 2)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-4, atol=1e-4)
    assert layer.compute_output_shape((None, 300)) == (None, 10, 10) == (None, *expected.shape[1:])


def test_bad_arguments_and_inputs_name_the_layer():
    with pytest.raises(ValueError, match=r"STFTSpectrogram 's1'.*frame_step.*frame_step=20, frame_length=16"):
        lm.layers.STFTSpectrogram(frame_length=16, frame_step=20, name="s1")
    with pytest.raises(ValueError, match=r"'s2'.*`mode` must be one of"):
        lm.layers.STFTSpectrogram(mode="power", name="s2")
    with pytest.raises(ValueError, match=r"Unknown window 'kaiser'.*array"):
        lm.layers.STFTSpectrogram(window="kaiser")
    with pytest.raises(ValueError, match=r"MelSpectrogram 'm1'.*fft_length.*sequence_length=300, fft_length=256"):
        lm.layers.MelSpectrogram(fft_length=256, sequence_length=300, name="m1")
    with pytest.raises(ValueError, match=r"'m2'.*`window` must be 'hann', 'hamming'"):
        lm.layers.MelSpectrogram(window="blackman", name="m2")
    with pytest.raises(TypeError, match=r"'s3'.*float signals.*int32"):
        lm.layers.STFTSpectrogram(frame_length=8, name="s3")(np.ones((1, 32, 1), "int32"))
