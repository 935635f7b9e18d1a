"""How a LoRA-enabled Dense / EinsumDense / Embedding fills Keras's variable store
(``save_own_variables`` / ``load_own_variables``, hence ``.keras`` and ``.weights.h5`` files):
as Keras does, the kernel with the LoRA product merged in and no factors; loading assigns the
merged kernel and resets both factors to zero. ``.lamina`` files keep the factors by path.

Kept apart from ``lora.py`` (the math, which the quantized call path uses) because it needs
the quantized layers' code and the store checks of ``keras_hooks``: importing this module
registers ``save_merged`` / ``load_merged`` there (``keras_hooks`` sits below the layer modules
and imports none of them). The layers that can enable LoRA import it.
"""

from __future__ import annotations

import jax.numpy as jnp

from lamina.layers import keras_hooks
from lamina.layers.core import quantized
from lamina.layers.core.lora import effective
from lamina.quantizers.config import Int4QuantizationConfig
from lamina.quantizers.quantizers import dequantize_with_sz_map, unpack_int4


def _base(layer) -> str:
    return "embeddings" if "lora_embeddings_a" in layer.__dict__ else "kernel"


def save_merged(layer, store) -> None:
    """Keras's ``save_own_variables`` with LoRA enabled: ``"0"`` the merged kernel (in the
    kernel's dtype), then the bias where there is one; no factors."""
    if layer.quantization_mode is not None:
        for index, value in enumerate(_requantized(layer)):
            store[str(index)] = value
        return
    base = _base(layer)
    kernel = getattr(layer, base)
    store["0"] = effective(layer, base).astype(kernel.dtype)
    for index, variable in enumerate(_others(layer, base), start=1):
        store[str(index)] = variable


def _others(layer, base) -> list:
    """The layer's own variables after the kernel in Keras's store (``bias``; a
    ``ReversibleEmbedding``'s ``reverse_embeddings``): trainable first, factors left out."""
    left_out = {id(getattr(layer, name)) for name in (base, f"lora_{base}_a", f"lora_{base}_b")}
    own = [v for v in layer._lm_children()[0] if id(v) not in left_out]
    return [v for v in own if v.trainable] + [v for v in own if not v.trainable]


def load_merged(layer, store) -> None:
    """Keras's ``load_own_variables`` with LoRA enabled: the kernel (and bias) from the store,
    both factors back to zero."""
    base = _base(layer)
    variables = quantized.keras_variable_order(layer)
    if variables is None:
        variables = [getattr(layer, base)] + _others(layer, base)
    keras_hooks.check_and_assign(layer, store, variables)
    for factor in ("a", "b"):
        variable = getattr(layer, f"lora_{base}_{factor}")
        variable.assign(jnp.zeros(variable.shape, variable.dtype))


def _dequantized(layer):
    """A quantized layer's kernel (table) as floats, as its quantized call reads it."""
    mode, table = layer.quantization_mode, "lora_embeddings_a" in layer.__dict__
    kernel = layer.embeddings if table else layer.kernel
    scale = (layer.embeddings_scale if table else layer.kernel_scale).value
    zero = layer.__dict__.get("embeddings_zero" if table else "kernel_zero")
    einsum = getattr(layer, "equation", None) is not None
    if einsum:
        rows, columns = quantized._rows_columns(layer, layer.original_kernel_shape) if mode == "int4" else (0, 0)
        values = unpack_int4(kernel.value, columns, axis=-1, dtype="int8") if mode == "int4" else kernel.value
    else:
        columns = layer.output_dim if table else layer.units
        values = unpack_int4(kernel.value, columns, axis=-1) if mode == "int4" else kernel.value
    values = values.astype(jnp.float32)
    if zero is not None:
        out = dequantize_with_sz_map(values, scale, zero.value, layer.g_idx.value, group_axis=-1 if table else 0)
    elif table:
        out = values / jnp.expand_dims(scale, -1)
    elif einsum and mode == "int8":
        out = values / quantized._einsum_axes(layer).for_kernel(scale)
    else:
        out = values / scale
    return jnp.reshape(out, layer.original_kernel_shape) if einsum and mode == "int4" else out


def _requantized(layer):
    """Keras's ``save_own_variables`` of a quantized layer with LoRA: the kernel dequantized,
    the LoRA product added, quantized again the way ``quantize`` does (a float twin of the
    layer quantized in the same mode), in Keras's order."""
    base = _base(layer)
    a, b = getattr(layer, f"lora_{base}_a").value, getattr(layer, f"lora_{base}_b").value
    merged = _dequantized(layer) + (layer.lora_alpha / layer.lora_rank) * jnp.matmul(a, b)
    config = {k: v for k, v in layer.get_config().items() if k not in ("lora_rank", "lora_alpha")}
    config.update(dtype=layer.variable_dtype, quantization_config=None, name=f"{layer.name}_merged",
                  **{f"{base}_initializer": "zeros"})  # overwritten below: no random draw
    twin = type(layer).from_config(config)
    twin.build(layer.__dict__.get("_lm_build_shape"))
    getattr(twin, base).assign(merged.astype(getattr(twin, base).dtype))
    if getattr(layer, "bias", None) is not None:
        twin.bias.assign(layer.bias.value)
    mode, settings = layer.quantization_mode, layer.quantization_config
    if settings is None and mode == "int4":
        settings = Int4QuantizationConfig(block_size=quantized._block_size(layer, None) or -1)
    twin.quantize(mode if settings is None else None, config=settings)
    return [v.value for v in quantized.keras_variable_order(twin)]


keras_hooks.lora_store.update(save=save_merged, load=load_merged)
