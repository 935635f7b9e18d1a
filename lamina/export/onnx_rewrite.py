"""Equivalent forms, for jax2onnx, of the few primitives lamina's layers emit that it refuses.

- ``scan(reverse=True)`` (RNNs with ``go_backwards``, the backward half of
  ``Bidirectional``): jax2onnx has no reverse scan. A reverse scan equals a forward scan over
  the time-reversed sequences whose stacked outputs are reversed back.
- ``conv_general_dilated`` with three spatial axes (``Conv3D``, ``Conv3DTranspose``):
  jax2onnx converts only 1-D and 2-D convolutions. A 3-D convolution is the sum, over the
  kernel's depth, of 2-D convolutions of strided depth slices of the input (depth folded into
  the batch); a transposed one first spreads the input's depth planes with zeros.

``rewritten(fn)`` re-evaluates ``fn``'s jaxpr, equation by equation, replacing those (also
inside nested ``jit`` calls, which are inlined); everything else is bound unchanged.
"""

from __future__ import annotations

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
from jax import lax


def needs_rewrite(fn, args) -> bool:
    """Whether ``fn(*args)`` contains an equation ``rewritten`` replaces."""
    return _any_rewritable(jax.make_jaxpr(lambda *a: fn(*a))(*args).jaxpr)


def rewritten(fn):
    """``fn`` with the primitives above replaced by their equivalent forms (same values)."""

    def run(*args):
        # A new function object each time: JAX caches traces by function, and a trace made
        # outside the converter (without its patched jax.numpy functions) must not be reused.
        closed, shapes = jax.make_jaxpr(lambda *a: fn(*a), return_shape=True)(*args)
        outputs = _evaluate(closed.jaxpr, closed.consts, list(args))
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shapes), outputs)

    return run


def _rewritable(eqn) -> bool:
    name = eqn.primitive.name
    if name == "scan":
        return bool(eqn.params.get("reverse"))
    if name == "conv_general_dilated":
        params = eqn.params
        return len(params["dimension_numbers"].lhs_spec) == 5 and params["batch_group_count"] == 1
    return False


def _any_rewritable(jaxpr) -> bool:
    for eqn in jaxpr.eqns:
        if _rewritable(eqn):
            return True
        if eqn.primitive.name == "jit" and _any_rewritable(eqn.params["jaxpr"].jaxpr):
            return True
    return False


def _evaluate(jaxpr, consts, args) -> list:
    env = {}

    def read(var):
        return var.val if isinstance(var, jax.extend.core.Literal) else env[var]

    for var, value in [*zip(jaxpr.constvars, consts), *zip(jaxpr.invars, args)]:
        env[var] = value
    for eqn in jaxpr.eqns:
        values = [read(var) for var in eqn.invars]
        if eqn.primitive.name == "jit" and _any_rewritable(eqn.params["jaxpr"].jaxpr):
            inner = eqn.params["jaxpr"]
            outputs = _evaluate(inner.jaxpr, inner.consts, values)
        elif _rewritable(eqn) and eqn.primitive.name == "scan":
            outputs = _forward_scan(eqn, values)
        elif _rewritable(eqn):
            outputs = [_conv3d_as_2d(eqn, values)]
        else:
            outputs = eqn.primitive.bind(*values, **eqn.primitive.get_bind_params(eqn.params))
            outputs = outputs if eqn.primitive.multiple_results else [outputs]
        for var, value in zip(eqn.outvars, outputs):
            env[var] = value
    return [read(var) for var in jaxpr.outvars]


def _forward_scan(eqn, values) -> list:
    params = eqn.primitive.get_bind_params(eqn.params)
    carried = params["num_consts"] + params["num_carry"]
    sequences = [lax.rev(x, (0,)) for x in values[carried:]]
    outputs = eqn.primitive.bind(*values[:carried], *sequences, **{**params, "reverse": False})
    carry = list(outputs[:params["num_carry"]])
    return carry + [lax.rev(y, (0,)) for y in outputs[params["num_carry"]:]]


def _conv3d_as_2d(eqn, values):
    params = eqn.params
    lhs_spec, rhs_spec, out_spec = params["dimension_numbers"]
    # (batch, depth, height, width, channels) and (depth, height, width, in, out).
    x = lax.transpose(values[0], (lhs_spec[0], *lhs_spec[2:], lhs_spec[1]))
    kernel = lax.transpose(values[1], (*rhs_spec[2:], rhs_spec[1], rhs_spec[0]))
    (low, high), stride, dilation = params["padding"][0], params["window_strides"][0], params["rhs_dilation"][0]
    spread = params["lhs_dilation"][0]
    if spread > 1:  # a transposed convolution: zeros between the input's depth planes
        planes = jnp.stack([x, *[jnp.zeros_like(x)] * (spread - 1)], axis=2)
        x = planes.reshape((-1, x.shape[1] * spread, *x.shape[2:]))[:, :(x.shape[1] - 1) * spread + 1]
    # jnp.pad, not lax.pad: jax2onnx converts the former with a symbolic batch axis only.
    x = x[:, max(-low, 0):x.shape[1] - max(-high, 0)]
    x = jnp.pad(x, [(0, 0), (max(low, 0), max(high, 0)), (0, 0), (0, 0), (0, 0)])
    depth = (x.shape[1] - (kernel.shape[0] - 1) * dilation - 1) // stride + 1
    total = None
    for k in range(kernel.shape[0]):
        start = k * dilation
        planes = lax.slice_in_dim(x, start, start + (depth - 1) * stride + 1, stride=stride, axis=1)
        planes = planes.reshape((-1, *planes.shape[2:]))  # depth folded into the batch
        y = lax.conv_general_dilated(
            planes, kernel[k], params["window_strides"][1:], params["padding"][1:],
            lhs_dilation=params["lhs_dilation"][1:], rhs_dilation=params["rhs_dilation"][1:],
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=params["feature_group_count"], precision=params["precision"],
            preferred_element_type=params["preferred_element_type"])
        y = y.reshape((x.shape[0], depth, *y.shape[1:]))
        total = y if total is None else total + y
    order = (out_spec[0], *out_spec[2:], out_spec[1])  # where each axis of ``total`` goes
    return lax.transpose(total, tuple(int(i) for i in np.argsort(order)))
