"""Every process of a multi-process run must run the same program: the same model, compiled the
same way, called with the same loop arguments; only the rows of data differ.

Processes that do not would wait for each other forever at the first collective of a step (a
wider layer, another optimizer, one epoch more) or fail deep inside XLA. So, with several
processes under a distribution, ``fit`` / ``evaluate`` / ``predict`` first compare a small
description of the program (the model's variables with shapes, dtypes and layouts, the
compile arguments, the loop's arguments, the distribution) across processes, and a sharded
checkpoint save compares the tensors it is about to write. One ``process_allgather`` of a
16-byte digest when they agree; when they do not, every process gathers every description and
raises the same ``ValueError`` naming what differs. In one process nothing runs.

Differences that change nothing in the program are ignored: generated names (``dense_3``
for ``dense``, an optimizer's ``adam_1``), the data, ``shuffle``, callbacks.
"""

from __future__ import annotations

import hashlib
import json
import re

import jax
import numpy as np

from lamina.core import state
from lamina.distribution import current

_MAX_LISTED = 6  # differences named in the message; the rest are counted
_ADVICE = ("Every process must build the same model, compile it with the same arguments and call "
           "fit/evaluate/predict with the same arguments under the same distribution; only the rows "
           "of data each one passes differ.")


def active() -> bool:
    """Whether programs are compared: several processes and an active distribution (without
    one, each process trains on its own devices and nothing waits for another).

    Example:
        >>> from lamina.distribution import consistency
        >>> consistency.active()   # one process
        False
    """
    return jax.process_count() > 1 and current.distribution() is not None


def check_loop(model, loop: str, settings: dict) -> None:
    """At the start of ``model.<loop>(...)``: raise in every process unless all run the same
    program. ``settings`` are the loop's arguments that decide how many steps run and which.

    A model not built yet (its first batch builds it) has its variables compared just before
    its first step, through ``first_step_check``.

    Example:
        >>> import lamina as lm
        >>> from lamina.distribution.consistency import check_loop
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
        >>> check_loop(model, "fit", {"epochs": 1})   # one process: nothing to compare
    """
    model.__dict__.pop("_lm_program_check", None)
    if not active():
        return
    check_same_in_every_process(f"{loop}()", _program_facts(model, loop, settings))
    if not model.built:
        model.__dict__["_lm_program_check"] = loop


def check_batch(model, kind: str, data) -> None:
    """At ``model.<kind>_on_batch(...)`` (``kind``: train, test or predict): raise in every
    process unless all run the same program on batches of the same shapes, as ``check_loop``.

    Compared at the first call, then again only when something the comparison covers may have
    changed since the last one: the structure of any layer or optimizer in this process (lamina's
    structure version), the compile arguments, the distribution, the kind of call or the
    batch's shapes; a loop of ``train_on_batch`` calls on equal batches compares once or twice
    (the first step builds the optimizer), then never. A model not built yet is built from
    ``data`` first, so that its variables are compared.

    Example:
        >>> import numpy as np, lamina as lm
        >>> from lamina.distribution.consistency import check_batch
        >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])
        >>> check_batch(model, "predict", (np.ones((4, 3), "float32"),))   # one process: nothing
    """
    if not active():
        return
    batch = [f"{tuple(np.shape(leaf))} {getattr(leaf, 'dtype', type(leaf).__name__)}"
             for leaf in jax.tree_util.tree_leaves(data)]

    def seen():
        # Objects by identity (kept alive below, so that an id is never reused for another).
        return (kind, state.structure_version(), id(model.__dict__.get("_lm_compile_args")),
                id(current.distribution()), batch)

    if model.__dict__.get("_lm_batch_check", (None,))[0] == seen():
        return
    if not model.built:
        model._lm_build_from_batch(data, False)
    loop = f"{kind}_on_batch"
    check_same_in_every_process(f"{loop}()", _program_facts(model, loop, {"batch": batch}))
    model.__dict__["_lm_batch_check"] = (seen(), model.__dict__.get("_lm_compile_args"), current.distribution())


