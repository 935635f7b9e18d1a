"""``model.save_weights`` / ``model.load_weights`` (safetensors keyed by model-relative path),
and ``get_weights`` / ``set_weights``: round trips, key names, and checked loading that
reports every mismatch at once and changes nothing when it refuses."""

import numpy as np
import pytest
import safetensors.numpy

import lamina as lm
from lamina.saving import WeightMismatchError

RNG = np.random.default_rng(1)
X = RNG.normal(size=(16, 4)).astype("float32")
Y = RNG.normal(size=(16, 1)).astype("float32")


def _make(hidden=3, **dense_names):
    return lm.Sequential([lm.Input((4,)), lm.layers.Dense(hidden, name=dense_names.get("first")),
                          lm.layers.Dense(1, name=dense_names.get("second"))])


def _compile(model):
    model.compile(optimizer=lm.optimizers.Adam(0.01), loss="mse", jit_compile=False)
    return model


def _fit_once(model):
    return model.fit(X, Y, epochs=1, batch_size=8, shuffle=False, verbose=0).history["loss"]


def _snapshot(model):
    return [v.numpy().tobytes() for v in model.variables]


def _assert_same_values(first, second):
    assert [a.tobytes() for a in first] == [b.tobytes() for b in second]


def _perturbed_file(tmp_path, model, change):
    """A copy of ``model``'s weights file with ``change(arrays)`` applied."""
    model.save_weights(tmp_path / "good.safetensors")
    arrays = dict(safetensors.numpy.load_file(tmp_path / "good.safetensors"))
    change(arrays)
    path = tmp_path / "bad.safetensors"
    safetensors.numpy.save_file(arrays, path)
    return path


def test_round_trip_with_optimizer_state_continues_training_identically(tmp_path):
    model = _compile(_make())
    _fit_once(model)
    model.save_weights(tmp_path / "w.safetensors")
    copy = _compile(_make())  # another instance: other auto-generated names, fresh optimizer
    copy.load_weights(tmp_path / "w.safetensors")

    _assert_same_values(model.get_weights(), copy.get_weights())
    _assert_same_values([v.numpy() for v in model.optimizer.variables],
                        [v.numpy() for v in copy.optimizer.variables])
    assert _fit_once(model) == _fit_once(copy)
    _assert_same_values(model.get_weights(), copy.get_weights())


def test_keys_are_paths_below_the_model_with_the_optimizer_state_under_optimizer(tmp_path):
    model = _compile(_make(first="hidden", second="head"))
    _fit_once(model)
    model.save_weights(tmp_path / "w.safetensors")
    keys = set(safetensors.numpy.load_file(tmp_path / "w.safetensors"))
    layer_keys = {k for k in keys if not k.startswith("optimizer/")}
    assert layer_keys == {"hidden/kernel", "hidden/bias", "head/kernel", "head/bias"}
    assert {"optimizer/iterations", "optimizer/mu/hidden/kernel", "optimizer/nu/head/bias"} <= keys
    assert not any(model.name in k for k in keys)


def test_a_second_copy_with_other_auto_generated_names_loads_the_weights(tmp_path):
    first, second = _make(), _make()
    assert [layer.name for layer in first.layers] != [layer.name for layer in second.layers]
    first.save_weights(tmp_path / "w.safetensors")
    second.load_weights(tmp_path / "w.safetensors")
    _assert_same_values(first.get_weights(), second.get_weights())


def test_a_second_copy_that_differs_is_told_the_real_difference(tmp_path):
    _make(hidden=3).save_weights(tmp_path / "w.safetensors")
    other = _make(hidden=5)
    with pytest.raises(WeightMismatchError) as caught:
        other.load_weights(tmp_path / "w.safetensors")
    # Matched layer by layer: three shape mismatches, not every key missing and unexpected.
    assert len(caught.value.problems) == 3
    assert all("shape" in problem and "missing" not in problem for problem in caught.value.problems)


def test_subclassed_model_weights_load_into_another_instance(tmp_path):
    class Block(lm.Model):
        def __init__(self):
            super().__init__()
            self.layers_list = [lm.layers.Dense(2), lm.layers.Dense(1)]

        def call(self, x):
            return self.layers_list[1](self.layers_list[0](x))

    first, second = Block(), Block()
    first(X), second(X)
    first.save_weights(tmp_path / "w.safetensors")
    second.load_weights(tmp_path / "w.safetensors")
    _assert_same_values(first.get_weights(), second.get_weights())


def test_a_lamina_model_file_can_be_given_to_load_weights(tmp_path):
    model = _make()
    model.save(tmp_path / "m.lamina")
    other = _make()
    other.load_weights(tmp_path / "m.lamina")
    _assert_same_values(model.get_weights(), other.get_weights())


