"""``lm.Variable``: a named, mutable array that reads and writes through the state scope."""

from __future__ import annotations

import contextlib
import itertools
import math
import operator
import threading
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from lamina.core import state
from lamina.core.arrays import as_jax_array
from lamina.distribution import placement

_serials = itertools.count()
_init_mode = threading.local()
AGGREGATIONS = (None, "none", "mean", "sum", "only_first_replica")  # Keras's values
_SYNCHRONIZATIONS = (None, "none", "auto", "on_write", "on_read")
_FLOATS = frozenset(map(jnp.dtype, ("float16", "bfloat16", "float32", "float64")))


def _initializer_not_registered(identifier):
    raise RuntimeError(
        f"lm.Variable cannot resolve the initializer {identifier!r}: lamina.initializers, which "
        "registers the initializer names, is not imported yet (`import lamina` imports it).")


# Turns an initializer name or object into a callable; lamina.initializers installs its ``get``
# here. It sits above this module (its seeds come from lamina.random, whose SeedGenerator holds
# a Variable), so the dependency goes one way: initializers -> variable, never back.
_resolve_initializer = _initializer_not_registered


def register_initializer_resolver(resolve) -> None:
    """Set how ``Variable("zeros", shape=...)`` resolves its initializer; lamina.initializers
    calls this once with its ``get``.

    Example:
        >>> import lamina as lm
        >>> from lamina.core import variable
        >>> variable._resolve_initializer is lm.initializers.get
        True
    """
    global _resolve_initializer
    _resolve_initializer = resolve


class _Autocast(threading.local):
    """The dtype float variables are read in right now: a mixed-precision layer's compute
    dtype while its ``call`` runs (``Layer.__call__`` sets it), else ``None``."""

    dtype = None


autocast_state = _Autocast()


@contextlib.contextmanager
def initializers_skipped(max_bytes: int | None = None):
    """Inside, a variable made from an initializer starts as (NumPy) zeros instead.

    For loading: every value is overwritten from the file right after, and running the random
    initializers of a large model costs seconds (most of ``load_model``'s time otherwise).
    ``max_bytes`` bounds what those variables may take together: a config from a file could
    declare ``Dense(10**9)``, and this stops it before the allocation, not after.
    """
    previous = getattr(_init_mode, "budget", None)
    _init_mode.budget = [max_bytes if max_bytes is not None else float("inf")]
    try:
        yield
    finally:
        _init_mode.budget = previous


def _zeros_within_budget(budget, shape, dtype, name):
    size = math.prod(shape) * np.dtype(dtype).itemsize
    budget[0] -= size
    if budget[0] < 0:
        raise ValueError(
            f"Variable {name or ''!r} of shape {shape} ({size} bytes) takes the weights created "
            "while loading past the size of the file's weights: the config does not match them."
        )
    # NumPy zeros: the pages are only reserved (calloc), so a placeholder that the file's
    # tensor replaces right away costs neither time nor memory. Until then it reads as zeros.
    return np.zeros(shape, dtype=jnp.dtype(dtype))


