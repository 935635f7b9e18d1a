"""``MelSpectrogram``: a signal's power spectrogram on the mel scale, in decibels."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lamina import initializers
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin

_MEL_BREAK_FREQUENCY_HERTZ = 700.0
_MEL_HIGH_FREQUENCY_Q = 1127.0


def _hertz_to_mel(hertz):
    return _MEL_HIGH_FREQUENCY_Q * np.log(1.0 + hertz / _MEL_BREAK_FREQUENCY_HERTZ)


def linear_to_mel_weight_matrix(num_mel_bins, num_spectrogram_bins, sampling_rate, lower_edge_hertz,
                                upper_edge_hertz) -> np.ndarray:
    """``(num_spectrogram_bins, num_mel_bins)`` triangular filters, evenly spaced in mel between
    the two edges (TensorFlow's and Keras's matrix; the DC bin gets no weight).

    Example:
        >>> m = linear_to_mel_weight_matrix(4, 65, 16000, 20.0, 8000.0)
        >>> m.shape, bool((m[0] == 0).all()), bool((m >= 0).all())
        ((65, 4), True, True)
    """
    linear = np.linspace(0.0, sampling_rate / 2.0, num_spectrogram_bins)[1:]
    bins_mel = _hertz_to_mel(linear)[:, None]
    edges = np.linspace(_hertz_to_mel(float(lower_edge_hertz)), _hertz_to_mel(float(upper_edge_hertz)),
                        num_mel_bins + 2)
    lower, center, upper = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    weights = np.maximum(0.0, np.minimum((bins_mel - lower) / (center - lower), (upper - bins_mel) / (upper - center)))
    return np.pad(weights, [(1, 0), (0, 0)])


@register_builtin
class MelSpectrogram(Layer):
    """Mel-scaled power spectrogram of audio ``(batch, samples)`` (or one ``(samples,)``
    signal), as ``keras.layers.MelSpectrogram``: frames of ``sequence_length`` samples (default
    ``fft_length``) every ``sequence_stride``, centred (the signal reflect-padded by
    ``fft_length // 2``), windowed (``"hann"``, ``"hamming"`` or ``None``), ``|FFT| **
    mag_exp``, ``num_mel_bins`` triangular mel filters between ``min_freq`` and ``max_freq``
    (default ``sampling_rate / 2``), then, with ``power_to_db``, ``10 log10(max(x,
    min_power) / ref_power)`` floored at the batch's maximum minus ``top_db``. Output
    ``(batch, num_mel_bins, frames)``. No weights.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> layer = lm.layers.MelSpectrogram(fft_length=256, sequence_stride=128, num_mel_bins=40)
        >>> layer(jnp.ones((2, 1024))).shape
        (2, 40, 9)
    """

    def __init__(self, fft_length=2048, sequence_stride=512, sequence_length=None, window="hann",
                 sampling_rate=16000, num_mel_bins=128, min_freq=20.0, max_freq=None, power_to_db=True,
                 top_db=80.0, mag_exp=2.0, min_power=1e-10, ref_power=1.0, **kwargs):
        super().__init__(**kwargs)
        owner = f"MelSpectrogram '{self.name}'"
        sequence_length = sequence_length or fft_length
        if fft_length < sequence_length:
            raise ValueError(f"{owner}: `fft_length` must be at least `sequence_length`; got "
                             f"sequence_length={sequence_length}, fft_length={fft_length}.")
        if isinstance(window, str) and window not in ("hann", "hamming"):
            raise ValueError(f"{owner}: `window` must be 'hann', 'hamming', None or an array; got {window!r}.")
        self.fft_length = fft_length
        self.sequence_stride = sequence_stride
        self.sequence_length = sequence_length
        self.window = window
        self.sampling_rate = sampling_rate
        self.num_mel_bins = num_mel_bins
        self.min_freq = min_freq
        self.max_freq = max_freq or int(sampling_rate / 2)
        self.power_to_db = power_to_db
        self.top_db = top_db
        self.mag_exp = mag_exp
        self.min_power = min_power
        self.ref_power = ref_power
        self.built = True

    def _frame_window(self) -> np.ndarray:
        """The window over ``sequence_length`` samples, zero-padded to ``fft_length`` (centred)."""
        if self.window is None:
            win = np.ones(self.sequence_length)
        elif isinstance(self.window, str):
            win = initializers.get_window(self.window, self.sequence_length, periodic=True)
        else:
            win = np.asarray(self.window, np.float64)
        left = (self.fft_length - self.sequence_length) // 2
        return np.pad(win, (left, self.fft_length - self.sequence_length - left))

    def call(self, inputs):
        dtype = self.compute_dtype if self.compute_dtype in ("float32", "float64") else "float32"
        x = jnp.asarray(inputs, dtype)
        half = self.fft_length // 2
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(half, half)], mode="reflect")
        frames = 1 + (x.shape[-1] - self.fft_length) // self.sequence_stride
        index = (np.arange(frames)[:, None] * self.sequence_stride + np.arange(self.fft_length)[None])
        framed = x[..., index] * jnp.asarray(self._frame_window(), dtype)  # (..., frames, fft_length)
        spectrum = jnp.fft.rfft(framed, n=self.fft_length, axis=-1)
        power = jnp.abs(spectrum).astype(dtype) ** self.mag_exp
        matrix = linear_to_mel_weight_matrix(self.num_mel_bins, power.shape[-1], self.sampling_rate, self.min_freq,
                                             self.max_freq)
        mel = jnp.tensordot(power, jnp.asarray(matrix, dtype), axes=1)
        if self.power_to_db:
            db = 10.0 * jnp.log10(jnp.maximum(mel, self.min_power))
            db = db - 10.0 * np.log10(max(abs(self.ref_power), self.min_power))
            mel = jnp.maximum(db, jnp.max(db) - self.top_db)  # over the whole batch, as Keras
        return jnp.swapaxes(mel, -1, -2).astype(self.compute_dtype)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        samples = input_shape[-1]
        # Centring pads fft_length // 2 samples on each side (one fewer in all for an odd fft_length).
        padded = None if samples is None else samples + 2 * (self.fft_length // 2)
        frames = None if padded is None else 1 + (padded - self.fft_length) // self.sequence_stride
        return (*input_shape[:-1], self.num_mel_bins, frames)

    def get_config(self):
        window = self.window.tolist() if hasattr(self.window, "tolist") else self.window
        return {**super().get_config(), "fft_length": self.fft_length, "sequence_stride": self.sequence_stride,
                "sequence_length": self.sequence_length, "window": window, "sampling_rate": self.sampling_rate,
                "num_mel_bins": self.num_mel_bins, "min_freq": self.min_freq, "max_freq": self.max_freq,
                "power_to_db": self.power_to_db, "top_db": self.top_db, "mag_exp": self.mag_exp,
                "min_power": self.min_power, "ref_power": self.ref_power}
