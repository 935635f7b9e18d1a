"""``Progbar``: the Keras-style progress line that ``fit``/``evaluate``/``predict`` draw.

Why it is built the way it is:
- *No host sync per step.* ``update`` only stores what it is given (JAX arrays stay on the
  device) and reads the clock; values become Python floats only when a line is drawn, which
  happens at most every ``interval`` seconds, and for plain-text output only at the end.
- *Terminal or not.* Output goes through a rich ``Console``. On a terminal the line is redrawn
  in place (carriage return, erase to end of line); anywhere else (a pipe, a file, a notebook)
  it prints one plain line when the bar finishes, with no control characters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

import numpy as np
from rich.console import Console
from rich.control import Control, ControlType
from rich.text import Text

from lamina.utils import logging_control

__all__ = ["Progbar"]

# Module-level so tests can substitute a fake clock.
_clock = time.monotonic


class Progbar:
    """Displays a progress bar: ``12/469 ━━━━━━━━━━━━ 3s 6ms/step - loss: 0.3100``.

    Args:
        target: Total number of steps expected, ``None`` if unknown.
        width: Width of the bar in characters.
        verbose: 0 (silent), 1 (a bar, redrawn live on a terminal) or 2 (one line at the end).
        interval: Minimum number of seconds between two redraws of the live bar.
        stateful_metrics: Names of values shown as given (not averaged over steps); every
            other value is averaged over the steps, weighted by the steps since the last update,
            as Keras's progress bar does. The final update (``finalize``) shows values as given.
        unit_name: Name of a step in the per-step time (``"step"``, ``"sample"``).
        file: Where to write: a text stream or a ``rich.console.Console``; ``None`` means
            ``sys.stdout`` at the time of writing, or, after
            ``lm.utils.disable_interactive_logging()``, the ``"lamina"`` logger (finished
            lines only, no live redraw).
        stateless_metrics: Alternatively, the names of the values to average; every other
            value is shown as given. Pass ``stateless_metrics=()`` to average nothing.

    ``update`` and ``add`` are cheap enough to call every step: values are kept as given
    (JAX arrays stay on the device) and converted to float only when a line is drawn: once
    per redraw for a value shown as given, in one batched transfer for the values to average
    (which are also folded every thousand steps or so, to bound memory, from values old
    enough that the host does not wait for them).

    Example:
        >>> bar = Progbar(target=3, verbose=2)
        >>> for step in range(1, 4):
        ...     bar.update(step, [("loss", 0.5)], finalize=False)
        >>> bar.update(3, [("loss", 0.31)], finalize=True)
        3/3 - 0s - ...s/step - loss: 0.3100
    """

    def __init__(self, target, width=20, verbose=1, interval=0.1, stateful_metrics=None,
                 unit_name="step", file=None, *, stateless_metrics=None):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("Pass only one of `stateful_metrics` and `stateless_metrics`.")
        if verbose not in (0, 1, 2):
            raise ValueError(f"`verbose` must be 0, 1 or 2, got {verbose!r}.")
        self.target = target
        self.width = int(width)
        self.verbose = verbose
        self.interval = float(interval)
        self.unit_name = unit_name
        if stateless_metrics is not None:
            self._averaged = set(stateless_metrics).__contains__
        else:
            stateful = set(stateful_metrics or ())
            self._averaged = lambda name: name not in stateful
        self.console = file if isinstance(file, Console) else Console(
            file=file, highlight=False, markup=False, emoji=False)
        # A live bar needs a terminal; anything else gets one plain line at the end.
        self._dynamic = self.console.is_terminal and not self.console.is_dumb_terminal
        self._default_stream = file is None  # the one interactive logging switches off
        self._order = []        # value names, in order of first appearance
        self._shown = {}        # name -> value as given (shown as is)
        self._pending = {}      # name -> [(value, steps)] not yet folded into _sums
        self._sums = {}         # name -> [weighted sum (float), steps]
        self._float_cache = {}  # name -> (value object, float): converts each value once
        self._seen_so_far = 0
        self._start = _clock()
        self._last_update = None
        self._first = None      # (time, step) of the first update past step 0
        self._last_step = None  # (time, step) of the latest update that advanced

    def update(self, current, values=None, finalize=None):
        """Record progress up to step ``current`` and redraw if it is time to.

        Args:
            current: Index of the current step (1-based: the number of steps done).
            values: ``(name, value)`` pairs (or a dict) for the last steps; JAX arrays are
                kept as they are and converted only when drawn.
            finalize: Whether this is the last update; ``None`` means ``current >= target``.
        """
        if self.verbose == 0:
            return
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        if values:
            steps = max(current - self._seen_so_far, 1)
            for name, value in (values.items() if isinstance(values, Mapping) else values):
                if name not in self._shown and name not in self._sums:
                    self._order.append(name)
                if finalize or not self._averaged(name):
                    # Final values (an epoch's logs) are shown as given, as in Keras.
                    self._shown[name] = value
                    self._sums.pop(name, None)
                    self._pending.pop(name, None)
                else:
                    self._shown.pop(name, None)
                    self._sums.setdefault(name, [0.0, 0])
                    pending = self._pending.setdefault(name, [])
                    pending.append((value, steps))
                    if len(pending) >= 1024:  # bounds memory over a long epoch without redraws
                        self._fold(name, keep=32)
        now = _clock()
        if current > self._seen_so_far:
            # The time of the latest step: a final update that adds no steps (an epoch's end,
            # after validation) must not count the validation time as step time.
            self._last_step = (now, current)
            if self._first is None:
                self._first = (now, current)
        self._seen_so_far = current
        if finalize:
            self._draw(current, now, final=True)
        elif (self.verbose == 1 and self._dynamic and self._interactive()
              and (self._last_update is None or now - self._last_update >= self.interval)):
            self._draw(current, now, final=False)

    def add(self, n, values=None):
        """Advance by ``n`` steps (see ``update``)."""
        self.update(self._seen_so_far + n, values)

    # -- drawing -------------------------------------------------------------------------

    def _interactive(self):
        return not self._default_stream or logging_control.is_interactive_logging_enabled()

    def _draw(self, current, now, final):
        self._last_update = now
        per_step = self._step_duration(current, now)
        if self.verbose == 2:
            text = self._line_verbose2(current, now, per_step)
        else:
            text = self._line_bar(current, now, per_step, final)
        if not self._interactive():
            logging_control.print_msg(text.plain)
            return
        console = self.console
        if self._dynamic and self.verbose == 1:
            with console:  # one write for the whole redraw
                console.control(Control((ControlType.CARRIAGE_RETURN,)))
                if not final:
                    # Stay on one screen row, or the carriage return cannot reach its start.
                    text.truncate(max(console.width - 1, 1), overflow="ellipsis")
                console.print(text, end="", soft_wrap=True)
                console.control(Control((ControlType.ERASE_IN_LINE, 0)))
                if final:
                    console.print()
        else:
            console.print(text, soft_wrap=True)

    def _line_bar(self, current, now, per_step, final):
        text = Text()
        if self.target is not None and self.target > 0:
            digits = int(math.log10(self.target)) + 1
            text.append(f"{current:{digits}d}/{self.target}", style="bold")
            text.append(" ")
            done = min(int(self.width * current / self.target), self.width)
            text.append("━" * done, style="green")
            text.append("━" * (self.width - done), style="bright_black")
            if final:
                text.append(f" {now - self._start:.0f}s", style="bold")
            else:
                text.append(" " + _format_eta(per_step * (self.target - current)), style="bold")
        else:
            text.append(f"{current:7d}/Unknown", style="bold")
            text.append(f" {now - self._start:.0f}s", style="bold")
        text.append(" " + _format_step_time(per_step, self.unit_name))
        text.append(self._values_text())
        return text

    def _line_verbose2(self, current, now, per_step):
        if self.target is not None and self.target > 0:
            digits = int(math.log10(self.target)) + 1
            count = f"{current:{digits}d}/{self.target}"
        else:
            count = f"{current}/Unknown"
        line = f"{count} - {now - self._start:.0f}s - {_format_step_time(per_step, self.unit_name)}"
        return Text(line + self._values_text())

    def _values_text(self):
        parts = []
        for name in self._order:
            value = self._value(name)
            if isinstance(value, float):
                value = f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"
            parts.append(f" - {name}: {value}")
        return "".join(parts)

    def _value(self, name):
        if name in self._shown:
            return self._to_float(name, self._shown[name])
        self._fold(name)
        total, steps = self._sums[name]
        return total / max(steps, 1)

    def _to_float(self, name, value):
        cached = self._float_cache.get(name)
        if cached is not None and cached[0] is value:
            return cached[1]
        result = _as_float(value)
        self._float_cache[name] = (value, result)
        return result

    def _fold(self, name, keep=0):
        """Adds the pending values of ``name`` (all but the last ``keep``) into its running sum.

        Device values are fetched together (one transfer). While the bar is not drawn, only
        values at least ``keep`` steps old are folded: the device has long finished those,
        so the host does not wait.
        """
        pending = self._pending.pop(name, [])
        if keep:
            pending, self._pending[name] = pending[:-keep], pending[-keep:]
        if not pending:
            return
        values = _fetch([value for value, _ in pending])
        sums = self._sums[name]
        sums[0] += sum(_as_float(value) * steps for value, (_, steps) in zip(values, pending))
        sums[1] += sum(steps for _, steps in pending)

    def _step_duration(self, current, now):
        # Like Keras, leave the first update (compilation, warm-up) out of the estimate.
        if not current:
            return 0.0
        if self._last_step is not None and self._last_step[1] == current:
            now = self._last_step[0]
        if self._first is not None and current > self._first[1]:
            first_time, first_step = self._first
            return (now - first_time) / (current - first_step)
        return (now - self._start) / current


def _as_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        try:
            return float(np.mean(np.asarray(value)))
        except (TypeError, ValueError):
            return value  # shown with str()


def _fetch(values):
    """Device arrays among ``values`` copied to the host in one transfer; others unchanged."""
    try:
        import jax
    except ImportError:  # pragma: no cover - jax is a dependency
        return values
    if any(isinstance(value, jax.Array) for value in values):
        return jax.device_get(values)
    return values


def _format_eta(eta):
    if eta > 3600:
        return f"{int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}"
    if eta > 60:
        return f"{int(eta // 60)}:{int(eta % 60):02d}"
    return f"{eta:.0f}s"


def _format_step_time(seconds, unit_name):
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"
