"""Post-training quantization of ``Dense``, ``EinsumDense`` and ``Embedding`` (``"int8"``,
``"int4"``), with Keras 3's variables, formulas and dtype policies.

``quantize`` replaces a layer's float kernel by integer variables named as Keras names them
(``kernel`` int8, or int4 packed two per byte, plus ``kernel_scale``; ``kernel_zero`` and
``g_idx`` for grouped int4; ``embeddings`` and ``embeddings_scale`` for ``Embedding``) and
gives the layer the quantized policy (``"int8_from_float32"``); a layer built under such a
policy (a quantized model loaded from a file) creates those variables directly. The
quantized variables are not trainable. Calls quantize the inputs per row when the config
says so (int8's default), multiply integers, and scale the result back; the gradient reaches
the inputs through the dequantized kernel, as in Keras, so the rest of a quantized model
still trains.
"""

from __future__ import annotations

import math
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from lamina.layers.core import lora
from lamina.quantizers.config import QuantizationConfig, resolve
from lamina.quantizers.quantizers import (
    AbsMaxQuantizer,
    abs_max_quantize_grouped_with_zero_point,
    dequantize_with_sz_map,
    pack_int4,
    unpack_int4,
)
from lamina.saving.serialization import deserialize, serialize, serialize_object

# -- shared steps ------------------------------------------------------------------------------


def start(layer, mode, config, type_check, cls):
    """The resolved config for ``layer.quantize(mode, config=config)``, after Keras's checks
    (built, not yet quantized, a known mode, not int8 under float16; then the exact class)."""
    where = f"{type(layer).__name__} '{layer.path}'"
    config = resolve(mode, config, f"quantize() of {where}")
    if not layer.built:
        raise ValueError(f"Cannot quantize {where}: it is not built yet. Call it on data (or build the model) "
                         "first.")
    if layer.quantization_mode is not None:
        raise ValueError(f"{where} is already quantized (dtype_policy={layer.dtype_policy.name!r}); received "
                         f"mode={config.mode!r}.")
    if config.mode == "int8" and layer.compute_dtype == "float16":
        raise ValueError(f"{where}: quantization mode 'int8' does not work well with compute_dtype 'float16'; use "
                         "'mixed_bfloat16' or 'float32' before quantize().")
    if type_check and type(layer) is not cls:
        raise NotImplementedError(f"Layer {type(layer).__name__} ('{layer.path}') does not have a `quantize` method "
                                  f"implemented: only {cls.__name__} itself is quantized (pass type_check=False to "
                                  "quantize a subclass that computes as its base).")
    return config


def finish(layer, config):
    """Give ``layer`` the quantized policy ``quantize`` leads to (``int8_from_<source>``,
    ``int4/<block size>_from_<source>``)."""
    layer.quantization_config = config
    mode = config.mode
    if mode == "int4":
        mode = f"int4/{-1 if _block_size(layer, config) is None else _block_size(layer, config)}"
    layer._lm_set_policy(f"{mode}_from_{layer.dtype_policy.name}", autocast=layer._lm_autocast_dtype is not None)


def _block_size(layer, config):
    """int4's group size: the config's, else the layer's policy's (a loaded layer); ``None``
    for one scale per output channel."""
    if config is not None and config.mode == "int4":
        size = config.block_size
    else:
        size = getattr(layer.dtype_policy, "block_size", None)
    return None if size is None or size == -1 else size


def _inputs_quantizer(config, default):
    return QuantizationConfig.activation_quantizer_or_default(config, default)


def _add(layer, name, shape, dtype, initializer):
    return layer.add_weight(shape=tuple(int(d) for d in shape), initializer=initializer, dtype=dtype,
                            trainable=False, name=name)


def _product(a, b, equation=None):
    """``a @ b`` (or ``einsum``) accumulating int8 x int8 in int32, as Keras's JAX backend."""
    both_int8 = a.dtype == jnp.int8 and b.dtype == jnp.int8
    preferred = jnp.int32 if both_int8 else None
    if equation is None:
        return jnp.matmul(a, b, preferred_element_type=preferred)
    return jnp.einsum(equation, a, b, preferred_element_type=preferred)


