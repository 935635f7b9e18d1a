"""``lm.distribution.initialize``: join a multi-process run (``jax.distributed``)."""

from __future__ import annotations

import os

import jax
import numpy as np


def _env(name: str):
    # lamina's variable first; Keras's name too, so that a Keras launch script works unchanged.
    return os.environ.get(f"LAMINA_DISTRIBUTION_{name}") or os.environ.get(f"KERAS_DISTRIBUTION_{name}")


def initialize(job_addresses: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, **kwargs) -> bool:
    """Connect this process to the others of a multi-process run; call it before anything else.

    ``job_addresses`` is the coordinator's ``host:port`` (or every process's address, comma
    separated, the first being the coordinator, as Keras accepts). Unset arguments are read from
    ``LAMINA_DISTRIBUTION_JOB_ADDRESSES``, ``..._NUM_PROCESSES`` and ``..._PROCESS_ID`` (or
    Keras's ``KERAS_DISTRIBUTION_*`` names). Other keyword arguments go to
    ``jax.distributed.initialize`` (``cluster_detection_method=`` for SLURM, MPI or TPU pods).

    With no coordinator, at most one process and no other argument, this is a single-process
    run and nothing is done. Returns whether ``jax.distributed`` was initialized by this call.
    Afterwards every process continues lamina's global seed stream from process 0's, so that
    unseeded initializers draw the same numbers everywhere.

    Example:
        >>> import lamina as lm
        >>> lm.distribution.initialize()   # one process: a no-op
        False
    """
    job_addresses = job_addresses if job_addresses is not None else _env("JOB_ADDRESSES")
    if num_processes is None and _env("NUM_PROCESSES") is not None:
        num_processes = int(_env("NUM_PROCESSES"))
    if process_id is None and _env("PROCESS_ID") is not None:
        process_id = int(_env("PROCESS_ID"))
    if not job_addresses and (num_processes is None or int(num_processes) == 1) and not kwargs:
        return False
    coordinator = job_addresses
    if job_addresses and "," in job_addresses:
        addresses = [a.strip() for a in job_addresses.split(",")]
        if num_processes is not None and int(num_processes) != len(addresses):
            raise ValueError(
                f"initialize: job_addresses lists {len(addresses)} processes ({addresses}) but "
                f"num_processes is {num_processes}."
            )
        coordinator = addresses[0]
    if jax.distributed.is_initialized():
        raise RuntimeError(
            "initialize: jax.distributed is already initialized in this process; call "
            "lm.distribution.initialize() once, before any other JAX work."
        )
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id, **kwargs)
    _agree_on_seed_stream()
    return True


def _agree_on_seed_stream() -> None:
    """Every process takes process 0's position in lamina's global seed stream: the compiled
    initializers of a multi-process program must be the same program in every process."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    from lamina import random

    mine = np.array([random._stream.seed, random._stream.counter], dtype=np.int64)
    seed, counter = (int(x) for x in multihost_utils.broadcast_one_to_all(mine))
    random._stream.seed, random._stream.counter = seed, counter