def _program_facts(model, loop: str, settings: dict) -> list:
    facts = [("loop", loop, None)]
    facts += [(f"setting:{loop}:{name}", _plain(value), None) for name, value in settings.items()]
    facts += _compile_facts(model)
    facts += _distribution_facts()
    return facts + _variable_facts(model)


def first_step_check(model):
    """The check a loop runs once, before its first step, when ``check_loop`` left one (the
    model was not built): ``check(data, stacked)`` builds the model from the batch's shapes
    and compares its variables. ``None`` when there is nothing left to check."""
    loop = model.__dict__.pop("_lm_program_check", None)
    if loop is None:
        return None

    def check(data, stacked: bool) -> None:
        model._lm_build_from_batch(data, stacked)
        check_same_in_every_process(f"{loop}()", _variable_facts(model))

    return check


def check_checkpoint(variables: dict) -> None:
    """Before a sharded checkpoint is written: every process saves the same tensors (the index
    process 0 writes describes its own list, and every shard file must fit it)."""
    if jax.process_count() == 1:
        return
    described = [[list(variable.shape), str(variable.dtype), None] for variable in variables.values()]
    check_same_in_every_process("saving a sharded checkpoint", [("tensors", described, list(variables))],
                                "Every process must save the same model (each writes its own shards of it).")


def check_same_in_every_process(what: str, facts: list, advice: str = _ADVICE) -> None:
    """Raise the same ``ValueError`` in every process unless every process passed equal
    ``facts`` (``[(key, value, shown)]``: ``value`` is compared, ``shown`` only named in the
    message, which lists each difference and then gives ``advice``).

    Every process must call it at the same point: it is itself a collective.
    """
    if jax.process_count() == 1:
        return
    compared = json.dumps([[key, value] for key, value, _ in facts], sort_keys=True, default=_describe_object)
    described = gathered_unless_equal(compared, json.dumps([what, facts], default=_describe_object))
    if described is None:
        return
    # Process 0's words for what runs, so that every process raises the very same message.
    raise ValueError(_message(described[0][0], [facts for _, facts in described], advice))


def gathered_unless_equal(compared: str, full: str) -> list | None:
    """``None`` when ``compared`` is equal in every process (one ``process_allgather`` of its
    16-byte digest); else every process's ``full`` (JSON text), parsed, in process order."""
    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.blake2b(compared.encode(), digest_size=16).digest(), dtype=np.int32)
    every = np.asarray(multihost_utils.process_allgather(digest))
    if (every == every[0]).all():
        return None
    # They differ: gather every description (padded to the longest) to say what differs.
    mine = np.frombuffer(full.encode(), dtype=np.uint8)
    lengths = np.asarray(multihost_utils.process_allgather(np.int64(mine.size))).reshape(-1)
    padded = np.zeros(int(lengths.max()), dtype=np.uint8)
    padded[:mine.size] = mine
    gathered = np.asarray(multihost_utils.process_allgather(padded))
    return [json.loads(bytes(row[:n]).decode()) for row, n in zip(gathered, lengths)]


