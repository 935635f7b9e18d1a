"""``lm.jit`` and ``lm.value_and_grad``: JAX transformations for stateful code.

``lm.jit(fn)`` compiles a Python function that reads and writes variables (layers, optimizer
slots, metrics, seed generators) without the user listing them:

1. *Discovery*: the first call traces ``fn`` abstractly (``jax.make_jaxpr``) under a
   recording scope, which notes every variable read and every variable written. Layers built
   during that trace get real initial values, so they join the state like any other.
2. *Compilation*: ``jax.jit`` of ``functionalize(fn, written + read_only)``; the written
   variables' buffers are donated, the read-only ones passed as they are.
3. *Each call*: the written variables' arrays go in (donated) and the list that comes out
   is kept; the variables read it through ``Deferred`` markers, so a variable never holds a
   donated (deleted) buffer and the call costs no per-variable Python work.

The compiled form is rebuilt when the structure it was traced for changes (a layer it called
or walked gains a tracked attribute or a weight, a ``trainable`` flag it read flips, its
optimizer is built), and when a trace touches a variable that discovery did not see (the
strict scope raises, we add it and trace again). Discovery notes which objects the trace
consulted; a structure change elsewhere (building an unrelated model) costs one comparison of
their stamps and no re-trace.
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Callable, Sequence

import jax
import jaxlib
import numpy as np
from jax._src import array as _jax_array_impl
from jax.sharding import NamedSharding, PartitionSpec

from lamina.core import state
from lamina.core.state import StateScope, UndeclaredVariableError, _thread, functionalize, materialize
from lamina.core.variable import Deferred, Variable, fresh_copy
from lamina.distribution import current as current_distribution
from lamina.distribution import placement

_ARRAY_TYPES = (jax.Array, np.ndarray, np.generic)
# The concrete array class, named without creating an array: making one at import would
# start JAX's backend, after which jax.distributed.initialize() refuses to run.
_ARRAY_IMPL = _jax_array_impl.ArrayImpl
_PLAIN_LEAVES = (_ARRAY_IMPL, np.ndarray)  # leaves always traced, never a Variable


class _Static:
    """A non-array argument, compared by identity or value, to key jax.jit's cache."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        if self.value is other.value:
            return True
        if type(self.value) is not type(other.value) or isinstance(self.value, Variable):
            return False
        return bool(self.value == other.value)

    def __hash__(self):
        value = self.value
        return id(value) if isinstance(value, Variable) else hash((type(value), value))


def _split(args, kwargs, static_argnames):
    """``(dynamic_leaves, static)``: arrays and numbers traced, everything else static."""
    static_kwargs = {k: _Static(kwargs[k]) for k in static_argnames if k in kwargs}
    traced_kwargs = {k: v for k, v in kwargs.items() if k not in static_kwargs}
    leaves, treedef = jax.tree_util.tree_flatten(
        (args, traced_kwargs), is_leaf=lambda x: isinstance(x, Variable)
    )
    dynamic, statics = [], []
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, _ARRAY_TYPES) or type(leaf) in (int, float, complex):
            dynamic.append(leaf)
        else:
            statics.append((i, _Static(leaf)))
    return dynamic, (treedef, tuple(statics), tuple(sorted(static_kwargs.items())))


def _join(dynamic, static):
    if static is None:
        return tuple(dynamic), {}
    treedef, statics, static_kwargs = static
    leaves, it = [], iter(dynamic)
    positions = dict(statics)
    for i in range(treedef.num_leaves):
        leaves.append(positions[i].value if i in positions else next(it))
    args, kwargs = jax.tree_util.tree_unflatten(treedef, leaves)
    kwargs.update({k: v.value for k, v in static_kwargs})
    return args, kwargs


@functools.cache
def _compiler_options() -> dict | None:
    """XLA options for every ``lm.jit`` program: on CPU, XLA's memory-optimized scheduler.

    Why: XLA:CPU allocates a program's temporaries as one block per call, and glibc's
    ``malloc`` serves a block over 32 MiB (its largest mmap threshold) with fresh pages, so
    each call page-faults the whole block in. XLA's default CPU schedule (breadth-first, for
    concurrency) keeps more intermediates alive: the transformer block step of
    ``benchmarks/layers.py`` needs 33.0 MiB of temporaries with it (about 8,500 page faults
    per step on a 2-core CPU: 30.4 ms against 22.4 ms for the hand-written step, whose
    30.0 MiB fit under the threshold) and 28.5 MiB with this one (no faults, 22.4 ms). The
    MNIST convnet (46 and 39 MB by fault count) showed no reliable change in time. Not every
    program gets smaller (a small MLP step in the tests needs 3.1 instead of 2.4 MB), and
    hosts with many cores may gain more from concurrency: measured on 2 cores only. Only
    the schedule changes: donation, numerics and GPU/TPU compilation are untouched.

    The option exists from jaxlib 0.9.1 on; older versions refuse it at compile time, so they
    keep the default schedule. Decided from the version, not by compiling a probe program
    (a probe cost every fresh process a 20 ms compilation before its first step).
    """
    if jax.default_backend() != "cpu" or _jaxlib_version() < (0, 9, 1):
        return None
    return {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}


