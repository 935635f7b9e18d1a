"""Weight initializers (``lm.initializers``): Keras 3 names, arguments and defaults.

An initializer is called as ``init(shape, dtype="float32")`` and returns a concrete
``jax.Array``, also when called while a ``jax.jit`` trace is running (layers build their
weights on the first call, which may happen inside compiled code).

Seeding: an integer ``seed`` gives the same values at every call, and the same values Keras 3
gives with that seed on its JAX backend (the key is laid out as Keras lays it out).
``seed=None`` draws a fresh seed from lamina's global stream at every call, so
``lm.random.set_seed(n)`` makes unseeded draws repeatable. (Keras instead fixes a random seed
when an unseeded initializer is created.)
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import config as jax_config  # the contextual switches have no public name
from jax._src import core as jax_core

from lamina.core.variable import register_initializer_resolver
from lamina.distribution import placement
from lamina.random import draw_seed
from lamina.saving.host_transfer import to_default_device
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import Configurable, object_family


def _concrete(call):
    """Normalize ``shape``/``dtype`` and compute eagerly even inside a ``jax.jit`` trace;
    staged instead into the sharded program ``placement.initialize`` compiles for a variable
    under a distribution (each device then computes only its own shard)."""

    @functools.wraps(call)
    def wrapper(self, shape, dtype="float32"):
        shape = tuple(int(d) for d in shape)
        dtype = jnp.dtype("float32" if dtype is None else dtype)
        if placement.staging():
            with jax_config.eager_constant_folding(False):
                return jnp.asarray(call(self, shape, dtype), dtype=dtype)
        with jax.ensure_compile_time_eval():
            value = call(self, shape, dtype)
            if isinstance(value, np.ndarray):
                # A fill made on the host (zeros, ones, a constant) goes to the device as it
                # is: jnp would compile one small program per shape, ~20 ms each on a CPU.
                return to_default_device([value.astype(dtype, copy=False)])[0]
            if isinstance(value, jax.Array) and value.dtype == dtype:
                return value  # as jnp.asarray would give it, without its cost (a model's every kernel)
            return jnp.asarray(value, dtype=dtype)

    return wrapper


def _fill(shape, value, dtype):
    """``shape`` filled with ``value``: made on the host (no compiled program), or staged when
    a sharded initializer program is being traced (no whole array as its constant)."""
    if placement.staging():
        return jnp.full(shape, value, dtype)
    return np.full(shape, np.asarray(value), dtype)


def _check_seed(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"`seed` must be an integer or None; got seed={seed!r}.")
    return None if seed is None else int(seed)


def _key(seed):
    # Keras builds a raw key [seed, 0] from an int seed; using the same layout makes a seeded
    # lamina initializer reproduce the numbers of the same Keras initializer.
    if seed is None:
        seed = draw_seed()
    with jax.ensure_compile_time_eval():  # device_put of a NumPy key compiles nothing
        return to_default_device([np.array([seed & 0xFFFFFFFF, 0], dtype=np.uint32)])[0]


def _flat(shape):
    # Drawing flat then reshaping gives the same numbers (JAX lays its random bits out in
    # row-major order) and compiles several times faster than a rank-4 draw (conv kernels).
    return (math.prod(shape),)


def _fans_view(shape):
    # JAX counts fans of (receptive, in, out) as (receptive * in, receptive * out): Keras's rule
    # for conv kernels, and for (n,) -> (n, 1, 1) Keras's (n, n). JAX alone refuses rank < 2.
    if len(shape) < 2:
        return (math.prod(shape), 1, 1)
    return (math.prod(shape[:-2]), *shape[-2:])


class Initializer(Configurable):
    """Base class: subclasses implement ``__call__(shape, dtype)`` (and ``get_config``).

    Example:
        >>> import jax.numpy as jnp
        >>> class Twos(Initializer):
        ...     def __call__(self, shape, dtype="float32"):
        ...         return jnp.full(shape, 2.0, dtype)
        >>> Twos()((2,)).tolist()
        [2.0, 2.0]
    """

    def __call__(self, shape, dtype="float32"):
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(shape, dtype).")



class Zeros(Initializer):
    """All zeros.

    Example:
        >>> Zeros()((2,)).tolist()
        [0.0, 0.0]
    """

    @_concrete
    def __call__(self, shape, dtype="float32"):
        return _fill(shape, 0, dtype)


class Ones(Initializer):
    """All ones.

    Example:
        >>> Ones()((2,)).tolist()
        [1.0, 1.0]
    """

    @_concrete
    def __call__(self, shape, dtype="float32"):
        return _fill(shape, 1, dtype)


class Constant(Initializer):
    """Every element equal to ``value``.

    Example:
        >>> Constant(3.0)((2,)).tolist()
        [3.0, 3.0]
    """

    def __init__(self, value=0.0):
        self.value = value

    @_concrete
    def __call__(self, shape, dtype="float32"):
        return _fill(shape, self.value, dtype)

    def get_config(self):
        value = self.value.tolist() if hasattr(self.value, "tolist") else self.value
        return {"value": value}


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only; rectangular is allowed).

    Example:
        >>> Identity(gain=2.0)((2, 2)).tolist()
        [[2.0, 0.0], [0.0, 2.0]]
    """

    def __init__(self, gain=1.0):
        self.gain = gain

    @_concrete
    def __call__(self, shape, dtype="float32"):
        if len(shape) != 2:
            raise ValueError(f"Identity initializer needs a 2-D shape; got shape={shape}.")
        return self.gain * jnp.eye(*shape, dtype=dtype)

    def get_config(self):
        return {"gain": self.gain}


