"""JAX's persistent compilation cache, on by default for lamina programs.

A fresh process compiles every program of a ``fit`` again (a train step, metric resets,
initializers...), which is most of the time to the first step. JAX can keep compiled
executables on disk and load them in the next process; lamina turns that on at import:

- ``LAMINA_COMPILATION_CACHE`` unset: the cache lives in ``$XDG_CACHE_HOME/lamina/jax``
  (``~/.cache/lamina/jax`` without ``XDG_CACHE_HOME``), created private to the user (mode
  0700: whoever can write into a compilation cache can make the process run their code);
- ``LAMINA_COMPILATION_CACHE=0`` (or ``false``, ``off``, ``no``): lamina leaves the cache off;
- ``LAMINA_COMPILATION_CACHE=/some/dir``: that folder instead.

A cache the user configured for JAX (``JAX_COMPILATION_CACHE_DIR``,
``jax.config.update("jax_compilation_cache_dir", ...)`` before importing lamina) or disabled
(``jax_enable_compilation_cache=False``) is left as it is. Since JAX writes only programs that
took a second to compile, lamina lowers that threshold to 0 (unless the user set it), so a
small model's step is cached too. A folder that cannot be created or written is reported by
one warning and the process runs without the cache; importing lamina never fails for it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import jax
from jax.experimental.compilation_cache.compilation_cache import reset_cache

ENV = "LAMINA_COMPILATION_CACHE"
_OFF = ("0", "false", "off", "no", "none", "")

# Why lamina set the cache up ("default", "env", "jax", "off", "unusable"); see ``status()``.
_status = "not configured"


def default_directory() -> Path:
    """``$XDG_CACHE_HOME/lamina/jax``, or ``~/.cache/lamina/jax``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lamina" / "jax"


def _usable(directory: Path) -> str | None:
    """``None`` when ``directory`` exists (created if needed) and is writable, else why not."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        return f"cannot create it ({error.strerror or error})"
    if not os.access(directory, os.W_OK | os.X_OK):
        return "it is not writable"
    return None


def configure(environ=None) -> str:
    """Set JAX's persistent compilation cache as described in the module docstring; returns
    what was done: ``"default"`` / ``"env"`` (lamina set the folder), ``"jax"`` (the user's
    own JAX configuration kept), ``"off"`` (opted out), ``"unusable"`` (warned, no cache).

    Example:
        >>> from lamina.core import compilation_cache
        >>> compilation_cache.configure({"LAMINA_COMPILATION_CACHE": "0"})
        'off'
    """
    global _status
    environ = os.environ if environ is None else environ
    wanted = environ.get(ENV)
    if wanted is not None and wanted.strip().lower() in _OFF:
        _status = "off"
        return _status
    if not jax.config.jax_enable_compilation_cache or jax.config.jax_compilation_cache_dir:
        _status = "jax"
        return _status
    directory = Path(wanted).expanduser() if wanted is not None else default_directory()
    problem = _usable(directory)
    if problem is not None:
        warnings.warn(
            f"lamina: the compilation cache folder {str(directory)!r} is unusable: {problem}. "
            f"Running without a persistent compilation cache (set {ENV}=/a/writable/dir, or "
            f"{ENV}=0 to silence this).", RuntimeWarning, stacklevel=2,
        )
        _status = "unusable"
        return _status
    jax.config.update("jax_compilation_cache_dir", str(directory))
    # JAX reads the folder once, at its first compilation, which importing lamina may already
    # have done (small constants): start it again so the next compilation uses the folder.
    reset_cache()
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    if "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES" not in environ:
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # no size floor
    _status = "env" if wanted is not None else "default"
    return _status


def status() -> str:
    """What ``configure`` did at import (see there)."""
    return _status
