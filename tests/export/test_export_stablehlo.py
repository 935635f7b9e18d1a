"""model.export(format="stablehlo"): reloaded without the model's classes, free batch axis;
and the checks every format shares (format names, unbuilt models, existing paths)."""

import json
import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm


class Scaled(lm.Layer):
    """A custom layer that exists only in this test process."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="random_normal")

    def call(self, x):
        return jnp.tanh(x * self.scale) + x


class Net(lm.Model):
    def __init__(self):
        super().__init__()
        self.scaled = Scaled()
        self.norm = lm.layers.BatchNormalization()
        self.drop = lm.layers.Dropout(0.5)
        self.out = lm.layers.Dense(3)

    def call(self, x, training=False):
        return self.out(self.drop(self.norm(self.scaled(x), training=training), training=training))


@pytest.fixture(scope="module")
def net():
    lm.random.set_seed(3)
    model = Net()
    model(np.zeros((2, 5), "float32"))
    # Statistics away from their initial values, so that training=False matters.
    model.norm.moving_mean.assign(np.linspace(-1, 1, 5))
    model.norm.moving_variance.assign(np.linspace(0.5, 2, 5))
    return model


def test_reloaded_in_a_fresh_process_without_the_model_classes(net, tmp_path):
    path = tmp_path / "net.stablehlo"
    net.export(path, format="stablehlo", verbose=False)
    rng = np.random.default_rng(0)
    batches = {"one": rng.normal(size=(1, 5)).astype("float32"), "seven": rng.normal(size=(7, 5)).astype("float32")}
    np.savez(tmp_path / "inputs.npz", **batches)
    script = textwrap.dedent(f"""
        import sys, numpy as np, lamina as lm
        served = lm.export.load_stablehlo({str(path)!r})
        batches = np.load({str(tmp_path / "inputs.npz")!r})
        np.savez({str(tmp_path / "outputs.npz")!r}, **{{k: np.asarray(served(batches[k])) for k in batches.files}})
        print(served.input_shapes, "Scaled" in dir(sys.modules["__main__"]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[-2] == "[(None, 5)] False"
    outputs = np.load(tmp_path / "outputs.npz")
    for key, x in batches.items():
        np.testing.assert_allclose(outputs[key], net.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def test_structured_inputs_and_outputs(tmp_path):
    lm.random.set_seed(4)
    a, b = lm.Input((3,), name="a"), lm.Input((2,), name="b")
    joined = lm.layers.Concatenate()([a, b])
    model = lm.Model({"a": a, "b": b}, [lm.layers.Dense(2, name="first")(joined), lm.layers.Dense(1, name="second")(joined)])
    model.export(tmp_path / "m.stablehlo", format="stablehlo", verbose=False)
    served = lm.export.load_stablehlo(tmp_path / "m.stablehlo")
    x = {"a": np.ones((4, 3), "float32"), "b": np.full((4, 2), 0.5, "float32")}
    expected = model.predict(x, verbose=0)
    for got in (served(x["a"], x["b"]), served(x)):  # flat arrays, or the model's own structure
        assert len(got) == 2
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)
    with pytest.raises(TypeError, match=r"takes 2 input arrays of shapes \[\(None, 3\), \(None, 2\)\], got 1"):
        served(x["a"])


def test_verbose_message_names_the_path_and_inputs(net, tmp_path, capsys):
    net.export(tmp_path / "m.stablehlo", format="stablehlo")
    out = capsys.readouterr().out
    assert "m.stablehlo" in out and "float32[None, 5]" in out


def test_unknown_format_lists_the_valid_ones(net, tmp_path):
    with pytest.raises(ValueError, match=r"format='savedmodel'.*\['tf_saved_model', 'onnx', 'stablehlo'\]"):
        net.export(tmp_path / "m", format="savedmodel")


def test_unbuilt_model_says_how_to_build_it(tmp_path):
    with pytest.raises(ValueError, match="not built.*Call it on a batch of data first.*input_signature"):
        Net().export(tmp_path / "m.stablehlo", format="stablehlo")
    assert not os.listdir(tmp_path)


def test_input_signature_builds_and_fixes_the_inputs(tmp_path):
    model = Net()
    model.export(tmp_path / "m.stablehlo", format="stablehlo", verbose=False,
                 input_signature=lm.Input(shape=(4,)))
    served = lm.export.load_stablehlo(tmp_path / "m.stablehlo")
    assert served.input_shapes == [(None, 4)]
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(served(x), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def test_an_existing_file_is_replaced_and_a_folder_refused(net, tmp_path):
    path = tmp_path / "m.stablehlo"
    path.write_bytes(b"old")
    net.export(path, format="stablehlo", verbose=False)
    assert lm.export.load_stablehlo(path).input_shapes == [(None, 5)]
    assert os.listdir(tmp_path) == ["m.stablehlo"]  # no temporary file left
    with pytest.raises(IsADirectoryError, match="folder"):
        net.export(tmp_path, format="stablehlo")


def test_loading_a_foreign_file_names_it(tmp_path):
    path = tmp_path / "not.stablehlo"
    path.write_text(json.dumps({"not": "stablehlo"}))
    with pytest.raises(ValueError, match="not.stablehlo.*is not a StableHLO export"):
        lm.export.load_stablehlo(path)


def test_unknown_option_is_refused(net, tmp_path):
    with pytest.raises(TypeError, match="opset_version"):
        net.export(tmp_path / "m.stablehlo", format="stablehlo", opset_version=17)


def test_exported_for_several_platforms_runs_here(net, tmp_path):
    net.export(tmp_path / "m.stablehlo", format="stablehlo", platforms=("cpu", "cuda"), verbose=False)
    served = lm.export.load_stablehlo(tmp_path / "m.stablehlo")
    assert served.exported.platforms == ("cpu", "cuda")
    x = np.ones((3, 5), "float32")
    np.testing.assert_allclose(served(x), net.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