class RandomNormal(Initializer):
    """Normal draws with the given ``mean`` and ``stddev``.

    Example:
        >>> RandomNormal(stddev=1.0, seed=1)((3, 4)).shape
        (3, 4)
    """

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, _check_seed(seed)

    @_concrete
    def __call__(self, shape, dtype="float32"):
        sample = jax.random.normal(_key(self.seed), _flat(shape), dtype).reshape(shape)
        return sample * self.stddev + self.mean

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(Initializer):
    """Normal draws cut at two standard deviations from the mean (redrawn, not clipped).

    Example:
        >>> w = TruncatedNormal(stddev=1.0, seed=1)((100,))
        >>> bool((abs(w) <= 2.0).all())
        True
    """

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, _check_seed(seed)

    @_concrete
    def __call__(self, shape, dtype="float32"):
        sample = jax.random.truncated_normal(_key(self.seed), -2.0, 2.0, _flat(shape), dtype)
        return sample.reshape(shape) * self.stddev + self.mean

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    """Uniform draws in ``[minval, maxval)``.

    Example:
        >>> w = RandomUniform(0.0, 1.0, seed=1)((100,))
        >>> bool(((w >= 0) & (w < 1)).all())
        True
    """

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = minval, maxval, _check_seed(seed)

    @_concrete
    def __call__(self, shape, dtype="float32"):
        sample = jax.random.uniform(_key(self.seed), _flat(shape), dtype, self.minval, self.maxval)
        return sample.reshape(shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class VarianceScaling(Initializer):
    """Draws with variance ``scale / n``, ``n`` the fan-in, fan-out or their mean.

    Fans as in Keras: a 2-D kernel ``(in, out)`` has ``fan_in=in``, ``fan_out=out``; a conv
    kernel ``(*window, in, out)`` multiplies both by the window size; a 1-D shape ``(n,)`` has
    both fans ``n``. ``distribution`` is ``"truncated_normal"`` (``"normal"`` means the same),
    ``"untruncated_normal"`` or ``"uniform"``.

    Example:
        >>> init = VarianceScaling(scale=2.0, mode="fan_in", distribution="uniform", seed=0)
        >>> w = init((400, 300))
        >>> bool(abs(w).max() <= (3 * 2.0 / 400) ** 0.5)
        True
    """

    _JAX_DISTRIBUTION = {"truncated_normal": "truncated_normal", "untruncated_normal": "normal",
                         "uniform": "uniform"}

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        if scale <= 0.0:
            raise ValueError(f"`scale` must be a positive float; got scale={scale}.")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"`mode` must be 'fan_in', 'fan_out' or 'fan_avg'; got mode={mode!r}.")
        distribution = distribution.lower()
        distribution = "truncated_normal" if distribution == "normal" else distribution
        if distribution not in self._JAX_DISTRIBUTION:
            raise ValueError(
                "`distribution` must be 'truncated_normal', 'untruncated_normal' or 'uniform'; "
                f"got distribution={distribution!r}."
            )
        self.scale, self.mode, self.distribution = scale, mode, distribution
        self.seed = _check_seed(seed)

    @_concrete
    def __call__(self, shape, dtype="float32"):
        if 0 in shape:  # nothing to draw, and JAX would divide by a zero fan
            return _fill(shape, 0, dtype)
        draw = functools.partial(_variance_scaling_draw, _key(self.seed), shape, dtype, self.scale,
                                 self.mode, self._JAX_DISTRIBUTION[self.distribution])
        if placement.staging():
            return draw()
        # Run now even inside a trace (an initializer returns a concrete array), as one compiled
        # program: with constant folding on, JAX would also compile its pieces one by one.
        with jax_core.eval_context(), jax_config.eager_constant_folding(False):
            return draw()

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _variance_scaling_draw(key, shape, dtype, scale, mode, distribution):
    # One compiled program per kernel shape (the default kernel initializer of Dense and the
    # convolutions), the key an input: run op by op, the draw compiled five small programs per
    # shape, ~0.3 s of a fresh process's first model build on a CPU.
    init = jax.nn.initializers.variance_scaling(scale, mode, distribution)
    return jnp.reshape(init(key, _fans_view(shape), dtype), shape)


