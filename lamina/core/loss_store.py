"""Where the values given to ``add_loss`` are kept: one ``LossStore`` per state scope.

While a ``StateScope`` is active (``lm.jit``, ``lm.value_and_grad``, ``functionalize``, the
trainer's steps), ``Layer.add_loss`` writes into the scope's store; outside any scope, into a
store of the layer's own. The scope carries its store without knowing what it holds.

Each value is tagged with the outermost call it was added in, so that ``Layer.losses`` returns
only the last call's: a layer's entries are dropped when it adds a value under a new tag. The
store also keeps every value in the order it came, whatever its tag: that is what
``functionalize`` returns as the function's losses.

A store crosses a JAX transformation as a plain pytree of values (``values()``), and the values
that come back (concrete arrays instead of tracers) are put in their places with
``with_values()``; ``merge_into()`` then hands them to the enclosing scope's store, or back to
each layer's own store outside any scope (how ``lm.value_and_grad`` makes the losses of its
function visible to the caller).
"""

from __future__ import annotations

from typing import Any


class LossStore:
    """The losses added in one scope: by layer (tagged with the call) and in the order they came.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> from lamina.core.loss_store import LossStore
        >>> layer, store = lm.layers.Dense(1), LossStore()
        >>> store.add(layer, tag=1, value=jnp.float32(2.0))
        >>> [float(v) for v in store.of(layer, tag=1)], store.of(layer, tag=2)
        ([2.0], [])
    """

    __slots__ = ("_by_layer", "_in_order")

    def __init__(self, *, keep_order: bool = True):
        # id(layer) -> (layer, [(tag, value), ...]); the layer is kept so that merge_into can
        # hand the entries back to it.
        self._by_layer: dict[int, tuple[Any, list]] = {}
        # A layer's own store (outside any scope) lives as long as the layer: it keeps no
        # history, only the last call's values by layer.
        self._in_order: list | None = [] if keep_order else None

    def add(self, layer, tag: int, value) -> None:
        """Record ``value`` for ``layer``, added during the outermost call ``tag``."""
        entries = self._by_layer.setdefault(id(layer), (layer, []))[1]
        if entries and entries[0][0] != tag:
            entries.clear()  # values from an older call are no longer this layer's losses
        entries.append((tag, value))
        if self._in_order is not None:
            self._in_order.append(value)

    def of(self, layer, tag: int) -> list:
        """The values ``layer`` added during the call ``tag``."""
        entries = self._by_layer.get(id(layer), (None, ()))[1]
        return [value for t, value in entries if t == tag]

    def in_order(self) -> list:
        """Every value added to this store, in the order they came."""
        return list(self._in_order or ())

    # -- crossing a JAX transformation --------------------------------------------------------
    def values(self) -> tuple[dict, list]:
        """The values alone, as a pytree: ``({id(layer): [values]}, [values in order])``."""
        by_layer = {key: [value for _, value in entries] for key, (_, entries) in self._by_layer.items()}
        return by_layer, self.in_order()

    def with_values(self, values: tuple[dict, list]) -> LossStore:
        """A store like this one with ``values`` (from ``values()``, transformed) in their places."""
        by_layer, in_order = values
        store = LossStore()
        for key, (layer, entries) in self._by_layer.items():
            store._by_layer[key] = (layer, [(tag, value) for (tag, _), value in zip(entries, by_layer[key])])
        store._in_order = list(in_order)
        return store

    def merge_into(self, outer: LossStore | None) -> None:
        """Hand every layer's entries to ``outer`` (replacing the layer's older ones there) and
        append the values in order; with ``outer=None``, to each layer's own store."""
        for key, (layer, entries) in self._by_layer.items():
            target = outer if outer is not None else own_store(layer)
            target._by_layer[key] = (layer, list(entries))
        if outer is not None and outer._in_order is not None:
            outer._in_order.extend(self.in_order())


def own_store(layer) -> LossStore:
    """The store ``layer`` keeps its losses in outside any scope (made on first use)."""
    store = layer.__dict__.get("_lm_losses")
    if store is None:
        store = layer.__dict__["_lm_losses"] = LossStore(keep_order=False)
    return store
