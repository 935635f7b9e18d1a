"""The persistent compilation cache lamina turns on at import (issue 10 item 5).

Each case runs a fresh interpreter (JAX reads the cache set-up once per process) with HOME and
XDG_CACHE_HOME pointed into a temporary folder, so nothing touches the real home folder.
"""

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent("""
    import json, sys, warnings
    warnings.simplefilter("always")
    caught = []
    warnings.showwarning = lambda message, *args, **kwargs: caught.append(str(message))
    import jax
    from jax import monitoring
    hits, misses = [], []
    monitoring.register_event_listener(
        lambda event, **kw: hits.append(1) if event == "/jax/compilation_cache/cache_hits"
        else misses.append(1) if event == "/jax/compilation_cache/cache_misses" else None)
    import lamina as lm
    from lamina.core import compilation_cache
    losses = []
    if "fit" in sys.argv:
        import numpy as np
        lm.random.set_seed(0)
        model = lm.Sequential([lm.Input(shape=(8,)), lm.layers.Dense(16, activation="relu"), lm.layers.Dense(2)])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], steps_per_execution=1)
        x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
        y = (x[:, 0] > 0).astype("int32")
        losses = model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False).history["loss"]
    print(json.dumps({
        "status": compilation_cache.status(),
        "dir": jax.config.jax_compilation_cache_dir,
        "min_time": jax.config.jax_persistent_cache_min_compile_time_secs,
        "hits": len(hits),
        "misses": len(misses),
        "warnings": [w for w in caught if "compilation cache" in w],
        "losses": [float(v) for v in losses],
    }))
""")


def _run(tmp_path, *args, **env_changes):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAMINA_COMPILATION_CACHE", "JAX_COMPILATION_CACHE"))}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "xdg"), JAX_PLATFORMS="cpu")
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _entries(folder):
    return [name for name in os.listdir(folder) if not name.startswith(".")] if folder.exists() else []


def test_fresh_process_sets_the_default_folder(tmp_path):
    report = _run(tmp_path)
    assert report["status"] == "default"
    assert report["dir"] == str(tmp_path / "xdg" / "lamina" / "jax")
    assert report["min_time"] == 0.0
    assert stat.S_IMODE(os.stat(tmp_path / "xdg" / "lamina" / "jax").st_mode) == 0o700


@pytest.fixture
def jax_cache_config():
    """``configure`` run inside this process; JAX's cache settings are put back afterwards."""
    import jax
    from jax.experimental.compilation_cache.compilation_cache import reset_cache

    from lamina.core import compilation_cache

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes", "jax_enable_compilation_cache")
    saved = {name: getattr(jax.config, name) for name in names}
    status = compilation_cache._status
    jax.config.update("jax_compilation_cache_dir", None)
    yield jax.config, compilation_cache.configure
    for name, value in saved.items():
        jax.config.update(name, value)
    compilation_cache._status = status
    reset_cache()


def test_default_folder_without_xdg_is_under_home(tmp_path, jax_cache_config, monkeypatch):
    config, configure = jax_cache_config
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert configure({"HOME": str(tmp_path / "home")}) == "default"
    assert config.jax_compilation_cache_dir == str(tmp_path / "home" / ".cache" / "lamina" / "jax")


def test_opt_out_leaves_the_cache_off(tmp_path, jax_cache_config):
    config, configure = jax_cache_config
    for off in ("0", "false", "OFF"):
        assert configure({"LAMINA_COMPILATION_CACHE": off, "XDG_CACHE_HOME": str(tmp_path)}) == "off"
    assert config.jax_compilation_cache_dir is None
    assert list(tmp_path.iterdir()) == []


def test_env_folder_and_a_users_own_jax_setting(tmp_path, jax_cache_config):
    config, configure = jax_cache_config
    mine = tmp_path / "mine"
    assert configure({"LAMINA_COMPILATION_CACHE": str(mine)}) == "env"
    assert config.jax_compilation_cache_dir == str(mine) and mine.is_dir()
    theirs = str(tmp_path / "theirs")
    config.update("jax_compilation_cache_dir", theirs)
    config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    assert configure({"XDG_CACHE_HOME": str(tmp_path / "xdg")}) == "jax"
    assert config.jax_compilation_cache_dir == theirs
    assert config.jax_persistent_cache_min_compile_time_secs == 1.0  # left as the user set it
    assert not (tmp_path / "xdg").exists()


def test_folder_that_cannot_be_created_warns_and_runs_without(tmp_path, jax_cache_config):
    config, configure = jax_cache_config
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.warns(RuntimeWarning, match="cannot create") as caught:
        assert configure({"LAMINA_COMPILATION_CACHE": str(blocker / "cache")}) == "unusable"
    assert len(caught) == 1 and str(blocker / "cache") in str(caught[0].message)
    assert config.jax_compilation_cache_dir is None


def test_second_process_first_fit_loads_programs_from_the_cache(tmp_path):
    first = _run(tmp_path, "fit")
    folder = tmp_path / "xdg" / "lamina" / "jax"
    assert first["misses"] > 0 and len(_entries(folder)) == first["misses"]
    # Building the model and its first fit compile a handful of programs (two kernel draws, the
    # batch gather, the train step: 4), not one per eager operation (27 before: zeros, seeds,
    # the optimizer's slots and the pieces of each random draw, each its own program).
    assert first["misses"] <= 6
    second = _run(tmp_path, "fit")
    # Every program the first process compiled (the train step, metric resets, initializers)
    # is loaded from the folder: nothing is compiled again.
    assert second["misses"] == 0
    assert second["hits"] == first["hits"] + first["misses"]
    # Programs loaded from the cache (donation included) train exactly as freshly compiled ones.
    assert second["losses"] == first["losses"] and len(first["losses"]) == 2


def _read_only_folder(tmp_path):
    """An existing folder this process cannot write into (root ignores permission bits)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if os.path.isdir("/proc/sys") and not os.access("/proc/sys", os.W_OK):
            return "/proc/sys", lambda: None
        pytest.skip("no read-only folder for root here")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    return str(folder), lambda: folder.chmod(0o700)


def test_read_only_folder_does_not_break_import_or_fit(tmp_path):
    folder, restore = _read_only_folder(tmp_path)
    try:
        report = _run(tmp_path, "fit", LAMINA_COMPILATION_CACHE=folder)
    finally:
        restore()
    assert report["status"] == "unusable" and report["dir"] is None
    assert len(report["warnings"]) == 1 and folder in report["warnings"][0]
