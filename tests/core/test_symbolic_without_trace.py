"""Layers that state their output (``_lm_output_spec``) are connected without tracing ``call``:
what they record must be what the traced call records (lamina/core/symbolic.py,
lamina/layers/output_specs.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm
from lamina.core import symbolic
from lamina.layers.output_specs import keeps_shape_and_dtype


def _describe(model):
    """Every layer's output as recorded: shape, dtype, name, node index, mask, inputs."""
    rows = []
    for layer in model.layers:
        node = layer._lm_inbound_nodes[-1]
        out = node.outputs
        mask = out._keras_mask
        rows.append((layer.name, out.shape, out.dtype, out.name, out.index,
                     None if mask is None else (mask.shape, mask.dtype),
                     len(layer._lm_inbound_nodes), [t.name for t in node.input_tensors]))
    return rows


# Each case: the input, then factories of the layers (called anew for each model, same names).
_CASES = {
    "float": ((5,), "float32", [
        lambda: lm.layers.Dense(4, activation="relu", name="d1"),
        lambda: lm.layers.Activation("softmax", name="a1"),
        lambda: lm.layers.Dropout(0.3, name="drop"),
        lambda: lm.layers.Identity(name="same"),
        lambda: lm.layers.Dense(4, activation="glu", name="gated"),  # halves the axis: traced
        lambda: lm.layers.Dense(3, activation=lambda x: x[..., :1], name="custom"),  # traced
        lambda: lm.layers.Activation("linear", name="a2"),
        lambda: lm.layers.Dense(2, use_bias=False, name="d2"),
    ]),
    "unknown inner axis": ((None, 4), "float32", [
        lambda: lm.layers.Dense(2, name="d1"), lambda: lm.layers.Activation("tanh", name="a1"),
    ]),
    "precision": ((3,), "float16", [
        lambda: lm.layers.Dense(4, dtype="mixed_bfloat16", name="d1"),
        lambda: lm.layers.Activation("relu", dtype="mixed_float16", name="a1"),
        lambda: lm.layers.Dense(3, dtype="float16", name="d2"),
        lambda: lm.layers.Dense(2, autocast=False, name="d3"),
        lambda: lm.layers.Dense(2, dtype="bfloat16", autocast=False, name="d4"),
        lambda: lm.layers.Identity(dtype="mixed_bfloat16", name="same"),
    ]),
    "integers": ((3,), "int32", [
        lambda: lm.layers.Identity(name="same"),  # no rule for integers: traced
        lambda: lm.layers.Dense(2, name="d1"),
        lambda: lm.layers.Dense(2, name="d2"),
    ]),
    "masks": ((None,), "int32", [
        lambda: lm.layers.Embedding(10, 4, mask_zero=True, name="embed"),
        lambda: lm.layers.Dense(3, name="d1"),  # passes the mask on (supports_masking)
        lambda: lm.layers.Activation("linear", name="a1"),  # returns its input, mask and all
        lambda: lm.layers.Dropout(0.5, name="drop"),
        lambda: lm.layers.Activation("relu", name="a2"),  # a new array without a mask
        lambda: lm.layers.Dense(2, name="d2"),
    ]),
    "cast masked input": ((None, 3), "float16", [
        lambda: lm.layers.Masking(0.0, name="masking"),
        lambda: lm.layers.Activation("linear", name="a1"),  # the cast input: no mask
        lambda: lm.layers.Identity(name="same"),
    ]),
}


# The layers of each case that are traced (the others state their output).
_TRACED = {"float": {"gated", "custom"}, "unknown inner axis": set(), "precision": set(),
           "integers": {"same", "d1"}, "masks": {"embed"}, "cast masked input": {"masking"}}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_only_the_layers_without_a_rule_for_their_input_are_traced(case, monkeypatch):
    shape, dtype, factories = _CASES[case]
    traced, chain = [], symbolic._traced_chain

    def recording(layers, x):
        traced.extend(layer.name for layer in layers)
        return chain(layers, x)

    monkeypatch.setattr(symbolic, "_traced_chain", recording)
    lm.Sequential([lm.Input(shape, dtype=dtype)] + [make() for make in factories])
    assert set(traced) == _TRACED[case]


@pytest.fixture
def traced_only(monkeypatch):
    """Every layer traced, as before the rules existed."""
    def no_rules():
        monkeypatch.setattr(symbolic, "_output_rule", lambda cls: None)
    return no_rules


@pytest.mark.parametrize("case", sorted(_CASES))
def test_a_stack_records_what_the_traced_calls_record(case, traced_only):
    shape, dtype, factories = _CASES[case]

    def models():
        lm.random.set_seed(0)
        at_once = lm.Sequential([lm.Input(shape, dtype=dtype, name="x")] + [make() for make in factories])
        by_layer = lm.Sequential([lm.Input(shape, dtype=dtype, name="x")])
        for make in factories:
            by_layer.add(make())
        x = lm.Input(shape, dtype=dtype, name="x")
        y = x
        for make in factories:
            y = make()(y)
        return at_once, by_layer, lm.Model(x, y)

    stated = [_describe(model) for model in models()[:2]]
    functional = models()[2]
    traced_only()
    traced = [_describe(model) for model in models()[:2]]
    assert stated == traced
    assert stated[0] == stated[1]
    assert functional.output_shape == traced[0][-1][1]