# -- the outcome of local work (loading a checkpoint) ---------------------------------------------
def same_outcome(what: str, run, describe=None):
    """``run()`` in every process of a run under a distribution, then one comparison of how it
    went: its result when it went alike everywhere; else the same error in every process.

    ``run`` does local work only (opening a file, checking it against the model): no collective
    and no change to any variable. A process whose ``run`` raised would otherwise leave the
    others waiting forever at their next collective (a transfer to the mesh, a step); so all
    of them raise its error (its class, its message naming the process), chained to the local
    cause where there is one. ``describe(result)`` (``{what: JSON data}``) is compared too: a
    result that differs between processes (another file, other tensors skipped) raises a
    ``ValueError`` naming the difference. In one process, or without a distribution, this is
    ``run()``.

    Example:
        >>> from lamina.distribution.consistency import same_outcome
        >>> same_outcome("opening the file", lambda: 42)   # one process: run() itself
        42
    """
    if not active():
        return run()
    failure, result = None, None
    try:
        result = run()
        mine = {"ok": True, "described": _plain(describe(result)) if describe is not None else None}
    except Exception as error:  # noqa: BLE001 - every process must hear of it, whatever it is
        failure = error
        kind = type(error)
        mine = {"ok": False, "class": f"{kind.__module__}:{kind.__qualname__}", "message": str(error),
                "problems": _plain(getattr(error, "problems", None))}
    outcomes = gathered_unless_equal(json.dumps(mine, sort_keys=True), json.dumps({**mine, "what": what}))
    if outcomes is None:  # the same everywhere: this process's own result, or its own error
        if failure is not None:
            raise failure
        return result
    # Process 0's words for what ran (paths may differ), so that every message is the same.
    raise _shared_error(outcomes[0]["what"], outcomes) from failure


def _shared_error(what: str, outcomes: list) -> Exception:
    """The error every process raises when the outcomes of ``same_outcome`` differ."""
    failed = [p for p, outcome in enumerate(outcomes) if not outcome["ok"]]
    tail = ("Every process raises this error, so that none waits for the others; nothing was changed "
            "in any process.")
    if not failed:
        lines = [f"process {p} has {key} {_short(value)} where process 0 has {_short(outcomes[0]['described'].get(key))}"
                 for p, outcome in enumerate(outcomes[1:], start=1)
                 for key, value in outcome["described"].items() if value != outcomes[0]["described"].get(key)]
        return ValueError(f"{what} would differ between the processes of this run: {'; '.join(lines[:_MAX_LISTED])}. "
                          f"Every process must load the same file into the same model. {tail}")
    first = outcomes[failed[0]]
    others = f" (and in process {', '.join(map(str, failed[1:]))})" if len(failed) > 1 else ""
    fine = [p for p in range(len(outcomes)) if p not in failed]
    went_on = f"; it went through in process {', '.join(map(str, fine))}" if fine else ""
    message = f"{what} failed in process {failed[0]}{others}{went_on}: {first['message']} {tail}"
    kind = _error_class(first["class"])
    try:
        return kind(message, first["problems"]) if first["problems"] is not None else kind(message)
    except TypeError:  # a class made with other arguments: its words, as a RuntimeError
        return RuntimeError(f"{first['class'].split(':')[-1]}: {message}")


def _error_class(name: str) -> type:
    """The exception class ``module:qualname`` names, if it is a builtin or lamina's own
    (nothing else is imported on another process's word), else ``RuntimeError``."""
    import importlib

    module, _, qualname = name.partition(":")
    if module == "builtins" or module.split(".")[0] == "lamina":
        try:
            found = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            found = None
        if isinstance(found, type) and issubclass(found, Exception):
            return found
    return RuntimeError


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


# -- what is compared ---------------------------------------------------------------------------
def _variable_facts(model) -> list:
    described, paths = [], []
    for variable in model.variables:
        # (placement.sharding_of, inline: placement imports this module to name a variable)
        sharding = getattr(variable.value, "sharding", None)
        sharding = sharding if isinstance(sharding, jax.sharding.NamedSharding) else None
        if sharding is None:
            layout = "on one device"
        elif any(axis is not None for axis in sharding.spec):
            layout = f"split {tuple(sharding.spec)}"
        else:
            layout = "replicated"
        described.append([list(variable.shape), str(variable.dtype), layout])
        paths.append(_relative_path(variable.path))
    # Compared by position (paths hold generated names); the paths name the differences.
    return [("built", bool(model.built), None), ("variables", described, paths)]


def _compile_facts(model) -> list:
    facts = [("dtype_policy", model.dtype_policy.name, None)]
    if not model.__dict__.get("_lm_compiled"):
        return facts + [("compiled", False, None)]
    # The arguments compile() received, the optimizer as the one it made (wrapped or not).
    config = dict(model._lm_compile_args, optimizer=model.optimizer)
    return facts + [(f"compile:{key}", _without_names(_plain(value)), None) for key, value in config.items()]


