"""``STFTSpectrogram``: the short-time Fourier transform of a signal as a strided convolution."""

from __future__ import annotations

import math
import warnings

import jax.numpy as jnp
from jax import lax

from lamina import initializers
from lamina.layers.convolutional import _arguments as args
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin

_MODES = ("log", "magnitude", "psd", "real", "imag", "angle", "stft")
_EPSILON = 1e-7  # Keras's backend.epsilon()


@register_builtin
class STFTSpectrogram(Layer):
    """Spectrogram of ``(batch, time, channels)`` signals (``(batch, channels, time)`` with
    ``data_format="channels_first"``), as ``keras.layers.STFTSpectrogram``.

    Each channel is cut into frames of ``frame_length`` samples every ``frame_step`` (default
    ``frame_length // 2``) and each frame transformed with ``fft_length`` points (default: the
    next power of two), as one strided 1-D convolution with the ``real_kernel`` and
    ``imag_kernel`` weights that ``lm.initializers.STFT`` fills (windowed by ``window``,
    normalized by ``scaling``; trainable, as in Keras). ``mode``: ``"log"`` (log magnitude,
    the default), ``"magnitude"``, ``"psd"`` (power, non-DC bins doubled), ``"real"``,
    ``"imag"``, ``"angle"`` or ``"stft"`` (real and imaginary parts side by side).
    The output is ``(batch, frames, channels * bins)`` (channels last), or with
    ``expand_dims=True`` ``(batch, frames, bins, channels)``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> layer = lm.layers.STFTSpectrogram(frame_length=64, frame_step=32, mode="magnitude")
        >>> layer(jnp.ones((2, 256, 1))).shape
        (2, 7, 33)
    """

    def __init__(self, mode="log", frame_length=256, frame_step=None, fft_length=None, window="hann",
                 periodic=False, scaling="density", padding="valid", expand_dims=False, data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        owner = f"STFTSpectrogram '{self.name}'"
        if frame_step is not None and not 1 <= frame_step <= frame_length:
            raise ValueError(f"{owner}: `frame_step` must be a positive integer not greater than `frame_length`; "
                             f"got frame_step={frame_step}, frame_length={frame_length}.")
        if fft_length is not None and fft_length < frame_length:
            raise ValueError(f"{owner}: `fft_length` must be at least `frame_length`; got fft_length={fft_length}, "
                             f"frame_length={frame_length}.")
        if fft_length is not None and fft_length & (fft_length - 1):
            warnings.warn(f"{owner}: `fft_length` is best a power of two; got {fft_length}.", stacklevel=2)
        if mode not in _MODES:
            raise ValueError(f"{owner}: `mode` must be one of {', '.join(_MODES)}; got {mode!r}.")
        if padding not in ("valid", "same"):
            raise ValueError(f"{owner}: `padding` must be 'valid' or 'same'; got {padding!r}.")
        # The initializer checks `window` and `scaling` (and names the windows it knows).
        initializers.STFT("real", window, scaling, periodic)
        self.mode = mode
        self.frame_length = frame_length
        self.frame_step = frame_step
        self.fft_length = fft_length
        self.window = window
        self.periodic = periodic
        self.scaling = scaling
        self.padding = padding
        self.expand_dims = expand_dims
        self.data_format = args.normalize_data_format(data_format, owner)
        self.input_spec = InputSpec(ndim=3)

    @property
    def _frame_step(self) -> int:
        return self.frame_step or self.frame_length // 2

    @property
    def _bins(self) -> int:
        return (self.fft_length or 2 ** math.ceil(math.log2(self.frame_length))) // 2 + 1

    def build(self, input_shape):
        shape = (self.frame_length, 1, self._bins)
        if self.mode != "imag":
            self.real_kernel = self.add_weight(
                shape=shape, name="real_kernel",
                initializer=initializers.STFT("real", self.window, self.scaling, self.periodic))
        if self.mode != "real":
            self.imag_kernel = self.add_weight(
                shape=shape, name="imag_kernel",
                initializer=initializers.STFT("imag", self.window, self.scaling, self.periodic))

    def call(self, inputs):
        if inputs.dtype not in (jnp.float16, jnp.float32, jnp.float64, jnp.bfloat16):
            raise TypeError(f"STFTSpectrogram '{self.path}' takes float signals, got dtype {inputs.dtype}.")
        kernels = [k.value for k in (getattr(self, "real_kernel", None), getattr(self, "imag_kernel", None))
                   if k is not None]
        kernel = jnp.concatenate(kernels, axis=-1).astype(inputs.dtype)
        # Every channel is a separate signal: (batch * channels, time, 1).
        signals = jnp.swapaxes(inputs, 1, 2) if self.data_format == "channels_last" else inputs
        batch, channels, time = signals.shape
        framed = lax.conv_general_dilated(signals.reshape(batch * channels, time, 1), kernel, (self._frame_step,),
                                          self.padding.upper(), dimension_numbers=("NWC", "WIO", "NWC"))
        frames = framed.shape[1]
        # (batch, channels, frames, bins) for each kernel.
        parts = jnp.split(framed.reshape(batch, channels, frames, -1), len(kernels), axis=-1)
        if self.mode in ("real", "imag"):
            out = parts[0]
        elif self.mode == "angle":
            out = jnp.arctan2(parts[1], parts[0])
        elif self.mode == "stft":
            out = jnp.concatenate(parts, axis=-1)
        else:
            power = jnp.square(parts[0]) + jnp.square(parts[1])
            if self.mode == "psd":
                out = power + jnp.pad(power[..., 1:-1], [(0, 0), (0, 0), (0, 0), (1, 1)])
            else:
                out = jnp.sqrt(jnp.maximum(power, _EPSILON))
                if self.mode == "log":
                    out = jnp.log(jnp.maximum(out, _EPSILON))
        return self._arrange(out)

    def _arrange(self, out):
        """``(batch, channels, frames, bins)`` in the output layout Keras gives."""
        batch, channels, frames, bins = out.shape
        if self.expand_dims:
            return jnp.transpose(out, (0, 2, 3, 1) if self.data_format == "channels_last" else (0, 1, 2, 3))
        out = jnp.swapaxes(out, 2, 3).reshape(batch, channels * bins, frames)
        return jnp.swapaxes(out, 1, 2) if self.data_format == "channels_last" else out

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        args.check_rank(self, input_shape, 3)
        channels_last = self.data_format == "channels_last"
        channels, time = (input_shape[2], input_shape[1]) if channels_last else (input_shape[1], input_shape[2])
        frames = args.conv_output_length(time, self.frame_length, self._frame_step, self.padding)
        bins = self._bins * (2 if self.mode == "stft" else 1)
        if self.expand_dims:
            return (input_shape[0], frames, bins, channels) if channels_last else (input_shape[0], channels, frames,
                                                                                   bins)
        width = None if channels is None else channels * bins
        return (input_shape[0], frames, width) if channels_last else (input_shape[0], width, frames)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "frame_length": self.frame_length,
                "frame_step": self.frame_step, "fft_length": self.fft_length, "window": self.window,
                "periodic": self.periodic, "scaling": self.scaling, "padding": self.padding,
                "data_format": self.data_format, "expand_dims": self.expand_dims}
