"""BackupAndRestore across a SIGKILL with data parallel on 8 simulated CPU devices: a run killed
mid-epoch and rerun ends with exactly the variables of an uninterrupted data-parallel run
(weights, Dropout's seed state, Adam's slots). The single-device version is in
test_checkpoint_callbacks.py; the runs are resume_data_parallel_script.py."""

import os
import subprocess
import sys

from script_runner import assert_same_tensors, kill_when_marked, last_json

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _script(*args):
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, os.path.join(HERE, "resume_data_parallel_script.py"), *map(str, args)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process, timeout=120) -> dict:
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    return last_json(output)


def test_kill_9_mid_epoch_under_data_parallel_then_rerun_ends_bit_identical(tmp_path):
    marker = tmp_path / "hanging"
    reference = _script(tmp_path / "ref_backup", tmp_path / "ref.safetensors")
    # As the single-device test: backups every 3 batches of 8 per epoch; the kill comes after
    # batch 4 of epoch 1, the last backup having been written after batch 3.
    victim = _script(tmp_path / "backup", tmp_path / "out.safetensors", "--hang-at", 1, 4, marker)
    try:
        kill_when_marked(victim, marker)
        assert (tmp_path / "backup" / "latest.json").exists()
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    assert not (tmp_path / "out.safetensors").exists()

    resumed = _finish(_script(tmp_path / "backup", tmp_path / "out.safetensors"))  # the rerun resumes
    uninterrupted = _finish(reference)
    assert resumed["kernel_devices"] == uninterrupted["kernel_devices"] == 8
    assert not (tmp_path / "backup").exists() and not (tmp_path / "ref_backup").exists()
    want = assert_same_tensors(tmp_path / "out.safetensors", tmp_path / "ref.safetensors")
    assert any(k.startswith("optimizer/") for k in want)
    assert any(k.endswith("seed_generator_state") for k in want)