class _VarianceScalingPreset(VarianceScaling):
    # Presets fix scale/mode/distribution, so only the seed is configurable and saved.
    def get_config(self):
        return {"seed": self.seed}


class GlorotUniform(_VarianceScalingPreset):
    """Uniform in ``[-limit, limit]``, ``limit = sqrt(6 / (fan_in + fan_out))`` (Xavier uniform).

    Example:
        >>> w = GlorotUniform(seed=0)((30, 20))
        >>> bool(abs(w).max() <= (6 / 50) ** 0.5)
        True
    """

    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "uniform", seed)


class GlorotNormal(_VarianceScalingPreset):
    """Truncated normal with ``stddev = sqrt(2 / (fan_in + fan_out))`` (Xavier normal).

    Example:
        >>> GlorotNormal(seed=0)((30, 20)).shape
        (30, 20)
    """

    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed)


class HeNormal(_VarianceScalingPreset):
    """Truncated normal with ``stddev = sqrt(2 / fan_in)``.

    Example:
        >>> HeNormal(seed=0)((3, 3, 4, 8)).shape
        (3, 3, 4, 8)
    """

    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "truncated_normal", seed)


class HeUniform(_VarianceScalingPreset):
    """Uniform in ``[-limit, limit]``, ``limit = sqrt(6 / fan_in)``.

    Example:
        >>> w = HeUniform(seed=0)((30, 20))
        >>> bool(abs(w).max() <= (6 / 30) ** 0.5)
        True
    """

    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "uniform", seed)


class LecunNormal(_VarianceScalingPreset):
    """Truncated normal with ``stddev = sqrt(1 / fan_in)``.

    Example:
        >>> LecunNormal(seed=0)((30, 20)).shape
        (30, 20)
    """

    def __init__(self, seed=None):
        super().__init__(1.0, "fan_in", "truncated_normal", seed)


class LecunUniform(_VarianceScalingPreset):
    """Uniform in ``[-limit, limit]``, ``limit = sqrt(3 / fan_in)``.

    Example:
        >>> w = LecunUniform(seed=0)((30, 20))
        >>> bool(abs(w).max() <= (3 / 30) ** 0.5)
        True
    """

    def __init__(self, seed=None):
        super().__init__(1.0, "fan_in", "uniform", seed)


