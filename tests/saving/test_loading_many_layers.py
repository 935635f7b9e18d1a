"""Loading a model of many small layers (issue 10, item 13): no trace, no initializer, no
reference cycle, tensors transferred together; the layer count a file may declare is bounded."""

from __future__ import annotations

import gc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm
from lamina.saving import rebuilding, safetensors_reader, weights
from lamina.saving.errors import FileFormatError
from lamina.saving.host_transfer import to_default_device

COUNT = 20


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A Sequential of COUNT Dense layers, a Dropout and an Activation, and its file."""
    lm.random.set_seed(3)
    model = lm.Sequential([lm.Input((3,))] + [lm.layers.Dense(3, activation="tanh") for _ in range(COUNT)]
                          + [lm.layers.Dropout(0.5), lm.layers.Activation("softmax")])
    path = tmp_path_factory.mktemp("many") / "m.lamina"
    model.save(path)
    return model, path


def _same_weights(a, b) -> None:
    assert [w.shape for w in a.variables] == [w.shape for w in b.variables]
    for x, y in zip(a.variables, b.variables):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_loading_a_dense_stack_traces_nothing_and_runs_no_initializer(saved, monkeypatch):
    model, path = saved
    calls = {"eval_shape": 0, "initializer": 0}
    eval_shape = jax.eval_shape

    def counted_eval_shape(*args, **kwargs):
        calls["eval_shape"] += 1
        return eval_shape(*args, **kwargs)

    def counted_initializer(original):
        def run(self, *args, **kwargs):
            calls["initializer"] += 1
            return original(self, *args, **kwargs)
        return run

    monkeypatch.setattr(jax, "eval_shape", counted_eval_shape)
    for cls in (lm.initializers.GlorotUniform, lm.initializers.Zeros):
        monkeypatch.setattr(cls, "__call__", counted_initializer(cls.__call__))
    loaded = lm.load_model(path)
    assert calls == {"eval_shape": 0, "initializer": 0}  # eval_shape: once for the stack before
    _same_weights(model, loaded)
    x = np.linspace(-1, 1, 6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-6)
    assert [layer.output.shape for layer in loaded.layers] == [layer.output.shape for layer in model.layers]
    lm.Sequential([lm.Input((3,)), lm.layers.Dense(2)])  # outside a load, initializers run
    assert calls["initializer"] == 2


def test_loading_leaves_no_reference_cycle_behind(saved):
    # The collector would find every object of such cycles again and again while a large
    # model loads (it was a third of the time of 15,000 layers): 1,500 objects here before.
    _, path = saved
    kept = [lm.load_model(path)]  # every module and cache touched once
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        kept.append(lm.load_model(path))
        assert gc.collect() < COUNT
    finally:
        if was_enabled:
            gc.enable()


@pytest.mark.parametrize("enabled", [True, False])
def test_load_model_pauses_the_garbage_collector_and_restores_it(saved, monkeypatch, enabled):
    _, path = saved
    seen, check_and_assign = [], weights.check_and_assign

    def recording(*args, **kwargs):
        seen.append(gc.isenabled())
        return check_and_assign(*args, **kwargs)

    monkeypatch.setattr(weights, "check_and_assign", recording)
    was_enabled = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        lm.load_model(path)
        assert gc.isenabled() is enabled and seen == [False]
        monkeypatch.setattr(weights, "check_and_assign", lambda *a, **k: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            lm.load_model(path)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was_enabled else gc.disable)()


@pytest.mark.parametrize("batch", [None, 7])
def test_small_tensors_go_to_the_device_together(saved, monkeypatch, batch):
    model, path = saved
    sizes, transfer = [], safetensors_reader.to_default_device

    def counted(arrays):
        sizes.append(len(arrays))
        return transfer(arrays)

    monkeypatch.setattr(safetensors_reader, "to_default_device", counted)
    if batch is not None:
        monkeypatch.setattr(weights, "_BATCH_TENSORS", batch)
    loaded = lm.load_model(path)
    tensors = 2 * COUNT + 1  # kernels, biases and the Dropout's seed
    assert sizes == ([tensors] if batch is None else [batch] * (tensors // batch) + [tensors % batch])
    _same_weights(model, loaded)
    target = lm.Sequential([lm.Input((3,))] + [lm.layers.Dense(3, activation="tanh") for _ in range(COUNT)]
                           + [lm.layers.Dropout(0.5), lm.layers.Activation("softmax")])
    target.load_weights(path)
    _same_weights(model, target)


@pytest.mark.parametrize("array", [
    np.arange(12, dtype="float32").reshape(3, 4), np.ones((2, 2), jnp.bfloat16), np.arange(5, dtype="int8"),
    np.array([True, False]), np.float32(2.5) * np.ones(()), np.zeros((0, 3), "float32"),
    np.arange(6, dtype="float64").reshape(2, 3), np.arange(6, dtype="int64"), np.arange(12.0, dtype="float32").reshape(3, 4).T,
], ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_to_default_device_gives_what_device_put_gives(array):
    (got,), expected = to_default_device([array]), jax.device_put(array)
    assert type(got) is type(expected)
    assert (got.shape, got.dtype, got.weak_type, got.committed) == (expected.shape, expected.dtype,
                                                                    expected.weak_type, expected.committed)
    assert got.sharding == expected.sharding
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_the_layer_count_of_nested_configs_is_bounded():
    limit = rebuilding.MAX_LAYERS
    inner = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense"}] * (limit // 2)}}
    config = {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"class_name": "Wrapper", "config": {"inner": [inner, {"deeper": inner}]}}]}}
    with pytest.raises(FileFormatError, match=f"declares more than {limit} layers"):
        rebuilding.check_layer_count(config, "file 'f'")
    config["config"]["layers"][0]["config"]["inner"].pop()
    rebuilding.check_layer_count(config, "file 'f'")  # limit / 2 + 1 layers


def test_the_weights_walk_hands_the_assets_the_layers_in_their_order():
    # load_model gives load_assets the layers the weights' walk met, instead of a second walk.
    from lamina.saving import assets
    from lamina.saving.variable_keys import keyed_variables

    shared = lm.layers.Dense(2, name="shared")
    inner = lm.Sequential([lm.Input((2,)), lm.layers.Dense(2, name="inner_dense"), lm.layers.Dropout(0.1)], name="inner")
    x = lm.Input((2,))
    y = shared(inner(shared(x)))
    model = lm.Model(x, lm.layers.Activation("relu", name="act")(y))
    visited = []
    keyed_variables(model, None, visited)
    assert [layer.name for layer in visited] == [layer.name for layer in model._flatten_layers()]
    assert assets.layers_with(model, None, visited) == assets.layers_with(model, None)