def _jaxlib_version() -> tuple:
    """jaxlib's version as a tuple of its leading numbers (``"0.10.2"`` -> ``(0, 10, 2)``)."""
    numbers = re.findall(r"\d+", jaxlib.__version__)[:3]
    return tuple(int(n) for n in numbers)


class _Compiled:
    """One ``jax.jit`` of ``fn`` for a fixed set of written and read-only variables.

    Between calls it owns the written variables' current arrays (``values``); the variables
    hold ``Deferred`` markers that read from this list. A call therefore passes ``values`` in
    and keeps the list that comes out — no per-variable work — unless something else stored
    a variable since (the global write epoch moved), in which case ``refresh`` re-reads them.

    Donation rule: only arrays this function produced itself and nobody has read since are
    donated. Anything else — a user's array given to ``assign``, an initial value, an array
    handed out by ``v.value`` (recorded in ``exported``) — is copied first, so an array a user
    holds is never deleted under them.
    """

    __slots__ = ("written", "read_only", "version", "consulted", "values", "read_values", "exported",
                 "epoch", "unshare", "signature", "jitted", "shardings", "__weakref__")

    def __init__(self, fn, written, read_only, version, consulted=()):
        self.written = list(written)
        self.read_only = list(read_only)
        self.version = version
        # ``(object, structure stamp)`` for each object whose structure the trace consulted.
        self.consulted = tuple(consulted)
        self.values: list = []
        self.read_values: list = []
        self.exported: set = set()
        self.epoch = -1
        self.unshare = False
        self.signature = None  # (program text, written ids, read ids) from discovery
        n = len(self.written)
        pure = functionalize(fn, self.written + self.read_only, strict=True, writable=self.written)
        this = weakref.ref(self)

        def step(written_values, read_values, dynamic, static):
            args, kwargs = _join(dynamic, static)
            # jax.jit traces again for each new input shape or static value, and such a trace
            # may take a branch discovery did not: what it consults counts too.
            with state.recording_consulted() as consulted:
                outputs, new_values, _ = pure(list(written_values) + list(read_values), *args, **kwargs)
            owner = this()
            if owner is not None:
                owner.add_consulted(consulted)
            return outputs, new_values[:n]

        # Under a distribution the state goes in and comes out with its layouts: a donated
        # buffer is reused in place and nothing is resharded between steps. Arguments (the
        # batch) keep the sharding they come with. On one device nothing is pinned.
        self.shardings = state_shardings(self.written + self.read_only)
        if self.shardings is None:
            self.jitted = jax.jit(step, static_argnums=(3,), donate_argnums=(0,),
                                  compiler_options=_compiler_options())
        else:
            ws, rs = self.shardings[:n], self.shardings[n:]
            self.jitted = jax.jit(step, static_argnums=(3,), donate_argnums=(0,), in_shardings=(ws, rs, None),
                                  out_shardings=(None, ws), compiler_options=_compiler_options())

    def add_consulted(self, consulted: dict) -> None:
        """Also depend on the objects in ``consulted`` (``id -> object``), at their stamps now."""
        known = {id(obj) for obj, _ in self.consulted}
        new = [(obj, state.structure_stamp(obj)) for key, obj in consulted.items() if key not in known]
        if new:
            self.consulted = self.consulted + tuple(new)

    def structure_changed(self) -> bool:
        """Whether an object the trace consulted changed structure since discovery."""
        stamp = state.structure_stamp
        return any(stamp(obj) != seen for obj, seen in self.consulted)

    def refresh(self) -> None:
        """Take the variables' current arrays and point the written ones at ``values``."""
        values = []
        for variable in self.written:
            raw = variable._value
            if type(raw) is Deferred:
                # Held by a compiled function (this one or another): that holder re-reads
                # through the marker we set below before it uses its list again.
                values.append(raw.holder.values[raw.index])
                if raw.holder is self and raw.index not in self.exported:
                    continue
            else:
                values.append(raw)
            values[-1] = self._copy(values[-1], len(values) - 1)  # may be held elsewhere: never donate it
        self.values = values
        self.exported = set()
        self.read_values = [v._stored_value() for v in self.read_only]
        if self.shardings is not None:
            self._place_read_only()
        for index, variable in enumerate(self.written):
            variable._value = Deferred(self, index)
        # Current as of now: a function that writes nothing (a predict step) is not refreshed
        # again at every call, only after something else stores a variable.
        self.epoch = state._write_epoch

    def _copy(self, value, index: int):
        """A copy of written value ``index`` to donate, with its layout under a distribution
        (state created before the distribution, or reset eagerly, joins the mesh here)."""
        if self.shardings is None:
            return fresh_copy(value)
        return jax.device_put(value, self.shardings[index], may_alias=False)

    def _place_read_only(self) -> None:
        """Read-only state not laid out as compiled (made before the distribution) is moved
        once, and the variable keeps the moved array, so calls do not reshard it again."""
        n = len(self.written)
        for i, variable in enumerate(self.read_only):
            target = self.shardings[n + i]
            value = self.read_values[i]
            if getattr(value, "sharding", None) != target:
                value = self.read_values[i] = jax.device_put(value, target)
                if type(variable._value) is not Deferred:  # another function's output stays its own
                    variable._value = value

    def prepare(self, dynamic) -> None:
        """Before a call that cannot use ``values`` as they are (see the class docstring)."""
        if self.epoch != state._write_epoch:
            self.refresh()
        if self.exported:
            for index in self.exported:
                self.values[index] = self._copy(self.values[index], index)
            self.exported = set()
        if self.unshare:
            _unshare(self.values, self.read_values, dynamic)