def _distribution_facts() -> list:
    d = current.distribution()
    mesh = d.device_mesh
    shape = ", ".join(f"'{name}': {size}" for name, size in zip(mesh.axis_names, mesh.shape))
    return [("distribution", f"{type(d).__name__} over a mesh {{{shape}}}, batch axis '{d.batch_dim_name}'", None)]


def _relative_path(path: str) -> str:
    """A variable path without the root model's name (``sequential_2/dense/kernel`` ->
    ``dense/kernel``): generated root names may differ between processes."""
    return path.split("/", 1)[1] if "/" in path else path


def _plain(value):
    """``value`` as JSON data (objects by their type name)."""
    return json.loads(json.dumps(value, sort_keys=True, default=_describe_object))


def _describe_object(value):
    """JSON for an object: its class and config (an optimizer, a loss, a schedule), a
    function's name, else its type's name."""
    get_config = getattr(value, "get_config", None)
    if callable(get_config) and not isinstance(value, type):
        try:
            return {"class_name": type(value).__name__, "config": get_config()}
        except (NotImplementedError, TypeError, ValueError, AttributeError):
            pass  # a user object whose config cannot be made: compared by its type below
    if callable(value) and hasattr(value, "__name__"):
        return f"<function {value.__name__}>"
    return f"<{type(value).__name__}>"


def _without_names(value):
    """A serialized config without its ``name`` entries (generated: ``adam_1``, ``mean_2``)."""
    if isinstance(value, dict):
        return {k: _without_names(v) for k, v in value.items() if k != "name"}
    if isinstance(value, list):
        return [_without_names(v) for v in value]
    return value


# -- the message -------------------------------------------------------------------------------
def _message(what: str, described: list, advice: str) -> str:
    reference = {key: (value, shown) for key, value, shown in described[0]}
    lines = []
    for process, facts in enumerate(described[1:], start=1):
        theirs = {key: (value, shown) for key, value, shown in facts}
        other_loop = reference.get("loop") != theirs.get("loop")
        for key in list(reference) + [k for k in theirs if k not in reference]:
            if other_loop and key.startswith("setting:"):
                continue  # another loop: its arguments are not comparable
            if reference.get(key, (None,))[0] != theirs.get(key, (None,))[0]:
                lines += _difference(process, key, reference.get(key), theirs.get(key))
    listed = "; ".join(lines[:_MAX_LISTED])
    more = f"; and {len(lines) - _MAX_LISTED} more differences" if len(lines) > _MAX_LISTED else ""
    return (f"{what} would run a different program in each process of this run (they would wait for "
            f"each other forever at a collective, or fail inside XLA): {listed}{more}. {advice}")


def _difference(process: int, key: str, ours, theirs) -> list:
    """The sentences naming how ``process``'s fact ``key`` differs from process 0's."""
    kind, _, name = key.partition(":")
    p = f"process {process}"
    if ours is None or theirs is None:
        present, value = ("process 0", ours[0]) if theirs is None else (p, theirs[0])
        return [f"only {present} has {key} = {value!r}"]
    (value0, shown0), (value1, shown1) = ours, theirs
    if kind in ("variables", "tensors"):
        return _entries_difference(p, kind, value0, shown0, value1, shown1)
    if kind == "loop":
        return [f"{p} runs {value1}() where process 0 runs {value0}()"]
    if kind == "setting":
        loop, _, arg = name.partition(":")
        if arg == "batch":  # the *_on_batch calls: the shapes of the batch's arrays
            return [f"{p} passes {loop}() a batch of {', '.join(value1)} where process 0 passes "
                    f"{', '.join(value0)}"]
        return [f"{p} calls {loop}({arg}={value1!r}) where process 0 calls {loop}({arg}={value0!r})"]
    if kind == "compile":
        return [f"{p} compiled the model with {name}={_config(value1, value0)} where process 0 used "
                f"{_config(value0, value1)}"]
    if kind == "built":
        built = {True: "is built", False: "is not built yet"}
        return [f"{p}'s model {built[value1]} where process 0's {built[value0]}"]
    if kind == "dtype_policy":
        return [f"{p}'s model has dtype policy '{value1}' where process 0's has '{value0}'"]
    if kind == "distribution":
        return [f"{p} runs under {value1} where process 0 runs under {value0}"]
    return [f"{p} has {key} = {value1!r} where process 0 has {value0!r}"]


