"""``format="onnx"``: jax2onnx with a symbolic batch axis, checked in onnxruntime.

jax2onnx converts the jaxpr primitive by primitive; a primitive it has no rule for (or a
rule that refuses the primitive's parameters) fails the export with the layer that emitted
it named. A file jax2onnx writes but onnxruntime cannot run (an operator or attribute the
runtime lacks) is caught too: when onnxruntime is installed, the new file is run on a small
batch and compared with the model before it replaces anything at ``path``.
"""

from __future__ import annotations

import contextlib
import pathlib
import re
import traceback

import numpy as np

from lamina.export import attribution
from lamina.export._extras import require
from lamina.export.onnx_rewrite import needs_rewrite, rewritten
from lamina.export.stablehlo import symbolic_specs
from lamina.layers.pooling.pool_ops import portable_pooling
from lamina.saving.atomic import atomic_write

_FEATURE = 'model.export(format="onnx")'
_CHECK_BATCH = 2
_CHECK_TOLERANCE = 1e-4  # catches a wrong graph, not float rounding (the tests hold 1e-5)


def export_onnx(model, inference, path, opset_version=None) -> None:
    """Convert ``inference`` (see ``lamina.export.signature``) and write ``path`` atomically."""
    onnx = require("onnx", "onnx", _FEATURE)
    jax2onnx = require("jax2onnx", "onnx", _FEATURE)
    specs = symbolic_specs(inference.specs)
    output_names = _output_names(model)
    kwargs = {"opset": opset_version} if opset_version is not None else {}
    try:
        with portable_pooling(), _jax_plugins_only():
            fn = rewritten(inference.fn) if needs_rewrite(inference.fn, specs) else inference.fn
            names = {"input_names": [s.name for s in inference.specs], "output_names": output_names}
            try:
                proto = jax2onnx.to_onnx(fn, inputs=specs, model_name=model.name, **names, **kwargs)
            except ValueError as error:
                if "Conflicting custom names" not in str(error):
                    raise
                # An output that is an input (a model of layers that are identities at
                # inference, such as RandomFlip) keeps the input's name.
                proto = jax2onnx.to_onnx(fn, inputs=specs, model_name=model.name,
                                         input_names=names["input_names"], **kwargs)
    except Exception as error:
        raise _conversion_error(model, inference, specs, error) from error
    _check_in_onnxruntime(model, inference, proto)
    with atomic_write(path) as tmp:
        onnx.save_model(proto, tmp)


@contextlib.contextmanager
def _jax_plugins_only():
    """Load only jax2onnx's rules for JAX primitives (all a lamina model emits). On first use jax2onnx
    imports every plugin, its Flax, Equinox and example models' included, which build and
    compile models while importing (8 s of CPU here, 30 s without JAX's compilation cache).
    The registry is marked complete only during this conversion, so a later jax2onnx call
    of the program's own still loads the rest. Relies on jax2onnx 0.17's plugin_system
    internals; without them (another version) jax2onnx loads everything, as usual."""
    try:
        from jax2onnx.plugins import plugin_system as plugins
    except ImportError:
        yield
        return
    root = pathlib.Path(plugins.__file__).parent / "jax"
    if plugins.__dict__.get("_already_imported_plugins", True) or not hasattr(plugins, "_import_tree") \
            or not root.is_dir():
        yield
        return
    plugins._import_tree(root, "jax2onnx.plugins.jax")
    plugins._already_imported_plugins = True
    try:
        yield
    finally:
        plugins._already_imported_plugins = False


def _output_names(model):
    try:
        names = model.output_names
    except (AttributeError, ValueError):
        return None
    return names if names and len(set(names)) == len(names) else None


def _conversion_error(model, inference, specs, error) -> Exception:
    """A ``NotImplementedError`` naming the layer(s) and the primitive jax2onnx refused."""
    primitive, params = _failed_equation(error)
    if primitive is None:
        # jax2onnx replaces some jax.numpy / jax.image functions while it traces; one of those
        # refused its arguments inside a layer's call.
        return NotImplementedError(
            f"Cannot export model '{model.name}' to ONNX: jax2onnx failed while tracing "
            f"{attribution.describe(_innermost_layer(error)) if _innermost_layer(error) else 'the model'} "
            f"({type(error).__name__}: {str(error).splitlines()[0]}). Export it with format='stablehlo' or "
            "'tf_saved_model', or pass an input_signature with a fixed batch size if the layer needs one.")
    culprits = _layers_using(model, inference, specs, {primitive}, params)
    return NotImplementedError(
        f"Cannot export model '{model.name}' to ONNX: jax2onnx cannot convert the JAX primitive "
        f"'{primitive}' used by {culprits} ({type(error).__name__}: {error}). Export it with "
        "format='stablehlo' or 'tf_saved_model', or write that layer's call with other operations."
    )


