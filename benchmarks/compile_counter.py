"""Count XLA compilations in this process (a ``jax.monitoring`` listener), for benchmarks
that check that no timed call compiles anything."""

from __future__ import annotations

import jax

_COUNT = [0]


def _on_duration(event: str, seconds: float, **kwargs) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _COUNT[0] += 1


jax.monitoring.register_event_duration_secs_listener(_on_duration)


def compilations() -> int:
    """XLA compilations so far in this process (since this module was imported)."""
    return _COUNT[0]
