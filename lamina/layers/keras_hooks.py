"""What Keras 3's overridable ``Layer`` hooks do by default in lamina.

``Layer.save_own_variables`` / ``load_own_variables`` (a layer's own state as a store of
arrays keyed ``"0"``, ``"1"``, ... as Keras keys it), ``get_build_config`` /
``build_from_config`` (the input shape a layer was built for) and ``compute_output_spec``
(output shapes and dtypes without computing) and ``rematerialized_call`` (``RematScope``'s
rule) live on ``Layer`` and call these helpers, so
that ``layer.py`` keeps to the layer's mechanics. How saving honours an override is
``lamina/saving/layer_stores.py``.
"""

from __future__ import annotations

import functools
import math

import jax
import numpy as np

from lamina.core import remat
from lamina.core.abstract import abstract_eval


def own_variables(layer) -> list:
    """The layer's own variables (not its sublayers') in Keras's store order: trainable ones
    first, then the others, each in creation order (Keras's ``_trainable_variables +
    _non_trainable_variables``)."""
    keras_order = layer._lm_keras_variable_order() if hasattr(layer, "_lm_keras_variable_order") else None
    if keras_order is not None:  # a quantized Dense/EinsumDense/Embedding: kernel, bias, kernel_scale
        return keras_order
    own = layer._lm_children()[0]
    return [v for v in own if v.trainable] + [v for v in own if not v.trainable]


# A LoRA-enabled layer's store: lamina/layers/core/lora_files.py registers "save" and "load"
# here when the layers that can enable LoRA import it (this module imports no layer module).
lora_store = {}


def save_default(layer, store) -> None:
    """``store["0"]``, ``store["1"]``, ...: the layer's own variables (``own_variables``)."""
    if layer.__dict__.get("lora_enabled"):  # Keras merges the LoRA product into the kernel
        return lora_store["save"](layer, store)
    for index, variable in enumerate(own_variables(layer)):
        store[str(index)] = variable


def load_default(layer, store) -> None:
    """Assign the layer's own variables from ``store["0"]``, ``store["1"]``, ... after checking
    every key and shape (nothing changes when one does not fit)."""
    if layer.__dict__.get("lora_enabled"):  # the merged kernel; Keras zeroes the factors
        return lora_store["load"](layer, store)
    check_and_assign(layer, store, own_variables(layer))


def check_and_assign(layer, store, variables) -> None:
    """Assign ``variables`` from ``store["0"]``, ``store["1"]``, ... once every key and shape
    fits."""
    expected = [str(i) for i in range(len(variables))]
    keys = sorted(store.keys(), key=lambda k: (len(str(k)), str(k)))
    if keys != expected:
        built = "" if layer.built else " (it is not built: build it before loading)"
        raise ValueError(
            f"Layer '{layer.path}' ({type(layer).__name__}) expected {len(variables)} variables "
            f"{[v.name for v in variables]} under keys {expected}{built}, but the store holds keys {keys}."
        )
    values = [store[key] for key in expected]
    bad = [f"'{v.path}' (key '{key}'): expected shape {tuple(v.shape)}, got {tuple(np.shape(value))}"
           for key, v, value in zip(expected, variables, values) if tuple(np.shape(value)) != tuple(v.shape)]
    if bad:
        raise ValueError(f"Layer '{layer.path}' ({type(layer).__name__}): load_own_variables shape mismatch: "
                         + "; ".join(bad))
    for variable, value in zip(variables, values):
        variable.assign(value)


def shape_from_config(shape):
    """A build config's shape as ``build`` takes it: JSON lists become tuples (a list of shapes
    stays a list of tuples)."""
    if isinstance(shape, (list, tuple)) and all(d is None or isinstance(d, int) for d in shape):
        return tuple(shape)
    if isinstance(shape, (list, tuple)):
        return [shape_from_config(s) for s in shape]
    if isinstance(shape, dict):
        return {k: shape_from_config(v) for k, v in shape.items()}
    return shape


def output_spec(layer, args, kwargs, fn=None):
    """``layer(*args, **kwargs)`` (or ``fn(...)``) evaluated on shapes: the outputs as
    ``jax.ShapeDtypeStruct``. Array leaves of the arguments stand for their shape and dtype;
    every other argument (``training=True``, a Python number) is passed as it is."""
    leaves, tree = jax.tree_util.tree_flatten((args, kwargs))
    is_spec = [isinstance(leaf, jax.ShapeDtypeStruct) or (hasattr(leaf, "shape") and hasattr(leaf, "dtype"))
               for leaf in leaves]
    if not any(is_spec):
        raise ValueError(f"Layer '{layer.path}' ({type(layer).__name__}): compute_output_spec needs at least one "
                         "input given as a jax.ShapeDtypeStruct or an array; got "
                         f"{[type(leaf).__name__ for leaf in leaves]}.")
    for leaf in leaves:
        if isinstance(leaf, jax.ShapeDtypeStruct) and any(d is None for d in leaf.shape):
            raise ValueError(f"Layer '{layer.path}': compute_output_spec takes concrete shapes; got {leaf.shape}. "
                             "For unknown axes use compute_output_shape, which takes None.")
    specs = [jax.ShapeDtypeStruct(tuple(leaf.shape), leaf.dtype) for leaf, s in zip(leaves, is_spec) if s]
    statics = [leaf for leaf, s in zip(leaves, is_spec) if not s]

    def run(*arrays):
        arrays, rest = iter(arrays), iter(statics)
        filled = [next(arrays) if s else next(rest) for s in is_spec]
        call_args, call_kwargs = jax.tree_util.tree_unflatten(tree, filled)
        return (layer if fn is None else fn)(*call_args, **call_kwargs)

    return abstract_eval(run, *specs)


def rematerialized(layer, layer_call, args, kwargs):
    """``Layer.rematerialized_call``'s choice (Keras 3's, ``keras/src/layers/layer.py``)."""
    mode = layer.__dict__.get("_lm_remat_mode")
    if mode is None:
        return layer_call
    if mode.mode == "full" or (mode.mode == "list_of_layers" and layer.name in mode.layer_names):
        return remat.remat(layer_call)
    if mode.mode == "larger_than":
        spec = output_spec(layer, args, kwargs, fn=layer_call)  # not __call__, which asks again
        size = sum(math.prod(d or 1 for d in leaf.shape) for leaf in jax.tree_util.tree_leaves(spec))
        return remat.remat(layer_call) if size > mode.output_size_threshold else layer_call
    if mode.mode == "activations" and getattr(layer, "activation", None) is not None:

        @functools.wraps(layer_call)
        def with_rematerialized_activation(*call_args, **call_kwargs):
            original = layer.activation
            layer.activation = remat.remat(original, variables=())
            try:
                return layer_call(*call_args, **call_kwargs)
            finally:
                layer.activation = original

        return with_rematerialized_activation
    return layer_call
