"""``EinsumDense``: a dense layer of any dimensionality, computed by one ``einsum``."""

from __future__ import annotations

import math
import re

import jax.numpy as jnp

from lamina import activations, constraints, initializers, regularizers
from lamina.layers.core import lora, lora_files, quantized  # noqa: F401 - lora_files: LoRA in Keras files
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object


@register_builtin
class EinsumDense(Layer):
    """``activation(einsum(equation, inputs, kernel) + bias)``, as ``keras.layers.EinsumDense``.

    ``equation`` is ``"ab,bc->ac"``, ``"...ab,bc->...ac"`` or ``"ab...,bc->ac..."``;
    ``output_shape`` gives the output axes after the batch axis (and without the ``...``
    axes), ``None`` where the input decides; ``bias_axes`` names the output axes that get a
    bias. A variance-scaling kernel initializer (the default ``glorot_uniform``) counts its
    fans over the kernel's input and output axes, as Keras does.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> layer = lm.layers.EinsumDense("abc,cd->abd", output_shape=(None, 64), bias_axes="d")
        >>> layer(jnp.ones((2, 32, 128))).shape
        (2, 32, 64)
        >>> [tuple(w.shape) for w in layer.weights]
        [(128, 64), (64,)]
    """

    def __init__(self, equation, output_shape, activation=None, bias_axes=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, quantization_config=None, lora_rank=None,
                 lora_alpha=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if not isinstance(equation, str):
            raise TypeError(f"EinsumDense '{self.name}': equation must be a string, got {equation!r}.")
        _split_equation(equation)  # fail early on a malformed equation
        self.equation = equation
        self.partial_output_shape = (output_shape,) if isinstance(output_shape, int) else tuple(output_shape)
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.quantization_config = quantized.config_from(quantization_config)
        lora.init(self, lora_rank, lora_alpha)
        self.full_output_shape = None

    def build(self, input_shape):
        kernel_shape, bias_shape, full_output_shape, input_axes, output_axes = _analyze_einsum_string(
            self.equation, self.bias_axes, input_shape, self.partial_output_shape
        )
        self.full_output_shape = tuple(full_output_shape)
        self.input_spec = InputSpec(ndim=len(input_shape))
        kernel_initializer = self.kernel_initializer
        if isinstance(kernel_initializer, initializers.VarianceScaling):
            kernel_initializer = _with_fans(kernel_initializer, kernel_shape, input_axes, output_axes)
        if self.quantization_mode is not None:  # a quantized layer rebuilt (from a file)
            quantized.build_einsum_dense(self, tuple(kernel_shape), self.quantization_mode,
                                         self.quantization_config)
        else:
            self.kernel = self.add_weight(
                shape=tuple(kernel_shape), initializer=kernel_initializer, name="kernel",
                regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
            )
        self.bias = None
        if bias_shape is not None:
            self.bias = self.add_weight(
                shape=tuple(bias_shape), initializer=self.bias_initializer, name="bias",
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )
        self.built = True  # enable_lora checks it
        if self.lora_rank and not self.lora_enabled:
            self.enable_lora(self.lora_rank, self.lora_alpha)

    def call(self, inputs):
        if self.quantization_mode is not None:
            return quantized.einsum_dense_call(self, inputs)
        outputs = jnp.einsum(self.equation, inputs, lora.effective(self, "kernel"))
        if self.bias is not None:
            outputs = outputs + self.bias.value
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        return tuple(_analyze_einsum_string(self.equation, self.bias_axes, tuple(input_shape),
                                            self.partial_output_shape)[2])

    def quantize(self, mode=None, type_check=True, config=None):
        """Quantize the kernel in place (``"int8"``, ``"int4"``, or a
        ``lm.quantizers.QuantizationConfig``), as Keras's ``EinsumDense.quantize``; see
        docs/quantization.md."""
        quantized.quantize_einsum_dense(self, mode, config, type_check, EinsumDense)

    def _lm_keras_variable_order(self):
        return quantized.keras_variable_order(self)

    def get_config(self):
        return {
            **super().get_config(),
            "output_shape": list(self.partial_output_shape),
            "equation": self.equation,
            "activation": serialize_object(self.activation),
            "bias_axes": self.bias_axes,
            "kernel_initializer": serialize_object(self.kernel_initializer),
            "bias_initializer": serialize_object(self.bias_initializer),
            "kernel_regularizer": serialize_object(self.kernel_regularizer),
            "bias_regularizer": serialize_object(self.bias_regularizer),
            "activity_regularizer": serialize_object(self.activity_regularizer),
            "kernel_constraint": serialize_object(self.kernel_constraint),
            "bias_constraint": serialize_object(self.bias_constraint),
            **quantized.config_entry(self),
            **lora.config_entry(self),
        }

    def enable_lora(self, rank, lora_alpha=None, a_initializer="he_uniform", b_initializer="zeros"):
        """Freeze ``kernel`` and train a low-rank update ``(lora_alpha / rank) * lora_kernel_a @
        lora_kernel_b`` instead (``lora_kernel_a`` has the kernel's shape with ``rank`` last), as
        Keras's ``EinsumDense.enable_lora`` (``lamina/layers/core/lora.py``).

        Example:
            >>> import lamina as lm
            >>> layer = lm.layers.EinsumDense("ab,bc->ac", output_shape=3)
            >>> layer.build((None, 4))
            >>> layer.enable_lora(2)
            >>> [tuple(w.shape) for w in layer.trainable_weights]
            [(4, 2), (2, 3)]
        """
        def shape():  # an int4 kernel is packed
            return self.original_kernel_shape if self.quantization_mode == "int4" else self.kernel.shape

        lora.enable(self, "kernel", shape, rank, lora_alpha, a_initializer, b_initializer,
                    self.kernel_constraint, self.kernel_regularizer)


def _with_fans(initializer, kernel_shape, input_axes, output_axes):
    """Draw as a ``(fan_in, fan_out)`` matrix and reshape: Keras's fans for einsum kernels
    (the values are i.i.d., so only the scale depends on the view)."""
    fan_in = math.prod(kernel_shape[i] for i in input_axes)
    fan_out = math.prod(kernel_shape[i] for i in output_axes)

    def draw(shape, dtype="float32"):
        return jnp.reshape(initializer((fan_in, fan_out), dtype=dtype), shape)

    return draw


def _split_equation(equation):
    """``(regex match, left_elided)`` for the three supported forms, else a ValueError."""
    dot_replaced = re.sub(r"\.\.\.", "0", equation)
    for pattern, left in (("([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)", False),
                          ("0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)", True),
                          ("([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0", False)):
        match = re.match(pattern, dot_replaced)
        if match:
            return match, left
    raise ValueError(
        f"Invalid einsum equation '{equation}'. Equations must be in the form "
        "[X],[Y]->[Z], ...[X],[Y]->...[Z], or [X]...,[Y]->[Z]...."
    )


def _analyze_einsum_string(equation, bias_axes, input_shape, output_shape):
    """``(kernel_shape, bias_shape, full_output_shape, input_axes, output_axes)``, as Keras."""
    match, left_elided = _split_equation(equation)
    input_spec, weight_spec, output_spec = match.group(1), match.group(2), match.group(3)
    elided = len(input_shape) - len(input_spec)
    output_shape = [output_shape] if isinstance(output_shape, int) else list(output_shape)
    output_shape.insert(0, input_shape[0])
    if elided > 0 and left_elided:
        for i in range(1, elided):
            # The batch axis is already in; the other elided axes follow it.
            output_shape.insert(1, input_shape[i])
    elif elided > 0:
        for i in range(len(input_shape) - elided, len(input_shape)):
            output_shape.append(input_shape[i])

    if left_elided:
        input_dim_map = {dim: (i + elided) - len(input_shape) for i, dim in enumerate(input_spec)}
        output_dim_map = {dim: (i + elided) for i, dim in enumerate(output_spec)}
    else:
        input_dim_map = {dim: i for i, dim in enumerate(input_spec)}
        output_dim_map = {dim: i for i, dim in enumerate(output_spec)}

    for dim in input_spec:
        size = input_shape[input_dim_map[dim]]
        if dim in output_dim_map:
            out = output_shape[output_dim_map[dim]]
            if out is not None and size is not None and out != size:
                raise ValueError(
                    f"Input shape and output shape do not match at shared dimension '{dim}'. "
                    f"Input shape is {size}, and output shape is {out}."
                )
            if out is None:  # Keras leaves it None; the input knows it
                output_shape[output_dim_map[dim]] = size
    for dim in output_spec:
        if dim not in input_spec and dim not in weight_spec:
            raise ValueError(
                f"Dimension '{dim}' was specified in the output '{output_spec}' but has no "
                f"corresponding dim in the input spec '{input_spec}' or weight spec '{weight_spec}'."
            )

    weight_shape, input_axes, output_axes = [], [], []
    for i, dim in enumerate(weight_spec):
        if dim in output_dim_map:
            weight_shape.append(output_shape[output_dim_map[dim]])
            output_axes.append(i)
        elif dim in input_dim_map:
            weight_shape.append(input_shape[input_dim_map[dim]])
            input_axes.append(i)
        else:
            raise ValueError(
                f"Weight dimension '{dim}' did not have a match in either the input spec "
                f"'{input_spec}' or the output spec '{output_spec}'. For this layer, the weight "
                "must be fully specified."
            )

    bias_shape = None
    if bias_axes is not None:
        num_left_elided = elided if left_elided else 0
        sizes = {char: output_shape[i + num_left_elided] for i, char in enumerate(output_spec)}
        for char in bias_axes:
            if char not in output_spec:
                raise ValueError(
                    f"Bias dimension '{char}' was requested, but is not part of the output "
                    f"spec '{output_spec}'."
                )
        first = min(output_spec.find(char) for char in bias_axes)
        bias_shape = [sizes[char] if char in bias_axes else 1 for char in output_spec[first:]]
        if not left_elided:
            bias_shape += [1] * max(elided, 0)
    return weight_shape, bias_shape, output_shape, input_axes, output_axes


__all__ = ["EinsumDense"]
