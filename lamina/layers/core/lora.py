"""LoRA (low-rank adaptation) for ``Dense``, ``EinsumDense`` and ``Embedding``, as Keras 3.

``layer.enable_lora(rank)`` freezes the layer's kernel (``embeddings`` for ``Embedding``) and
adds two trainable float32 factors ``a`` (the kernel's shape with its last axis replaced by
``rank``) and ``b`` (``(rank, last axis)``); the layer then computes with
``kernel + (lora_alpha / rank) * (a @ b)`` cast to its compute dtype. ``b`` starts at zero,
so enabling LoRA does not change the outputs. Saving in Keras's forms (``.keras``,
``.weights.h5``, ``save_own_variables``) writes the merged kernel and no factors, as Keras
does (a quantized kernel is dequantized, merged and quantized again, as Keras); loading them
assigns the kernel and resets both factors to zero (``lora_files.py``). ``.lamina`` files keep every variable by
path, the factors included. On a quantized layer the factors' product is added to the
quantized output before bias and activation (``low_rank_term``), as Keras's quantized calls.
"""

from __future__ import annotations

import jax.numpy as jnp

from lamina import initializers


def init(layer, lora_rank, lora_alpha) -> None:
    """The constructor's ``lora_rank`` / ``lora_alpha``: LoRA is enabled at build when a rank
    is given (Keras's ``lora_alpha`` defaults to the rank)."""
    if lora_rank is not None:
        _check_rank(layer, lora_rank)
    layer.lora_rank = lora_rank
    layer.lora_alpha = lora_alpha if lora_alpha is not None else lora_rank
    layer.lora_enabled = False


def _where(layer) -> str:
    return f"{type(layer).__name__} '{layer.path}'"


def _check_rank(layer, rank) -> None:
    if not isinstance(rank, int) or isinstance(rank, bool) or rank <= 0:
        raise ValueError(f"{_where(layer)}: the LoRA rank must be a positive integer, got {rank!r}.")


def enable(layer, base: str, shape, rank, lora_alpha, a_initializer, b_initializer, constraint,
           regularizer) -> None:
    """Keras's ``enable_lora``: checks, then the factors ``lora_<base>_a`` / ``lora_<base>_b``
    (float32, regularized as the kernel) and the kernel frozen. ``shape`` is the kernel's
    unpacked shape (an int4 kernel is stored packed), a function: the kernel exists once built."""
    if constraint is not None:
        raise ValueError(f"{_where(layer)}: Lora is incompatible with {base} constraints. In order to enable lora "
                         f"on this layer, remove the `{base}_constraint` argument.")
    if not layer.built:
        raise ValueError(f"{_where(layer)}: Cannot enable lora on a layer that isn't yet built. Build it (call it "
                         "on data or call build(input_shape)) first.")
    if layer.lora_enabled:
        raise ValueError(f"{_where(layer)}: lora is already enabled. This can only be done once per layer.")
    _check_rank(layer, rank)
    kernel, shape = getattr(layer, base), tuple(shape())
    a = layer.add_weight(name=f"lora_{base}_a", shape=tuple(shape[:-1]) + (rank,),
                         initializer=initializers.get(a_initializer), dtype="float32", regularizer=regularizer)
    b = layer.add_weight(name=f"lora_{base}_b", shape=(rank, shape[-1]),
                         initializer=initializers.get(b_initializer), dtype="float32", regularizer=regularizer)
    setattr(layer, f"lora_{base}_a", a)
    setattr(layer, f"lora_{base}_b", b)
    kernel.trainable = False
    layer.lora_enabled = True
    layer.lora_rank = rank
    layer.lora_alpha = lora_alpha if lora_alpha is not None else rank


def effective(layer, base: str):
    """The kernel the layer computes with: the variable's value, plus the scaled LoRA product
    (cast to the compute dtype, as Keras) when LoRA is enabled."""
    kernel = getattr(layer, base).value
    if not layer.__dict__.get("lora_enabled"):
        return kernel
    a, b = getattr(layer, f"lora_{base}_a").value, getattr(layer, f"lora_{base}_b").value
    return (kernel + (layer.lora_alpha / layer.lora_rank) * jnp.matmul(a, b)).astype(layer.compute_dtype)


def low_rank_term(layer, inputs, x):
    """What LoRA adds to a quantized layer's output ``x`` before bias and activation, as Keras's
    quantized calls: ``(lora_alpha / rank) * (inputs . a) @ b`` (zero when LoRA is off)."""
    if not layer.__dict__.get("lora_enabled"):
        return x
    if "lora_embeddings_a" in layer.__dict__:
        a, b = layer.lora_embeddings_a.value, layer.lora_embeddings_b.value
        low = jnp.take(a, inputs, axis=0)
    else:
        a, b = layer.lora_kernel_a.value, layer.lora_kernel_b.value
        equation = getattr(layer, "equation", None)
        low = jnp.einsum(equation, inputs, a) if equation is not None else jnp.matmul(inputs, a)
    return x + ((layer.lora_alpha / layer.lora_rank) * jnp.matmul(low, b)).astype(x.dtype)


def config_entry(layer) -> dict:
    """``lora_rank`` / ``lora_alpha`` in ``get_config``, only where a rank is set (as Keras)."""
    if not layer.lora_rank:
        return {}
    return {"lora_rank": layer.lora_rank, "lora_alpha": layer.lora_alpha}
