"""Reading a ``PyDataset``'s batches ahead of the training step, in order, with a pool.

``load_batches(dataset, indices)`` yields ``dataset[i]`` for each index in turn. For a
``PyDataset`` with workers (``PyDataset.parallel``) it keeps up to ``max_queue_size`` batches
loading in a thread pool (or a "spawn" process pool with ``use_multiprocessing``) and hands
them over in index order; otherwise it reads each batch when asked. Closing the generator
(the epoch ends or training stops) cancels what is still queued and shuts the pool down, so
``on_epoch_end`` never runs while a worker still reads.

Processes rather than fork: the parent runs JAX's threads, and forking a multithreaded
process can deadlock; a spawned worker starts a fresh interpreter and unpickles the dataset
(sent once per epoch, so what ``on_epoch_end`` changed reaches it, as in Keras).
"""

from __future__ import annotations

import collections
import multiprocessing
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from lamina.data.dataset import PyDataset


def load_batches(dataset, indices):
    """``dataset[i]`` for each ``i`` of ``indices``, in order; see the module docstring.

    Example:
        >>> import lamina as lm
        >>> class Numbers(lm.data.PyDataset):
        ...     def __len__(self):
        ...         return 4
        ...     def __getitem__(self, i):
        ...         return i * 10
        >>> list(load_batches(Numbers(workers=3), [2, 0, 3]))
        [20, 0, 30]
    """
    if not (isinstance(dataset, PyDataset) and dataset.parallel):
        for index in indices:
            yield dataset[int(index)]
        return
    if dataset.use_multiprocessing:
        executor = _process_pool(dataset)
        fetch = _worker_getitem
    else:
        executor = ThreadPoolExecutor(dataset.workers, thread_name_prefix="lamina-pydataset")
        fetch = dataset.__getitem__
    where = "worker process" if dataset.use_multiprocessing else "worker thread"
    pending = collections.deque()
    remaining = iter(indices)
    try:
        while True:
            # Keep the queue full: up to max_queue_size batches loading or waiting.
            while len(pending) < dataset.max_queue_size:
                index = next(remaining, None)
                if index is None:
                    break
                pending.append((int(index), executor.submit(fetch, int(index))))
            if not pending:
                return
            index, future = pending.popleft()
            try:
                batch = future.result()
            except BrokenProcessPool as err:
                raise RuntimeError(
                    f"The worker processes of {type(dataset).__name__} (use_multiprocessing=True) "
                    "stopped: a worker could not load the dataset or crashed. Its class must be "
                    "importable by a fresh Python process (defined in a module or a script whose "
                    "entry point is guarded by `if __name__ == \"__main__\":`). Or use threads: "
                    "use_multiprocessing=False."
                ) from err
            except Exception as err:
                err.add_note(f"(while loading batch {index} of {type(dataset).__name__} in a {where})")
                raise
            yield batch
    finally:
        for _, future in pending:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)


def _process_pool(dataset) -> ProcessPoolExecutor:
    name = type(dataset).__name__
    main = sys.modules.get("__main__")
    if type(dataset).__module__ == "__main__" and not getattr(main, "__file__", None):
        raise ValueError(
            f"{name} has use_multiprocessing=True but is defined interactively (in __main__ "
            "without a file), so worker processes cannot import its class. Define it in a "
            "module, or use threads: use_multiprocessing=False."
        )
    try:
        payload = pickle.dumps(dataset)
    except Exception as err:  # noqa: BLE001 - any pickling failure means the same thing
        raise ValueError(
            f"{name} has use_multiprocessing=True, but it cannot be pickled, and each worker "
            f"process needs a copy: {type(err).__name__}: {err}. Make it picklable (no open "
            "files, locks or lambdas in its attributes; a class defined at module level), or use "
            "threads: use_multiprocessing=False."
        ) from err
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(dataset.workers, mp_context=context, initializer=_start_worker,
                               initargs=(payload,))


_worker_dataset = None  # in a worker process: its copy of the dataset


def _start_worker(payload: bytes) -> None:
    global _worker_dataset
    _worker_dataset = pickle.loads(payload)


def _worker_getitem(index: int):
    return _worker_dataset[index]
