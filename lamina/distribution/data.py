"""How batches reach the devices under a distribution, and how a process's rows join a global
batch.

Without a distribution, ``distribute`` is ``jax.device_put`` (one device, as before; on the CPU
backend NumPy batches are left to the compiled step's own transfer). Under one,
each leaf of a batch is split on its batch dimension over the distribution's batch axis
(``Distribution.get_data_layout``): the first dimension, or the second for a stacked
``(steps, batch, ...)`` block of ``steps_per_execution``, whose step axis is not split.

A batch whose rows do not divide by the number of batch shards (the last, partial batch of
an epoch) is replicated instead of split: every device computes it whole, so it trains,
evaluates and predicts with exactly the rows given (no padding, nothing dropped, the same
numbers as one device) at the cost of one step per epoch not running in parallel.

With several processes (``lm.distribution.initialize``) the batch size is global and each
process passes only its own rows: ``batch_size / process_count`` of them per step, which
``jax.make_array_from_process_local_data`` joins into the global batch (process 0's rows
first). A partial batch is gathered from every process and replicated.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from lamina.distribution import current


def batch_shards(distribution) -> int:
    """How many parts a batch is split into: the size of the distribution's batch axis."""
    return distribution.device_mesh.axis_size(distribution.batch_dim_name)


def local_batch_size(batch_size: int | None, name: str = "batch_size") -> int | None:
    """The rows this process reads per step for a global ``batch_size``.

    One process (or no distribution): ``batch_size`` itself. With several processes, the global
    batch is split evenly among them; a batch size that does not divide raises.

    Example:
        >>> from lamina.distribution.data import local_batch_size
        >>> local_batch_size(64)   # one process
        64
    """
    if batch_size is None or current.distribution() is None:
        return batch_size
    processes = jax.process_count()
    if processes == 1:
        return batch_size
    if batch_size % processes:
        raise ValueError(
            f"`{name}`={batch_size} is the global batch size, split evenly among the "
            f"{processes} processes of this run, but {batch_size} is not divisible by "
            f"{processes}: choose a multiple of {processes} (each process then passes "
            f"{name} / {processes} rows of its own data per step)."
        )
    return batch_size // processes


def batch_sharding(distribution, shape, stacked: bool = False) -> NamedSharding:
    """The sharding of a global batch leaf of ``shape``: split on the batch dimension (the
    second of a stacked block), or replicated when that dimension does not divide by the
    number of batch shards (or the leaf has no such dimension)."""
    axis = 1 if stacked else 0
    shape = tuple(shape)
    if len(shape) <= axis or shape[axis] % batch_shards(distribution):
        return distribution.replicated()
    spec = [None] * len(shape)
    spec[axis] = distribution.batch_dim_name
    return NamedSharding(distribution.device_mesh.jax_mesh, PartitionSpec(*spec))


def distribute(leaves: list, stacked: bool = False) -> list:
    """The leaves of a batch on the devices: ``jax.device_put`` without a distribution, else
    each one a global array laid out by ``batch_sharding`` (see the module docstring).

    Example:
        >>> import numpy as np, lamina as lm
        >>> from lamina.distribution.data import distribute
        >>> with lm.distribution.DataParallel().scope():
        ...     (x,) = distribute([np.zeros((8, 3), "float32")])
        >>> x.shape
        (8, 3)
    """
    distribution = current.distribution()
    if distribution is None:
        if _device_is_host():
            # A transfer to the CPU backend is a copy in host memory either way: the compiled
            # step takes NumPy batches as they are (jax.jit's own transfer, in C++), which
            # saves a separate device_put per batch (about 3% of predict's time for an MLP at
            # batch 1024). Accelerators keep device_put: a batch sent ahead of its step
            # overlaps the transfer with the step before it.
            return list(leaves)
        return jax.device_put(leaves)
    if jax.process_count() == 1:
        arrays = [jax.device_put(leaf, batch_sharding(distribution, np.shape(leaf), stacked)) for leaf in leaves]
    else:
        arrays = [_from_processes(distribution, leaf, stacked) for leaf in leaves]
    return arrays


@functools.cache
def _device_is_host() -> bool:
    """Whether the default backend computes in host memory (the CPU backend)."""
    return jax.default_backend() == "cpu"


def one_call_in_flight() -> bool:
    """Whether a loop should wait for each compiled call before the next: under a distribution
    over several CPU devices (simulated ones, ``--xla_force_host_platform_device_count``).

    Why: with many multi-device steps queued, XLA:CPU can hang at a step's first collective
    ("Expected 8 threads to join the rendezvous, but only 7 of them arrived"); seen with 8
    simulated devices on 2 cores, for a hand-written ``jax.jit`` loop as well, and never with
    one call in flight. Accelerators keep asynchronous dispatch.
    """
    distribution = current.distribution()
    if distribution is None or distribution.device_mesh.devices.size < 2:
        return False
    return next(iter(distribution.device_mesh.devices.flat)).platform == "cpu"


def _from_processes(distribution, leaf, stacked: bool):
    """One global array from each process's rows of ``leaf``."""
    axis = 1 if stacked else 0
    local = np.asarray(leaf)
    if local.ndim <= axis:  # a scalar: the same in every process
        return jax.make_array_from_callback((), distribution.replicated(), lambda index: local)
    processes = jax.process_count()
    shape = list(local.shape)
    shape[axis] *= processes
    sharding = batch_sharding(distribution, shape, stacked)
    if not sharding.is_fully_replicated:
        # The distinct slices of the batch this process's devices hold: its rows fill them.
        starts = {index[axis].start for index in sharding.addressable_devices_indices_map(tuple(shape)).values()}
        local_shards = len(starts)
    if not sharding.is_fully_replicated and local.shape[axis] % local_shards == 0:
        return jax.make_array_from_process_local_data(sharding, local, tuple(shape))
    # Rows that do not divide: every process gets every process's rows, in process order.
    from jax.experimental import multihost_utils

    gathered = np.asarray(multihost_utils.process_allgather(local))  # (processes, *local.shape)
    whole = np.moveaxis(gathered, 0, axis).reshape(shape)
    replicated = distribution.replicated()
    return jax.make_array_from_callback(whole.shape, replicated, lambda index: whole[index])


def local_rows(array, stacked: bool = False) -> np.ndarray:
    """This process's rows of a global batch output (what it passed in), as NumPy; the whole
    array in a single process."""
    if jax.process_count() == 1:
        return np.asarray(jax.device_get(array))
    from jax.experimental import multihost_utils

    whole = np.asarray(multihost_utils.process_allgather(array, tiled=True))
    axis = 1 if stacked else 0
    if whole.ndim <= axis:
        return whole
    per = whole.shape[axis] // jax.process_count()
    index = [slice(None)] * whole.ndim
    index[axis] = slice(jax.process_index() * per, (jax.process_index() + 1) * per)
    return whole[tuple(index)]


def check_same_in_every_process(what: str, values: tuple) -> None:
    """Raise in every process when ``values`` differ between processes (a program that would
    otherwise wait forever for a step another process never runs)."""
    if jax.process_count() == 1 or current.distribution() is None:
        return
    from jax.experimental import multihost_utils

    mine = np.asarray(values, dtype=np.int64)
    every = np.asarray(multihost_utils.process_allgather(mine))
    if not (every == every[0]).all():
        per = ", ".join(f"process {i}: {tuple(int(v) for v in row)}" for i, row in enumerate(every))
        raise ValueError(
            f"{what} differ between processes ({per}): every process must run the same number "
            "of steps, so pass each one the same number of samples (its own rows) and the same "
            "batch_size."
        )
