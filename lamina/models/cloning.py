"""``lm.models.clone_model``: the same architecture with new layers (and new weights)."""

from __future__ import annotations

import jax

from lamina.core.symbolic import SymbolicTensor, is_symbolic
from lamina.layers.core.input_layer import Input, InputLayer
from lamina.models.functional import Functional
from lamina.models.model import _revivable_as_functional
from lamina.models.sequential import Sequential
from lamina.saving.object_registry import get_registered_name
from lamina.saving.serialization import deserialize_object, serialize_object


def clone_model(model, input_tensors=None, clone_function=None, call_function=None, recursive=False,
                **kwargs):
    """A copy of ``model`` with freshly created layers and weights (Keras's ``clone_model``).

    A Sequential or Functional model is rebuilt layer by layer: ``clone_function(layer)``
    (default: ``type(layer).from_config(layer.get_config())``) makes each new layer, a shared
    layer is cloned once, and ``call_function(layer, *args, **kwargs)`` (Functional only)
    calls it on the new symbolic tensors. ``input_tensors`` (symbolic, from ``lm.Input``, in
    the structure of ``model.input``) replaces the new inputs. ``recursive=True`` clones
    nested Sequential/Functional models with ``clone_model`` too. Any other model is rebuilt
    from its config (``clone_function`` and ``input_tensors`` are then refused). A compiled
    model's clone is compiled with the same arguments (new optimizer state); weights are not
    copied: use ``clone.set_weights(model.get_weights())``.

    Example:
        >>> import numpy as np, lamina as lm
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2, name="hidden")])
        >>> clone = lm.models.clone_model(model)
        >>> clone.get_layer("hidden") is model.get_layer("hidden"), clone.output_shape
        (False, (None, 2))
        >>> clone.set_weights(model.get_weights())
        >>> bool(np.allclose(clone(np.ones((1, 3))), model(np.ones((1, 3)))))
        True
    """

    cache = kwargs.pop("cache", None)
    if kwargs:
        raise ValueError(f"clone_model(): unexpected keyword argument(s) {tuple(kwargs)}.")
    if clone_function is not None and not callable(clone_function):
        raise ValueError(f"clone_model(): clone_function must be a callable; got {clone_function!r}.")
    if isinstance(model, Sequential):
        if call_function is not None:
            raise ValueError(
                f"clone_model(): call_function is not supported for Sequential model '{model.name}': its "
                "layers are listed, not called, when it is made. Use it with Functional models."
            )
        clone_layer = _clone_layer_function(clone_function, None, recursive, cache)
        return _compiled_like(model, _clone_sequential(model, clone_layer, input_tensors))
    if isinstance(model, Functional):
        clone_layer = _clone_layer_function(clone_function, call_function, recursive, cache)
        return _compiled_like(model, _clone_functional(model, clone_layer, input_tensors, call_function))
    if clone_function is not None or input_tensors is not None:
        raise ValueError(
            "clone_model(): clone_function and input_tensors are only supported for Sequential and "
            f"Functional models; model '{model.name}' is a {type(model).__name__} (a subclassed model)."
        )
    if call_function is not None:
        raise ValueError(
            f"clone_model(): call_function is only supported for Functional models; model '{model.name}' "
            f"is a {type(model).__name__}."
        )

    return deserialize_object(serialize_object(model), kind="model", aliases={},
                              custom_objects={get_registered_name(type(model)): type(model)})


def _clone_layer_function(clone_function, call_function, recursive, cache):
    """``clone_function`` made to clone each layer once, and nested models with clone_model
    when ``recursive``."""
    clone_function = clone_function or (lambda layer: type(layer).from_config(layer.get_config()))
    cache = {} if cache is None else cache

    def clone(layer):
        if id(layer) not in cache:
            if recursive and isinstance(layer, (Sequential, Functional)):
                cache[id(layer)] = clone_model(
                    layer, clone_function=clone_function, recursive=True, cache=cache,
                    call_function=call_function if isinstance(layer, Functional) else None,
                )
            else:
                cache[id(layer)] = clone_function(layer)
        return cache[id(layer)]

    return clone


def _clone_sequential(model, clone_layer, input_tensors):
    layers = [clone_layer(layer) for layer in model.layers]
    if input_tensors is not None:
        tensors = list(input_tensors) if isinstance(input_tensors, (list, tuple)) else [input_tensors]
        if len(tensors) != 1:
            raise ValueError(f"clone_model(): input_tensors for Sequential model '{model.name}' must hold "
                             f"a single tensor; got {len(tensors)}.")
        tensor = tensors[0]
        if not (isinstance(tensor, SymbolicTensor) and tensor.node is not None
                and isinstance(tensor.node.layer, InputLayer)):
            raise ValueError(f"clone_model(): input_tensors for Sequential model '{model.name}' must be an "
                             f"lm.Input(...) tensor; got {tensor!r}.")
        layers = [tensor, *layers]
    elif model.built and _has_graph(model):
        source = model._lm_input_layer
        layers = [Input(batch_shape=source.batch_shape, dtype=source.input_dtype, name=source.name), *layers]
    return Sequential(layers, name=model.name, trainable=model.trainable)


def _clone_functional(model, clone_layer, input_tensors, call_function):
    if input_tensors is None:
        input_tensors = jax.tree_util.tree_map(
            lambda t: Input(batch_shape=t.shape, dtype=t.dtype.name, name=t.name), model.input, is_leaf=is_symbolic)
    else:
        given, expected = (jax.tree_util.tree_structure(s, is_leaf=is_symbolic) for s in (input_tensors, model.input))
        if given != expected:
            raise ValueError(f"clone_model(): input_tensors must have the structure of model.input ({model.input}); "
                             f"got {input_tensors}.")
        bad = [t for t in jax.tree_util.tree_leaves(input_tensors, is_leaf=is_symbolic) if not isinstance(t, SymbolicTensor)]
        if bad:
            raise ValueError(f"clone_model(): input_tensors must be symbolic tensors (lm.Input); got {bad}.")
    new = {id(old): t for old, t in zip(model.inputs, jax.tree_util.tree_leaves(input_tensors, is_leaf=is_symbolic))}

    def replace(leaf):
        return new[id(leaf)] if isinstance(leaf, SymbolicTensor) else leaf

    for node in model._lm_nodes:
        if isinstance(node.layer, InputLayer):
            continue
        layer = clone_layer(node.layer)
        args, kwargs = jax.tree_util.tree_map(replace, (node.args, node.kwargs), is_leaf=is_symbolic)
        outputs = call_function(layer, *args, **kwargs) if call_function else layer(*args, **kwargs)
        for old, tensor in zip(node.output_tensors, jax.tree_util.tree_leaves(outputs, is_leaf=is_symbolic)):
            new[id(old)] = tensor
    outputs = jax.tree_util.tree_map(replace, model.output, is_leaf=is_symbolic)
    cls = type(model) if _revivable_as_functional(type(model)) else Functional
    return cls(input_tensors, outputs, name=model.name)


def _compiled_like(model, clone):
    if model.__dict__.get("_lm_compiled"):
        clone.compile_from_config(model.get_compile_config())
    return clone


def _has_graph(model) -> bool:
    """Whether a Sequential model has (or, built from data, can make) its symbolic graph."""
    try:
        model.inputs  # noqa: B018 - makes the graph of a model built from data
    except AttributeError:
        return False
    return True