def _short_repr(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _leaked_tracer_error(var) -> ValueError:
    return ValueError(
        f"Cannot assign a traced value to variable '{var.path}' outside lamina's compiled "
        "functions. The function that computed it is being traced by a raw JAX transformation "
        "(jax.jit, jax.grad, jax.vmap, ...), so the new value would escape the trace as a "
        "leaked tracer. Wrap the stateful function in lm.jit (or build it with lm.value_and_grad "
        "/ lm.functionalize): they thread variable state through the compilation and write the "
        "new values back afterwards."
    )


class Variable:
    """A mutable array with a name, tracked by layers and threaded through compiled code.

    ``initial_value`` is array-like, or an initializer (object or string such as
    ``"glorot_uniform"``) together with ``shape=``. A variable reads like an array — operators,
    ``@``, indexing, and any ``jax.numpy`` / ``jax.nn`` function accept it — and changes only
    through ``assign``, ``assign_add`` and ``assign_sub``. Raw ``jax.lax`` primitives need
    ``v.value``. Under a distribution (``lm.distribution``) the array is created already split
    over the devices; ``layout=`` (a ``TensorLayout`` or ``NamedSharding``) chooses how.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> v = lm.Variable(jnp.ones((2,)), name="total", trainable=False)
        >>> v.assign_add(jnp.array([1.0, 2.0])).tolist()
        [2.0, 3.0]
        >>> float(jnp.sum(v * 2))
        10.0
    """

    __slots__ = (
        "_value", "_shape", "_dtype", "_trainable", "_name", "_name_given", "_owner", "_serial",
        "regularizer", "constraint", "_lm_structure_stamp", "_autocast", "_aggregation", "_synchronization",
        "__weakref__",
    )
    __array_priority__ = 100  # NumPy defers ``ndarray + Variable`` to our __radd__.

    def __init__(self, initial_value=None, *, trainable=True, dtype=None, name=None, shape=None,
                 regularizer=None, constraint=None, layout=None, autocast=True, initializer=None,
                 aggregation="none", synchronization="auto"):
        # Keras names the first argument ``initializer``; either name works, not both.
        if (initial_value is None) == (initializer is None):
            raise TypeError(f"Variable{f' {name!r}' if name else ''} needs an initial value: pass one of "
                            "`initial_value` (or Keras's name, `initializer`), not both and not neither.")
        initial_value = initial_value if initializer is None else initializer
        if aggregation not in AGGREGATIONS or synchronization not in _SYNCHRONIZATIONS:
            raise ValueError(f"Variable{f' {name!r}' if name else ''}: aggregation must be one of "
                             f"{list(AGGREGATIONS)} and synchronization one of {list(_SYNCHRONIZATIONS)}; "
                             f"got {aggregation!r}, {synchronization!r}.")
        # Keras's replica settings: recorded for code that reads them; under jax.sharding every
        # variable has one global value, so there is nothing to aggregate or synchronize.
        self._aggregation = "none" if aggregation is None else aggregation
        self._synchronization = "none" if synchronization is None else synchronization
        with jax.ensure_compile_time_eval():
            value = _initial_array(initial_value, shape, dtype, name, layout, trainable)
        self._value = value
        self._shape = tuple(value.shape)
        self._dtype = value.dtype
        self._trainable = bool(trainable)
        self._name = name or "variable"
        self._name_given = name is not None
        self._owner = None
        self._serial = next(_serials)
        self.regularizer = regularizer
        self.constraint = constraint
        # Keras's autocast: read in a mixed-precision layer's compute dtype inside its call
        # (a float32 kernel enters the matmul as bfloat16; its gradient comes back float32).
        self._autocast = bool(autocast)

    # -- reading ------------------------------------------------------------------------
    @property
    def value(self) -> jax.Array:
        """The current value: the active state scope's if there is one, else the stored array.
        Inside the ``call`` of a layer with a mixed-precision policy, a float variable reads
        cast to the layer's compute dtype (unless created with ``autocast=False``)."""
        scope = state._thread.scope
        value = self._stored_value() if scope is None else scope.read(self)
        cast = autocast_state.dtype
        if cast is not None and cast is not self._dtype and self._autocast and self._dtype in _FLOATS:
            return value.astype(cast)
        return value

    def _uncast_value(self):
        """The current value in the variable's own dtype (what updates start from)."""
        scope = state._thread.scope
        return self._stored_value() if scope is None else scope.read(self)

    def _stored_value(self):
        """The stored array, for a reader that may keep it: a compiled function holding it
        is told so, and copies it before donating (the reader's array stays valid)."""
        value = self._value
        if type(value) is Deferred:
            holder = value.holder
            holder.exported.add(value.index)
            return holder.values[value.index]
        return value

    def numpy(self) -> np.ndarray:
        """A NumPy copy of the current value (safe to keep across compiled steps)."""
        return np.array(self._uncast_value())

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.value, dtype=dtype)

    def __jax_array__(self):
        return self.value

    # -- writing ------------------------------------------------------------------------
    def assign(self, value):
        """Replace the value; it must have the variable's shape (it is cast to its dtype)."""
        if isinstance(value, Variable):
            value = value.value
        elif not isinstance(value, jax.Array):
            try:
                value = as_jax_array(value)
            except TypeError as error:  # strings, objects: JAX's message names no variable
                raise TypeError(f"Cannot assign {type(value).__name__} {_short_repr(value)} to variable "
                                f"'{self.path}' ({self._dtype}): {error}") from None
        if value.dtype.kind == "c" and not jnp.issubdtype(self._dtype, jnp.complexfloating):
            raise ValueError(f"Cannot assign a complex value (dtype {value.dtype}) to variable '{self.path}' "
                             f"of dtype {self._dtype}: the cast would drop the imaginary part.")
        if value.shape != self._shape:
            raise ValueError(
                f"Cannot assign a value of shape {tuple(value.shape)} to variable '{self.path}' "
                f"of shape {self._shape}."
            )
        if value.dtype != self._dtype:
            value = value.astype(self._dtype)
        scope = state._thread.scope
        if scope is not None:
            scope.write(self, value)
        elif isinstance(value, jax.core.Tracer):
            raise _leaked_tracer_error(self)
        else:
            self._value = value
            state.note_write()
        return self

    def assign_add(self, delta):
        """Add ``delta``; as in Keras it may broadcast to the variable's shape, never widen it."""
        return self.assign(self._uncast_value() + self._delta(delta, "assign_add"))

    def assign_sub(self, delta):
        """Subtract ``delta``; as in Keras it may broadcast to the variable's shape, never widen it."""
        return self.assign(self._uncast_value() - self._delta(delta, "assign_sub"))

    def _delta(self, delta, method):
        delta = _unwrap(delta)
        if isinstance(delta, (list, tuple)):
            delta = jnp.asarray(delta)
        shape = tuple(np.shape(delta))
        try:
            fits = np.broadcast_shapes(self._shape, shape) == self._shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"Cannot {method} a value of shape {shape} to variable '{self.path}' of shape "
                f"{self._shape}: the value must have the variable's shape or broadcast to it."
            )
        return delta

    # -- metadata -----------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._shape

    @property
    def dtype(self):
        """The stored dtype; inside a mixed-precision layer's ``call``, the dtype ``value``
        reads in (as Keras: code that makes arrays "like the kernel" gets the compute dtype)."""
        cast = autocast_state.dtype
        if cast is not None and self._autocast and self._dtype in _FLOATS:
            return cast
        return self._dtype

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return int(np.prod(self._shape, dtype=np.int64))

    @property
    def trainable(self) -> bool:
        state.note_consulted(self)
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        if bool(value) != self._trainable:
            self._trainable = bool(value)
            state.bump_structure_version(self)

    @property
    def name(self) -> str:
        return self._name

    @property
    def aggregation(self) -> str:
        """Keras's replica aggregation (``"none"``, ``"mean"``, ``"sum"``,
        ``"only_first_replica"``); recorded only, as every variable has one global value."""
        return self._aggregation

    @property
    def synchronization(self) -> str:
        """Keras's replica synchronization (``"auto"``, ``"on_write"``, ``"on_read"``,
        ``"none"``); recorded only, as every variable has one global value."""
        return self._synchronization

    @property
    def path(self) -> str:
        """``owner_path/name``, e.g. ``"mlp_block/linear_1/kernel"``; just the name if untracked."""
        owner = self._owner() if self._owner is not None else None
        return f"{owner.path}/{self._name}" if owner is not None else self._name

    def _attach(self, owner, name: str | None) -> None:
        """Called by tracking: the first layer that holds this variable owns it, and an
        unnamed variable takes the name of the first attribute of its owner it is stored in."""
        current = self._owner() if self._owner is not None else None
        if current is None:
            self._owner, current = weakref.ref(owner), owner
        if current is owner and not self._name_given and name is not None:
            self._name = name
            self._name_given = True

    def __repr__(self) -> str:
        try:
            shown = np.array2string(np.asarray(self.value), threshold=20)
        except Exception:  # a traced value has no numbers to show
            shown = "<traced>"
        return f"<Variable path={self.path!r} shape={self._shape} dtype={self._dtype} value={shown}>"

    # -- array behaviour ----------------------------------------------------------------
    __hash__ = object.__hash__  # identity: variables are state, not values

    def __getattr__(self, name):
        # Array methods and properties (``v.T``, ``v.sum()``, ``v.reshape(...)``) act on the value.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.value, name)

    def __getitem__(self, index):
        return self.value[index]

    def __len__(self):
        return len(self.value)

    def __iter__(self):
        return iter(self.value)

    def __bool__(self):
        return bool(self.value)

    def __float__(self):
        return float(self.value)

    def __int__(self):
        return int(self.value)

    def __index__(self):
        return operator.index(self.value)

    def __neg__(self):
        return -self.value

    def __pos__(self):
        return self.value

    def __abs__(self):
        return abs(self.value)

    def __invert__(self):
        return ~self.value


