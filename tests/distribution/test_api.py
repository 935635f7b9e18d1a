"""lm.distribution's objects and their errors, on the devices this process has (one is enough)."""

import jax
import numpy as np
import pytest

import lamina as lm

D = lm.distribution
N = len(jax.devices())


@pytest.fixture
def mesh():
    return D.DeviceMesh((1, N), ("batch", "model"))


@pytest.fixture(autouse=True)
def no_global_distribution():
    yield
    D.set_distribution(None)


def test_mesh_shape_must_hold_the_devices():
    with pytest.raises(ValueError, match=rf"shape \(2, {N}\) holds {2 * N} devices, but {N} devices are visible"):
        D.DeviceMesh((2, N), ("batch", "model"))
    with pytest.raises(ValueError, match="2 axes but axis_names"):
        D.DeviceMesh((1, N), ("batch",))
    with pytest.raises(ValueError, match="distinct"):
        D.DeviceMesh((1, N), ("batch", "batch"))
    with pytest.raises(ValueError, match="no axis 'data'"):
        D.DeviceMesh((N,), ("batch",)).axis_size("data")


def test_mesh_takes_devices_and_device_names():
    mesh = D.DeviceMesh((1,), ("batch",), devices=[f"{jax.devices()[0].platform}:{jax.devices()[0].id}"])
    assert mesh.devices.ravel().tolist() == [jax.devices()[0]]
    assert mesh.jax_mesh.axis_names == ("batch",) and mesh.backend_mesh is mesh.jax_mesh
    with pytest.raises(ValueError, match="not a device"):
        D.DeviceMesh((1,), ("batch",), devices=["tpu"])


def test_tensor_layout_checks_axis_names_against_its_mesh(mesh):
    with pytest.raises(ValueError, match=r"names mesh axes \['data'\]"):
        D.TensorLayout(("data", None), mesh)
    with pytest.raises(ValueError, match="has no device_mesh"):
        _ = D.TensorLayout((None, "model")).sharding
    layout = D.TensorLayout((("batch", "model"), None), mesh)
    assert layout.sharding.spec == jax.sharding.PartitionSpec(("batch", "model"), None)


def test_layout_map_first_match_wins_and_order_is_insertion(mesh):
    layout_map = D.LayoutMap(mesh, {r".*attention/query/kernel": (None, "model", None)})
    layout_map[r".*kernel"] = ("batch", "model")
    assert layout_map["block/attention/query/kernel"].axes == (None, "model", None)
    assert layout_map["block/dense/kernel"].axes == ("batch", "model")
    # Keras's fullmatch: a key matching only part of the path does not match.
    assert layout_map["block/dense/kernel_extra"] is None
    assert layout_map.match("block/dense/bias") == (None, None)
    # Deleting and adding again moves a key to the end.
    del layout_map[r".*attention/query/kernel"]
    layout_map[r".*attention/query/kernel"] = (None, "model", None)
    assert layout_map["block/attention/query/kernel"].axes == ("batch", "model")
    assert list(layout_map) == [r".*kernel", r".*attention/query/kernel"]


def test_layout_map_refuses_bad_keys(mesh):
    layout_map = D.LayoutMap(mesh, {"dense/kernel": (None, "model")})
    with pytest.raises(ValueError, match="already has the key 'dense/kernel'"):
        layout_map["dense/kernel"] = ("batch", None)
    with pytest.raises(ValueError, match="not a valid regular expression"):
        layout_map["dense/(kernel"] = (None, "model")
    other = D.DeviceMesh((N, 1), ("data", "model"))
    with pytest.raises(ValueError, match="the map is on"):
        layout_map["x"] = D.TensorLayout((None,), other)
    with pytest.raises(ValueError, match=r"names mesh axes \['data'\]"):
        layout_map["y"] = ("data",)