def _failed_equation(error):
    """The primitive jax2onnx refused and the simple parameters of the refused equation (to
    tell which layer emitted it when several layers use the primitive), or ``(None, {})``."""
    # A rule that refused its equation: the innermost frame that holds the equation.
    for frame, _ in reversed(list(traceback.walk_tb(error.__traceback__))):
        eqn = frame.f_locals.get("eqn")
        if getattr(eqn, "primitive", None) is not None:
            return eqn.primitive.name, attribution.simple_params(eqn)
    match = re.search(r"primitive '([\w.-]+)'", str(error))
    return (match.group(1), {}) if match else (None, {})


def _innermost_layer(error):
    """The layer whose ``call`` was running where ``error`` was raised, or None."""
    from lamina.layers.layer import Layer

    for frame, _ in reversed(list(traceback.walk_tb(error.__traceback__))):
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, Layer):
            return candidate
    return None


def _layers_using(model, inference, specs, primitives, params=None) -> str:
    try:
        with portable_pooling():
            owners = attribution.primitive_owners(inference.fn, specs, model, params)
    except Exception:  # the diagnosis must not hide the original error
        return "an unidentified layer"
    users = [attribution.describe(layer) for layer, name in owners if name in primitives]
    return ", ".join(dict.fromkeys(users)) or "an unidentified layer"


def _check_in_onnxruntime(model, inference, proto) -> None:
    try:
        import onnxruntime
    except ImportError:
        return  # nothing to check with; the conversion itself succeeded
    batch = [_sample(spec) for spec in inference.specs]
    try:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 4  # the refusal is raised below; no log lines on stderr
        session = onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        got = session.run(None, {arg.name: x for arg, x in zip(session.get_inputs(), batch)})
    except Exception as error:
        raise _runtime_error(model, inference, proto, error) from error
    import jax

    # Compiled: run eagerly, each operation of the model would compile on its own.
    expected = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(jax.jit(inference.fn)(*batch))]
    for k, (a, b) in enumerate(zip(got, expected)):
        if a.shape != b.shape or not np.allclose(a, b, rtol=_CHECK_TOLERANCE, atol=_CHECK_TOLERANCE, equal_nan=True):
            raise RuntimeError(
                f"Cannot export model '{model.name}' to ONNX: the converted file's output {k} differs from "
                f"the model's on a test batch (shapes {a.shape} and {b.shape}, largest difference "
                f"{_largest_difference(a, b)}); jax2onnx converted some operation wrongly, so no file was written."
            )


def _sample(spec) -> np.ndarray:
    shape = tuple(_CHECK_BATCH if d is None else d for d in spec.shape)
    if np.issubdtype(spec.dtype, np.floating):
        return np.random.default_rng(0).normal(size=shape).astype(spec.dtype)
    return np.zeros(shape, spec.dtype)  # index 0 is valid for any Embedding or lookup


def _largest_difference(a, b):
    if a.shape != b.shape:
        return "n/a"
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def _runtime_error(model, inference, proto, error) -> Exception:
    """onnxruntime refused the file: name the ONNX node, and the layers whose primitives
    jax2onnx turns into that operator."""
    message = str(error)
    # onnxruntime names the node in one of these forms; a fused node is "<node>/<fusion>".
    node = (re.search(r"node\. Name:'([^'/]+)", message) or re.search(r"node with name '([^'/]+)", message)
            or re.search(r"Node \(([^)/]+)\)", message))
    op_type = None
    if node:
        op_type = next((n.op_type for n in proto.graph.node if n.name == node.group(1)), None)
    culprits = "an unidentified layer"
    if op_type is not None:
        primitives = _primitives_lowered_to(op_type)
        if primitives:
            culprits = _layers_using(model, inference, symbolic_specs(inference.specs), primitives)
    what = f"ONNX operator {op_type} (made from {culprits})" if op_type else "the converted graph"
    return NotImplementedError(
        f"Cannot export model '{model.name}' to ONNX: onnxruntime cannot run {what}: {message.strip().rstrip('.')}. "
        "No file was written; export with format='stablehlo' or 'tf_saved_model' instead."
    )


def _primitives_lowered_to(op_type: str) -> set:
    from jax2onnx.plugins.plugin_system import PLUGIN_REGISTRY

    found = set()
    for name, plugin in PLUGIN_REGISTRY.items():
        components = (getattr(plugin, "metadata", None) or {}).get("onnx") or []
        # A component may name alternatives: "MatMul/Gemm".
        if any(isinstance(c, dict) and op_type in str(c.get("component", "")).split("/") for c in components):
            found.add(name)
    return found