def _zero_cotangent(value):
    if jnp.issubdtype(value.dtype, jnp.inexact):
        return jnp.zeros_like(value)
    return np.zeros(value.shape, jax.dtypes.float0)


def _input_gradient_only(forward, input_gradient, inputs, *weights):
    """``forward(inputs, *weights)`` whose gradient reaches ``inputs`` only, as
    ``input_gradient(upstream, *weights)`` (rounding has no useful derivative; the
    quantized weights are not trained)."""

    @jax.custom_vjp
    def run(x, *w):
        return forward(x, *w)

    def run_forward(x, *w):
        return forward(x, *w), w

    def run_backward(w, upstream):
        return (input_gradient(upstream, *w), *(_zero_cotangent(v) for v in w))

    run.defvjp(run_forward, run_backward)
    return run(inputs, *weights)


def _bias_and_activation(layer, x, inputs):
    x = lora.low_rank_term(layer, inputs, x)  # Keras adds LoRA's product before the bias
    if layer.bias is not None:
        x = x + layer.bias.value
    return layer.activation(x)


def _pack_columns(values):
    return pack_int4(np.asarray(values), axis=-1)[0]


def _add_int4(layer, name, shape, scale_shape, grouped_dim, block_size):
    """int4's variables for a ``(rows, columns)`` array ``name``: the integers packed two per
    byte along the columns, ``<name>_scale`` of ``scale_shape``; with a ``block_size``, also
    ``<name>_zero`` (shaped as the scale) and ``g_idx``, the group of each of the
    ``grouped_dim`` positions along the grouped axis. Created in Keras's order."""
    rows, columns = shape
    setattr(layer, name, _add(layer, name, (rows, (columns + 1) // 2), "int8", "zeros"))
    setattr(layer, f"{name}_scale", _add(layer, f"{name}_scale", scale_shape, layer.variable_dtype, "ones"))
    if block_size is not None:
        setattr(layer, f"{name}_zero", _add(layer, f"{name}_zero", scale_shape, "int8", "zeros"))
        layer.g_idx = _add(layer, "g_idx", (grouped_dim,), "float32", "zeros")
        layer.g_idx.assign(jnp.floor_divide(jnp.arange(grouped_dim, dtype="float32"), block_size))


def _build_int4_kernel(layer, rows, columns, config):
    """int4's kernel of a ``Dense`` / ``EinsumDense`` seen as ``(rows, columns)`` (rows reduced):
    one scale per column, or per column and group of ``block_size`` rows."""
    layer.inputs_quantizer = _inputs_quantizer(config, None)
    block_size = _block_size(layer, config)
    scale_shape = (columns,) if block_size is None else (math.ceil(rows / block_size), columns)
    _add_int4(layer, "kernel", (rows, columns), scale_shape, rows, block_size)


def _int4_per_column():
    return AbsMaxQuantizer(axis=0, value_range=(-8, 7), output_dtype="int8")


def _int4_kernel_values(kernel, block_size, per_column):
    """int4's ``kernel`` (packed), ``kernel_scale`` (and ``kernel_zero``) values for a
    ``(rows, columns)`` kernel: ``per_column`` quantizes it with one scale per column, or a
    ``block_size`` gives one scale and zero point per column and group of rows."""
    values = {}
    if block_size is None:
        quantized, scale = per_column(kernel, to_numpy=True)
        values["kernel_scale"] = jnp.squeeze(scale, axis=0)
    else:
        quantized, values["kernel_scale"], values["kernel_zero"] = abs_max_quantize_grouped_with_zero_point(
            kernel, block_size=block_size)
    values["kernel"] = _pack_columns(quantized)
    return values


def _replace_float(layer, name, build, shape, config, values):
    """Swap the float variable ``name`` for the quantized ones ``build`` creates, holding
    ``values``, and give the layer its quantized policy."""
    delattr(layer, name)
    build(layer, shape, config.mode, config)
    _assign(layer, values)
    finish(layer, config)


# -- Dense -------------------------------------------------------------------------------------


def quantize_dense(layer, mode, config, type_check, cls):
    config = start(layer, mode, config, type_check, cls)
    kernel = np.asarray(layer.kernel.value)
    if config.mode == "int8":
        quantizer = QuantizationConfig.weight_quantizer_or_default(config, AbsMaxQuantizer(axis=0))
        quantized, scale = quantizer(kernel, to_numpy=True)
        values = {"kernel": quantized, "kernel_scale": jnp.squeeze(scale, axis=0)}
    else:
        per_column = QuantizationConfig.weight_quantizer_or_default(config, _int4_per_column())
        values = _int4_kernel_values(kernel, _block_size(layer, config), per_column)
    _replace_float(layer, "kernel", build_dense, kernel.shape, config, values)


def build_dense(layer, kernel_shape, mode, config=None):
    """The quantized kernel variables of a ``Dense`` (before its bias, as Keras creates them)."""
    input_dim, units = kernel_shape
    if mode == "int8":
        layer.inputs_quantizer = _inputs_quantizer(config, AbsMaxQuantizer())
        layer.kernel = _add(layer, "kernel", kernel_shape, "int8", "zeros")
        layer.kernel_scale = _add(layer, "kernel_scale", (units,), layer.variable_dtype, "ones")
    elif mode == "int4":
        _build_int4_kernel(layer, input_dim, units, config)
    else:
        raise _mode_error(layer, mode)


def dense_call(layer, inputs):
    compute = layer.compute_dtype
    quantizer = layer.inputs_quantizer
    block_size = _block_size(layer, None) if layer.quantization_mode == "int4" else None
    if layer.quantization_mode == "int4" and block_size is not None:
        def float_kernel(kernel, scale, zero, groups):
            unpacked = unpack_int4(kernel, layer.units, axis=-1)
            return dequantize_with_sz_map(unpacked, scale, zero, groups, group_axis=0).astype(compute)

        x = _input_gradient_only(
            lambda x, *w: jnp.matmul(x, float_kernel(*w)),
            lambda g, *w: jnp.matmul(g, float_kernel(*w).T),
            inputs, layer.kernel.value, layer.kernel_scale.value, layer.kernel_zero.value, layer.g_idx.value)
        return _bias_and_activation(layer, x, inputs)

    def integer_kernel(kernel):
        return unpack_int4(kernel, layer.units, axis=-1) if layer.quantization_mode == "int4" else kernel

    def forward(x, kernel, scale):
        output_scale = scale
        if quantizer:
            x, input_scale = quantizer(x, axis=-1)
            output_scale = scale * input_scale
        return _product(x, integer_kernel(kernel)).astype(compute) / output_scale

    def input_gradient(g, kernel, scale):
        return jnp.matmul(g, (integer_kernel(kernel).astype(compute) / scale).T)

    x = _input_gradient_only(forward, input_gradient, inputs, layer.kernel.value, layer.kernel_scale.value)
    return _bias_and_activation(layer, x, inputs)


# -- EinsumDense -------------------------------------------------------------------------------


class _EinsumAxes:
    """How an einsum equation's kernel and input scales line up with its output (Keras's
    ``_analyze_quantization_info``): which axes are reduced, and the transpose / expand /
    squeeze that turn a kept-dims scale into one that broadcasts against the output."""

    def __init__(self, equation, ndim):
        inputs, weights, outputs = _full_specs(equation, ndim)
        self.input_reduced = [i for i, c in enumerate(inputs) if c not in outputs]
        self.kernel_reduced = [i for i, c in enumerate(weights) if c not in outputs]
        # Keras keeps the position found last when it runs out of axes to expand (its loop
        # variable carries over, from the reduced-axes scan of the kernel on first use).
        carried = outputs.find(weights[-1]) if weights else -1
        self.input_moves, carried = _moves(inputs, outputs, self.input_reduced, carried)
        self.kernel_moves, _ = _moves(weights, outputs, self.kernel_reduced, carried)
        self.gradient_equation = f"{outputs},{weights}->{inputs}"

    def for_output(self, scale, which):
        transpose, expand, squeeze = self.input_moves if which == "input" else self.kernel_moves
        if transpose:
            scale = jnp.transpose(scale, transpose)
        if expand:
            scale = jnp.expand_dims(scale, tuple(expand))
        if squeeze:
            scale = jnp.squeeze(scale, tuple(squeeze))
        return scale

    def for_kernel(self, scale):
        transpose, expand, squeeze = self.kernel_moves
        if squeeze:
            scale = jnp.expand_dims(scale, tuple(squeeze))
        if expand:
            scale = jnp.squeeze(scale, tuple(expand))
        if transpose:
            scale = jnp.transpose(scale, sorted(range(len(transpose)), key=transpose.__getitem__))
        return scale


def _full_specs(equation, ndim):
    """``(input, kernel, output)`` labels with the ``...`` axes given letters of their own."""
    left, output = equation.split("->")
    inputs, weights = left.split(",")
    if "..." not in equation:
        return inputs, weights, output
    free = sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") - set(equation))
    bare = inputs.replace("...", "")
    extra = "".join(free[:ndim - len(bare)])
    return inputs.replace("...", extra), weights, output.replace("...", extra)


def _moves(spec, outputs, reduced, carried):
    expand = [i for i, c in enumerate(outputs) if c not in spec]
    transpose = [spec.find(c) for c in outputs if c in spec]
    squeeze = []
    for axis in reduced:
        if expand:
            carried = expand.pop(0)
        else:
            squeeze.append(axis)
        transpose.insert(carried, axis)
    return (transpose, expand, squeeze), carried


def _einsum_axes(layer):
    axes = layer.__dict__.get("_lm_einsum_axes")
    if axes is None:
        axes = _EinsumAxes(layer.equation, layer.input_spec.ndim)
        layer.__dict__["_lm_einsum_axes"] = axes
    return axes


def _rows_columns(layer, kernel_shape):
    reduced = _einsum_axes(layer).kernel_reduced
    rows = math.prod(d for i, d in enumerate(kernel_shape) if i in reduced)
    return rows, math.prod(d for i, d in enumerate(kernel_shape) if i not in reduced)


def quantize_einsum_dense(layer, mode, config, type_check, cls):
    config = start(layer, mode, config, type_check, cls)
    axes = _einsum_axes(layer)
    kernel = np.asarray(layer.kernel.value)
    if config.mode == "int8":
        quantizer = QuantizationConfig.weight_quantizer_or_default(config, AbsMaxQuantizer(axis=axes.kernel_reduced))
        quantized, scale = quantizer(kernel, to_numpy=True)
        values = {"kernel": quantized, "kernel_scale": axes.for_output(scale, "kernel")}
    else:
        # Keras's EinsumDense quantizes int4 kernels its own way, whatever the config's weight quantizer.
        flat = kernel.reshape(_rows_columns(layer, kernel.shape))
        values = _int4_kernel_values(flat, _block_size(layer, config), _int4_per_column())
    _replace_float(layer, "kernel", build_einsum_dense, kernel.shape, config, values)


def build_einsum_dense(layer, kernel_shape, mode, config=None):
    """The quantized kernel variables of an ``EinsumDense`` (before its bias)."""
    axes = _einsum_axes(layer)
    layer.quantization_axis = tuple(axes.input_reduced)
    layer.original_kernel_shape = tuple(kernel_shape)
    if mode == "int8":
        layer.inputs_quantizer = _inputs_quantizer(config, AbsMaxQuantizer())
        layer.kernel = _add(layer, "kernel", kernel_shape, "int8", "zeros")
        kept = [1 if i in axes.kernel_reduced else d for i, d in enumerate(kernel_shape)]
        scale_shape = axes.for_output(jnp.ones(kept), "kernel").shape
        layer.kernel_scale = _add(layer, "kernel_scale", scale_shape, layer.variable_dtype, "ones")
    elif mode == "int4":
        _build_int4_kernel(layer, *_rows_columns(layer, kernel_shape), config)
    else:
        raise _mode_error(layer, mode)


def einsum_dense_call(layer, inputs):
    axes, compute, equation = _einsum_axes(layer), layer.compute_dtype, layer.equation
    quantizer = layer.inputs_quantizer
    if layer.quantization_mode == "int8":
        def forward(x, kernel, scale):
            if quantizer:
                x, input_scale = quantizer(x, axis=layer.quantization_axis)
                scale = axes.for_output(input_scale, "input") * scale
            return _product(x, kernel, equation).astype(compute) / scale

        def input_gradient(g, kernel, scale):
            return jnp.einsum(axes.gradient_equation, g, kernel.astype(compute) / axes.for_kernel(scale))

        weights = (layer.kernel.value, layer.kernel_scale.value)
    else:
        rows, columns = _rows_columns(layer, layer.original_kernel_shape)
        grouped = _block_size(layer, None) is not None

        def float_kernel(kernel, scale, *zero_groups):
            unpacked = unpack_int4(kernel, columns, axis=-1, dtype="int8")
            if grouped:
                flat = dequantize_with_sz_map(unpacked, scale, *zero_groups, group_axis=0).astype(compute)
            else:
                flat = unpacked.astype(compute) / scale
            return jnp.reshape(flat, layer.original_kernel_shape)

        def forward(x, *w):
            if quantizer and not grouped:
                x, input_scale = quantizer(x, axis=layer.quantization_axis)
                return jnp.einsum(equation, x, float_kernel(*w)).astype(compute) / axes.for_output(input_scale, "input")
            return jnp.einsum(equation, x, float_kernel(*w))

        def input_gradient(g, *w):
            return jnp.einsum(axes.gradient_equation, g, float_kernel(*w))

        weights = (layer.kernel.value, layer.kernel_scale.value)
        if grouped:
            weights += (layer.kernel_zero.value, layer.g_idx.value)
    x = _input_gradient_only(forward, input_gradient, inputs, *weights)
    return _bias_and_activation(layer, x, inputs)


# -- Embedding ---------------------------------------------------------------------------------


def quantize_embedding(layer, mode, config, type_check, cls):
    config = start(layer, mode, config, type_check, cls)
    table = np.asarray(layer.embeddings.value)
    values = {}
    if config.mode == "int8":
        quantizer = QuantizationConfig.weight_quantizer_or_default(config, AbsMaxQuantizer(axis=-1))
        values["embeddings"], scale = quantizer(table, to_numpy=True)
        values["embeddings_scale"] = jnp.squeeze(scale, axis=-1)
    else:
        block_size = _block_size(layer, config)
        if block_size is None:
            quantizer = QuantizationConfig.weight_quantizer_or_default(
                config, AbsMaxQuantizer(axis=-1, value_range=(-8, 7), output_dtype="int8"))
            quantized, scale = quantizer(table, to_numpy=True)
            values["embeddings_scale"] = jnp.squeeze(scale, axis=-1)
        else:
            quantized, scale, zero = abs_max_quantize_grouped_with_zero_point(table.T, block_size=block_size)
            quantized = np.asarray(quantized).T
            values["embeddings_scale"], values["embeddings_zero"] = scale.T, zero.T
        values["embeddings"] = _pack_columns(quantized)
    _replace_float(layer, "embeddings", build_embedding, table.shape, config, values)


def build_embedding(layer, table_shape, mode, config=None):
    """The quantized table variables of an ``Embedding``."""
    input_dim, output_dim = table_shape
    if mode == "int8":
        layer.embeddings = _add(layer, "embeddings", table_shape, "int8", "zeros")
        layer.embeddings_scale = _add(layer, "embeddings_scale", (input_dim,), layer.variable_dtype, "ones")
    elif mode == "int4":
        block_size = _block_size(layer, config)
        scale_shape = (input_dim,) if block_size is None else (input_dim, math.ceil(output_dim / block_size))
        _add_int4(layer, "embeddings", table_shape, scale_shape, output_dim, block_size)
    else:
        raise _mode_error(layer, mode)


def embedding_call(layer, inputs):
    if inputs.dtype not in (jnp.int32, jnp.int64):
        inputs = inputs.astype(jnp.int32)
    compute = layer.compute_dtype
    table = layer.embeddings.value
    if layer.quantization_mode == "int4":
        table = unpack_int4(table, layer.output_dim, axis=-1)
    rows = jnp.take(table, inputs, axis=0).astype(compute)
    scale = jnp.take(layer.embeddings_scale.value, inputs, axis=0)
    if layer.quantization_mode == "int4" and _block_size(layer, None) is not None:
        zero = jnp.take(layer.embeddings_zero.value, inputs, axis=0)
        return dequantize_with_sz_map(rows, scale, zero, layer.g_idx.value, group_axis=-1)
    return rows / jnp.expand_dims(scale, -1)


# -- saving --------------------------------------------------------------------------------------

# The order Keras's save_own_variables writes a quantized layer's variables in.
_KERAS_ORDER = {
    "int8": ("kernel", "bias", "kernel_scale"),
    "int4": ("kernel", "bias", "kernel_scale", "kernel_zero", "g_idx"),
}
_KERAS_EMBEDDING_ORDER = {
    "int8": ("embeddings", "embeddings_scale"),
    "int4": ("embeddings", "embeddings_scale", "embeddings_zero", "g_idx"),
}


def keras_variable_order(layer):
    """``layer``'s variables in the order a Keras weights file holds them (``None``: the
    usual order, trainable first, serves)."""
    mode = layer.quantization_mode
    if mode is None:
        return None
    names = (_KERAS_EMBEDDING_ORDER if hasattr(layer, "embeddings") else _KERAS_ORDER).get(mode, ())
    return [v for v in (layer.__dict__.get(name) for name in names) if v is not None]


def _assign(layer, values):
    for name, value in values.items():
        getattr(layer, name).assign(jnp.asarray(value))


def _mode_error(layer, mode):
    return NotImplementedError(f"{type(layer).__name__} '{layer.path}': quantization mode {mode!r} is not "
                               "implemented in lamina (supported: 'int8', 'int4').")




def config_from(value):
    """A layer's ``quantization_config`` argument: ``None``, a config, or its serialized dict
    (as a saved file holds it)."""
    if value is None or isinstance(value, QuantizationConfig):
        return value
    if isinstance(value, dict):
        revived = deserialize(value)
        if isinstance(revived, QuantizationConfig):
            return revived
    raise ValueError(f"quantization_config must be a lm.quantizers.QuantizationConfig or its config; received "
                     f"{value!r}.")


def config_entry(layer):
    """``{"quantization_config": ...}`` for ``get_config`` when the layer has one (Keras
    writes it for a quantized layer; lamina leaves the key out otherwise)."""
    config = layer.__dict__.get("quantization_config")
    return {} if config is None else {"quantization_config": serialize_object(config)}


# -- models ----------------------------------------------------------------------------------------


def quantize_model(model, mode=None, config=None, filters=None, type_check=True):
    """``model.quantize``: quantize every leaf layer that ``filters`` selects (a regex on the
    layer's name, a list of them, or a predicate) and that can be quantized; layers that
    cannot are left alone with a warning (Keras's behaviour)."""
    resolve(mode, config, f"quantize() of model '{model.name}'")  # a bad mode fails before anything changes
    if filters is not None and not isinstance(filters, (str, list, tuple)) and not callable(filters):
        raise ValueError(f"quantize() of model '{model.name}': filters must be a regex string, a list of them or a "
                         f"callable; received {type(filters).__name__}.")
    changed = False
    for layer in model._flatten_layers():
        if not _selected(layer, filters) or len(layer._flatten_layers()) != 1:
            continue
        try:
            layer.quantize(mode, type_check=type_check, config=config)
        except NotImplementedError as error:
            warnings.warn(str(error), stacklevel=3)
            continue
        changed = True
    optimizer = model.__dict__.get("optimizer")
    if changed and optimizer is not None and getattr(optimizer, "built", False):
        # Its slots belonged to the float kernels, which are gone: a fresh optimizer of the same
        # configuration trains what stays float (and saves state that a reloaded model fits).
        model.optimizer = deserialize(serialize(optimizer))
    return changed


def _selected(layer, filters):
    if filters is None:
        return True
    if isinstance(filters, str):
        return re.search(filters, layer.name) is not None
    if isinstance(filters, (list, tuple)):
        return any(re.search(pattern, layer.name) for pattern in filters)
    return bool(filters(layer))


__all__ = ["build_dense", "build_einsum_dense", "build_embedding", "config_entry", "config_from", "dense_call",
           "einsum_dense_call", "embedding_call", "keras_variable_order", "quantize_dense",
           "quantize_einsum_dense", "quantize_embedding", "quantize_model"]
