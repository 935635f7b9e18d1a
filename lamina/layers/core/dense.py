"""``Dense``: ``activation(inputs @ kernel + bias)`` on the last axis."""

from __future__ import annotations

import jax.numpy as jnp

from lamina import activations, constraints, initializers, regularizers
from lamina.core.variable import Variable
from lamina.layers.core import lora, lora_files, quantized  # noqa: F401 - lora_files: LoRA in Keras files
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.output_specs import OutputSpec, input_dtype_in_call, keeps_shape_and_dtype, promoted, read_dtype
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import serialize_object


@register_builtin
class Dense(Layer):
    """A densely connected layer, as ``keras.layers.Dense``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> layer = lm.layers.Dense(3, activation="relu")
        >>> layer(jnp.ones((4, 5))).shape
        (4, 3)
        >>> [w.name for w in layer.weights]
        ['kernel', 'bias']
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 quantization_config=None, lora_rank=None, lora_alpha=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"Dense '{self.name}': units must be a positive integer, got {units!r}.")
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.quantization_config = quantized.config_from(quantization_config)
        lora.init(self, lora_rank, lora_alpha)
        self.input_spec = InputSpec(min_ndim=2)
        self.supports_masking = True  # as Keras 3: a timestep mask survives a per-step Dense

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if self.quantization_mode is not None:  # a quantized layer rebuilt (from a file)
            quantized.build_dense(self, (input_dim, self.units), self.quantization_mode, self.quantization_config)
        else:
            self.kernel = self.add_weight(
                shape=(input_dim, self.units), initializer=self.kernel_initializer, name="kernel",
                regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
            )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,), initializer=self.bias_initializer, name="bias",
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )
        self.input_spec = InputSpec(min_ndim=2, axes={-1: input_dim})
        self.built = True  # enable_lora checks it
        if self.lora_rank and not self.lora_enabled:
            self.enable_lora(self.lora_rank, self.lora_alpha)

    def call(self, inputs):
        if self.quantization_mode is not None:
            return quantized.dense_call(self, inputs)
        outputs = jnp.matmul(inputs, lora.effective(self, "kernel"))
        if self.bias is not None:
            outputs = outputs + self.bias.value
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def quantize(self, mode=None, type_check=True, config=None):
        """Quantize the kernel in place (``"int8"``, ``"int4"``, or a
        ``lm.quantizers.QuantizationConfig``), as Keras's ``Dense.quantize``; see
        docs/quantization.md."""
        quantized.quantize_dense(self, mode, config, type_check, Dense)

    def _lm_keras_variable_order(self):
        return quantized.keras_variable_order(self)

    def _lm_output_spec(self, shape, dtype):
        # What call() computes, read off the weights it reads (lamina/layers/output_specs.py).
        dtype = input_dtype_in_call(self, dtype)
        kernel = self.__dict__.get("kernel")
        if (dtype is None or not keeps_shape_and_dtype(self.activation) or not isinstance(kernel, Variable)
                or self.quantization_mode is not None or kernel.ndim != 2 or len(shape) < 2 or shape[-1] != kernel.shape[0]):
            return None
        dtypes = [dtype, read_dtype(self, kernel)]
        if self.bias is not None:
            if not isinstance(self.bias, Variable) or self.bias.shape != (kernel.shape[1],):
                return None
            dtypes.append(read_dtype(self, self.bias))
        return OutputSpec(tuple(shape[:-1]) + (kernel.shape[1],), promoted(*dtypes))

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": serialize_object(self.activation),
            "use_bias": self.use_bias,
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
        lora_kernel_b`` instead, as Keras's ``Dense.enable_lora`` (``lamina/layers/core/lora.py``).

        Example:
            >>> import jax.numpy as jnp, lamina as lm
            >>> layer = lm.layers.Dense(3)
            >>> layer.build((None, 4))
            >>> layer.enable_lora(2)
            >>> [w.name for w in layer.trainable_weights]
            ['bias', 'lora_kernel_a', 'lora_kernel_b']
        """
        lora.enable(self, "kernel", lambda: (self.kernel.shape[0], self.units), rank, lora_alpha, a_initializer,
                    b_initializer, self.kernel_constraint, self.kernel_regularizer)