def test_spec_that_does_not_fit_names_path_key_spec_and_shape(mesh):
    layout_map = D.LayoutMap(mesh, {r".*dense/kernel": ("batch", "model", None)})
    mp = D.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
    with mp.scope(), pytest.raises(ValueError) as info:
        lm.layers.Dense(4, name="dense").build((None, 3))
    message = str(info.value)
    for part in ["'dense/kernel'", "'.*dense/kernel'", "('batch', 'model', None)", "(3, 4)"]:
        assert part in message, part
    with pytest.raises(ValueError, match=r"Variable 'enc/dense/kernel' \(layout key '\.\*dense/kernel'\)"):
        mp.get_variable_layout(("enc/dense/kernel", (3, 4)))


def test_batch_axis_must_be_a_mesh_axis(mesh):
    with pytest.raises(ValueError, match=r"batch axis 'data' is not an axis of .*\('batch', 'model'\)"):
        D.ModelParallel(layout_map=D.LayoutMap(mesh), batch_dim_name="data")
    with pytest.raises(ValueError, match="batch axis 'data'"):
        D.FSDP(axis="data", device_mesh=mesh)
    assert D.ModelParallel(layout_map=D.LayoutMap(mesh)).batch_dim_name == "batch"  # first axis
    with pytest.raises(TypeError, match="layout_map=LayoutMap"):
        D.ModelParallel(layout_map={"a": (None,)})


def test_the_scope_wins_over_the_global_distribution_and_nests():
    dp, fsdp = D.DataParallel(), D.FSDP()
    assert D.distribution() is None
    D.set_distribution(dp)
    with fsdp.scope():
        assert D.distribution() is fsdp
        with dp.scope():
            assert D.distribution() is dp
        assert D.distribution() is fsdp
    assert D.distribution() is dp
    with pytest.raises(RuntimeError), fsdp.scope():
        raise RuntimeError("leaves the scope")
    assert D.distribution() is dp
    with pytest.raises(TypeError, match="DataParallel, ModelParallel or FSDP"):
        D.set_distribution("data_parallel")


def test_layouts_for_variables_and_batches(mesh):
    fsdp = D.FSDP(min_size=100)
    v = lm.Variable(np.zeros((10, 20), np.float32), name="w")
    assert fsdp.get_variable_layout(v).spec == jax.sharding.PartitionSpec(None, "batch")
    assert fsdp.get_variable_layout(("b", (20,))).spec == jax.sharding.PartitionSpec()  # < min_size
    assert fsdp.get_data_layout((32, 5, 5)).spec == jax.sharding.PartitionSpec("batch", None, None)
    assert fsdp.get_data_layout(()).spec == jax.sharding.PartitionSpec()
    with pytest.raises(TypeError, match=r"lm.Variable or a \(path, shape\) pair"):
        fsdp.get_variable_layout(42)
    with pytest.raises(ValueError, match="min_size"):
        D.FSDP(min_size=0)


def test_variables_outside_a_distribution_are_unchanged():
    w = lm.Variable("ones", shape=(2, 3))
    assert not isinstance(w.value.sharding, jax.sharding.NamedSharding)


def test_initialize_is_a_no_op_in_one_process(monkeypatch):
    assert D.initialize() is False
    monkeypatch.setenv("LAMINA_DISTRIBUTION_NUM_PROCESSES", "1")
    assert D.initialize() is False
    with pytest.raises(ValueError, match=r"lists 2 processes .* num_processes is 3"):
        D.initialize(job_addresses="10.0.0.1:1234,10.0.0.2:1234", num_processes=3)
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "10.0.0.1:1,10.0.0.2:1")
    monkeypatch.setenv("LAMINA_DISTRIBUTION_NUM_PROCESSES", "3")
    with pytest.raises(ValueError, match="lists 2 processes"):  # Keras's variables are read too
        D.initialize()