def state_shardings(variables: list) -> list | None:
    """The sharding each variable goes in and out of a compiled function with, or ``None`` on
    one device (no distribution active and no variable split or copied over several devices).

    The mesh is the active distribution's, else the one the variables' arrays are laid out
    over. A variable already on that mesh keeps its layout; another takes the one the
    distribution would have created it with (replicated without a distribution).
    """
    distribution = current_distribution.distribution()
    arrays = [placement.peek(v) for v in variables]
    mesh = placement.common_mesh(arrays)
    if mesh is None:
        return None
    replicated = NamedSharding(mesh, PartitionSpec())
    shardings = []
    for variable, array in zip(variables, arrays):
        if placement.on_mesh(array, mesh):
            shardings.append(array.sharding)
        elif distribution is not None:
            shardings.append(placement.fallback_sharding(variable, distribution))
        else:
            shardings.append(replicated)
    return shardings


def _buffers(value) -> list:
    """Keys of the device buffers behind ``value`` (one per shard; the object's id for a
    host array, or a deleted one, whose buffers cannot be asked)."""
    if isinstance(value, jax.Array):
        try:
            return [shard.data.unsafe_buffer_pointer() for shard in value.addressable_shards]
        except Exception:  # noqa: BLE001 - deleted, or a runtime without raw pointers
            pass
    return [("object", id(value))]


def _shared(written_values, read_values, dynamic) -> list[int]:
    """Indices of the donated values whose buffers are also passed elsewhere in the call (in
    another donated value, a read-only value or an argument): what XLA refuses to run."""
    seen = set()
    for value in [*read_values, *jax.tree_util.tree_leaves(dynamic)]:
        seen.update(_buffers(value))
    shared = []
    for index, value in enumerate(written_values):
        keys = _buffers(value)
        if seen.intersection(keys):
            shared.append(index)
        seen.update(keys)
    return shared


def _unshare(written_values, read_values, dynamic) -> None:
    """Copy each donated buffer that is also passed elsewhere in the same call."""
    for index in _shared(written_values, read_values, dynamic):
        written_values[index] = fresh_copy(written_values[index])


