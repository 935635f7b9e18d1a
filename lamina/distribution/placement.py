"""Where a new variable's array is created: the hooks ``lm.Variable``, ``Layer.add_weight`` and
the optimizers call. Without an active distribution none of them changes anything.

A variable made from an initializer under a distribution runs that initializer compiled with
the variable's sharding as output sharding, so each device computes only its own shard and no
whole copy of the variable ever sits on one device (with JAX's partitionable threefry, the
numbers are the same as on one device).
"""

from __future__ import annotations

import contextlib
import json
import threading

import jax
import numpy as np
from jax._src import config as jax_config  # the contextual switch has no public name
from jax._src import core as jax_core  # eval_context: no public name
from jax.sharding import NamedSharding

from lamina.distribution import current
from lamina.distribution.consistency import gathered_unless_equal
from lamina.distribution.layout import TensorLayout


def layout_for_path(path: str, shape) -> NamedSharding | None:
    """The sharding the active distribution gives a layer weight at ``path`` (None: none active).

    ``Layer.add_weight`` calls it with the path the weight has when it is created.
    """
    d = current.distribution()
    if d is None:
        return None
    return d.get_variable_layout((path, tuple(shape)))


def variable_sharding(layout, name: str, shape, trainable: bool) -> NamedSharding | None:
    """The sharding a new ``lm.Variable`` is created with, or ``None`` to leave it as before.

    ``layout`` (a ``NamedSharding`` or ``TensorLayout``) wins. Otherwise, under a distribution,
    a trainable variable is placed by its name as path; a non-trainable one made directly (the
    state of metrics, seed generators, optimizer counters) is replicated.
    """
    shape = tuple(shape)
    if isinstance(layout, NamedSharding):
        return layout
    d = current.distribution()
    if isinstance(layout, TensorLayout):
        if layout.device_mesh is None:
            if d is None:
                raise ValueError(
                    f"Variable '{name}': layout {layout.axes} has no device_mesh and no "
                    "distribution is active to take one from."
                )
            layout = TensorLayout(layout.axes, d.device_mesh)
        layout.check(shape, name)
        return layout.sharding
    if layout is not None:
        raise TypeError(
            f"Variable '{name}': layout must be a TensorLayout or a jax NamedSharding; got {layout!r}."
        )
    if d is None:
        return None
    if trainable:
        return d.get_variable_layout((name, shape))
    return d.replicated()


def compiled_initializer(make, sharding: NamedSharding):
    """``make`` (no arguments, returns the initial array) compiled to produce it with
    ``sharding``: each device computes its own shard only."""
    return jax.jit(make, out_shardings=sharding)


_staging = threading.local()


def staging() -> bool:
    """Whether an initializer is being traced into the sharded program ``initialize`` compiles:
    lamina's initializers then stage their computation (each device computes its own shard)
    instead of computing the whole array at once, as they do everywhere else."""
    return getattr(_staging, "depth", 0) > 0


@contextlib.contextmanager
def _staged():
    _staging.depth = getattr(_staging, "depth", 0) + 1
    try:
        yield
    finally:
        _staging.depth -= 1


def initialize(make, sharding: NamedSharding, name: str):
    """Run ``make`` compiled with ``sharding`` as its output sharding.

    An initializer that cannot be traced (it converts a traced array to NumPy) runs as
    written instead and its result is split afterwards: correct, but that one variable is
    briefly whole on a device.
    """
    try:
        # Kept out of the persistent compilation cache: an unseeded initializer's seed is a
        # constant of its program, so every variable of every run would add one more file.
        # Run now even when a trace is building the variable (its value must be concrete).
        with jax_config.persistent_cache_min_compile_time_secs(float("inf")), _staged(), jax_core.eval_context():
            return compiled_initializer(make, sharding)()
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
            jax.errors.TracerIntegerConversionError, jax.errors.TracerBoolConversionError):
        return place(make(), sharding)


