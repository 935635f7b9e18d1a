"""The state mechanism: every Variable read and write goes through here.

Outside any scope a Variable stores its array itself. While a ``StateScope`` is active (the
current one is thread-local), ``Variable.value`` reads the scope's mapping and ``assign``
writes into it, so stateful code — ``v.assign_add(...)``, ``self.add_loss(...)`` — becomes a
pure function of the values the scope was given. ``functionalize`` is the single bridge
from stateful code to JAX transformations; ``lm.jit``, ``lm.value_and_grad``, the trainer and
``Layer.stateless_call`` are all built on it.

Scopes nest: a read that the innermost scope has no value for goes to its parent (and
finally to the variable itself), while writes always land in the innermost scope. A *strict*
scope refuses variables it was not given, which is how ``lm.jit`` notices that a function
touched a variable its discovery pass did not see.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax

from lamina.core.loss_store import LossStore


class _ThreadState(threading.local):
    scope: StateScope | None = None
    # While ``lm.jit`` discovers a function: ``id -> object`` for every layer, variable or
    # optimizer whose structure the trace consulted (see ``note_consulted``).
    consulted: dict | None = None


_thread = _ThreadState()

# Bumped whenever the structure that compiled code depends on changes anywhere: a layer gains or
# replaces a tracked attribute, a ``trainable`` flag flips, an optimizer is built. Each bump
# also stamps the objects that changed with the new value (``_lm_structure_stamp``). A compiled
# function compares the global counter on each call (one integer comparison); only when it
# moved does it compare the stamps of the objects its trace consulted, and it re-traces only
# if one of those changed, so that building an unrelated layer costs it nothing.
_structure_version = 0


# Bumped whenever a variable's stored array is replaced from outside a scope (an eager
# ``assign`` or a compiled function's write-back). A compiled function that saw no bump since
# its last call knows its own copy of the state is still current and skips re-reading it.
_write_epoch = 0


def note_write() -> int:
    global _write_epoch
    _write_epoch += 1
    return _write_epoch


def structure_version() -> int:
    return _structure_version


def bump_structure_version(*changed) -> None:
    """Record that the structure of ``changed`` (layers, variables, optimizers) changed.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> from lamina.core import state
        >>> v = lm.Variable(jnp.zeros(2))
        >>> before = state.structure_stamp(v)
        >>> v.trainable = False  # calls bump_structure_version(v)
        >>> state.structure_stamp(v) > before
        True
    """
    global _structure_version
    _structure_version += 1
    for obj in changed:
        obj._lm_structure_stamp = _structure_version


def structure_stamp(obj) -> int:
    """The structure version at which ``obj`` last changed (0: never since it was created)."""
    return getattr(obj, "_lm_structure_stamp", 0)


def note_consulted(obj) -> None:
    """Note that the function being discovered by ``lm.jit`` depends on ``obj``'s structure.

    Called where code reads structure: a layer's children or ``trainable`` flag, a layer
    being called, a variable's ``trainable`` flag, an optimizer applied. Costs one
    thread-local read outside discovery.
    """
    consulted = _thread.consulted
    if consulted is not None:
        consulted[id(obj)] = obj


class recording_consulted:
    """Context manager: collect ``note_consulted`` objects (``id -> object``) in a new dict."""

    __slots__ = ("found", "_previous")

    def __enter__(self) -> dict:
        self._previous = _thread.consulted
        self.found = _thread.consulted = {}
        return self.found

    def __exit__(self, *exc):
        _thread.consulted = self._previous
        if self._previous is not None:  # a nested discovery's dependencies are the outer's too
            self._previous.update(self.found)
        return False


def current_scope() -> StateScope | None:
    return _thread.scope


class UndeclaredVariableError(Exception):
    """Raised inside a strict scope's trace when code touches a variable it was not given.

    ``lm.jit`` catches it, adds the variable to its state and traces again; users only see it
    from a strict ``functionalize``.
    """

    def __init__(self, variable, written: bool):
        self.variable = variable
        self.written = written
        action = "wrote" if written else "read"
        super().__init__(
            f"The function {action} variable '{variable.path}', which is not part of the state "
            "it was compiled with. Pass it in the variables given to functionalize()."
        )


class StateScope:
    """A mapping ``id(variable) -> value`` that variable reads and writes go to while active.

    ``values`` seeds the mapping (variables as keys). ``writable`` limits which of them may be
    assigned in a strict scope (default: all given). ``written`` lists the variables assigned
    so far; ``record=True`` also remembers every variable read, which is how ``lm.jit``
    discovers a function's state. ``inherit=False`` starts a chain: unknown variables are read
    from the variables themselves instead of the enclosing scope.
    """

    __slots__ = (
        "parent", "values", "keep_alive", "strict", "writable", "record",
        "touched", "written", "losses", "_previous",
    )

    def __init__(
        self,
        values: dict | None = None,
        *,
        strict: bool = False,
        writable: Iterable | None = None,
        record: bool = False,
        inherit: bool = True,
    ):
        self.parent = _thread.scope if inherit else None
        self.values: dict[int, Any] = {}
        self.keep_alive: dict[int, Any] = {}
        for var, value in (values or {}).items():
            self.values[id(var)] = value
            self.keep_alive[id(var)] = var
        self.strict = strict
        self.writable = None if writable is None else {id(v) for v in writable}
        self.record = record
        self.touched: dict[int, Any] = {}
        self.written: dict[int, Any] = {}
        self.losses = LossStore()  # what add_loss receives while this scope is active

    def __enter__(self):
        self._previous = _thread.scope
        _thread.scope = self
        return self

    def __exit__(self, *exc):
        _thread.scope = self._previous
        return False

    def read(self, var):
        key = id(var)
        if self.record:
            self.touched.setdefault(key, var)
        value = self.values.get(key, _MISSING)
        if value is not _MISSING:
            return value
        if self.strict:
            raise UndeclaredVariableError(var, written=False)
        if self.parent is not None:
            return self.parent.read(var)
        return var._stored_value()

    def write(self, var, value) -> None:
        key = id(var)
        if self.strict and (key not in self.values or self.writable is not None and key not in self.writable):
            raise UndeclaredVariableError(var, written=True)
        if self.record:
            self.touched.setdefault(key, var)
        self.written.setdefault(key, var)
        self.values[key] = value
        self.keep_alive[key] = var

    def writes_outside(self, variables: Sequence) -> list[tuple[Any, Any]]:
        """``(variable, value)`` for every write to a variable not in ``variables``."""
        given = {id(v) for v in variables}
        return [(var, self.values[key]) for key, var in self.written.items() if key not in given]


_MISSING = object()


def materialize(tree):
    """Replace the variables inside ``tree`` by their current values (call inside a scope)."""
    return jax.tree_util.tree_map(lambda leaf: leaf, tree)


def functionalize(fn: Callable, variables: Sequence, *, strict: bool = False,
                  writable: Sequence | None = None) -> Callable:
    """Turn stateful ``fn(*args, **kwargs)`` into ``pure(values, *args, **kwargs)``.

    ``pure`` returns ``(outputs, new_values, losses)``: ``new_values`` lines up with
    ``variables`` and holds what ``fn`` assigned to them (or the value passed in), ``losses``
    everything ``add_loss`` received. Variables outside ``variables`` are read from the
    enclosing scope or the variables themselves; assigning one raises, since the write would
    be lost. With ``strict=True`` reading one raises ``UndeclaredVariableError`` too, and so
    does writing a variable outside ``writable`` (default: all of ``variables``).

    Example:
        >>> import jax, jax.numpy as jnp, lamina as lm
        >>> counter = lm.Variable(jnp.zeros(()), trainable=False)
        >>> pure = lm.functionalize(lambda x: counter.assign_add(x), [counter])
        >>> out, (new,), losses = jax.jit(pure)([jnp.zeros(())], 3.0)
        >>> float(new), float(counter.value)
        (3.0, 0.0)
    """
    variables = tuple(variables)

    def pure(values, *args, **kwargs):
        if len(values) != len(variables):
            raise ValueError(f"functionalize: expected {len(variables)} values, got {len(values)}.")
        scope = StateScope(dict(zip(variables, values)), strict=strict, writable=writable,
                           inherit=not strict)
        with scope:
            # Variables returned by fn become their values while the scope still answers.
            outputs = materialize(fn(*args, **kwargs))
        stray = scope.writes_outside(variables)
        if stray:
            names = ", ".join(repr(var.path) for var, _ in stray)
            raise ValueError(
                f"The function assigned variables that were not given to functionalize(): "
                f"{names}. Their new values would be lost; include them in `variables`."
            )
        return outputs, [scope.values[id(v)] for v in variables], scope.losses.in_order()

    return pure


def is_tracer(value) -> bool:
    return isinstance(value, jax.core.Tracer)