class CompiledFunction:
    """What ``lm.jit(fn)`` returns: call it like ``fn``; variables update after each call."""

    def __init__(self, fn: Callable, static_argnames: Sequence[str] = ()):
        self._fn = fn
        self._static_argnames = tuple(static_argnames)
        self._compiled: _Compiled | None = None
        # (treedef, static) of the last positional arguments that held only arrays: a batch
        # has the same structure every step, and is then split with one C++ flatten.
        self._plain_arguments: tuple | None = None
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        if _thread.scope is not None:
            # Already inside compiled or functionalized code: the outer scope threads the state.
            return self._fn(*args, **kwargs)
        dynamic, static = args, None  # only arrays: the common case, kept cheap
        if kwargs:
            dynamic, static = _split(args, kwargs, self._static_argnames)
        else:
            for a in args:
                if type(a) is not _ARRAY_IMPL:
                    dynamic, static = self._split_positional(args)
                    break
        compiled = self._compiled
        if compiled is None or compiled.version != state._structure_version:
            compiled = self._compiled = self._current(compiled, dynamic, static)
        # The hot path, kept flat: on most calls ``prepare`` is skipped and the only Python
        # work is handing the stored list of arrays in and keeping the one that comes out.
        while True:
            if compiled.epoch != state._write_epoch or compiled.exported or compiled.unshare:
                compiled.prepare(dynamic)
            try:
                outputs, compiled.values = compiled.jitted(compiled.values, compiled.read_values, dynamic, static)
                break
            except (UndeclaredVariableError, jax.errors.JaxRuntimeError, ValueError) as error:
                # XLA refuses a donated buffer passed twice with a JaxRuntimeError, or with a
                # ValueError when the arrays are not committed to a device: _recover tells
                # by looking for shared buffers, and re-raises anything else.
                compiled = self._recover(compiled, error, dynamic)
        if compiled.written:  # state.note_write(), inlined: this is the per-step path
            compiled.epoch = state._write_epoch = state._write_epoch + 1
        return outputs

    def _split_positional(self, args) -> tuple:
        """``_split(args, {})``, without its per-leaf Python work when the arguments have the
        structure of the last plain call (no variable, no static leaf) and hold only arrays."""
        leaves, treedef = jax.tree_util.tree_flatten(args)  # a Variable would show in treedef
        plain = self._plain_arguments
        if plain is not None and plain[0] == treedef and all(type(leaf) in _PLAIN_LEAVES for leaf in leaves):
            return leaves, plain[1]
        dynamic, static = _split(args, {}, self._static_argnames)
        if not static[1] and all(type(leaf) in _PLAIN_LEAVES for leaf in dynamic):
            self._plain_arguments = (treedef, static)
        return dynamic, static

    def _recover(self, compiled: _Compiled, error: Exception, dynamic) -> _Compiled:
        """What to retry with after a trace touched an unknown variable or XLA refused a
        donation; any other error is re-raised."""
        if isinstance(error, UndeclaredVariableError):
            # The trace touched a variable discovery did not see: widen the state.
            compiled = self._compiled = self._widen(compiled, error)
        elif not compiled.unshare and _shared(compiled.values, compiled.read_values, dynamic):
            # A donated buffer was also passed elsewhere: two variables sharing one array
            # (``a.assign(b.value)``) or a variable's array given as an argument. XLA refuses
            # such a call before running anything (the buffers are intact); copy shared
            # buffers before each call from now on. Checked only after an error, so the
            # common path pays nothing.
            compiled.unshare = True
        else:
            raise error
        return compiled

    def _current(self, compiled: _Compiled | None, dynamic, static) -> _Compiled:
        """After a structure change somewhere: keep ``compiled`` unless something its trace
        consulted changed, else discover again."""
        if compiled is not None and not compiled.structure_changed():
            compiled.version = state.structure_version()
            return compiled
        return self._discover(dynamic, static)

    def _discover(self, dynamic, static) -> _Compiled:
        scope = StateScope(record=True, inherit=False)

        def trace(dynamic):
            args, kwargs = _join(dynamic, static)
            with scope:
                return materialize(self._fn(*args, **kwargs))

        with state.recording_consulted() as consulted:
            program = jax.make_jaxpr(trace)(dynamic)
        written = [v for key, v in scope.touched.items() if key in scope.written]
        read_only = [v for key, v in scope.touched.items() if key not in scope.written]
        # Stamps read after the trace: layers it built changed during it, and that is the
        # structure the compiled program describes.
        stamps = [(obj, state.structure_stamp(obj)) for obj in consulted.values()]
        # A change to a consulted object may leave the program as it was (a layer gained an
        # attribute the function does not use): keep the compiled function and its XLA
        # executables instead of compiling everything again.
        signature = (str(program), tuple(map(id, written)), tuple(map(id, read_only)))
        previous = self._compiled
        if previous is not None and previous.signature == signature:
            previous.version = state.structure_version()
            previous.consulted = tuple(stamps)
            return previous
        compiled = _Compiled(self._fn, written, read_only, state.structure_version(), stamps)
        compiled.signature = signature
        return compiled

    def _widen(self, compiled: _Compiled, missing: UndeclaredVariableError) -> _Compiled:
        var = missing.variable
        written = list(compiled.written)
        read_only = [v for v in compiled.read_only if v is not var]
        if missing.written:
            written.append(var)
        else:
            read_only.append(var)
        return _Compiled(self._fn, written, read_only, compiled.version, compiled.consulted)

    @property
    def variables(self) -> list:
        """The variables the last compilation threads through (written first)."""
        compiled = self._compiled
        return [] if compiled is None else compiled.written + compiled.read_only