class Deferred:
    """Stands in a variable's storage while a compiled function holds its current array:
    the value is ``holder.values[index]``. ``lm.jit`` uses it so that a compiled step stores
    one new list of arrays instead of writing each variable back after every call; reading
    through it adds ``index`` to ``holder.exported``."""

    __slots__ = ("holder", "index")

    def __init__(self, holder, index: int):
        self.holder = holder
        self.index = index


def _unwrap(x):
    return x.value if isinstance(x, Variable) else x


def _binary(op):
    def forward(self, other):
        return op(self.value, _unwrap(other))

    def reflected(self, other):
        return op(_unwrap(other), self.value)

    return forward, reflected


for _name, _op in {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
    "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow,
    "matmul": operator.matmul, "and": operator.and_, "or": operator.or_, "xor": operator.xor,
    "lshift": operator.lshift, "rshift": operator.rshift,
}.items():
    _fwd, _rev = _binary(_op)
    setattr(Variable, f"__{_name}__", _fwd)
    setattr(Variable, f"__r{_name}__", _rev)

for _name, _op in {
    "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
    "eq": operator.eq, "ne": operator.ne,
}.items():
    setattr(Variable, f"__{_name}__", _binary(_op)[0])

# Registering Variable as a pytree whose only leaf is its current value is what lets
# ``jnp.matmul(x, v)`` and ``jax.nn.relu(v)`` work inside jax.jit on current JAX, where
# ``__jax_array__`` alone is refused during abstractification. Unflattening gives the plain
# array: a pytree round trip is a snapshot, not a variable.
jax.tree_util.register_pytree_node(Variable, lambda v: ((v.value,), None), lambda _, leaves: leaves[0])