_ENTRY_WORDS = {  # (count, only this process, only process 0, both with different values)
    "variables": ("{p}'s model has {n1} variables where process 0's has {n0}",
                  "{p}'s model has variable '{path}' ({e1}) which process 0's lacks",
                  "{p}'s model lacks variable '{path}' ({e0}) which process 0's has",
                  "{p}'s model has variable '{path}' of {e1} where process 0's has {e0}"),
    "tensors": ("{p} saves {n1} tensors where process 0 saves {n0}",
                "{p} saves tensor '{path}' ({e1}) which process 0 does not",
                "{p} does not save tensor '{path}' ({e0}) which process 0 saves",
                "{p} saves tensor '{path}' of {e1} where process 0 saves {e0}"),
}


def _entries_difference(p: str, kind: str, values0, paths0, values1, paths1) -> list:
    """Variables (of the model) or tensors (of a checkpoint): by position when both list the
    same paths, else by path (what one process has and the other lacks)."""
    count, only_here, only_there, both = _ENTRY_WORDS[kind]
    lines = [count.format(p=p, n0=len(values0), n1=len(values1))] if len(values0) != len(values1) else []
    if paths0 == paths1:
        pairs = list(zip(paths0, values0, values1))
    else:
        # Matched by path, with generated suffixes dropped (``hidden_1`` is ``hidden``) when
        # that keeps every path distinct; each process's own path is the one named.
        key0, key1 = _match_keys(paths0), _match_keys(paths1)
        by0, by1 = dict(zip(key0, zip(paths0, values0))), dict(zip(key1, zip(paths1, values1)))
        pairs = [(by1[k][0], by0[k][1], by1[k][1]) for k in key0 if k in by1]
        lines += [only_here.format(p=p, path=by1[k][0], e1=_entry(by1[k][1])) for k in key1 if k not in by0]
        lines += [only_there.format(p=p, path=by0[k][0], e0=_entry(by0[k][1])) for k in key0 if k not in by1]
    lines += [both.format(p=p, path=path, e1=_entry(v1, v0), e0=_entry(v0, v1, shape_word=False))
              for path, v0, v1 in pairs if v0 != v1]
    return lines


def _match_keys(paths: list) -> list:
    """``paths`` without generated ``_<n>`` suffixes, unless that makes two of them equal."""
    generic = ["/".join(re.sub(r"_\d+$", "", part) for part in path.split("/")) for path in paths]
    return generic if len(set(generic)) == len(generic) else list(paths)


def _entry(value, other=None, shape_word=True) -> str:
    """``shape (8, 16)``, with the dtype and layout only where they differ from ``other``."""
    shape, dtype, layout = value
    text = f"shape {tuple(shape)}" if shape_word else f"{tuple(shape)}"
    if other is None or dtype != other[1]:
        text += f" {dtype}"
    if layout is not None and (other is None or layout != other[2]):
        text += f" {layout}"
    return text


def _config(value, other) -> str:
    """A compile argument, shortened to what differs from ``other`` when both are configs of
    the same class (``Adam(learning_rate=0.01)``)."""
    if isinstance(value, dict) and "class_name" in value:
        name = value["class_name"]
        mine = value.get("config") if isinstance(value.get("config"), dict) else {}
        if isinstance(other, dict) and other.get("class_name") == name and isinstance(other.get("config"), dict):
            changed = {k: v for k, v in mine.items() if other["config"].get(k) != v}
            return f"{name}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"
        return name
    return repr(value)
