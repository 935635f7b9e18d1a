"""Which layer of a model emitted which JAX primitive, to name the layer an exporter refused.

The model's layers are traced with each call inside a named scope tagged with the layer's
index (metadata only: the computation is unchanged), so every equation of the jaxpr knows
the innermost layer whose ``call`` made it.
"""

from __future__ import annotations

import contextlib
import re

import jax
import jax.extend.core

_TAG = "lm_export_layer_{}"
_TAG_RE = re.compile(r"lm_export_layer_(\d+)")


@contextlib.contextmanager
def tagged_layers(model):
    """While active, calls of ``model`` and the layers under it run in named scopes; yields
    the list of layers, indexed as the tags are."""
    layers = model._flatten_layers()
    index = {id(layer): i for i, layer in enumerate(layers)}
    patched = []

    def wrap(original):
        def __call__(self, *args, **kwargs):
            position = index.get(id(self))
            if position is None:
                return original(self, *args, **kwargs)
            with jax.named_scope(_TAG.format(position)):
                return original(self, *args, **kwargs)
        return __call__

    try:
        for cls in {type(layer) for layer in layers}:
            patched.append((cls, cls.__dict__.get("__call__")))
            cls.__call__ = wrap(cls.__call__)
        yield layers
    finally:
        for cls, own in reversed(patched):
            if own is None:
                del cls.__call__
            else:
                cls.__call__ = own


def owner(name_stack, layers):
    """The innermost tagged layer in ``name_stack`` (a JAX name stack or its text), or None."""
    found = _TAG_RE.findall(str(name_stack))
    return layers[int(found[-1])] if found else None


def primitive_owners(fn, args, model, params=None) -> list:
    """``(layer, primitive name)`` for every equation of ``fn(*args)`` (nested jaxprs
    included), in trace order, deduplicated; ``layer`` is None outside any layer. With
    ``params``, only equations whose ``simple_params`` include them."""
    with tagged_layers(model) as layers:
        # A new function object: JAX caches traces by function, and an untagged trace of
        # ``fn`` may be cached already.
        closed = jax.make_jaxpr(lambda *a: fn(*a))(*args)
    seen, out = set(), []
    for stack, eqn in _equations(closed.jaxpr, ""):
        if params and any(simple_params(eqn).get(k, v) != v for k, v in params.items()):
            continue
        layer = owner(stack, layers)
        key = (id(layer), eqn.primitive.name)
        if key not in seen:
            seen.add(key)
            out.append((layer, eqn.primitive.name))
    return out


def simple_params(eqn) -> dict:
    """The equation's parameters that are plain flags, numbers or text (``reverse=True``)."""
    return {k: v for k, v in eqn.params.items() if isinstance(v, bool | int | float | str)}


def _equations(jaxpr, prefix):
    for eqn in jaxpr.eqns:
        stack = f"{prefix}/{eqn.source_info.name_stack}"
        yield stack, eqn
        for sub in _sub_jaxprs(eqn.params):
            yield from _equations(sub, stack)


def _sub_jaxprs(params):
    for value in params.values():
        for item in value if isinstance(value, tuple | list) else (value,):
            if isinstance(item, jax.extend.core.ClosedJaxpr):
                yield item.jaxpr
            elif isinstance(item, jax.extend.core.Jaxpr):
                yield item


def describe(layer) -> str:
    """``'path' (Class)`` for error messages."""
    if layer is None:
        return "code outside any layer"
    return f"layer '{layer.path}' ({type(layer).__name__})"