def jit(fn: Callable | None = None, *, static_argnames: Sequence[str] = ()):
    """Compile a stateful Python function with XLA; variables it touches update after each call.

    Arrays and Python numbers are traced; other arguments (strings, bools, None, objects)
    are static, as are the keyword arguments named in ``static_argnames``. Usable as
    ``@lm.jit`` or ``@lm.jit(static_argnames=("mode",))``.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> total = lm.Variable(jnp.zeros(()), trainable=False)
        >>> @lm.jit
        ... def add(x):
        ...     total.assign_add(jnp.sum(x))
        ...     return total.value
        >>> for _ in range(3):
        ...     _ = add(jnp.ones((2,)))
        >>> float(total.value)
        6.0
    """
    if fn is None:
        return lambda f: CompiledFunction(f, static_argnames)
    return CompiledFunction(fn, static_argnames)


def value_and_grad(fn: Callable, variables: Sequence, has_aux: bool = False) -> Callable:
    """``fn(*args) -> loss`` becomes ``f(*args) -> (loss, grads)``, grads aligned with ``variables``.

    ``fn`` is ordinary stateful code: it may call layers, ``add_loss`` and assign variables
    (batch-norm statistics, seed generators); those writes take effect after the gradient is
    computed, eagerly or inside ``lm.jit``. With ``has_aux=True``, ``fn`` returns
    ``(loss, aux)`` and the result is ``((loss, aux), grads)``. An empty ``variables`` while
    ``fn`` builds layers with trainable weights raises (``model.trainable_weights`` read before
    the model was built); inside ``lm.jit`` the second trace sees the built model instead.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> w = lm.Variable(jnp.array([1.0, 2.0]))
        >>> loss, (g,) = lm.value_and_grad(lambda: jnp.sum(w * w), [w])()
        >>> float(loss), g.tolist()
        (5.0, [2.0, 4.0])
    """
    variables = list(variables)

    def compute(*args, **kwargs):
        traced = {}  # the inner scope, kept to map its values back to variables and layers

        def inner(values):
            # With nothing to differentiate, reads are recorded to catch the list taken too early.
            scope = traced["scope"] = StateScope(dict(zip(variables, values)), record=not variables)
            with scope:
                result = fn(*args, **kwargs)
                value, aux = materialize(result if has_aux else (result, None))
            new_values = [scope.values[key] for key in scope.written]
            return value, (aux, new_values, scope.losses.values())

        version = state.structure_version()
        (value, (aux, new_values, loss_values)), grads = jax.value_and_grad(inner, has_aux=True)(
            [v.value for v in variables]
        )
        scope = traced["scope"]
        if not variables and state.structure_version() != version and not _discovering(scope):
            _refuse_weights_built_too_late(scope)
        for var, new in zip(scope.written.values(), new_values):
            var.assign(new)
        # The losses added inside are visible to the caller's ``losses``, as concrete values.
        scope.losses.with_values(loss_values).merge_into(
            state._thread.scope.losses if state._thread.scope is not None else None)
        return ((value, aux) if has_aux else value), list(grads)

    return compute


def _discovering(scope) -> bool:
    """Whether ``scope`` runs inside a discovery trace (``lm.jit``, ``stateful_scan``): the
    function is traced again once the layers it built exist, so an empty list there is fine."""
    outer = scope.parent
    while outer is not None:
        if outer.record:
            return True
        outer = outer.parent
    return False


def _refuse_weights_built_too_late(scope) -> None:
    """``variables`` was empty and ``fn`` built layers whose trainable weights it then read:
    the list (``model.trainable_weights``) was taken before the model was built, so nothing
    would train. GradientTape code reads the weights after the forward pass; here they are
    named before it."""
    def trains(var):
        owner = var._owner() if var._owner is not None else None
        return var.trainable and getattr(owner, "_lm_trainable", True)  # a frozen layer's do not

    built = [var.path for var in scope.touched.values() if isinstance(var, Variable) and trains(var)]
    if built:
        shown = ", ".join(f"'{path}'" for path in built[:3]) + (", ..." if len(built) > 3 else "")
        raise ValueError(
            "lm.value_and_grad was given no variables to differentiate, and the function built "
            f"trainable weights while it ran ({shown}): the list was taken before the model "
            "was built, so no gradient would reach them. Build the model first (call it once on "
            "a batch, or model.build(input_shape)), then pass model.trainable_weights."
        )