def place(value, sharding: NamedSharding, name: str | None = None):
    """A new array with ``value``'s numbers and ``sharding``, never sharing ``value``'s buffers.

    A NumPy value goes to each device shard by shard, so no device receives all of it. On a
    mesh of several processes JAX first checks that every process passes the same value (all
    of them run that check together); a value that differs raises a ``ValueError`` naming the
    variable ``name`` and each process's value, in every process.
    """
    if not isinstance(value, jax.Array):
        value = np.asarray(value)
    try:
        return jax.device_put(value, sharding, may_alias=False)
    except AssertionError as error:
        if "not the same on each process" not in str(error):
            raise
        # Every process failed that same collective check, so all can gather the values.
        raise ValueError(_differs_between_processes(value, name)) from error


def _differs_between_processes(value, name) -> str:
    """The message for a variable created from a different value in each process: the same in
    every process (process 0's name for the variable, every process's value when small)."""
    value = np.asarray(value)
    small = value.size <= 8  # a learning rate, a counter: small enough to show
    mine = {"name": name or "variable", "value": value.tolist() if small else None}
    every = gathered_unless_equal(value.tobytes().hex() if small else "", json.dumps(mine)) or [mine]
    shown = ", ".join(f"process {p} has {np.array2string(np.asarray(e['value'], value.dtype), precision=6)}"
                      for p, e in enumerate(every) if e["value"] is not None)
    return (f"Variable '{every[0]['name']}' (shape {value.shape}, {value.dtype}) differs between processes"
            f"{': ' + shown if shown else ''}. A variable on a mesh spanning several processes must be created from the same value "
            "in every process (the same optimizer arguments, such as learning_rate; the same initial "
            "values); only the rows of data may differ.")


def init_state_like(init, params: dict):
    """``init(params)`` (an optax state) with each leaf placed like the parameter it belongs to.

    A leaf under a parameter's key with that parameter's shape (Adam's ``mu`` and ``nu``) takes
    the parameter's sharding; the rest (counters) are replicated on the parameters' mesh.
    Without a distribution and with every parameter on one device, this is ``init(params)``.
    """
    mesh = common_mesh(params.values())
    if mesh is None:
        constant = constant_state(init, params)
        return init(params) if constant is None else constant
    shapes = jax.eval_shape(init, params)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
    replicated = NamedSharding(mesh, jax.sharding.PartitionSpec())
    shardings = []
    for path, leaf in leaves:
        owner = next((getattr(e, "key", None) for e in path if getattr(e, "key", None) in params), None)
        param = params.get(owner) if owner is not None else None
        like = (param is not None and tuple(param.shape) == tuple(leaf.shape)
                and isinstance(getattr(param, "sharding", None), NamedSharding) and param.sharding.mesh == mesh)
        shardings.append(param.sharding if like else replicated)
    return jax.jit(init, out_shardings=jax.tree_util.tree_unflatten(treedef, shardings))(params)


def constant_state(init, params: dict):
    """``init(params)`` made on the host when every leaf is a constant fill (zeros, an initial
    accumulator value, a step counter), else ``None``.

    Why: optax's ``init`` run eagerly compiles one XLA program per distinct slot shape (a
    ``broadcast_in_dim`` each: about 20 ms apiece on a CPU, paid by every fresh process before
    its first step); filling NumPy arrays and handing them to the device compiles nothing. A
    state that depends on the parameters' values, or holds a weakly typed leaf (whose type
    NumPy cannot carry), is left to ``init``.
    """
    # Traced even inside ``jax.ensure_compile_time_eval`` (optimizers build under it), which
    # would otherwise evaluate, and compile, the fills it is meant to find.
    with jax_config.eager_constant_folding(False):
        closed, shapes = jax.make_jaxpr(init, return_shape=True)(params)
    fills = {}
    for eqn in closed.jaxpr.eqns:
        operand = eqn.invars[0] if eqn.invars else None
        if (eqn.primitive.name == "broadcast_in_dim" and isinstance(operand, jax_core.Literal)
                and eqn.params.get("sharding") is None):
            fills[eqn.outvars[0]] = operand.val
    leaves = []
    for var in closed.jaxpr.outvars:
        aval = var.aval
        if getattr(aval, "weak_type", False):
            return None
        if isinstance(var, jax_core.Literal):
            value = var.val
        elif var in fills:
            value = fills[var]
        else:
            return None
        leaves.append(np.full(aval.shape, np.asarray(value), dtype=aval.dtype))
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shapes), leaves)