def test_a_mask_survives_and_is_dropped_where_the_traced_call_says():
    _, _, factories = _CASES["masks"]
    model = lm.Sequential([lm.Input((None,), dtype="int32")] + [make() for make in factories])
    masks = {layer.name: layer.output._keras_mask for layer in model.layers}
    assert masks["d1"].shape == (None, None) and masks["a1"] is not None and masks["drop"] is not None
    assert masks["a2"] is None and masks["d2"] is None


def test_a_wrong_input_raises_the_traced_calls_error(traced_only):
    def connect():
        layer = lm.layers.Dense(2, name="fixed")
        layer.build((None, 3))
        with pytest.raises(ValueError) as raised:
            lm.Sequential([lm.Input((4,)), lm.layers.Activation("relu", name="act"), layer], name="stack")
        return str(raised.value)

    stated = connect()
    assert "Input to layer 'stack/fixed' (Dense) is incompatible" in stated
    traced_only()
    assert stated == connect()


def test_a_subclass_that_changes_call_is_traced():
    class FirstUnit(lm.layers.Dense):
        def call(self, inputs):
            return super().call(inputs)[..., :1]

    class Plain(lm.layers.Dense):  # changes nothing: the rule still holds
        pass

    model = lm.Sequential([lm.Input((3,)), FirstUnit(4), Plain(5), FirstUnit(2, name="last")])
    assert [layer.output.shape for layer in model.layers] == [(None, 1), (None, 5), (None, 1)]
    assert symbolic._output_rule(FirstUnit) is None and symbolic._output_rule(Plain) is not None


def test_a_users_layer_without_compute_output_shape_is_traced():
    class Pairs(lm.layers.Layer):
        def call(self, x):
            return jnp.concatenate([x, x], axis=-1).astype("int32")

    model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2), Pairs(), lm.layers.Dense(1)])
    assert [(layer.output.shape, str(layer.output.dtype)) for layer in model.layers] == [
        ((None, 2), "float32"), ((None, 4), "int32"), ((None, 1), "float32")]


def test_layers_connected_without_trace_compute_what_they_say():
    model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(4, activation="relu"), lm.layers.Dropout(0.5),
                           lm.layers.Activation("softmax"), lm.layers.Dense(2, dtype="mixed_bfloat16")])
    out = model(np.ones((2, 3), "float32"))
    assert out.shape == (2,) + model.output_shape[1:] and out.dtype == model.output.dtype


@pytest.mark.parametrize("name", ["relu", "gelu", "softmax", "log_softmax", "sparsemax", "hard_silu",
                                  "linear", "exponential", "celu", "squareplus", "sparse_plus"])
def test_the_activations_said_to_keep_shape_and_dtype_keep_them(name):
    activation = lm.activations.get(name)
    assert keeps_shape_and_dtype(activation)
    for dtype in ("float32", "bfloat16", "float16"):
        spec = jax.ShapeDtypeStruct((2, 3, 4), jnp.dtype(dtype))
        out = jax.eval_shape(activation, spec)
        assert (out.shape, out.dtype) == (spec.shape, spec.dtype), (name, dtype)


def test_every_activation_said_to_keep_shape_and_dtype_keeps_them():
    kept = [fn for fn in lm.activations._FUNCTIONS if keeps_shape_and_dtype(fn)]
    assert lm.activations.glu not in kept and lm.activations.threshold not in kept and len(kept) >= 25
    spec = jax.ShapeDtypeStruct((2, 6), jnp.bfloat16)
    for fn in kept:
        out = jax.eval_shape(fn, spec)
        assert (out.shape, out.dtype) == (spec.shape, spec.dtype), fn.__name__


def test_a_call_set_on_the_instance_is_traced():
    layer = lm.layers.Dense(4, name="patched")
    layer.call = lambda inputs: jnp.zeros(inputs.shape[:-1] + (1,), "int32")
    model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2), layer])
    assert (layer.output.shape, str(layer.output.dtype)) == ((None, 1), "int32")
    assert model.output_shape == (None, 1)


@pytest.mark.parametrize("enabled", [True, False])
def test_connecting_a_stack_pauses_the_garbage_collector_and_restores_it(monkeypatch, enabled):
    import gc

    from lamina.models import sequential

    seen, chain = [], sequential.symbolic_chain

    def recording(layers, x):
        seen.append(gc.isenabled())
        return chain(layers, x)

    monkeypatch.setattr(sequential, "symbolic_chain", recording)
    was_enabled = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2), lm.layers.Dense(1)])
        assert seen == [False] and gc.isenabled() is enabled and model.output_shape == (None, 1)
    finally:
        (gc.enable if was_enabled else gc.disable)()