def fresh_copy(array):
    """A new buffer holding ``array``, placed as it is (a NumPy array goes to the device).

    Unlike ``array.copy()``, no XLA program is compiled (``copy`` compiles one per shape and
    dtype, a dozen small programs at a model's first step).

    Example:
        >>> import jax.numpy as jnp
        >>> a = jnp.arange(3.0)
        >>> b = fresh_copy(a)
        >>> b.tolist(), b.unsafe_buffer_pointer() != a.unsafe_buffer_pointer(), b.committed
        ([0.0, 1.0, 2.0], True, False)
    """
    # No target: a JAX array keeps its placement and whether it is committed to its device.
    # Naming its sharding would commit it, and JAX caches eager operations by commitment, so
    # every eager op on a weight once updated this way compiled a second time.
    return jax.device_put(array, may_alias=False)


def _initial_array(initial_value, shape, dtype, name, layout=None, trainable=True):
    if isinstance(initial_value, Variable):
        initial_value = initial_value.value
    if isinstance(initial_value, str) or (callable(initial_value) and not hasattr(initial_value, "shape")):
        if shape is None:
            raise ValueError(
                f"Variable {name or ''!r}: an initializer ({initial_value!r}) needs shape=."
            )
        budget = getattr(_init_mode, "budget", None)
        if budget is not None:
            return _zeros_within_budget(budget, tuple(shape), dtype or "float32", name)
        init = _resolve_initializer(initial_value)
        sharding = placement.variable_sharding(layout, name or "variable", shape, trainable)
        if sharding is not None:  # each device computes only its shard (placement.initialize)
            return placement.initialize(lambda: jnp.asarray(init(tuple(shape), dtype=dtype or "float32")),
                                        sharding, name or "variable")
        value = init(tuple(shape), dtype=dtype or "float32")
        # lamina's initializers answer with a device array already: jnp.asarray would only cost.
        return value if isinstance(value, jax.Array) else as_jax_array(value)
    if isinstance(initial_value, jax.core.Tracer):
        raise ValueError(
            f"Variable {name or ''!r} was given a traced initial value. Variables hold concrete "
            "arrays: create them in __init__ or build() (lamina runs build() outside the trace), "
            "or give an initializer and shape= instead of a computed array."
        )
    value = np.asarray(initial_value) if not isinstance(initial_value, jax.Array) else initial_value
    if dtype is None:
        dtype = jax.dtypes.canonicalize_dtype(value.dtype)
    sharding = placement.variable_sharding(layout, name or "variable", value.shape, trainable)
    if sharding is not None and (shape is None or tuple(shape) == value.shape):
        return placement.place(value.astype(dtype), sharding, name)  # a new buffer, shard by shard
    # Copy: two variables must never share one buffer, or donating one deletes the other.
    if isinstance(value, jax.Array):
        value = fresh_copy(value if value.dtype == dtype else value.astype(dtype))
    else:
        # From the host: a copy and a transfer (jnp.array would compile a conversion program
        # per shape and dtype); evaluated even when a trace is building the variable.
        with jax.ensure_compile_time_eval():
            value = jax.device_put(np.array(value, dtype=dtype, copy=True))
    if shape is not None and tuple(shape) != value.shape:
        raise ValueError(f"Variable {name or ''!r}: initial value has shape {value.shape}, but shape={tuple(shape)}.")
    return value
