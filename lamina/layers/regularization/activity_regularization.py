"""``ActivityRegularization``: adds an L1/L2 penalty on the activity passing through."""

from __future__ import annotations

from lamina import regularizers
from lamina.layers.layer import Layer
from lamina.layers.output_specs import OutputSpec, input_dtype_in_call
from lamina.saving.object_registry import register_builtin


@register_builtin
class ActivityRegularization(Layer):
    """Returns its input unchanged and adds ``l1 * sum(|x|) + l2 * sum(x**2)``, divided by the
    batch size, to ``losses`` at each call (so ``fit`` minimizes it with the loss), as
    ``keras.layers.ActivityRegularization``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> reg = lm.layers.ActivityRegularization(l1=0.5)
        >>> reg(jnp.array([[1.0, -2.0], [3.0, 0.0]])).tolist()
        [[1.0, -2.0], [3.0, 0.0]]
        >>> [float(loss) for loss in reg.losses]                # 0.5 * 6 / 2 samples
        [1.5]
    """

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        kwargs.pop("activity_regularizer", None)  # the layer makes its own (Keras leaves it out of the config)
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1 = l1
        self.l2 = l2
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _lm_output_spec(self, shape, dtype):
        # lamina/layers/output_specs.py: call() returns its (cast) input itself; the penalty is
        # added by the concrete calls, not while a graph is built.
        dtype = input_dtype_in_call(self, dtype)
        return None if dtype is None else OutputSpec(tuple(shape), dtype, returns_input=True)

    def get_config(self):
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}


__all__ = ["ActivityRegularization"]
