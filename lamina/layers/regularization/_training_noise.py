"""What the layers that are random in training only share: their own seed generator, the
identity at inference, masks passed on, and a functional graph built without tracing them."""

from __future__ import annotations

from lamina import random
from lamina.layers.call_context import context
from lamina.layers.layer import Layer
from lamina.layers.output_specs import OutputSpec, input_dtype_in_call


def check_rate(layer, rate) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ValueError(f"{type(layer).__name__} '{layer.name}': rate must be a number in [0, 1], got rate={rate!r}.")
    return rate


class TrainingNoise(Layer):
    """Base of ``GaussianNoise``, ``GaussianDropout`` and ``AlphaDropout``: ``call`` returns the
    input itself unless ``training`` is true and the layer is active (``_active``), then
    ``_noisy(inputs)``, which draws from ``self.seed_generator`` (layer state, so each compiled
    step draws anew and ``lm.utils.set_random_seed`` repeats an unseeded layer's draws)."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def _active(self) -> bool:
        raise NotImplementedError

    def _noisy(self, inputs):
        raise NotImplementedError

    def call(self, inputs, training=False):
        if training and self._active():
            return self._noisy(inputs)
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _lm_output_spec(self, shape, dtype):
        # lamina/layers/output_specs.py: outside training (a graph being built) call() returns
        # its input itself; inside an outer call in training mode it is traced (as Dropout).
        dtype = input_dtype_in_call(self, dtype)
        if dtype is None or context.training is not None:
            return None
        return OutputSpec(tuple(shape), dtype, returns_input=True)