class Orthogonal(Initializer):
    """``gain`` times an orthogonal matrix (shapes of rank >= 2 flattened to ``(-1, last)``).

    Example:
        >>> import jax.numpy as jnp
        >>> w = Orthogonal(seed=0)((4, 4))
        >>> bool(jnp.allclose(w.T @ w, jnp.eye(4), atol=1e-5))
        True
    """

    def __init__(self, gain=1.0, seed=None):
        self.gain, self.seed = gain, _check_seed(seed)

    @_concrete
    def __call__(self, shape, dtype="float32"):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal initializer needs a shape of rank >= 2; got shape={shape}.")
        # The QR decomposition has no half-precision kernels: compute in float32, then cast.
        work_dtype = dtype if dtype.itemsize >= 4 else jnp.float32
        init = jax.nn.initializers.orthogonal(scale=self.gain)
        return init(_key(self.seed), shape, work_dtype)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


# scipy.signal.get_window's formulas for the windows lamina computes itself (symmetric over
# ``n = 0..N-1``; a periodic window is the symmetric one of N + 1 points without its last).
_WINDOWS = {
    "hann": lambda n, m: 0.5 - 0.5 * np.cos(2 * np.pi * n / m),
    "hamming": lambda n, m: 0.54 - 0.46 * np.cos(2 * np.pi * n / m),
    "blackman": lambda n, m: 0.42 - 0.5 * np.cos(2 * np.pi * n / m) + 0.08 * np.cos(4 * np.pi * n / m),
    "bartlett": lambda n, m: 1.0 - np.abs(2.0 * n / m - 1.0),
    "boxcar": lambda n, m: np.ones_like(n),
}


def get_window(name, length: int, periodic: bool = False) -> np.ndarray:
    """The window ``name`` (``"hann"``, ``"hamming"``, ``"blackman"``, ``"bartlett"`` or
    ``"boxcar"``) of ``length`` points, as ``scipy.signal.get_window(name, length, periodic)``.

    Example:
        >>> get_window("hann", 4).round(3).tolist(), get_window("hann", 4, periodic=True).round(3).tolist()
        ([0.0, 0.75, 0.75, 0.0], [0.0, 0.5, 1.0, 0.5])
    """
    if name not in _WINDOWS:
        raise ValueError(f"Unknown window {name!r}: lamina computes the windows {sorted(_WINDOWS)}; "
                         "pass any other one as an array of `frame_length` values.")
    if length <= 1:
        return np.ones(length)
    points = length + 1 if periodic else length
    values = _WINDOWS[name](np.arange(points, dtype=np.float64), points - 1)
    return values[:length]