def test_an_uncompiled_model_ignores_the_optimizer_state_in_the_file(tmp_path):
    model = _compile(_make())
    _fit_once(model)
    model.save_weights(tmp_path / "w.safetensors")
    plain = _make()
    plain.load_weights(tmp_path / "w.safetensors")
    _assert_same_values(model.get_weights(), plain.get_weights())


def test_loading_into_an_unbuilt_model_says_to_build_it_first(tmp_path):
    _make().save_weights(tmp_path / "w.safetensors")
    unbuilt = lm.Sequential([lm.layers.Dense(3), lm.layers.Dense(1)])
    with pytest.raises(ValueError, match="build it first"):
        unbuilt.load_weights(tmp_path / "w.safetensors")


def test_every_mismatch_is_reported_in_one_error_and_nothing_changes(tmp_path):
    model = _make(first="hidden", second="head")

    def damage(arrays):
        arrays["hidden/kernel"] = np.zeros((5, 3), "float32")  # wrong shape
        del arrays["head/bias"]  # missing
        arrays["surplus"] = np.zeros(2, "float32")  # unexpected
        arrays["head/kernel"] = arrays["head/kernel"].astype("float16")  # wrong dtype

    path = _perturbed_file(tmp_path, model, damage)
    model.set_weights([w + 1 for w in model.get_weights()])  # differs from the file
    before = _snapshot(model)
    with pytest.raises(WeightMismatchError) as caught:
        model.load_weights(path)
    message = str(caught.value)
    assert "4 mismatch(es)" in message and "no weight was changed" in message
    for fragment in ("'hidden/kernel': the model has shape (4, 3), the file (5, 3)",
                     "missing in file: 'head/bias'", "unexpected in file: 'surplus'",
                     "'head/kernel': the model has dtype float32, the file float16"):
        assert fragment in message
    assert len(caught.value.problems) == 4
    assert _snapshot(model) == before


def test_a_float16_tensor_for_a_float32_variable_is_a_mismatch(tmp_path):
    model = _make(first="hidden", second="head")
    path = _perturbed_file(tmp_path, model, lambda a: a.update(
        {"hidden/bias": a["hidden/bias"].astype("float16")}))
    with pytest.raises(WeightMismatchError, match=r"'hidden/bias'.*float32.*float16"):
        model.load_weights(path)


def test_skip_mismatch_loads_what_fits_and_warns_about_the_rest(tmp_path):
    model = _make(first="hidden", second="head")
    path = _perturbed_file(tmp_path, model, lambda a: a.update(
        {"hidden/kernel": np.zeros((5, 3), "float32"), "head/bias": np.full((1,), 7.0, "float32")}))
    kernel_before = model.layers[0].kernel.numpy()
    with pytest.warns(UserWarning, match=r"(?s)1 mismatch.*'hidden/kernel'"):
        model.load_weights(path, skip_mismatch=True)
    assert model.layers[1].bias.numpy().tolist() == [7.0]
    assert model.layers[0].kernel.numpy().tobytes() == kernel_before.tobytes()


def test_save_weights_requires_the_safetensors_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"\.safetensors"):
        _make().save_weights(tmp_path / "w.h5")


def test_save_weights_crash_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    model = _make()
    model.save_weights(path)
    previous = path.read_bytes()

    def crash(arrays, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        _make().save_weights(path)
    assert path.read_bytes() == previous
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_get_weights_and_set_weights_round_trip():
    model, other = _make(), _make()
    other.set_weights(model.get_weights())
    _assert_same_values(model.get_weights(), other.get_weights())
    assert [w.shape for w in model.get_weights()] == [(4, 3), (3,), (3, 1), (1,)]


def test_set_weights_with_a_wrong_shape_changes_nothing():
    model = _make()
    before = _snapshot(model)
    weights = model.get_weights()
    weights[2] = np.zeros((5, 1), "float32")
    weights[0] = weights[0] + 1
    with pytest.raises(ValueError, match="shape"):
        model.set_weights(weights)
    assert _snapshot(model) == before


def test_bfloat16_and_float16_variables_round_trip_bit_exactly(tmp_path):
    model = lm.Sequential([lm.Input((4,)), lm.layers.Dense(3, dtype="bfloat16"),
                           lm.layers.Embedding(5, 2, dtype="float16")])
    model.save_weights(tmp_path / "w.safetensors")
    copy = lm.Sequential([lm.Input((4,)), lm.layers.Dense(3, dtype="bfloat16"),
                          lm.layers.Embedding(5, 2, dtype="float16")])
    copy.load_weights(tmp_path / "w.safetensors")
    for mine, theirs in zip(copy.weights, model.weights):
        assert mine.dtype == theirs.dtype
        assert mine.numpy().tobytes() == theirs.numpy().tobytes()
