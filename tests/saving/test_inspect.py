"""``python -m lamina inspect``: metadata, layers, parameter counts and tensors of a saved file,
read without importing or running anything the file names; bad files exit with status 2."""

import io
import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import lamina as lm
from lamina.__main__ import main


@lm.saving.register_serializable(package="test_inspect")
class TwoHeads(lm.Model):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = lm.layers.Dense(units)
        self.drop = lm.layers.Dropout(0.2)
        self.head = lm.layers.Dense(1)

    def call(self, x, training=False):
        return self.head(self.drop(self.hidden(x), training=training))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(["inspect", *map(str, argv)], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _row_params(output, label):
    """The Parameters cell of the table row whose first cell is ``label``."""
    match = re.search(rf"│ {re.escape(label)}\s*│\s*([\d,]+) │", output)
    assert match, f"no row {label!r} in:\n{output}"
    return int(match.group(1).replace(",", ""))


def _total(output):
    return int(re.search(r"Total parameters: ([\d,]+)", output).group(1).replace(",", ""))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inspect")
    x, y = np.ones((8, 6), "float32"), np.ones((8, 2), "float32")
    sequential = lm.Sequential([lm.Input((6,)), lm.layers.Dense(5, activation="relu", name="hidden_a"),
                                lm.layers.Dropout(0.1, name="dropout"), lm.layers.BatchNormalization(), lm.layers.Dense(2)])
    sequential.compile(optimizer=lm.optimizers.Adam(0.0025), loss="mse", metrics=["mae"])
    sequential.fit(x, y, epochs=1, verbose=0)
    sequential.save(folder / "seq.lamina")
    sequential.save_weights(folder / "seq.safetensors")

    inputs = lm.Input((6,), name="features")
    encoder = lm.Sequential([lm.layers.Dense(4), lm.layers.Dense(3)], name="encoder")
    functional = lm.Model(inputs, lm.layers.Dense(1, name="score")(encoder(inputs)), name="scorer")
    functional.save(folder / "fn.lamina")

    subclassed = TwoHeads(units=4, name="two_heads")
    subclassed(x)
    subclassed.save(folder / "sub.lamina")
    return folder, {"seq": sequential, "fn": functional, "sub": subclassed}


def test_sequential_layers_counts_metadata_and_compile(saved):
    folder, models = saved
    model = models["seq"]
    code, out, err = _run(folder / "seq.lamina")
    assert code == 0 and err == ""
    assert "Sequential" in out and f'"{model.name}"' in out
    for layer in model.layers:
        assert _row_params(out, f"{layer.name} ({type(layer).__name__})") == layer.count_params()
    assert _total(out) == model.count_params()
    assert re.search(rf"lamina_version\s+{re.escape(lm.__version__)}", out)
    assert "Built from input shape" in out
    assert "Adam, learning rate 0.0025" in out and "loss: mse" in out and "metrics: [mae]" in out
    assert re.search(r"Optimizer state: [\d,]+ values", out)
    assert "seed generators" in out  # the Dropout's state is listed apart from its 0 parameters


def test_functional_with_nested_model(saved):
    folder, models = saved
    model = models["fn"]
    code, out, _ = _run(folder / "fn.lamina")
    assert code == 0
    assert 'Functional "scorer"' in out and "features (batch shape (None, 6))" in out
    for layer in model.layers:
        assert _row_params(out, f"{layer.name} ({type(layer).__name__})") == layer.count_params()
    assert _total(out) == model.count_params()
    assert "Compiled: no" in out and "Optimizer state: none saved" in out


def test_subclassed_model_shows_class_config_and_attribute_counts(saved):
    folder, models = saved
    model = models["sub"]
    code, out, _ = _run(folder / "sub.lamina")
    assert code == 0
    assert "test_inspect>TwoHeads" in out and "units = 4" in out
    assert _row_params(out, "hidden") == model.hidden.count_params()
    assert _row_params(out, "head") == model.head.count_params()
    assert _total(out) == model.count_params()


def test_weights_lists_every_tensor(saved):
    folder, models = saved
    code, out, _ = _run(folder / "seq.lamina", "--weights")
    assert code == 0
    assert re.search(r"│ hidden_a/kernel\s*│ \(6, 5\)\s*│ float32\s*│\s*120 │", out)
    assert re.search(r"│ dropout/seed_generator_state\s*│ \(2,\)\s*│ uint32", out)
    assert "optimizer/iterations" in out and "Tensors (" in out
    # A standalone weights file: metadata and tensors, counted by first key segment.
    code, out, _ = _run(folder / "seq.safetensors", "--weights")
    assert code == 0
    assert "Weights file" in out and re.search(r"lamina_version\s+" + re.escape(lm.__version__), out)
    assert re.search(r"│ hidden_a/bias\s*│ \(5,\)\s*│ float32", out)
    assert _total(out) == models["seq"].count_params()


def _rewrite_config(source, target, edit):
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == "config.json":
                data = json.dumps(edit(json.loads(data))).encode()
            copy.writestr(info, data, compress_type=info.compress_type)


def test_hostile_config_is_shown_not_run(saved, tmp_path, monkeypatch):
    folder, _ = saved
    marker = tmp_path / "pwned"

    def edit(config):
        layers = config["config"]["layers"]
        layers[0] = {"class_name": "EvilLayer", "module": "this", "registered_name": "os.system",
                     "config": {"name": "hidden_a", "command": f"touch {marker}"}}
        layers[1]["config"]["name"] = "[bold red]styled[/]\x1b[2J"
        config["compile_config"]["loss"] = {"class_name": "os.system", "module": "os", "config": {}}
        return config

    _rewrite_config(folder / "seq.lamina", tmp_path / "evil.lamina", edit)
    with pytest.raises(ValueError, match="EvilLayer|'this'"):
        lm.load_model(tmp_path / "evil.lamina")  # the loader refuses the unknown class...
    monkeypatch.setattr(os, "system", lambda *a: pytest.fail("os.system called"))
    sys.modules.pop("this", None)
    code, out, err = _run(tmp_path / "evil.lamina")  # ...inspect just shows it
    assert code == 0, err
    assert "hidden_a (EvilLayer)" in out and "loss: os.system" in out
    assert "[bold red]styled[/]\\x1b[2J" in out and "\x1b" not in out  # literal text, escape escaped
    assert "this" not in sys.modules and not marker.exists()


def test_bad_files_exit_2_with_a_message(saved, tmp_path):
    folder, _ = saved
    data = (folder / "seq.lamina").read_bytes()
    truncated = tmp_path / "truncated.lamina"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    (tmp_path / "flipped.lamina").write_bytes(bytes(flipped))
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    cases = {
        truncated: "not a lamina model file",
        tmp_path / "flipped.lamina": "damaged",
        tmp_path / "junk.safetensors": "not a valid safetensors file",
        tmp_path / "missing.lamina": "no such file",
    }
    for path, message in cases.items():
        code, out, err = _run(path)
        assert code == 2 and out == "" and message in err, (path, err)
        assert "Traceback" not in err
    assert main(["inspect"], stdout=io.StringIO(), stderr=io.StringIO()) == 2  # usage error


def test_command_line(saved, tmp_path):
    folder, _ = saved
    command = [sys.executable, "-m", "lamina", "inspect"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(command + [str(folder / "fn.lamina"), "--weights"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "encoder (Sequential)" in done.stdout and "encoder/dense" in done.stdout
    (tmp_path / "bad.lamina").write_bytes(b"PK\x03\x04 not really a zip")
    done = subprocess.run(command + [str(tmp_path / "bad.lamina")], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert "error:" in done.stderr and "Traceback" not in done.stderr
