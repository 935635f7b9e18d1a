"""``steps_per_execution="auto"``: steps per compiled training call, chosen by measuring.

Running N steps in one compiled call (``lax.scan`` over a block of N batches) saves the host
work of N - 1 calls: about 0.1 ms per call on a laptop CPU (the batch gather, the step
dispatch, the callbacks). That is most of the time of a small MLP's step and nothing next to
a convnet's. Scanning can also cost: XLA:CPU runs some ops far slower inside a loop body (the
gradients of a convolution ran 16-31x slower scanned than as single steps here, jax-ml/jax
issue 12868), so any rule fixed in advance makes some model the slow path. "auto" measures
instead, on the real training steps (nothing runs twice):

1. single steps; the first compiles, the next ones are timed (at least three and 10 ms, over
   several epochs when they are short);
2. a step of ``SINGLE_IS_ENOUGH`` (10 ms) or more keeps single steps: a block saves at most
   a few per cent there, and trying it could cost the slow path's price (the MNIST convnet's
   step takes about 35 ms on a laptop CPU). Shorter steps try blocks even past the host
   work's share: a scanned Transformer block step of 3.5 ms measured 7% faster;
3. otherwise blocks of N steps, N chosen so that a block takes about ``BLOCK_SECONDS``
   (so that trying a slow scanned form costs little) and an epoch still makes about sixteen
   calls (for the progress bar): the first block compiles, the next ones are timed (at least
   one block and 10 ms);
4. the blocks are kept when they are at least 5% faster per step, else single steps.

The choice is kept on the model for each batch size and epoch length, so later epochs and
later ``fit`` calls use it without measuring again; ``compile()`` forgets it.
"""

from __future__ import annotations

import time

import jax

SINGLE_IS_ENOUGH = 10e-3  # seconds per single step above which blocks are not tried
BLOCK_SECONDS = 0.05  # the wall time a block of steps is sized for
CALLS_PER_EPOCH = 16  # blocks no longer than an epoch / 16: the progress bar moves
_MIN_TIMED_STEPS, _MIN_TIMED_SECONDS, _MAX_TIMED_STEPS = 3, 0.01, 200
_SCAN_MUST_SAVE = 0.95  # blocks are kept only when a step then costs <= 95% of a single one


def divisor_block(full_steps: int, target: int) -> int:
    """A block size near ``target`` (at most it) that divides ``full_steps`` when one lies
    in ``(target / 2, target]``: the epoch then needs no single steps after its blocks."""
    target = max(1, min(target, full_steps))
    return next((n for n in range(target, target // 2, -1) if full_steps % n == 0), target)


class AutoBlock:
    """The block size of one kind of step for one data shape; call it for the current size.

    ``observe(steps, outputs)`` is told of each executed call (``outputs`` are the call's
    device results, waited for only while a measurement needs it). ``phase`` is
    ``"single"`` (timing single steps), ``"block"`` (timing blocks) or ``"decided"``.

    Example:
        >>> chooser = AutoBlock(full_steps=64)
        >>> chooser()  # measuring single steps first
        1
        >>> chooser.phase
        'single'
    """

    def __init__(self, full_steps: int, clock=time.perf_counter):
        self.full_steps = full_steps
        self.phase = "single"
        self.block = 1
        self.single_seconds = None  # measured wall time per single step
        self.block_seconds = None  # measured wall time per step in blocks
        self._clock = clock
        self._started = None  # when the timed run began (after a wait for the device)
        self._timed = 0  # steps in the timed run so far
        self._banked_steps, self._banked_seconds = 0, 0.0  # earlier timed runs (other epochs)
        self._last = None  # the last timed call's outputs, waited for by pause()
        self._cap = max(1, full_steps // CALLS_PER_EPOCH)
        if self._cap < 2:
            self.phase = "decided"  # an epoch too short for blocks of two

    def __call__(self) -> int:
        return self.block

    def pause(self) -> None:
        """At the end of an epoch (validation and callbacks follow): keep what was timed so
        far and start a new timed run at the next call."""
        if self.phase != "decided" and self._started is not None and self._timed:
            jax.block_until_ready(self._last)
            self._banked_seconds += self._clock() - self._started
            self._banked_steps += self._timed
        self._started, self._last = None, None

    def observe(self, steps: int, outputs) -> None:
        if self.phase == "decided":
            return
        if steps != self.block:  # single steps at the end of an epoch while timing blocks
            self.pause()
            return
        if self._started is None:  # the compiling call of this form, or the first after a pause
            self._restart(outputs)
            return
        self._timed += steps
        self._last = outputs
        timed = self._banked_steps + self._timed
        elapsed = self._banked_seconds + self._clock() - self._started  # not waited for: a lower bound
        enough = _MIN_TIMED_STEPS if self.phase == "single" else self.block
        if timed < enough or (elapsed < _MIN_TIMED_SECONDS and timed < max(_MAX_TIMED_STEPS, self.block)):
            return
        jax.block_until_ready(outputs)
        seconds = (self._banked_seconds + self._clock() - self._started) / timed
        self._started, self._timed, self._last = None, 0, None
        self._banked_steps, self._banked_seconds = 0, 0.0
        if self.phase == "single":
            self._single_timed(seconds)
        else:
            self.block_seconds = seconds
            self._decide(self.block if seconds <= _SCAN_MUST_SAVE * self.single_seconds else 1)

    def _restart(self, outputs) -> None:
        jax.block_until_ready(outputs)
        self._started, self._timed = self._clock(), 0

    def _single_timed(self, seconds: float) -> None:
        self.single_seconds = seconds
        if seconds >= SINGLE_IS_ENOUGH:
            self._decide(1)
            return
        wanted = max(2, round(BLOCK_SECONDS / seconds))
        self.block = divisor_block(self.full_steps, min(wanted, self._cap))
        if self.block < 2:
            self._decide(1)
            return
        self.phase = "block"  # the next call compiles the scanned form; the ones after are timed

    def _decide(self, block: int) -> None:
        self.block, self.phase = block, "decided"

    def __repr__(self) -> str:
        return (f"AutoBlock(phase={self.phase!r}, block={self.block}, single_seconds={self.single_seconds}, "
                f"block_seconds={self.block_seconds})")
