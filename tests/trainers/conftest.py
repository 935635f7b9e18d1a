"""Fixtures shared by the trainer tests."""

import pytest
from jax import monitoring


class CompileCounter:
    """XLA compilations by function name (``jit(step)`` for a trainer step), from JAX's
    monitoring events, while the fixture is alive."""

    def __init__(self):
        self.names = []
        monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.names.append(kwargs.get("fun_name", "?"))

    def steps(self) -> int:
        """Trainer steps compiled so far."""
        return self.names.count("jit(step)")

    def close(self):
        monitoring.unregister_event_duration_listener(self._on_event)


@pytest.fixture
def compiles():
    counter = CompileCounter()
    yield counter
    counter.close()
