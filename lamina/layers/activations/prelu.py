"""``PReLU``: a leaky ReLU whose negative slope is learned, per position or shared over axes."""

from __future__ import annotations

from lamina import activations, constraints, initializers, regularizers
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object


@register_builtin
class PReLU(Layer):
    """``x`` for ``x >= 0``, ``alpha * x`` otherwise, with ``alpha`` a trainable weight, as
    ``keras.layers.PReLU``.

    ``alpha`` has the input's shape without the batch axis, except that each axis listed in
    ``shared_axes`` (counted with the batch axis as 0) has size 1: ``shared_axes=[1, 2]``
    after a ``Conv2D`` learns one slope per channel. It starts at ``alpha_initializer``
    (zeros: a plain ReLU) and takes a regularizer and a constraint as any weight does.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> prelu = lm.layers.PReLU(alpha_initializer=lm.initializers.Constant(0.25), shared_axes=[1])
        >>> prelu(jnp.array([[[-4.0, 2.0], [-8.0, -1.0]]])).tolist()
        [[[-1.0, 2.0], [-2.0, -0.25]]]
        >>> prelu.alpha.shape
        (1, 2)
    """

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            if not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
                raise TypeError(f"PReLU '{self.name}': shared_axes must be an int or a list of ints, "
                                f"got {shared_axes!r}.")
            self.shared_axes = axes
        self.alpha = None

    def build(self, input_shape):
        rank = len(input_shape)
        shared = self.shared_axes or []
        bad = [a for a in shared if not 1 <= a < rank]
        if bad:
            raise ValueError(
                f"PReLU '{self.path}': shared_axes {bad} are not axes of the input (1 to {rank - 1}; axis 0 is "
                f"the batch) for input shape {tuple(input_shape)}."
            )
        shape = [1 if axis in shared else input_shape[axis] for axis in range(1, rank)]
        unknown = [axis for axis, size in enumerate(shape, start=1) if size is None]
        if unknown:
            raise ValueError(
                f"PReLU '{self.path}': alpha needs the size of axes {unknown} of input shape {tuple(input_shape)}; "
                "give the input a known size there or list those axes in shared_axes."
            )
        self.alpha = self.add_weight(shape=tuple(shape), name="alpha", initializer=self.alpha_initializer,
                                     regularizer=self.alpha_regularizer, constraint=self.alpha_constraint)
        if shared:
            self.input_spec = InputSpec(ndim=rank, axes={a: input_shape[a] for a in range(1, rank) if a not in shared})
        else:
            self.input_spec = InputSpec(ndim=rank)

    def call(self, inputs):
        # Keras's form, relu(x) - alpha * relu(-x), so gradients at 0 agree too.
        return activations.relu(inputs) - self.alpha * activations.relu(-inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "alpha_initializer": serialize_object(self.alpha_initializer),
            "alpha_regularizer": serialize_object(self.alpha_regularizer),
            "alpha_constraint": serialize_object(self.alpha_constraint),
            "shared_axes": self.shared_axes,
        }


__all__ = ["PReLU"]
