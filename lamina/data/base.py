"""``DataAdapter``: what the trainer iterates, and the block-size rule every adapter shares."""

from __future__ import annotations

import numpy as np

from lamina.data.standardize import _check_positive_int

_RAN_OUT = (
    "Your input ran out of data; interrupting the epoch. Make sure that your data can "
    "generate at least `steps_per_epoch * epochs` batches."
)


def _block_now(block) -> int:
    """The block size for the next item: ``block``, or what the callable ``block`` says now."""
    return block() if callable(block) else block


class DataAdapter:
    """What the trainer iterates: ``epoch(epoch_index, block)`` and three facts about size."""

    _steps_per_epoch: int | None = None
    _num_samples: int | None = None
    _batch_size: int | None = None
    _exhausted: bool = False

    @property
    def steps_per_epoch(self) -> int | None:
        """Batches per epoch; None when unknown (a generator run until it is exhausted)."""
        return self._steps_per_epoch

    @property
    def num_samples(self) -> int | None:
        """Number of samples for in-memory data, else None."""
        return self._num_samples

    @property
    def batch_size(self) -> int | None:
        """The batch size for in-memory data, else None (the source makes the batches)."""
        return self._batch_size

    @property
    def has_partial_batch(self) -> bool:
        """True when in-memory data ends with a smaller batch (False for other sources)."""
        return False

    @property
    def exhausted(self) -> bool:
        """True once a one-shot generator has nothing left to give."""
        return self._exhausted

    def epoch(self, epoch_index: int = 0, block: int = 1, start_step: int = 0):
        """Yield ``(steps, (x, y, sample_weight))`` for one epoch; see the module docstring.

        ``epoch_index`` is informational: shuffling draws from NumPy's global generator, and
        with ``steps_per_epoch`` the position in the data carries over from the last epoch.
        ``start_step > 0`` finishes an epoch of which that many batches already ran: the
        position in the data is kept as it is (restored with ``set_state``) and only the
        remaining batches are yielded (``fit`` resuming from a ``BackupAndRestore`` backup).
        """
        if not callable(block):
            block = _check_positive_int(block, "block", allow_none=False)
        if isinstance(start_step, bool) or not isinstance(start_step, (int, np.integer)) or start_step < 0:
            raise ValueError(f"`start_step` must be a non-negative integer; got {start_step!r}.")
        # Only a resumed epoch passes start_step on (adapters written before it take one argument).
        return self._epoch(block, int(start_step)) if start_step else self._epoch(block)

    def get_state(self) -> dict:
        """Where the adapter is in its data: ``{"pos": int, "order": array or None}`` for
        arrays and Datasets (the batches of the current pass already given, and the pass's
        sample or batch order), ``{}`` for generators (whose position cannot be saved)."""
        return {}

    def set_state(self, state: dict) -> None:
        """Go back to a position ``get_state`` returned (a no-op for generators)."""

    def _epoch(self, block: int, start_step: int = 0):
        raise NotImplementedError