class STFT(Initializer):
    """The kernel of a short-time Fourier transform as a convolution, as
    ``keras.initializers.STFT``: for a shape ``(frame_length, 1, bins)``, ``cos`` (``side=
    "real"``) or ``sin`` (``"imag"``) of ``-2 pi t f / (2 (bins - 1))`` for each time ``t`` and
    frequency bin ``f``, times ``window`` (a name, an array of ``frame_length`` values, or
    ``None``), divided by ``sqrt(sum(window ** 2))`` (``scaling="density"``), ``sum(|window|)``
    (``"spectrum"``) or 1 (``None``). ``lm.layers.STFTSpectrogram`` builds its kernels with it.

    Example:
        >>> kernel = STFT("real", window=None)((4, 1, 3))
        >>> kernel[:, 0, 0].tolist(), kernel[:, 0, 2].tolist()
        ([1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0])
    """

    def __init__(self, side="real", window="hann", scaling="density", periodic=False):
        if side not in ("real", "imag"):
            raise ValueError(f"STFT initializer: side must be 'real' or 'imag', got {side!r}.")
        if scaling not in (None, "density", "spectrum"):
            raise ValueError(f"STFT initializer: scaling must be None, 'density' or 'spectrum', got {scaling!r}.")
        if isinstance(window, str) and window not in _WINDOWS:
            get_window(window, 1)  # the unknown-window message
        self.side, self.window, self.scaling, self.periodic = side, window, scaling, bool(periodic)

    @_concrete
    def __call__(self, shape, dtype="float32"):
        if len(shape) != 3:
            raise ValueError(f"STFT initializer: the shape must be (frame_length, channels, bins), got {shape}.")
        frame_length, _, bins = shape
        time = np.arange(frame_length, dtype=np.float64).reshape(frame_length, 1, 1)
        freq = np.arange(bins, dtype=np.float64).reshape(1, 1, bins) / ((bins - 1) * 2)
        angles = -2.0 * time * freq * np.pi
        kernel = np.cos(angles) if self.side == "real" else np.sin(angles)
        if self.window is not None:
            win = (get_window(self.window, frame_length, self.periodic) if isinstance(self.window, str)
                   else np.asarray(self.window, np.float64))
            if win.shape != (frame_length,):
                raise ValueError(f"STFT initializer: the window must have frame_length={frame_length} values, "
                                 f"got shape {win.shape}.")
            scale = {"density": np.sqrt(np.sum(win ** 2)), "spectrum": np.sum(np.abs(win)), None: 1.0}[self.scaling]
            kernel = kernel * win.reshape(frame_length, 1, 1) / scale
        return np.broadcast_to(kernel, shape).copy()

    def get_config(self):
        window = self.window.tolist() if hasattr(self.window, "tolist") else self.window
        return {"side": self.side, "window": window, "periodic": self.periodic, "scaling": self.scaling}


_CLASSES = (Zeros, Ones, Constant, Identity, RandomNormal, TruncatedNormal, RandomUniform,
            VarianceScaling, GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal,
            LecunUniform, Orthogonal, STFT)
_ALIASES = {
    "Initializer": Initializer, "initializer": Initializer,
    **{cls.__name__: cls for cls in _CLASSES},
    "zeros": Zeros, "ones": Ones, "constant": Constant, "identity": Identity,
    "zero": Zeros, "one": Ones, "uniform": RandomUniform, "normal": RandomNormal,  # Keras aliases
    "random_normal": RandomNormal, "truncated_normal": TruncatedNormal,
    "random_uniform": RandomUniform, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_normal": HeNormal,
    "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal,
    "IdentityInitializer": Identity, "OrthogonalInitializer": Orthogonal,  # Keras's compat names
    "STFTInitializer": STFT, "stft": STFT,
}
register_builtin(Initializer)
for _cls in _CLASSES:
    # ``Identity`` is also a layer's name; the layer keeps the global entry, and initializer
    # configs still resolve it through this module's own table first.
    if _cls is not Identity:
        register_builtin(_cls)


serialize, deserialize, get = object_family("initializer", _ALIASES, base=Initializer,
                                          module="lamina.initializers")
register_initializer_resolver(get)  # Variable("zeros", shape=...) resolves names through us


# Keras's snake-case aliases of the classes (``lm.initializers.glorot_uniform(seed=1)``), and
# its longer names for the two whose short names are also layers / other objects.
zeros, ones, constant, identity = Zeros, Ones, Constant, Identity
random_normal, truncated_normal, random_uniform = RandomNormal, TruncatedNormal, RandomUniform
variance_scaling, orthogonal = VarianceScaling, Orthogonal
glorot_uniform, glorot_normal, he_normal, he_uniform = GlorotUniform, GlorotNormal, HeNormal, HeUniform
lecun_normal, lecun_uniform = LecunNormal, LecunUniform
IdentityInitializer, OrthogonalInitializer = Identity, Orthogonal
STFTInitializer = stft = STFT

_SNAKE_CASE = ["constant", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "identity",
               "lecun_normal", "lecun_uniform", "ones", "orthogonal", "random_normal", "random_uniform",
               "truncated_normal", "variance_scaling", "zeros"]
__all__ = ["Initializer", *(cls.__name__ for cls in _CLASSES), "IdentityInitializer",
           "OrthogonalInitializer", "STFTInitializer", "stft", *_SNAKE_CASE, "deserialize", "get", "serialize"]