def common_mesh(arrays):
    """The mesh state goes on: the active distribution's, else the one any of ``arrays`` is
    sharded over (None when they are each on a single device)."""
    d = current.distribution()
    if d is not None:
        return d.device_mesh.jax_mesh
    for p in arrays:
        sharding = getattr(p, "sharding", None)
        if isinstance(sharding, NamedSharding) and len(sharding.device_set) > 1:
            return sharding.mesh
    return None


def sharding_of(array) -> NamedSharding | None:
    """``array``'s sharding when it is split or copied over a mesh (a ``NamedSharding``), else
    ``None``: what a slot made from it passes as ``layout=`` to keep its variable's layout."""
    sharding = getattr(array, "sharding", None)
    return sharding if isinstance(sharding, NamedSharding) else None


def zeros_like(array):
    """Zeros of ``array``'s shape and dtype, created with its sharding when it has a mesh one."""
    sharding = sharding_of(array)
    shape, dtype = tuple(array.shape), array.dtype
    if sharding is None:
        return jax.numpy.zeros(shape, dtype)
    return compiled_initializer(lambda: jax.numpy.zeros(shape, dtype), sharding)()


def peek(variable):
    """A variable's current array, read only for its layout: unlike ``variable.value`` it does
    not mark an array a compiled function holds as handed out (which costs a copy)."""
    raw = variable._value
    holder = getattr(raw, "holder", None)
    return raw if holder is None else holder.values[raw.index]


def on_mesh(array, mesh) -> bool:
    """Whether ``array`` is laid out over ``mesh`` (a ``NamedSharding`` on it): its layout is
    then the one it was created with, and it is kept."""
    sharding = getattr(array, "sharding", None)
    return isinstance(sharding, NamedSharding) and sharding.mesh == mesh


def fallback_sharding(variable, distribution) -> NamedSharding:
    """Where a variable whose array is not on the distribution's mesh (created before it, or
    reassigned from a one-device array) belongs: the rule it would have been created by."""
    if variable.trainable:
        return distribution.get_variable_layout((variable.path, tuple(variable.shape)))
    return distribution.replicated()


def move(variables, targets) -> None:
    """Give each variable the sharding in ``targets`` (same order) where its array has another:
    state made before ``set_distribution`` joins the mesh. Raises naming the variable when its
    array cannot take that layout."""
    for variable, target in zip(variables, targets):
        if getattr(peek(variable), "sharding", None) == target:
            continue
        value = variable.value
        try:
            moved = jax.device_put(value, target, may_alias=False)
        except Exception as error:  # noqa: BLE001 - re-raised with the variable named
            raise ValueError(
                f"Variable '{variable.path}' (shape {tuple(variable.shape)}) was created before the "
                f"distribution and cannot be moved to its layout {target.spec} on "
                f"{dict(target.mesh.shape)}: {error}. Create it under the distribution "
                "(set_distribution before building the model) or give it a layout that fits."
            ) from error
        variable.assign(moved)


def model_state_targets(model, distribution) -> tuple[list, list]:
    """``(variables, shardings)``: a model's state and where each belongs under ``distribution``.

    Arrays already on the distribution's mesh keep their sharding. Other weights take the
    distribution's layout for their path; an optimizer slot takes its weight's (its path ends
    with the weight's path and it has its shape), other optimizer state and the metrics are
    replicated.
    """
    mesh = distribution.device_mesh.jax_mesh
    variables, targets = [], []
    seen = set()

    def add(variable, target):
        if id(variable) not in seen:
            seen.add(id(variable))
            value = peek(variable)
            variables.append(variable)
            targets.append(value.sharding if on_mesh(value, mesh) else target)

    weights = list(model.weights)
    for w in weights:
        add(w, distribution.get_variable_layout(w))
    by_path = {(w.path, tuple(w.shape)): targets[i] for i, w in enumerate(variables)}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        for v in optimizer.variables:
            target = next((t for (path, shape), t in by_path.items()
                           if tuple(v.shape) == shape and v.path.endswith("/" + path)), None)
            add(v, target or distribution.replicated())
    for v in getattr(model, "metrics_variables", []):
        add(v, distribution.replicated())
    return variables, targets