def test_explain_lists_paths_specs_bytes_and_flags_large_unmatched(mesh):
    mp = D.ModelParallel(layout_map=D.LayoutMap(mesh, {r".*small/kernel": (None, "model")}))
    with mp.scope():
        model = lm.Sequential([lm.Input((512,)), lm.layers.Dense(512, name="big"),
                               lm.layers.Dense(N * 4, name="small")], name="explained")
    report = D.explain(model, mp)
    rows = {r["path"]: r for r in report.rows}
    small, big = rows["explained/small/kernel"], rows["explained/big/kernel"]
    assert small["spec"] == "(None, 'model')" and small["note"] == ""
    assert small["bytes_per_device"] == 512 * 4 * 4
    assert big["spec"] == "()" and "no layout key matched" in big["note"]  # 2**18 elements
    assert report.flagged == ["explained/big/kernel"]
    text = str(report)
    assert "Variable path" in text and "explained/big/kernel" in text and "ModelParallel" in text


def test_explain_reports_layout_errors_and_needs_a_distribution(mesh):
    layer = lm.layers.Dense(3, name="d")
    layer.build((None, 2))
    mp = D.ModelParallel(layout_map=D.LayoutMap(mesh, {"d/kernel": ("model",)}))
    rows = {r["path"]: r["note"] for r in D.explain([layer.kernel, layer.bias], mp).rows}
    assert rows["d/kernel"].startswith("error: Variable 'd/kernel'") and rows["d/bias"] == ""
    with pytest.raises(ValueError, match="no distribution is active"):
        D.explain(layer)


def test_devices_are_named_and_counted_as_keras_does():
    names = D.list_devices()
    assert names == [f"{d.platform}:{d.id}" for d in jax.devices()]
    assert D.list_devices("cpu") == [f"cpu:{d.id}" for d in jax.devices("cpu")]
    assert D.get_device_count() == N and D.get_device_count("CPU") == len(jax.devices("cpu"))
    assert D.DeviceMesh((N,), ("batch",), devices=names).devices.ravel().tolist() == jax.devices()
    with pytest.raises(ValueError, match="device_type must be 'cpu', 'gpu' or 'tpu'"):
        D.list_devices("npu")


def test_distribute_tensor_moves_arrays_and_constrains_traced_ones(mesh):
    layout = D.TensorLayout(("batch", None), mesh)
    x = np.arange(N * 6.0, dtype="float32").reshape(N * 2, 3)
    placed = D.distribute_tensor(x, layout)
    assert placed.sharding.is_equivalent_to(layout.sharding, 2) and np.array_equal(placed, x)
    assert D.distribute_tensor(placed, layout) is placed  # already there: not moved again
    assert D.distribute_tensor(placed, layout.sharding) is placed  # a jax Sharding works too
    traced = jax.jit(lambda a: D.distribute_tensor(a * 2, layout)).lower(x).as_text()
    assert "sharding" in traced.lower()
    symbolic = lm.Input((3,))
    assert D.distribute_tensor(symbolic, layout) is symbolic  # building a functional model
    with pytest.raises(TypeError, match="TensorLayout or a jax.sharding.Sharding; got tuple"):
        D.distribute_tensor(x, ("batch", None))
    with pytest.raises(ValueError, match="has no device_mesh"):
        D.distribute_tensor(x, D.TensorLayout(("batch", None)))


def test_only_model_parallel_names_tensor_layouts(mesh):
    layout_map = D.LayoutMap(mesh, {r".*dense/output": ("batch", None)})
    mp = D.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
    assert mp.get_tensor_layout("sequential/dense/output").axes == ("batch", None)
    assert mp.get_tensor_layout("sequential/dense_1/output") is None
    assert D.DataParallel().get_tensor_layout("sequential/dense/output") is None
    with mp.scope():  # a layer whose output the map names still computes the same numbers
        dense = lm.layers.Dense(2, kernel_initializer="ones", name="dense")
        out = lm.Sequential([lm.Input((3,)), dense]).predict(np.ones((4, 3), "float32"), verbose=0)
    np.testing.assert_array_equal(out, np.full((4, 2), 3.0))
